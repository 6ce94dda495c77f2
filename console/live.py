"""What the live page shows, kept in memory and updated by the pipeline as events pass.

Only numbers: counts, densities, levels, the usual band, alerts and health. Nothing here
can hold an image, so nothing the page receives can show one. Thread-safe: the engine's
thread writes, the web server's thread reads snapshots.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.events import Alert, AlertState
from crowdwatch.metrics import SeriesLike

HISTORY_POINTS = 180  # sparkline resolution: the span in this many buckets
RESOLVED_KEPT = 20  # recently resolved alerts the page lists


@dataclass
class ZoneLive:
    id: str
    source: str  # camera id, or "sensors"
    metric: str  # what the levels are about: "density" or "count"
    warn: float | None = None
    critical: float | None = None
    count: float | None = None
    density: float | None = None
    ts: float | None = None
    withheld: bool = False
    expected: dict[str, float] = field(default_factory=dict)
    history: deque[tuple[float, float]] = field(default_factory=lambda: deque(
        maxlen=HISTORY_POINTS + 1))

    def value(self) -> float | None:
        return self.density if self.metric == "density" else self.count

    def level(self) -> str:
        value = self.value()
        if self.withheld or value is None:
            return "nodata"
        if self.critical is not None and value >= self.critical:
            return "critical"
        if self.warn is not None and value >= self.warn:
            return "warning"
        return "ok"


class LiveView:
    def __init__(self, config: CrowdwatchConfig, series: Sequence[SeriesLike],
                 history_s: float, alerts_here: bool = True) -> None:
        """``alerts_here``: False where this process runs no rules (scale-out ingest: the
        workers raise the alerts), so the page says where they are, not "none"."""
        self.history_s = history_s
        self.alerts_here = alerts_here
        self.bucket = history_s / HISTORY_POINTS
        self._lock = threading.Lock()
        self.version = 0
        self.alerts: dict[str, dict[str, Any]] = {}
        self.resolved: deque[dict[str, Any]] = deque(maxlen=RESOLVED_KEPT)
        self.zones: dict[str, ZoneLive] = {}
        self.cameras: dict[str, dict[str, Any]] = {}
        self.sensors: dict[str, dict[str, Any]] = {}
        self.reconfigure(config, series)

    def reconfigure(self, config: CrowdwatchConfig, series: Sequence[SeriesLike]) -> None:
        """Zones, levels, cameras and sensors from a (new) config; what is shown of the
        ones that stay (their sparklines, health) is kept."""
        with self._lock:
            self._configure(config, series)
            self.version += 1

    def _configure(self, config: CrowdwatchConfig, series: Sequence[SeriesLike]) -> None:
        self.site = config.site.name
        self.timezone = config.site.timezone
        old_zones, old_cameras, old_sensors = self.zones, self.cameras, self.sensors
        self.zones = {}
        def fresh(zone_id: str, source: str) -> ZoneLive:
            zone = ZoneLive(zone_id, source, "count")
            old = old_zones.get(zone_id)
            if old is not None and old.source == source:
                zone.count, zone.density, zone.ts = old.count, old.density, old.ts
                zone.history, zone.expected = old.history, old.expected
            return zone

        for cam in config.cameras:
            for zcfg in cam.zones:
                self.zones[zcfg.id] = fresh(zcfg.id, cam.id)
        for szone in config.sensors.zones:
            if szone.id not in self.zones:
                self.zones[szone.id] = fresh(szone.id, "sensors")
        for s in series:  # density levels win: they are about safety, counts about capacity
            zone = self.zones.get(s.zone)
            if zone is None or s.threshold is None or s.level_of not in ("count", "density"):
                continue
            if s.level_of == "density" and zone.metric != "density":
                zone.metric, zone.warn, zone.critical = "density", None, None
            if s.level_of != zone.metric:
                continue
            if s.severity == "critical":
                zone.critical = s.threshold
            else:
                zone.warn = s.threshold
        self.cameras = {
            cam.id: {**old_cameras.get(cam.id, {"state": "starting", "reason": "",
                                                "since": None}),
                     "id": cam.id, "zones": [z.id for z in cam.zones]}
            for cam in config.cameras}
        self.sensors = {
            dev.id: old_sensors.get(dev.id) or {"id": dev.id, "zone": dev.zone, "last": None,
                                                "silent": False}
            for dev in config.sensors.devices}

    # -- writes (the engine's thread) ----------------------------------------------------

    def zone_value(self, zone_id: str, ts: float, count: float, density: float | None) -> None:
        with self._lock:
            zone = self.zones.get(zone_id)
            if zone is None:
                return
            zone.count, zone.density, zone.ts = count, density, ts
            value = zone.value()
            if value is not None:
                last = zone.history[-1] if zone.history else None
                slot = ts - ts % self.bucket
                if last is not None and last[0] == slot:
                    zone.history[-1] = (slot, max(last[1], value))  # a peak is never lost
                else:
                    zone.history.append((slot, value))
            self.version += 1

    def camera_health(self, camera_id: str, state: str, reason: str, ts: float) -> None:
        with self._lock:
            cam = self.cameras.get(camera_id)
            if cam is None:
                return
            if cam["state"] != state:
                cam["since"] = ts
            cam["state"], cam["reason"] = state, reason
            self.version += 1

    def sensor_seen(self, sensor_id: str, ts: float) -> None:
        with self._lock:
            sensor = self.sensors.get(sensor_id)
            if sensor is not None:
                sensor["last"] = ts
                self.version += 1

    def withheld(self, zones: set[str]) -> None:
        with self._lock:
            for zone in self.zones.values():
                zone.withheld = zone.id in zones
            self.version += 1

    def expected(self, outlooks: dict[str, dict[str, float]]) -> None:
        with self._lock:
            for zone_id, values in outlooks.items():
                if zone_id in self.zones:
                    self.zones[zone_id].expected = dict(values)
            self.version += 1

    def alert(self, alert: Alert) -> None:
        """Firing alerts are listed until resolved; a sensor_silent alert marks its sensor."""
        with self._lock:
            row = {"fingerprint": alert.fingerprint, "rule": alert.rule,
                   "rule_id": alert.rule_id, "zone": alert.zone_id, "zones": alert.zones,
                   "severity": str(alert.severity), "value": alert.value,
                   "threshold": alert.threshold, "since": alert.starts_at,
                   "summary": alert.summary,
                   "about": alert.labels.get("camera") or alert.labels.get("sensor") or ""}
            sensor = self.sensors.get(alert.labels.get("sensor", ""))
            if alert.state == AlertState.FIRING:
                self.alerts[alert.fingerprint] = row
                if sensor is not None and alert.rule == "sensor_silent":
                    sensor["silent"] = True
            else:
                self.alerts.pop(alert.fingerprint, None)
                self.resolved.appendleft({**row, "ended": alert.ends_at})
                if sensor is not None and alert.rule == "sensor_silent":
                    sensor["silent"] = False
            self.version += 1

    # -- reads (the web server's thread) -------------------------------------------------

    def snapshot(self, history: bool = True, now: float | None = None) -> dict[str, Any]:
        """Everything the page draws; ``history=False``: each zone's latest point only."""
        now = time.time() if now is None else now
        with self._lock:
            zones = []
            for z in self.zones.values():
                row: dict[str, Any] = {
                    "id": z.id, "source": z.source, "metric": z.metric, "warn": z.warn,
                    "critical": z.critical, "count": z.count, "density": z.density,
                    "ts": z.ts, "level": z.level(), "withheld": z.withheld,
                    "expected": dict(z.expected)}
                if history:
                    row["history"] = [list(p) for p in z.history
                                      if p[0] >= now - self.history_s]
                elif z.history:
                    row["point"] = list(z.history[-1])
                zones.append(row)
            return {"site": self.site, "timezone": self.timezone, "now": now,
                    "version": self.version, "history_s": self.history_s,
                    "alerts_here": self.alerts_here,
                    "zones": zones,
                    "alerts": sorted(self.alerts.values(), key=lambda a: -a["since"]),
                    "resolved": list(self.resolved),
                    "cameras": [dict(c) for c in self.cameras.values()],
                    "sensors": [{**s, "age": None if s["last"] is None else now - s["last"]}
                                for s in self.sensors.values()]}
