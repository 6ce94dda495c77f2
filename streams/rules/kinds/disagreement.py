"""disagreement: a zone's camera count and a sensor's reading drift apart.

One of the two is wrong (a camera moved or masked, a counter miscounting), which is
exactly when on-call staff should not trust either number alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import Field

from crowdwatch.config import CrowdwatchConfig, Loc, Seconds
from crowdwatch.events import Alert, AlertState, Severity
from crowdwatch.streams.rules.base import (
    EdgeState,
    Input,
    Route,
    Rule,
    RuleSeries,
    RuleSpec,
    edge_step,
    push_window,
    window_statistic,
)
from crowdwatch.streams.rules.registry import rule_kind


@rule_kind
class DisagreementRuleConfig(RuleSpec):
    """A zone's camera count and its sensor reading drift apart: one of them is wrong."""

    kind: Literal["disagreement"]
    zone: str = Field(description="A camera zone that also has a sensor.")
    sensor: str = Field(description="Sensor id whose (scaled) reading the camera should match.")
    tolerance: float = Field(0.3, gt=0, description="Relative difference that counts as "
                             "disagreeing: |camera - sensor| / max(camera, sensor, min_level).")
    min_level: float = Field(5.0, gt=0, description="Floor of the denominator, so two small "
                             "numbers (1 vs 3 people) never disagree by 200 %.")
    window: Seconds = Field(60.0, gt=0, description="Camera counts are a median over this.")
    max_age: Seconds = Field(120.0, gt=0, description="Sensor readings older than this are "
                             "not compared (sensor_silent covers silence).")
    for_: Seconds = Field(60.0, alias="for", description="Must disagree this long to fire.")
    clear_for: Seconds = Field(60.0, description="Must agree this long to resolve.")

    IDENTITY: ClassVar[tuple[str, ...]] = ("sensor",)

    def problems(self, site: CrowdwatchConfig) -> list[tuple[Loc, str]]:
        if self.zone not in site.zones():
            return [(("zone",), f"no camera zone with id {self.zone!r}")]
        if self.sensor not in {d.id for d in site.sensors.devices}:
            return [(("sensor",), f"no sensor with id {self.sensor!r}")]
        return []

    def build(self, site: CrowdwatchConfig) -> list[Rule[Any]]:
        scale = {d.id: d.scale for d in site.sensors.devices}[self.sensor]
        return [DisagreementRule(self, site.site.name, site.zones()[self.zone][0].id, scale)]


@dataclass(slots=True)
class DisagreementState(EdgeState):
    times: list[float] = field(default_factory=list)
    counts: list[float] = field(default_factory=list)
    sensor_ts: float | None = None
    sensor_value: float | None = None
    last_ts: float | None = None


class DisagreementRule(Rule[DisagreementState]):
    """Median camera count over a window against the sensor's latest reading."""

    kind = "disagreement"
    state_type = DisagreementState
    severity = Severity.WARNING

    def __init__(self, cfg: DisagreementRuleConfig, site: str, camera_id: str,
                 scale: float = 1.0) -> None:
        routes = (Route(Input.CAMERA_ZONE, cfg.zone), Route(Input.SENSOR, cfg.sensor))
        super().__init__(cfg, f"zone:{cfg.zone}", site, routes)
        self.cfg = cfg
        self.camera_id = camera_id
        self.zone_id = cfg.zone
        self.sensor_id = cfg.sensor
        self.scale = scale
        self._fp = self.fingerprint(cfg.zone, cfg.sensor)

    def new_state(self, now: float = 0.0) -> DisagreementState:
        return DisagreementState()

    def fingerprints(self) -> set[str]:
        return {self._fp}

    def series(self) -> list[RuleSeries]:
        return [RuleSeries(self.kind, self.zone_id, self.severity.value)]

    def relative_gap(self, state: DisagreementState,
                     ts: float) -> tuple[float, float, float] | None:
        """(gap, camera, sensor), or None while there is nothing fresh to compare."""
        if (not state.counts or state.sensor_value is None or state.sensor_ts is None
                or ts - state.sensor_ts > self.cfg.max_age):
            return None
        camera = window_statistic(state.counts, "median")
        sensor = state.sensor_value
        return abs(camera - sensor) / max(camera, sensor, self.cfg.min_level), camera, sensor

    def on_zone(self, state: DisagreementState, zone_id: str, ts: float, count: float,
                density: float | None) -> list[Alert]:
        if not push_window(state.times, state.counts, ts, count, self.cfg.window):
            return []
        return self._evaluate(state, ts)

    def on_sensor(self, state: DisagreementState, sensor_id: str, ts: float,
                  value: float) -> list[Alert]:
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
        firing = edge[0] is AlertState.FIRING
        summary = (f"camera count {camera:.1f} and sensor {self.sensor_id} reading {sensor:.1f} "
                   f"in {self.zone_id} differ by {gap:.0%} (tolerance "
                   f"{self.cfg.tolerance:.0%}); check the camera view and the sensor"
                   if firing else f"camera and sensor {self.sensor_id} agree again in "
                   f"{self.zone_id} ({camera:.1f} vs {sensor:.1f})")
        return [self.alert(
            fingerprint=self._fp, zone_id=self.zone_id, severity=self.severity, state=edge[0],
            starts_at=edge[1], ends_at=None if firing else ts, value=round(gap, 4),
            threshold=self.cfg.tolerance, summary=summary,
            labels={"site": self.site, "zone": self.zone_id, "camera": self.camera_id,
                    "sensor": self.sensor_id, "rule": self.kind,
                    "severity": self.severity.value})]
