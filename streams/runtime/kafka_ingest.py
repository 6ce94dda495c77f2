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
import threading
import time
from collections import deque

from aiokafka.errors import KafkaError

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.deadletter import DeadLetter, note_rejection
from crowdwatch.events import CameraHealth, CountEvent, SensorEvent, event_to_json
from crowdwatch.ingest.camera import CameraWorker
from crowdwatch.ingest.sensors import ListenerSupervisor, sensor_listeners
from crowdwatch.metrics import Metrics
from crowdwatch.streams.rules.registry import rule_series
from crowdwatch.streams.runtime.kafka_io import Topics, ensure_topics, make_producer
from crowdwatch.streams.runtime.partitioning import CoPartitioner
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
            return self.topics.counts, self.keys.count_key(event)
        if isinstance(event, SensorEvent):
            return self.topics.sensors, self.keys.sensor_key(event)
        if isinstance(event, DeadLetter):
            return self.topics.deadletter, event.source.encode()
        assert isinstance(event, CameraHealth)
        return self.topics.health, self.keys.health_key(event)

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
                    for event in batch:
                        topic, key = self.route(event)
                        body = (event.to_json() if isinstance(event, DeadLetter)
                                else event_to_json(event))
                        futures.append(await producer.send(topic, body.encode(), key=key))
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


def run_ingest(config: CrowdwatchConfig, metrics: Metrics, duration: float | None = None,
               realtime: bool = True) -> int:
    async def main() -> int:
        await ensure_topics(config.kafka)
        publisher = Publisher(config, metrics)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        thread_stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        def emit(event: object) -> None:
            loop.call_soon_threadsafe(publisher.enqueue, event)

        def reject(*args) -> None:
            loop.call_soon_threadsafe(publisher.reject, *args)

        workers = [CameraWorker(cam, emit, metrics, thread_stop, realtime=realtime)
                   for cam in config.cameras]
        sensors = sensor_listeners(config, emit, reject, config.kafka.max_message_bytes,
                                   metrics)
        supervisor = ListenerSupervisor(sensors, metrics)
        metrics.describe_config(config, rule_series(config))
        for w in workers:
            w.start()
        for listener in sensors:
            listener.start()
        task = asyncio.create_task(publisher.run(stop))
        started = time.monotonic()
        while not stop.is_set():
            if duration is not None and time.monotonic() - started >= duration:
                break
            if not sensors and not any(w.is_alive() for w in workers):
                break
            supervisor.check()
            await asyncio.sleep(0.2)
        for listener in sensors:
            listener.stop()
        thread_stop.set()
        for w in workers:
            await asyncio.to_thread(w.join, 5.0)
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

    return asyncio.run(main())
