"""Rules about sensors: silence, and a camera and a sensor that disagree about a zone.

Pure state transitions on event time like the other rule modules. A disagreement
means one of the two is wrong (a camera moved or masked, a counter miscounting), which
is exactly when on-call staff should not trust either number alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crowdwatch.config import DisagreementRuleConfig, SensorSilentRuleConfig
from crowdwatch.events import Alert, fingerprint
from crowdwatch.streams.rules import (
    OfflineState,
    SilenceRule,
    edge_step,
    push_window,
    window_statistic,
)


@dataclass(slots=True)
class SensorReading:
    """A sensor's latest reading, kept so a zone's sensors can be summed."""

    ts: float
    value: float


class SensorSilentRule(SilenceRule):
    """A sensor that sends nothing for ``after`` seconds; its next reading resolves it."""

    kind = "sensor_silent"
    entity = "sensor"

    def __init__(self, cfg: SensorSilentRuleConfig, site: str, sensor_id: str,
                 zone_id: str | None) -> None:
        self.cfg = cfg
        super().__init__(cfg.after, cfg.severity, site, sensor_id, [zone_id] if zone_id else [])

    def describe(self, firing: bool, silent: float, st: OfflineState | None) -> str:
        if not firing:
            return f"sensor {self.entity_id} reports again"
        return f"sensor {self.entity_id} sent no reading for {silent:.0f}s"


@dataclass(slots=True)
class DisagreementState:
    times: list[float] = field(default_factory=list)
    counts: list[float] = field(default_factory=list)
    sensor_ts: float | None = None
    sensor_value: float | None = None
    last_ts: float | None = None
    pending_since: float | None = None
    firing_since: float | None = None
    clear_since: float | None = None


class DisagreementRule:
    """Median camera count over a window against the sensor's latest reading."""

    kind = "disagreement"
    severity = "warning"

    def __init__(self, cfg: DisagreementRuleConfig, site: str, camera_id: str,
                 scale: float = 1.0) -> None:
        self.cfg = cfg
        self.site = site
        self.camera_id = camera_id
        self.zone_id = cfg.zone
        self.sensor_id = cfg.sensor
        self.scale = scale
        self._fp = fingerprint(site, self.kind, cfg.zone, cfg.sensor)

    def new_state(self) -> DisagreementState:
        return DisagreementState()

    def relative_gap(self, state: DisagreementState, ts: float) -> tuple[float, float,
                                                                          float] | None:
        """(gap, camera, sensor), or None while there is nothing fresh to compare."""
        if (not state.counts or state.sensor_value is None or state.sensor_ts is None
                or ts - state.sensor_ts > self.cfg.max_age):
            return None
        camera = window_statistic(state.counts, "median")
        sensor = state.sensor_value
        return abs(camera - sensor) / max(camera, sensor, self.cfg.min_level), camera, sensor

    def observe_camera(self, state: DisagreementState, ts: float, count: float) -> list[Alert]:
        if not push_window(state.times, state.counts, ts, count, self.cfg.window):
            return []
        return self._evaluate(state, ts)

    def observe_sensor(self, state: DisagreementState, ts: float, value: float) -> list[Alert]:
        if state.sensor_ts is not None and ts <= state.sensor_ts:
            return []
        state.sensor_ts, state.sensor_value = ts, value * self.scale
        return self._evaluate(state, ts)

    def _evaluate(self, state: DisagreementState, ts: float) -> list[Alert]:
        if state.last_ts is not None and ts < state.last_ts:
            return []
        state.last_ts = ts
        compared = self.relative_gap(state, ts)
        if compared is None:
            return []  # no verdict without both numbers: keeps the current state
        gap, camera, sensor = compared
        edge = edge_step(state, ts, gap > self.cfg.tolerance, gap > self.cfg.tolerance,
                         self.cfg.for_, self.cfg.clear_for)
        if edge is None:
            return []
        firing = edge[0] == "firing"
        summary = (f"camera count {camera:.1f} and sensor {self.sensor_id} reading {sensor:.1f} "
                   f"in {self.zone_id} differ by {gap:.0%} (tolerance "
                   f"{self.cfg.tolerance:.0%}); check the camera view and the sensor"
                   if firing else f"camera and sensor {self.sensor_id} agree again in "
                   f"{self.zone_id} ({camera:.1f} vs {sensor:.1f})")
        return [Alert(self._fp, self.kind, self.zone_id, self.severity, edge[0], edge[1],
                      round(gap, 4), self.cfg.tolerance, summary, None if firing else ts,
                      {"site": self.site, "zone": self.zone_id, "camera": self.camera_id,
                       "sensor": self.sensor_id, "rule": self.kind,
                       "severity": self.severity})]
