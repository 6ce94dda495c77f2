"""Rules on how a zone is changing: surge (fast rise) and forecast (Holt's linear trend).

Pure state transitions on event time, like streams.rules: one small state object per
zone, edge-triggered notifications (fire once, resolve once).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from crowdwatch.config import ForecastRuleConfig, SurgeRuleConfig
from crowdwatch.events import Alert, CountEvent, fingerprint
from crowdwatch.streams.rules import edge_step, push_window, window_statistic


class _ZoneTrendRule:
    """What surge and forecast share: one zone, one severity, count or density."""

    kind = ""
    severity = "warning"

    def __init__(self, cfg: SurgeRuleConfig | ForecastRuleConfig, site: str,
                 camera_id: str = "") -> None:
        self.cfg, self.site, self.camera_id, self.zone_id = cfg, site, camera_id, cfg.zone
        self.severity = getattr(cfg, "severity", "warning")
        self._fp = fingerprint(site, self.kind, cfg.zone, self.severity)

    def value_of(self, event: CountEvent) -> float | None:
        return event.density_ppm2 if self.cfg.metric == "density" else event.count

    def labels(self) -> dict[str, str]:
        return {"site": self.site, "zone": self.zone_id, "camera": self.camera_id,
                "rule": self.kind, "severity": self.severity}


@dataclass(slots=True)
class SurgeState:
    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    pending_since: float | None = None
    firing_since: float | None = None
    clear_since: float | None = None


class SurgeRule(_ZoneTrendRule):
    """Rise per minute between the smoothed start and end of a sliding window."""

    kind = "surge"

    def new_state(self) -> SurgeState:
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
        starts = edge[1]
        return [self._alert(edge[0], starts, None if edge[0] == "firing" else ts, rise)]

    def _alert(self, state: str, starts: float, ends: float | None, rise: float) -> Alert:
        unit = "persons/m²" if self.cfg.metric == "density" else "people"
        summary = (f"surge in {self.zone_id}: +{rise:.1f} {unit}/min over "
                   f"{self.cfg.window:g}s (limit {self.cfg.rise_per_min:g})"
                   if state == "firing" else f"surge in {self.zone_id} has eased "
                   f"({rise:+.1f} {unit}/min)")
        return Alert(self._fp, self.kind, self.zone_id, self.severity, state, starts,
                     round(rise, 3), self.cfg.rise_per_min, summary, ends, self.labels())


@dataclass(slots=True)
class HoltState:
    level: float | None = None
    trend: float = 0.0  # per second
    last_ts: float | None = None
    pending_since: float | None = None
    firing_since: float | None = None
    clear_since: float | None = None
    predicted_at: float | None = None


class ForecastRule(_ZoneTrendRule):
    """Holt's linear method on irregular samples; warns before the level is crossed."""

    kind = "forecast"

    def new_state(self) -> HoltState:
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
        if edge[0] == "firing":
            state.predicted_at = ts + (eta or 0.0)
            return [self._alert("firing", ts, None, state)]
        return [self._alert("resolved", edge[1], ts, state)]

    def _alert(self, st: str, starts: float, ends: float | None, state: HoltState) -> Alert:
        from crowdwatch.events import iso

        when = iso(state.predicted_at)
        summary = (f"{self.zone_id} is forecast to reach {self.cfg.threshold:g} "
                   f"{self.cfg.metric} at {when} (now {state.level:.2f}, trend "
                   f"{state.trend * 60:+.2f}/min)" if st == "firing"
                   else f"{self.zone_id} is no longer forecast to reach {self.cfg.threshold:g}")
        labels = self.labels()
        if st == "firing":
            labels["predicted_at"] = when or ""
        return Alert(self._fp, self.kind, self.zone_id, "warning", st, starts,
                     round(state.level or 0.0, 4), self.cfg.threshold, summary, ends, labels)
