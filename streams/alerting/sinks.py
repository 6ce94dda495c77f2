"""Where notifications go: readable console lines and a JSONL file (more sinks later).

A failing sink is counted and logged, never raised: it must not block detection or
the other sinks.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Protocol, TextIO

from crowdwatch.errors import ConfigError
from crowdwatch.events import Alert, AlertState, event_to_json, iso
from crowdwatch.metrics import Metrics

log = logging.getLogger("crowdwatch.alerts")


class Sink(Protocol):
    name: str

    def send(self, alert: Alert) -> None: ...

    def close(self) -> None: ...


class ConsoleSink:
    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def send(self, alert: Alert) -> None:
        mark = "FIRING " if alert.state == AlertState.FIRING else "RESOLVED"
        when = iso(alert.ends_at if alert.state == AlertState.RESOLVED else alert.starts_at)
        print(f"{when} {mark} [{alert.severity}] {alert.rule} {alert.key}: {alert.summary}"
              f" (fingerprint {alert.fingerprint})", file=self.stream, flush=True)

    def close(self) -> None:
        pass


class JsonlSink:
    """One Alert JSON per line, flushed per line so a crash loses nothing already sent."""

    name = "jsonl"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"alerts.jsonl: cannot write {self.path}: "
                              f"{exc.strerror or exc}") from None
        self._lock = threading.Lock()

    def send(self, alert: Alert) -> None:
        with self._lock:
            self._file.write(event_to_json(alert) + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


class QueuedSink:
    """Base for sinks that deliver over the network: ``send`` only queues, and a thread of
    the sink's own delivers, so a slow or dead receiver never holds up the rule engine or
    the other sinks. Subclasses set their attributes before calling ``__init__`` (it starts
    the thread) and implement ``deliver``; they count delivery outcomes themselves."""

    name = "queued"
    counts_itself = True
    batch_size = 1

    def __init__(self, metrics: Metrics, queue_size: int = 1000) -> None:
        self.metrics = metrics
        self.queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-sink", daemon=True)
        self._thread.start()

    def send(self, alert: Alert) -> None:
        try:
            self.queue.put_nowait(alert)
        except queue.Full:
            self.metrics.alerts_sent.labels(sink=self.name, outcome="dropped").inc()
            log.error("%s queue full; alert %s %s dropped", self.name, alert.fingerprint,
                      alert.state, extra={"sink": self.name})

    def deliver(self, alerts: list[Alert]) -> None:
        raise NotImplementedError

    def idle(self) -> None:
        """Called after each wait for work (at most every 0.2 s): periodic duties."""

    def _run(self) -> None:
        while not (self._stop.is_set() and self.queue.empty()):
            batch = []
            try:
                batch.append(self.queue.get(timeout=0.2))
                while len(batch) < self.batch_size:
                    batch.append(self.queue.get_nowait())
            except queue.Empty:
                pass
            if batch:
                self.deliver(batch)
            self.idle()

    def close(self, wait: float = 5.0) -> None:
        """Give queued notifications up to ``wait`` seconds to go out, then stop."""
        deadline = time.monotonic() + wait
        while not self.queue.empty() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop.set()
        self._thread.join(timeout=max(0.1, deadline - time.monotonic()))


class Dispatcher:
    """Fans each notification out to every sink and counts the outcome per sink."""

    def __init__(self, sinks: list[Sink], metrics: Metrics) -> None:
        self.sinks = sinks
        self.metrics = metrics
        for sink in sinks:
            for outcome in ("ok", "error"):
                metrics.alerts_sent.labels(sink=sink.name, outcome=outcome)

    def send(self, alert: Alert) -> None:
        delta = 1 if alert.state == AlertState.FIRING else -1
        self.metrics.alerts_firing.labels(rule=alert.rule, severity=alert.severity).inc(delta)
        for zone in alert.zones or [alert.zone_id]:
            self.metrics.alert_active.labels(rule=alert.rule, rule_id=alert.rule_id, zone=zone,
                                             severity=alert.severity).set(1 if delta > 0 else 0)
        for sink in self.sinks:
            if getattr(sink, "counts_itself", False):
                sink.send(alert)  # queues; it counts the delivery outcome itself
                continue
            try:
                sink.send(alert)
                outcome = "ok"
            except Exception as exc:
                outcome = "error"
                log.error("alert sink %s failed: %s; alert %s (%s %s) not delivered there",
                          sink.name, exc, alert.fingerprint, alert.rule, alert.state,
                          extra={"sink": sink.name, "fingerprint": alert.fingerprint})
            self.metrics.alerts_sent.labels(sink=sink.name, outcome=outcome).inc()

    def close(self) -> None:
        """Close every sink, even when one fails (a full disk must not leave the others
        unflushed)."""
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:
                log.error("closing alert sink %s failed: %s", sink.name, exc,
                          extra={"sink": sink.name})
