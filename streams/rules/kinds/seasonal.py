"""seasonal: the zone's usual rhythm says it will cross a level within ``horizon``.

Where Holt's trend line (``forecast``) only extrapolates the last samples, this rule knows
that the school gate fills at 15:10 and Friday nights run late: it predicts each coming
slot as the usual for that time of week, lifted or lowered by how today has run so far.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from pydantic import Field

from crowdwatch.config import CrowdwatchConfig, Seconds
from crowdwatch.events import Alert, AlertState, iso
from crowdwatch.streams.rules.base import Route, Rule, edge_step
from crowdwatch.streams.rules.kinds._seasonal import ModelRule, SeasonalSpec, SeasonalState
from crowdwatch.streams.rules.registry import rule_kind


@rule_kind
class SeasonalRuleConfig(SeasonalSpec):
    """Early warning from the zone's time-of-week rhythm and how today is running."""

    kind: Literal["seasonal"]
    threshold: float = Field(gt=0, description="The level whose crossing is forecast.")
    horizon: Seconds = Field(10800.0, gt=0, description="Warn this far ahead.")
    sustain: Seconds = Field(0.0, ge=0, description="Warn only of a crossing forecast to "
                             "last this long (0: any crossing); a crowd that stays, not a "
                             "busy moment.")
    for_: Seconds = Field(0.0, alias="for", description="Forecast must hold this long.")
    clear_for: Seconds | None = Field(None, description="Forecast back under the level this "
                                      "long before the warning resolves (default: horizon).")
    severity: Literal["warning", "critical"] = "warning"

    IDENTITY: ClassVar[tuple[str, ...]] = ("metric", "threshold", "severity")

    def level(self) -> float:
        return self.threshold

    def lookahead(self) -> float:
        return self.horizon

    def build(self, site: CrowdwatchConfig) -> list[Rule[Any]]:
        route, camera = self.route(site)
        return [SeasonalRule(self, site.site.name, site.site.timezone, camera, route)]


class SeasonalRule(ModelRule):
    kind = "seasonal"

    def __init__(self, cfg: SeasonalRuleConfig, site: str, timezone: str = "UTC",
                 camera_id: str = "", route: Route | None = None) -> None:
        super().__init__(cfg, cfg.severity, site, timezone, camera_id, route)
        self.cfg = cfg

    def crossing(self, state: SeasonalState, ts: float, value: float
                 ) -> tuple[float, float] | None:
        """(when, value) of the first time within the horizon from which the forecast
        stays at or above the threshold for ``sustain``; the present counts as ``value``.
        Called once this time of week has a usual (before that the rule is learning)."""
        clock = self.model.clock
        step = clock.slot
        first_slot = ts - clock.local(ts) % step + step  # next local slot boundary
        times = [ts]
        at = first_slot
        while at <= ts + self.cfg.horizon + self.cfg.sustain:
            times.append(at)
            at += step
        start: tuple[float, float] | None = None
        for at in times:
            expected = value if at == ts else self.model.expected(state, at, ts)
            if expected is None or expected < self.cfg.threshold:
                if at > ts + self.cfg.horizon:
                    return None
                start = None
                continue
            if start is None:
                if at > ts + self.cfg.horizon:
                    return None
                start = (at, expected)
            if at - start[0] >= self.cfg.sustain:
                return start
        return None

    def observe(self, state: SeasonalState, ts: float, value: float) -> list[Alert]:
        if state.last_ts is not None and ts <= state.last_ts:
            return []
        self.model.repair(state)
        _, usual = self.model.learn(state, ts, value)
        found = None if usual is None else self.crossing(state, ts, value)
        warn = found is not None
        clear_for = self.cfg.horizon if self.cfg.clear_for is None else self.cfg.clear_for
        edge = edge_step(state, ts, warn, warn, self.cfg.for_, clear_for)
        if edge is None:
            return []
        if edge[0] is AlertState.FIRING and found is not None:
            state.predicted_at, state.predicted_value = found
            return [self._alert(edge[0], ts, None, state)]
        return [self._alert(edge[0], edge[1], ts, state)]

    def outlook(self, state: SeasonalState, now: float) -> dict[str, float]:
        """Usual now and the value expected ``horizon`` ahead (dashboards)."""
        out: dict[str, float] = {}
        usual = self.model.usual(state, self.model.clock.slot_of(now))
        if usual is not None:
            out["usual"] = usual
        ahead = self.model.expected(state, now + self.cfg.horizon, now)
        if ahead is not None:
            out["forecast"] = ahead
        return out

    def _alert(self, edge: AlertState, starts: float, ends: float | None,
               state: SeasonalState) -> Alert:
        firing = edge is AlertState.FIRING
        labels = self.labels()
        if firing:
            when = iso(state.predicted_at) or ""
            slot = self.model.clock.slot_of(state.predicted_at or starts)
            usual = self.model.usual(state, slot)
            summary = (f"{self.zone_id} is forecast to reach {self.cfg.threshold:g} "
                       f"{self.metric} at {when} (expected {state.predicted_value:.1f}; "
                       f"usual for {self.model.clock.name(slot)} is "
                       f"{0.0 if usual is None else usual:.1f}, today runs "
                       f"{(math.exp(state.deviation) - 1) * 100:+.0f} %)")
            labels["predicted_at"] = when
            labels["predicted_value"] = f"{state.predicted_value:.2f}"
        else:
            summary = (f"{self.zone_id} is no longer forecast to reach "
                       f"{self.cfg.threshold:g} {self.metric}")
        return self.alert(fingerprint=self._fp, zone_id=self.zone_id, severity=self.severity,
                          state=edge, starts_at=starts, ends_at=ends,
                          value=round(state.predicted_value, 4), threshold=self.cfg.threshold,
                          summary=summary, labels=labels)
