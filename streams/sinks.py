"""Where notifications go: readable console lines and a JSONL file (more sinks later).

A failing sink is counted and logged, never raised: it must not block detection or
the other sinks.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import Protocol, TextIO

from crowdwatch.events import Alert, event_to_json, iso
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
        mark = "FIRING " if alert.state == "firing" else "RESOLVED"
        when = iso(alert.ends_at if alert.state == "resolved" else alert.starts_at)
        print(f"{when} {mark} [{alert.severity}] {alert.rule} {alert.zone_id}: {alert.summary}"
              f" (fingerprint {alert.fingerprint})", file=self.stream, flush=True)

    def close(self) -> None:
        pass


class JsonlSink:
    """One Alert JSON per line, flushed per line so a crash loses nothing already sent."""

    name = "jsonl"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def send(self, alert: Alert) -> None:
        with self._lock:
            self._file.write(event_to_json(alert) + "\n")
            self._file.flush()

    def close(self) -> None:
        self._file.close()


class Dispatcher:
    """Fans each notification out to every sink and counts the outcome per sink."""

    def __init__(self, sinks: list[Sink], metrics: Metrics) -> None:
        self.sinks = sinks
        self.metrics = metrics
        for sink in sinks:
            for outcome in ("ok", "error"):
                metrics.alerts_sent.labels(sink=sink.name, outcome=outcome)

    def send(self, alert: Alert) -> None:
        delta = 1 if alert.state == "firing" else -1
        self.metrics.alerts_firing.labels(rule=alert.rule, severity=alert.severity).inc(delta)
        self.metrics.alert_active.labels(rule=alert.rule, zone=alert.zone_id,
                                         severity=alert.severity).set(1 if delta > 0 else 0)
        for sink in self.sinks:
            if getattr(sink, "counts_itself", False):
                sink.send(alert)  # queues; it counts the delivery outcome itself
                continue
            try:
                sink.send(alert)
                outcome = "ok"
            except Exception as exc:  # noqa: BLE001 - any sink failure is counted, never raised
                outcome = "error"
                log.error("alert sink %s failed: %s; alert %s (%s %s) not delivered there",
                          sink.name, exc, alert.fingerprint, alert.rule, alert.state,
                          extra={"sink": sink.name, "fingerprint": alert.fingerprint})
            self.metrics.alerts_sent.labels(sink=sink.name, outcome=outcome).inc()

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
