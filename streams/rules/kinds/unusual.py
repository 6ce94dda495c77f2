"""unusual: a zone is well above its usual for this time of week.

Answers the operator's question "is this normal for now?". The usual is the median of
the same slot over past weeks (:mod:`._seasonal`); a sample is unusual when it is at least
``ratio`` times that *and* a robust z-score (its log ratio over how much this hour of the
day varies week to week) reaches ``z``, so a noisy night hour needs more than a steady
noon. Quiet while the model is learning.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal, Self

from pydantic import Field, model_validator

from crowdwatch.config import CrowdwatchConfig, Seconds
from crowdwatch.events import Alert, AlertState
from crowdwatch.streams.rules.base import Route, Rule, edge_step, push_window
from crowdwatch.streams.rules.kinds._seasonal import ModelRule, SeasonalSpec, SeasonalState
from crowdwatch.streams.rules.registry import rule_kind


@rule_kind
class UnusualRuleConfig(SeasonalSpec):
    """Fires while the zone runs well above its usual for this time of week."""

    kind: Literal["unusual"]
    ratio: float = Field(1.5, gt=1, description="At least this many times the usual.")
    z: float = Field(3.0, ge=0, description="And at least this many robust scales above it.")
    clear_ratio: float | None = Field(None, gt=0, description="Hysteresis: resolves under "
                                      "this ratio (default: halfway between 1 and ratio).")
    window: Seconds = Field(0.0, ge=0, description="Judge the mean of the samples within "
                            "this span (0: each sample), for readings every few seconds.")
    for_: Seconds = Field(0.0, alias="for", description="Must hold this long before firing.")
    clear_for: Seconds = Field(900.0, description="Must stay under clear_ratio this long.")
    severity: Literal["warning", "critical"] = "warning"

    IDENTITY: ClassVar[tuple[str, ...]] = ("metric", "ratio", "severity")

    @model_validator(mode="after")
    def _clear_under_ratio(self) -> Self:
        if self.clear_ratio is not None and self.clear_ratio > self.ratio:
            raise ValueError(f"clear_ratio ({self.clear_ratio}) must be <= ratio ({self.ratio})")
        return self

    def held_ratio(self) -> float:
        return self.clear_ratio if self.clear_ratio is not None else 0.5 * (1 + self.ratio)

    def build(self, site: CrowdwatchConfig) -> list[Rule[Any]]:
        route, camera = self.route(site)
        return [UnusualRule(self, site.site.name, site.site.timezone, camera, route)]


class UnusualRule(ModelRule):
    kind = "unusual"

    def __init__(self, cfg: UnusualRuleConfig, site: str, timezone: str = "UTC",
                 camera_id: str = "", route: Route | None = None) -> None:
        super().__init__(cfg, cfg.severity, site, timezone, camera_id, route)
        self.cfg = cfg

    def observe(self, state: SeasonalState, ts: float, value: float) -> list[Alert]:
        if state.last_ts is not None and ts <= state.last_ts:
            return []
        self.model.repair(state)
        ready = self.model.learned(state)
        slot = self.model.clock.slot_of(ts)
        if self.cfg.window > 0:  # judge the window's mean against the window's usual
            push_window(state.window_times, state.window_values, ts, value, self.cfg.window)
            judged = sum(state.window_values) / len(state.window_values)
            usual_judged = self._window_usual(state)
        else:
            judged, usual_judged = value, self.model.usual(state, slot)
        log_ratio = (None if usual_judged is None
                     else self.model.log_ratio(state, judged, usual_judged))
        _, usual = self.model.learn(state, ts, value, judged=log_ratio)
        today = self.model.today(state, slot)  # closed slots only: never this sample
        raised = held = False
        ratio, z, expected = 0.0, 0.0, None
        if ready and log_ratio is not None and usual_judged is not None:
            floor = self.model.floor(state)
            expected = max(0.0, (usual_judged + floor) * math.exp(today) - floor)
            ratio = judged / expected if expected > 0 else float("inf")
            z = (log_ratio - today) / self.model.scale(state, slot)
            raised = ratio >= self.cfg.ratio and z >= self.cfg.z
            held = ratio >= self.cfg.held_ratio()
        value = judged
        edge = edge_step(state, ts, raised, held, self.cfg.for_, self.cfg.clear_for)
        if edge is None:
            return []
        name = self.model.clock.name(slot)
        firing = edge[0] is AlertState.FIRING
        shown = f"{ratio:.1f}×" if ratio != float("inf") else "far above"
        summary = (f"{self.zone_id} is {shown} the usual {name} (now {value:.1f}, expected "
                   f"{expected or 0.0:.1f}: usual {usual or 0.0:.1f}, today "
                   f"{self._today_pct(state, slot)}; {z:.1f} scales above)" if firing else
                   f"{self.zone_id} is back to {ratio:.1f}× the usual {name}")
        labels = {**self.labels(), "usual": f"{usual or 0.0:.2f}",
                  "expected": f"{expected or 0.0:.2f}", "slot": name}
        return [self.alert(fingerprint=self._fp, zone_id=self.zone_id, severity=self.severity,
                           state=edge[0], starts_at=edge[1], ends_at=None if firing else ts,
                           value=round(min(ratio, 1e9), 4), threshold=self.cfg.ratio,
                           summary=summary, labels=labels)]

    def _window_usual(self, state: SeasonalState) -> float | None:
        """Mean usual over the window's samples (a window can span slots)."""
        total = 0.0
        cache: dict[int, float | None] = {}
        for t in state.window_times:
            slot = self.model.clock.slot_of(t)
            if slot not in cache:
                cache[slot] = self.model.usual(state, slot)
            usual = cache[slot]
            if usual is None:
                return None
            total += usual
        return total / len(state.window_times)

    def _today_pct(self, state: SeasonalState, slot: int) -> str:
        return f"{(math.exp(self.model.today(state, slot)) - 1) * 100:+.0f} %"

    def outlook(self, state: SeasonalState, now: float) -> dict[str, float]:
        """The usual band now (dashboards): median and a robust band around it."""
        slot = self.model.clock.slot_of(now)
        usual = self.model.usual(state, slot)
        if usual is None:
            return {}
        return {"usual": usual, **self.model.band(state, slot, usual, self.cfg.z)}
