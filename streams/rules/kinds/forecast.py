"""forecast: Holt's linear trend predicts a zone crosses a level soon; warns before it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field

from crowdwatch.config import CrowdwatchConfig, Seconds
from crowdwatch.events import Alert, AlertState, iso
from crowdwatch.streams.rules.base import EdgeState, Route, Rule, edge_step
from crowdwatch.streams.rules.kinds._trend import TrendRule, TrendSpec
from crowdwatch.streams.rules.registry import rule_kind


@rule_kind
class ForecastRuleConfig(TrendSpec):
    """Early warning: Holt's linear trend predicts the zone crosses a level soon."""

    kind: Literal["forecast"]
    metric: Literal["count", "density"] = "density"
    threshold: float = Field(gt=0, description="The level whose crossing is forecast.")
    horizon: Seconds = Field(60.0, gt=0, description="Warn this far ahead.")
    alpha: float = Field(0.3, gt=0, le=1, description="Level smoothing (Holt).")
    beta: float = Field(0.1, gt=0, le=1, description="Trend smoothing (Holt).")
    for_: Seconds = Field(5.0, alias="for", description="Forecast must hold this long.")
    clear_for: Seconds = Field(30.0, description="Forecast back under the level this long.")

    IDENTITY: ClassVar[tuple[str, ...]] = ("metric", "threshold")

    def level(self) -> float:
        return self.threshold

    def lookahead(self) -> float:
        return self.horizon

    def build(self, site: CrowdwatchConfig) -> list[Rule[Any]]:
        route, camera = self.route(site)
        return [ForecastRule(self, site.site.name, camera, route)]


@dataclass(slots=True)
class HoltState(EdgeState):
    level: float | None = None
    trend: float = 0.0  # per second
    last_ts: float | None = None
    predicted_at: float | None = None


class ForecastRule(TrendRule[HoltState]):
    """Holt's linear method on irregular samples; warns before the level is crossed."""

    kind = "forecast"
    state_type = HoltState

    def __init__(self, cfg: ForecastRuleConfig, site: str, camera_id: str = "",
                 route: Route | None = None) -> None:
        super().__init__(cfg, site, camera_id, route)
        self.cfg = cfg

    def new_state(self, now: float = 0.0) -> HoltState:
        return HoltState()

    def update(self, state: HoltState, ts: float, value: float) -> None:
        a, b = self.cfg.alpha, self.cfg.beta
        if state.level is None or state.last_ts is None:
            state.level, state.last_ts = value, ts
            return
        dt = ts - state.last_ts
        predicted = state.level + state.trend * dt
        level = a * value + (1 - a) * predicted
        state.trend = b * (level - state.level) / dt + (1 - b) * state.trend
        state.level, state.last_ts = level, ts

    def crossing_in(self, state: HoltState) -> float | None:
        """Seconds until the trend reaches the threshold (0 if at or above it now)."""
        if state.level is None:
            return None
        if state.level >= self.cfg.threshold:
            return 0.0
        if state.trend <= 0:
            return None
        return (self.cfg.threshold - state.level) / state.trend

    def observe(self, state: HoltState, ts: float, value: float) -> list[Alert]:
        if state.last_ts is not None and ts <= state.last_ts:
            return []
        self.update(state, ts, value)
        eta = self.crossing_in(state)
        warn = eta is not None and eta <= self.cfg.horizon
        edge = edge_step(state, ts, warn, warn, self.cfg.for_, self.cfg.clear_for)
        if edge is None:
            return []
        if edge[0] is AlertState.FIRING:
            state.predicted_at = ts + (eta or 0.0)
            return [self._alert(edge[0], ts, None, state)]
        return [self._alert(edge[0], edge[1], ts, state)]

    def _alert(self, edge: AlertState, starts: float, ends: float | None,
               state: HoltState) -> Alert:
        when = iso(state.predicted_at)
        firing = edge is AlertState.FIRING
        summary = (f"{self.zone_id} is forecast to reach {self.cfg.threshold:g} "
                   f"{self.metric} at {when} (now {state.level or 0.0:.2f}, trend "
                   f"{state.trend * 60:+.2f}/min)" if firing
                   else f"{self.zone_id} is no longer forecast to reach {self.cfg.threshold:g}")
        labels = self.labels()
        if firing:
            labels["predicted_at"] = when or ""
        return self.alert(fingerprint=self._fp, zone_id=self.zone_id, severity=self.severity,
                          state=edge, starts_at=starts, ends_at=ends,
                          value=round(state.level or 0.0, 4), threshold=self.cfg.threshold,
                          summary=summary, labels=labels)
