"""occupancy: N or more people in any of a set of zones for longer than T.

Written as the worked example of a new kind: this file is all it took (config model,
state, logic, registration); the engine, config check, metrics and tune found it.
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
)
from crowdwatch.streams.rules.registry import rule_kind


@rule_kind
class OccupancyRuleConfig(RuleSpec):
    """At least ``above`` people in any one of ``zones`` for ``for`` seconds."""

    kind: Literal["occupancy"]
    zones: list[str] = Field(min_length=1, description="Zone ids; the busiest one counts.")
    above: float = Field(gt=0, description="People in one zone that count as occupied.")
    for_: Seconds = Field(60.0, alias="for", description="Must hold this long to fire.")
    clear_for: Seconds = Field(30.0, description="Every zone under `above` this long resolves.")
    severity: Literal["warning", "critical"] = "warning"

    IDENTITY: ClassVar[tuple[str, ...]] = ("above", "severity")

    def target(self) -> str:
        return "+".join(self.zones)

    def problems(self, site: CrowdwatchConfig) -> list[tuple[Loc, str]]:
        known = set(site.zones()) | set(site.sensor_zones())
        return [(("zones", i), f"no zone with id {zone!r}")
                for i, zone in enumerate(self.zones) if zone not in known]

    def build(self, site: CrowdwatchConfig) -> list[Rule[Any]]:
        routes = tuple(Route(Input.CAMERA_ZONE if site.zone_source(z) == "camera"
                             else Input.SENSOR_ZONE, z) for z in self.zones)
        return [OccupancyRule(self, site.site.name, routes)]


@dataclass(slots=True)
class OccupancyState(EdgeState):
    latest: dict[str, float] = field(default_factory=dict)  # zone -> latest count
    last_ts: float | None = None
    fired_zone: str | None = None  # the zone named by the firing, and by its resolution


class OccupancyRule(Rule[OccupancyState]):
    kind = "occupancy"
    state_type = OccupancyState

    def __init__(self, cfg: OccupancyRuleConfig, site: str, routes: tuple[Route, ...]) -> None:
        super().__init__(cfg, f"zones:{cfg.target()}", site, routes)
        self.cfg = cfg
        self.severity = Severity(cfg.severity)
        self._fp = self.fingerprint(cfg.target(), self.severity)

    def new_state(self, now: float = 0.0) -> OccupancyState:
        return OccupancyState()

    def fingerprints(self) -> set[str]:
        return {self._fp}

    def series(self) -> list[RuleSeries]:
        return [RuleSeries(self.kind, zone, self.severity.value, self.cfg.above)
                for zone in self.cfg.zones]

    def on_zone(self, state: OccupancyState, zone_id: str, ts: float, count: float,
                density: float | None) -> list[Alert]:
        if state.last_ts is not None and ts < state.last_ts:
            return []  # late sample
        state.last_ts = ts
        state.latest[zone_id] = count
        busiest = max(state.latest, key=lambda z: state.latest[z])
        people = state.latest[busiest]
        occupied = people >= self.cfg.above
        edge = edge_step(state, ts, occupied, occupied, self.cfg.for_, self.cfg.clear_for)
        if edge is None:
            return []
        firing = edge[0] is AlertState.FIRING
        if firing:
            state.fired_zone = busiest
        zone = state.fired_zone or busiest
        summary = (f"{people:.0f} people in {busiest}, at or above {self.cfg.above:g} for "
                   f"{self.cfg.for_:g}s" if firing else
                   f"every zone of {self.cfg.target()} under {self.cfg.above:g} people for "
                   f"{self.cfg.clear_for:g}s")
        return [self.alert(
            fingerprint=self._fp, zone_id=zone, severity=self.severity, state=edge[0],
            starts_at=edge[1], ends_at=None if firing else ts, value=people,
            threshold=self.cfg.above, summary=summary,
            labels={"site": self.site, "zone": zone, "rule": self.kind,
                    "severity": self.severity.value, "zones": self.cfg.target()})]
