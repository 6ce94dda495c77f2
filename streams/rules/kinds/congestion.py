"""congestion: stop-and-go in a dense crowd, before the density reaches its critical level.

Density alone warns late: a crowd that stops moving at a moderate density is where the
pressure builds (in the Mina crowd disaster of 2006 the flow turned stop-and-go well
before the crush; Helbing, Johansson, Al-Abideen, Phys. Rev. E 75, 046109, 2007). The
rule fires when, over its window, the zone's median density is at least ``min_density``
while its median walking speed is under ``slow_below``; it clears once the crowd walks
again (speed over ``1.5 × slow_below``) or thins (density under ``0.8 × min_density``)
for ``clear_for``. Speeds come from the motion meter (a camera with a line in any of
its zones measures every zone's speed).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Self

from pydantic import Field

from crowdwatch.config import CrowdwatchConfig, Loc, Seconds
from crowdwatch.events import Alert, AlertState, CountEvent, Severity
from crowdwatch.streams.rules.base import (
    EdgeState,
    Route,
    Rule,
    RuleSeries,
    RuleState,
    edge_step,
    push_window,
)
from crowdwatch.streams.rules.kinds._zone import ZoneRuleSpec
from crowdwatch.streams.rules.registry import rule_kind

WALKS_AGAIN = 1.5  # clears above this many times slow_below ...
THINS_OUT = 0.8  # ... or under this share of min_density


@rule_kind
class CongestionRuleConfig(ZoneRuleSpec):
    """Stop-and-go: a dense crowd that has (nearly) stopped walking."""

    kind: Literal["congestion"]
    watches_zone_values: ClassVar[bool] = False
    min_density: float = Field(1.08, gt=0, le=10, description="Persons/m² from which a "
                               "slow crowd is congestion (default: Fruin's D|E boundary).")
    slow_below: float = Field(0.5, gt=0, le=3, description="Median walking speed (m/s) "
                              "under which the crowd counts as stopped.")
    window: Seconds = Field(20.0, gt=0, le=600, description="Span of the medians.")
    for_: Seconds = Field(15.0, alias="for", le=3600, description="Must hold this long.")
    clear_for: Seconds = Field(30.0, le=3600, description="Must be over this long to clear.")
    severity: Literal["warning", "critical"] = "warning"

    IDENTITY: ClassVar[tuple[str, ...]] = ("min_density", "slow_below", "severity")

    def reads(self) -> str:
        return "density"

    def problems(self, site: CrowdwatchConfig) -> list[tuple[Loc, str]]:
        zones = site.zones()
        if self.zone not in zones:
            return [(("zone",), f"no camera zone with id {self.zone!r} (congestion reads a "
                     "camera's density and walking speed)")]
        camera, zone = zones[self.zone]
        if zone.ground is None:
            return [(("zone",), f"congestion needs zone {self.zone!r} to have `ground`")]
        if not any(z.lines for z in camera.zones):
            return [(("zone",), f"camera {camera.id!r} measures no walking speed: give one "
                     "of its zones a line (`lines`)")]
        return []

    def build(self, site: CrowdwatchConfig) -> list[Rule[Any]]:
        spec = self.model_copy(update={"source": "camera"})
        route, camera = spec.route(site)
        return [CongestionRule(spec, site.site.name, camera, route)]


@dataclass(slots=True)
class CongestionState(RuleState):
    times: list[float] = field(default_factory=list)
    densities: list[float] = field(default_factory=list)
    speed_times: list[float] = field(default_factory=list)
    speeds: list[float] = field(default_factory=list)
    edge: EdgeState = field(default_factory=EdgeState)

    def to_dict(self) -> dict[str, Any]:
        return {"times": list(self.times), "densities": list(self.densities),
                "speed_times": list(self.speed_times), "speeds": list(self.speeds),
                "edge": [self.edge.pending_since, self.edge.firing_since,
                         self.edge.clear_since]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls(list(data["times"]), list(data["densities"]), list(data["speed_times"]),
                   list(data["speeds"]), EdgeState(*data["edge"]))


class CongestionRule(Rule[CongestionState]):
    kind = "congestion"
    state_type = CongestionState

    def __init__(self, cfg: CongestionRuleConfig, site: str, camera_id: str,
                 route: Route) -> None:
        super().__init__(cfg, f"zone:{cfg.zone}", site, (route,))
        self.cfg = cfg
        self.zone_id = cfg.zone
        self.camera_id = camera_id
        self.severity = Severity(cfg.severity)
        self._fingerprint = self.fingerprint(self.zone_id, self.severity)

    def new_state(self, now: float = 0.0) -> CongestionState:
        return CongestionState()

    def fingerprints(self) -> set[str]:
        return {self._fingerprint}

    def series(self) -> list[RuleSeries]:
        return [RuleSeries(self.kind, self.zone_id, self.severity.value, self.cfg.min_density)]

    def on_outage(self, state: CongestionState) -> None:
        state.edge.clear_since = None

    def on_count(self, state: CongestionState, event: CountEvent) -> list[Alert]:
        if event.density_ppm2 is None:
            return []
        cfg = self.cfg
        if not push_window(state.times, state.densities, event.ts, event.density_ppm2,
                           cfg.window):
            return []
        if event.speed_mps is not None:
            push_window(state.speed_times, state.speeds, event.ts, event.speed_mps, cfg.window)
        # Speeds older than the window are gone: no fresh speed, no judgement on it.
        cut = 0
        while cut < len(state.speed_times) and state.speed_times[cut] < event.ts - cfg.window:
            cut += 1
        del state.speed_times[:cut], state.speeds[:cut]
        if not state.speeds:
            return []
        density = statistics.median(state.densities)
        speed = statistics.median(state.speeds)
        raised = density >= cfg.min_density and speed < cfg.slow_below
        held = density >= THINS_OUT * cfg.min_density and speed < WALKS_AGAIN * cfg.slow_below
        edge = edge_step(state.edge, event.ts, raised, held, cfg.for_, cfg.clear_for)
        if edge is None:
            return []
        firing = edge[0] is AlertState.FIRING
        summary = (f"congestion in {self.zone_id}: the crowd has nearly stopped (median speed "
                   f"{speed:.2f} m/s at {density:.2f} persons/m²) for {cfg.for_:g}s"
                   if firing else f"congestion in {self.zone_id} over: {speed:.2f} m/s at "
                   f"{density:.2f} persons/m²")
        return [self.alert(
            fingerprint=self._fingerprint, zone_id=self.zone_id, severity=self.severity,
            state=edge[0], starts_at=edge[1], ends_at=None if firing else event.ts,
            value=round(speed, 3), threshold=cfg.slow_below, summary=summary,
            labels={"site": self.site, "zone": self.zone_id, "camera": self.camera_id,
                    "rule": self.kind, "severity": self.severity.value})]
