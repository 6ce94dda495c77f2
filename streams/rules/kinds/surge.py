"""surge: a zone's count (or density) rises faster than ``rise_per_min``."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import Field

from crowdwatch.config import CrowdwatchConfig, Seconds
from crowdwatch.events import Alert, AlertState
from crowdwatch.streams.rules.base import (
    EdgeState,
    Route,
    Rule,
    edge_step,
    push_window,
    window_statistic,
)
from crowdwatch.streams.rules.kinds._trend import TrendRule, TrendSpec
from crowdwatch.streams.rules.registry import rule_kind


@rule_kind
class SurgeRuleConfig(TrendSpec):
    """A fast rise: the zone's count (or density) grows faster than rise_per_min."""

    kind: Literal["surge"]
    rise_per_min: float = Field(gt=0, description="Rise per minute that counts as a surge.")
    window: Seconds = Field(60.0, gt=0, description="Span the rise is measured over.")
    smooth: Seconds = Field(5.0, gt=0, description="Median over this at each end of the span.")
    clear_for: Seconds = Field(30.0, description="Rise must stay under half the rate this long.")
    severity: Literal["warning", "critical"] = "warning"

    IDENTITY: ClassVar[tuple[str, ...]] = ("metric", "rise_per_min", "severity")

    def build(self, site: CrowdwatchConfig) -> list[Rule[Any]]:
        route, camera = self.route(site)
        return [SurgeRule(self, site.site.name, camera, route)]


@dataclass(slots=True)
class SurgeState(EdgeState):
    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


class SurgeRule(TrendRule[SurgeState]):
    """Rise per minute between the smoothed start and end of a sliding window."""

    kind = "surge"
    state_type = SurgeState

    def __init__(self, cfg: SurgeRuleConfig, site: str, camera_id: str = "",
                 route: Route | None = None) -> None:
        super().__init__(cfg, site, camera_id, route, cfg.severity)
        self.cfg = cfg

    def new_state(self, now: float = 0.0) -> SurgeState:
        return SurgeState()

    def rise_per_min(self, state: SurgeState) -> float | None:
        t, v = state.times, state.values
        if not t or t[-1] - t[0] < 0.8 * self.cfg.window:
            return None  # not enough history yet
        head_end = bisect.bisect_right(t, t[0] + self.cfg.smooth)
        tail_start = bisect.bisect_left(t, t[-1] - self.cfg.smooth)
        start = window_statistic(v[:max(1, head_end)], "median")
        end = window_statistic(v[tail_start:], "median")
        return (end - start) / ((t[-1] - t[0]) / 60.0)

    def observe(self, state: SurgeState, ts: float, value: float) -> list[Alert]:
        if not push_window(state.times, state.values, ts, value, self.cfg.window,
                           keep_edge=True):
            return []
        rise = self.rise_per_min(state)
        if rise is None:
            return []
        edge = edge_step(state, ts, rise >= self.cfg.rise_per_min,
                         rise >= 0.5 * self.cfg.rise_per_min, 0.0, self.cfg.clear_for)
        if edge is None:
            return []
        firing = edge[0] is AlertState.FIRING
        unit = "persons/m²" if self.metric == "density" else "people"
        summary = (f"surge in {self.zone_id}: +{rise:.1f} {unit}/min over "
                   f"{self.cfg.window:g}s (limit {self.cfg.rise_per_min:g})"
                   if firing else f"surge in {self.zone_id} has eased "
                   f"({rise:+.1f} {unit}/min)")
        return [self.alert(fingerprint=self._fp, zone_id=self.zone_id, severity=self.severity,
                           state=edge[0], starts_at=edge[1], ends_at=None if firing else ts,
                           value=round(rise, 3), threshold=self.cfg.rise_per_min,
                           summary=summary, labels=self.labels())]
