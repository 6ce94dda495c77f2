"""The embedded default: cameras, detectors and the rule engine in one process.

Camera threads put events on one bounded queue; the main thread drains it into the
rule engine, updates metrics, ticks time-based rules and hands notifications to the
sinks. No broker, no frames outside the camera threads.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.console.live import LiveView
from crowdwatch.deadletter import DeadLetterFile
from crowdwatch.events import Alert, CameraHealth, CountEvent, SensorEvent
from crowdwatch.ingest.camera import LabelSample
from crowdwatch.ingest.sensors import ListenerSupervisor, sensor_listeners
from crowdwatch.metrics import Metrics
from crowdwatch.streams.alerting.sinks import Dispatcher
from crowdwatch.streams.rules.engine import Event, RuleEngine
from crowdwatch.streams.runtime.cameras import CameraFleet
from crowdwatch.streams.runtime.reloads import Reloads
from crowdwatch.streams.runtime.state_file import StateFile

log = logging.getLogger("crowdwatch.run")


class EmbeddedRunner:
    def __init__(
        self,
        config: CrowdwatchConfig,
        dispatcher: Dispatcher,
        metrics: Metrics,
        realtime: bool = True,
        live: LiveView | None = None,
    ) -> None:
        """``live``: the console's view, fed with every count, reading, health report,
        alert and outlook (numbers only)."""
        self.config = config
        self.live = live
        self.dispatcher = dispatcher
        self.metrics = metrics
        self.realtime = realtime
        self.stop_event = threading.Event()
        self.events: queue.Queue = queue.Queue(maxsize=config.engine.queue_size)
        self.engine = RuleEngine(config, start_ts=time.time())
        self._gauges: dict[tuple[str, str], tuple] = {}
        self._count_events = metrics.events_total.labels(type="count")
        self._health_events = metrics.events_total.labels(type="health")
        self._sensor_events = metrics.events_total.labels(type="sensor")
        self.cameras = CameraFleet(config.cameras, self._emit, metrics, realtime)
        self.reloads = Reloads()
        self.deadletter = DeadLetterFile.of(config.deadletter, metrics)
        self.deadletter.check_writable()
        self.sensors = sensor_listeners(config, self._emit, self.deadletter.reject,
                                        config.kafka.max_message_bytes, metrics)
        self.supervisor = ListenerSupervisor(self.sensors, metrics)
        self.state_file = self._open_state_file()

    def _open_state_file(self) -> StateFile | None:
        """Load what the learning rules saved; warn when nothing will keep it."""
        learners = [r.rule_id for r in self.engine.learners]
        path = self.config.engine.state_file
        if path is None:
            if learners:
                log.warning("rules that learn over weeks run without engine.state_file: what "
                            "they learn is lost at every restart", extra={"rules": learners})
            return None
        state_file = StateFile(path, self.config.site.name)
        state_file.check_writable()
        taken = self.engine.seed(state_file.load())
        log.info("state file loaded", extra={"path": path, "models": taken,
                                             "learning_rules": len(learners)})
        return state_file

    def save_state(self) -> None:
        """Write the learned models (never raises: a full disk costs a save, not the run)."""
        if self.state_file is None:
            return
        try:
            self.state_file.save(self.engine.learned_state())
            self.metrics.state_saves.labels(result="ok").inc()
        except OSError as exc:
            self.metrics.state_saves.labels(result="error").inc()
            log.error("state file not saved; will retry", extra={
                "path": str(self.state_file.path), "error": str(exc)})

    def _show_outlook(self, now: float) -> None:
        """Usual band and forecast per zone, for the zone dashboard."""
        outlooks = self.engine.outlooks(now)
        if self.live is not None:
            self.live.expected(outlooks)
        for zone_id, values in outlooks.items():
            for what, value in values.items():
                self.metrics.zone_expected.labels(zone=zone_id, what=what).set(value)

    # -- setup (the console's thread asks; the engine's thread does) -----------------------

    def snapshot(self, camera_id: str) -> bytes | None:
        """A masked JPEG of the camera's next frame, in memory (None: no such camera or no
        frame in time)."""
        return self.cameras.snapshot(camera_id)

    def label_frame(self, camera_id: str) -> LabelSample | None:
        """A masked JPEG of the camera's next counted frame with its per-zone counts."""
        return self.cameras.label_frame(camera_id)

    def reload(self, config: CrowdwatchConfig, timeout: float = 15.0) -> str | None:
        """Run on ``config`` from the next loop turn; returns an error, or None once
        applied."""
        return self.reloads.ask(config, timeout)

    def _reconfigure(self, config: CrowdwatchConfig) -> None:
        """Cameras whose settings changed restart (the others keep running); the rule
        engine is rebuilt on the same state, so unchanged rules keep theirs and what a
        removed or changed rule left firing resolves with the reason."""
        restarted = self.cameras.replace(config.cameras)
        self.config = config
        now = time.time()
        self.engine = RuleEngine(config, start_ts=now, store=self.engine.store)
        for alert in self.engine.reconcile(now):
            self._send(alert)
        self.metrics.describe_config(config, self.engine.series())
        if self.live is not None:
            self.live.reconfigure(config, self.engine.series())
        self.cameras.start()
        log.info("configuration applied", extra={
            "cameras_restarted": restarted, "rules": len(self.engine.rules)})

    def _emit(self, event: Event) -> None:
        try:
            self.events.put(event, timeout=1.0)
        except queue.Full:
            if isinstance(event, CountEvent):
                self.metrics.frames_dropped.labels(camera=event.camera_id).inc()

    def _zone_gauges(self, camera_id: str, zone_id: str) -> tuple:
        """(people, density) gauge children, looked up once per zone, not per event."""
        key = (camera_id, zone_id)
        gauges = self._gauges.get(key)
        if gauges is None:
            m = self.metrics
            gauges = (m.zone_people.labels(camera=camera_id, zone=zone_id),
                      m.zone_density.labels(camera=camera_id, zone=zone_id))
            self._gauges[key] = gauges
        return gauges

    def _handle(self, event: Event) -> None:
        now = time.time()
        self.metrics.last_event.set(now)
        if isinstance(event, CountEvent):
            self._count_events.inc()
            people, density = self._zone_gauges(event.camera_id, event.zone_id)
            people.set(event.count)
            if event.density_ppm2 is not None:
                density.set(event.density_ppm2)
            self.metrics.dynamics.observe(event)
            self.metrics.capture_to_event.observe(max(0.0, now - event.ts))
        elif isinstance(event, SensorEvent):
            self._sensor_events.inc()
            self.metrics.observe_sensor(event)
        elif isinstance(event, CameraHealth):
            self._health_events.inc()
        for alert in self.engine.handle(event):
            self._send(alert)
        if isinstance(event, CameraHealth):
            self._show_inhibited()
        if self.live is not None:
            self._show_live(event)

    def _send(self, alert: Alert) -> None:
        self.dispatcher.send(alert)
        if self.live is not None:
            self.live.alert(alert)

    def _show_live(self, event: Event) -> None:
        live = self.live
        assert live is not None
        if isinstance(event, CountEvent):
            live.zone_value(event.zone_id, event.ts, event.count, event.density_ppm2)
        elif isinstance(event, SensorEvent):
            live.sensor_seen(event.sensor_id, event.ts)
            if event.zone_id:
                people = self.engine.zone_value(event.zone_id, event.ts)
                live.zone_value(event.zone_id, event.ts, people,
                                self.engine.zone_density(event.zone_id, people))
        else:
            live.camera_health(event.camera_id, str(event.state), event.reason, event.ts)

    def _show_inhibited(self) -> None:
        """Zones of an untrustworthy camera show no count (a gap), never a stale one."""
        inhibited = self.engine.inhibited_zones()
        if self.live is not None:
            self.live.withheld(inhibited)
        for (_camera_id, zone_id), (people, density) in self._gauges.items():
            self.metrics.zone_inhibited.labels(zone=zone_id).set(zone_id in inhibited)
            if zone_id in inhibited:
                people.set(float("nan"))
                density.set(float("nan"))

    def run(self, duration: float | None = None) -> None:
        """Run until ``duration`` seconds pass, stop() is called, or every source ends."""
        self.metrics.describe_config(self.config, self.engine.series())
        self.metrics.consumer_lag.labels(stage="embedded").set(0)
        self.cameras.start()
        for listener in self.sensors:
            listener.start()
        log.info("crowdwatch running: %d camera(s), %d sensor listener(s), %d rule(s)",
                 len(self.cameras), len(self.sensors), len(self.config.rules),
                 extra={"site": self.config.site.name})
        deadline = None if duration is None else time.monotonic() + duration
        tick = self.config.engine.tick
        next_tick = time.monotonic() + tick
        save_every = self.config.engine.save_every
        next_save = time.monotonic() + save_every
        try:
            while not self.stop_event.is_set():
                if self.reloads.pending():
                    self.reloads.apply(self._reconfigure)
                now_mono = time.monotonic()
                if deadline is not None and now_mono >= deadline:
                    break
                if (not self.sensors and not self.cameras.any_alive()
                        and self.events.empty()):
                    log.info("every source has ended")
                    break
                timeout = max(0.0, min(next_tick, deadline or next_tick) - now_mono)
                with contextlib.suppress(queue.Empty):
                    self._handle(self.events.get(timeout=timeout))
                if time.monotonic() >= next_tick:
                    self.metrics.consumer_lag.labels(stage="embedded").set(self.events.qsize())
                    self.supervisor.check()
                    alerts = self.engine.tick(time.time())
                    for alert in alerts:
                        self._send(alert)
                    if alerts:
                        self._show_inhibited()
                    self._show_outlook(time.time())
                    next_tick += tick
                if time.monotonic() >= next_save:
                    self.save_state()
                    next_save += save_every
        finally:
            self.stop()

    def stop(self) -> None:
        self.stop_event.set()
        self.cameras.signal_stop()
        for listener in self.sensors:
            listener.stop()
        self.sensors = []
        self.cameras.join(timeout=5.0)
        while True:  # drain what cameras produced before they stopped
            try:
                self._handle(self.events.get_nowait())
            except queue.Empty:
                break
        self.save_state()
        self.dispatcher.close()
        self.deadletter.close()
