"""Density or count over a window statistic, with `for` and hysteresis (count, density)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Self

from pydantic import Field, model_validator

from crowdwatch.config import CrowdwatchConfig, Seconds
from crowdwatch.events import Alert, AlertState, CountEvent, Severity
from crowdwatch.streams.rules.base import (
    EdgeState,
    Route,
    Rule,
    RuleSeries,
    RuleState,
    edge_step,
    push_window,
    window_statistic,
)
from crowdwatch.streams.rules.kinds._zone import ZoneRuleSpec, ZoneValueRule, pick


class ThresholdSpec(ZoneRuleSpec):
    warn: float = Field(gt=0)
    critical: float | None = Field(None, gt=0)
    for_: Seconds = Field(10.0, alias="for", description="Must hold this long before firing.")
    clear_below: float | None = Field(None, ge=0, description="Hysteresis: clear under this.")
    clear_for: Seconds = Field(30.0, description="Must stay under clear_below this long.")
    window: Seconds = Field(10.0, gt=0, description="Window for the statistic.")
    statistic: Literal["median", "p90", "mean", "max"] = "median"

    IDENTITY: ClassVar[tuple[str, ...]] = ("warn", "critical")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.critical is not None and self.critical < self.warn:
            raise ValueError(f"critical ({self.critical}) must be >= warn ({self.warn})")
        if self.clear_below is not None and self.clear_below > self.warn:
            raise ValueError(f"clear_below ({self.clear_below}) must be <= warn ({self.warn})")
        return self

    def reads(self) -> str:
        return self.kind

    def level(self) -> float:
        return self.warn

    def build(self, site: CrowdwatchConfig) -> list[Rule[Any]]:
        route, camera = self.route(site)
        return [ThresholdRule(self, site.site.name, camera, route)]


@dataclass(frozen=True, slots=True)
class Level:
    severity: Severity
    threshold: float
    clear_below: float


@dataclass(slots=True)
class ThresholdState(RuleState):
    """Window of (ts, value) plus per-severity state; small enough for a table row."""

    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    last_ts: float | None = None
    levels: dict[str, EdgeState] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"times": list(self.times), "values": list(self.values), "last_ts": self.last_ts,
                "levels": {k: [v.pending_since, v.firing_since, v.clear_since]
                           for k, v in self.levels.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls(list(data["times"]), list(data["values"]), data["last_ts"],
                   {k: EdgeState(*v) for k, v in data["levels"].items()})


class ThresholdRule(ZoneValueRule[ThresholdState]):
    """Each severity is its own alert (fingerprint over site, rule id, zone, severity), like
    two Prometheus alerting rules: warning clears under ``clear_below`` (default: the
    warn level), critical clears under the warn level."""

    state_type = ThresholdState

    def __init__(self, cfg: ThresholdSpec, site: str, camera_id: str = "",
                 route: Route | None = None) -> None:
        super().__init__(cfg, f"zone:{cfg.zone}", site, (route or cfg.camera_route(),))
        self.cfg = cfg
        self.kind = cfg.kind  # type: ignore[misc]  # count and density share this class
        self.metric = cfg.reads()
        self.zone_id = cfg.zone
        self.camera_id = camera_id
        warn_clear = cfg.clear_below if cfg.clear_below is not None else cfg.warn
        self.levels = [Level(Severity.WARNING, cfg.warn, warn_clear)]
        if cfg.critical is not None:
            self.levels.append(Level(Severity.CRITICAL, cfg.critical, cfg.warn))
        self.unit = "persons/m²" if self.kind == "density" else "people"
        self._fingerprints = {lv.severity: self.fingerprint(self.zone_id, lv.severity)
                              for lv in self.levels}

    def new_state(self, now: float = 0.0) -> ThresholdState:
        return ThresholdState(levels={lv.severity.value: EdgeState() for lv in self.levels})

    def fingerprints(self) -> set[str]:
        return set(self._fingerprints.values())

    def series(self) -> list[RuleSeries]:
        return [RuleSeries(self.kind, self.zone_id, lv.severity.value, lv.threshold,
                           level_of=self.metric) for lv in self.levels]

    def value_of(self, event: CountEvent) -> float | None:
        """The value this rule reads from a camera sample."""
        return pick(self.metric, event.count, event.density_ppm2)

    def observe(self, state: ThresholdState, ts: float, value: float) -> list[Alert]:
        """Add one sample; return the notifications it causes (usually none)."""
        if state.last_ts is not None and ts <= state.last_ts:
            return []  # late or replayed sample: the window already moved past it
        state.last_ts = ts
        push_window(state.times, state.values, ts, value, self.cfg.window)
        stat = window_statistic(state.values, self.cfg.statistic)
        out = []
        for level in self.levels:
            alert = self._step(level, state.levels[level.severity.value], ts, stat)
            if alert is not None:
                out.append(alert)
        return out

    def on_outage(self, state: ThresholdState) -> None:
        for level in state.levels.values():
            level.clear_since = None

    def _step(self, level: Level, st: EdgeState, ts: float, stat: float) -> Alert | None:
        edge = edge_step(st, ts, stat >= level.threshold, stat >= level.clear_below,
                         self.cfg.for_, self.cfg.clear_for)
        if edge is None:
            return None
        if edge[0] is AlertState.FIRING:
            summary = (f"{self.kind} in {self.zone_id} is {stat:.2f} {self.unit}, at or above "
                       f"{level.severity} level {level.threshold:g} for {self.cfg.for_:g}s")
            return self._alert(level, edge[0], ts, None, stat, level.threshold, summary)
        summary = (f"{self.kind} in {self.zone_id} back to {stat:.2f} {self.unit}, under "
                   f"{level.clear_below:g} for {self.cfg.clear_for:g}s")
        return self._alert(level, edge[0], edge[1], ts, stat, level.clear_below, summary)

    def _alert(self, level: Level, state: AlertState, starts: float, ends: float | None,
               value: float, threshold: float, summary: str) -> Alert:
        return self.alert(
            fingerprint=self._fingerprints[level.severity], zone_id=self.zone_id,
            severity=level.severity, state=state, starts_at=starts, ends_at=ends,
            value=round(value, 4), threshold=threshold, summary=summary,
            labels={"site": self.site, "zone": self.zone_id, "camera": self.camera_id,
                    "rule": self.kind, "severity": level.severity.value})
