"""`crowdwatch ingest`: cameras and sensors → CountEvent/CameraHealth/SensorEvent → Kafka.

Camera threads hand events to one asyncio loop that publishes them with an
idempotent, acks=all producer, each keyed by its co-partition group (a camera with its
zones, the sensors of those zones, whatever one rule reads together), so everything a
rule needs lands in one partition number of every topic, in order. Rejected sensor
messages go to the dead-letter topic with the reason. While the broker is away events
wait in a bounded buffer and are re-sent when it returns; only when that buffer is
full are the oldest dropped (and counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from collections import deque
from typing import Any

from aiokafka.errors import KafkaError

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.console.live import LiveView
from crowdwatch.deadletter import DeadLetter, note_rejection
from crowdwatch.events import (
    CameraHealth,
    CountEvent,
    HealthState,
    SensorEvent,
    event_to_bytes,
    event_to_compact,
)
from crowdwatch.ingest.camera import LabelSample
from crowdwatch.ingest.sensors import ListenerSupervisor, sensor_listeners
from crowdwatch.metrics import Metrics
from crowdwatch.streams.rules.registry import rule_series
from crowdwatch.streams.runtime.cameras import CameraFleet
from crowdwatch.streams.runtime.kafka_io import Topics, ensure_topics, make_producer
from crowdwatch.streams.runtime.partitioning import CoPartitioner
from crowdwatch.streams.runtime.reloads import Reloads
from crowdwatch.util.backoff import Backoff

log = logging.getLogger("crowdwatch.ingest")
FLUSH_GRACE = 5.0  # seconds after stop for waiting events to reach the broker


class Publisher:
    def __init__(self, config: CrowdwatchConfig, metrics: Metrics, buffer: int = 100_000) -> None:
        self.config = config
        self.metrics = metrics
        self.topics = Topics.of(config.kafka)
        self.keys = CoPartitioner(config)
        self.pending: deque = deque(maxlen=buffer)
        self.wakeup = asyncio.Event()
        self.sent = 0
        self.published: dict[str, int] = {}

    def reconfigure(self, config: CrowdwatchConfig) -> None:
        """Key what comes next by ``config``'s groups (what waits keeps its old keys'
        topics; keys are looked up when sent)."""
        self.config = config
        self.keys = CoPartitioner(config)

    def enqueue(self, event: object) -> None:
        if len(self.pending) == self.pending.maxlen:
            dropped = self.pending[0]
            if isinstance(dropped, CountEvent):
                self.metrics.frames_dropped.labels(camera=dropped.camera_id).inc()
        self.pending.append(event)
        self.wakeup.set()

    def route(self, event: object) -> tuple[str, bytes]:
        """Topic and key: the key is the event's co-partition group (see partitioning)."""
        if isinstance(event, CountEvent):
            return self.topics.counts, self.keys.key_for(event)
        if isinstance(event, SensorEvent):
            return self.topics.sensors, self.keys.key_for(event)
        if isinstance(event, DeadLetter):
            return self.topics.deadletter, event.source.encode()
        assert isinstance(event, CameraHealth)
        return self.topics.health, self.keys.key_for(event)

    def reject(self, source: str, reason: str, detail: str, raw: bytes | str | None,
               position: str = "") -> None:
        """Sensor listeners' rejections: counted, logged, and sent to the dead-letter topic."""
        letter = DeadLetter.of(source, reason, detail, raw, self.config.deadletter.max_raw_bytes,
                               position)
        note_rejection(self.metrics, letter, self.topics.deadletter)
        self.enqueue(letter)

    async def run(self, stop: asyncio.Event) -> None:
        producer = make_producer(self.config.kafka)
        await self._start(producer, stop)
        try:
            while not (stop.is_set() and not self.pending):
                if not self.pending:
                    self.wakeup.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wakeup.wait(), timeout=0.5)
                    continue
                batch = [self.pending.popleft() for _ in range(min(500, len(self.pending)))]
                try:
                    futures = []
                    encode = (event_to_compact if self.config.kafka.wire == "compact"
                              else event_to_bytes)
                    for event in batch:
                        topic, key = self.route(event)
                        body = (event.to_json().encode() if isinstance(event, DeadLetter)
                                else encode(event))
                        futures.append(await producer.send(topic, body, key=key))
                    await asyncio.gather(*futures)
                    self.sent += len(batch)
                    for event in batch:
                        self.published[event.TYPE] = self.published.get(event.TYPE, 0) + 1
                        self.metrics.events_total.labels(type=f"published_{event.TYPE}").inc()
                except KafkaError as exc:
                    # Idempotent producer: a re-send of an event the broker already has
                    # is discarded by sequence number within this producer session.
                    self.pending.extendleft(reversed(batch))
                    log.warning("kafka unavailable (%s); %d events waiting, retrying",
                                type(exc).__name__, len(self.pending))
                    await asyncio.sleep(1.0)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 3.0)

    async def _start(self, producer, stop: asyncio.Event) -> None:
        delays = Backoff(1.0, 30.0, jitter=0.0)
        while not stop.is_set():
            try:
                await producer.start()
                return
            except KafkaError as exc:
                delay = delays.next_delay()
                log.warning("kafka not reachable (%s); retrying in %.0fs", type(exc).__name__,
                            delay)
                await asyncio.sleep(delay)


class IngestRunner:
    """Cameras and sensor listeners publishing to Kafka, with the console's setup hooks
    (snapshot, frame to label, reload) as in the embedded runner. The rules run in the
    workers, so the live view here shows counts and health, not alerts."""

    def __init__(self, config: CrowdwatchConfig, metrics: Metrics, realtime: bool = True,
                 live: LiveView | None = None) -> None:
        self.config = config
        self.metrics = metrics
        self.live = live
        self.reloads = Reloads()
        self.publisher: Publisher | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._health: dict[str, str] = {}
        self.cameras = CameraFleet(config.cameras, self._emit, metrics, realtime)
        self.sensors = sensor_listeners(config, self._emit, self._reject,
                                        config.kafka.max_message_bytes, metrics)

    # -- the console's hooks (called from its thread) --------------------------------

    def snapshot(self, camera_id: str) -> bytes | None:
        return self.cameras.snapshot(camera_id)

    def label_frame(self, camera_id: str) -> LabelSample | None:
        return self.cameras.label_frame(camera_id)

    def reload(self, config: CrowdwatchConfig, timeout: float = 15.0) -> str | None:
        return self.reloads.ask(config, timeout)

    def stop(self) -> None:
        """Stop from any thread or a signal handler."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    # -- events (camera and listener threads hand them to the loop) ------------------

    def _emit(self, event: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._take, event)

    def _reject(self, *args: Any) -> None:
        if self._loop is not None and self.publisher is not None:
            self._loop.call_soon_threadsafe(self.publisher.reject, *args)

    def _take(self, event: object) -> None:
        assert self.publisher is not None
        self.publisher.enqueue(event)
        if self.live is not None:
            self._show_live(self.live, event)

    def _show_live(self, live: LiveView, event: object) -> None:
        if isinstance(event, CountEvent):
            live.zone_value(event.zone_id, event.ts, event.count, event.density_ppm2)
        elif isinstance(event, SensorEvent):
            live.sensor_seen(event.sensor_id, event.ts)
        elif isinstance(event, CameraHealth):
            live.camera_health(event.camera_id, str(event.state), event.reason, event.ts)
            self._health[event.camera_id] = str(event.state)
            live.withheld({z.id for cam in self.config.cameras for z in cam.zones
                           if self._health.get(cam.id, "up") != HealthState.UP})

    # -- setup changes (on the loop's thread, between two events) --------------------

    def _reconfigure(self, config: CrowdwatchConfig) -> None:
        """Cameras whose settings changed restart, the others keep running; events are
        keyed by the new config's co-partition groups."""
        assert self.publisher is not None
        restarted = self.cameras.replace(config.cameras)
        old_keys = self.publisher.keys
        self.config = config
        self.publisher.reconfigure(config)
        series = rule_series(config)
        self.metrics.describe_config(config, series)
        if self.live is not None:
            self.live.reconfigure(config, series)
        self.cameras.start()
        log.info("configuration applied", extra={"cameras_restarted": restarted})
        moved = old_keys.moved(self.publisher.keys)
        if moved:
            log.warning("the change moves entities between co-partition groups: restart the "
                        "rule workers with the new site file (until then they dead-letter "
                        "those entities' events as wrong_key)",
                        extra={"moved": [f"{ns}:{ident}" for ns, ident in moved]})

    # -- the run ---------------------------------------------------------------------

    def run(self, duration: float | None = None) -> int:
        return asyncio.run(self._main(duration))

    async def _main(self, duration: float | None) -> int:
        config = self.config
        await ensure_topics(config.kafka)
        publisher = self.publisher = Publisher(config, self.metrics)
        self._loop = loop = asyncio.get_running_loop()
        stop = self._stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        supervisor = ListenerSupervisor(self.sensors, self.metrics)
        self.metrics.describe_config(config, rule_series(config))
        self.cameras.start()
        for listener in self.sensors:
            listener.start()
        task = asyncio.create_task(publisher.run(stop))
        started = time.monotonic()
        while not stop.is_set():
            if self.reloads.pending():
                self.reloads.apply(self._reconfigure)
            if duration is not None and time.monotonic() - started >= duration:
                break
            if not self.sensors and not self.cameras.any_alive():
                break
            supervisor.check()
            await asyncio.sleep(0.2)
        for listener in self.sensors:
            listener.stop()
        self.cameras.signal_stop()
        await asyncio.to_thread(self.cameras.join, 5.0)
        stop.set()
        try:  # events still waiting get a grace period to reach the broker, not forever
            await asyncio.wait_for(asyncio.shield(task), FLUSH_GRACE)
        except TimeoutError:
            lost = len(publisher.pending)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            log.error("kafka did not take the last %d event(s) within %.0fs of stopping; they "
                      "are dropped", lost, FLUSH_GRACE, extra={"dropped": lost})
        log.info("ingest stopped after publishing %d events", publisher.sent)
        print(json.dumps({"published": publisher.published}), flush=True)
        return 0

