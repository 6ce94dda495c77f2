"""Rule core: pure state transitions with an explicit clock, no stream-engine imports.

The same code runs inside the embedded loop and (later) inside Faust agents, so each
rule keeps its state in a small, plain object per key (zone or camera) that a table
can store, and every decision is taken from event timestamps, never the wall clock.
Notifications are edge-triggered: a level fires once and resolves once.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from crowdwatch.config import CameraOfflineRuleConfig, CountRuleConfig, DensityRuleConfig
from crowdwatch.events import Alert, CountEvent, fingerprint

SEVERITY_WARNING = "warning"
SEVERITY_CRITICAL = "critical"


@dataclass(slots=True)
class LevelState:
    pending_since: float | None = None
    firing_since: float | None = None
    clear_since: float | None = None


@dataclass(slots=True)
class ThresholdState:
    """Window of (ts, value) plus per-severity state; small enough for a table row."""

    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    last_ts: float | None = None
    levels: dict[str, LevelState] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Level:
    severity: str
    threshold: float
    clear_below: float


def edge_step(st: object, ts: float, raised: bool, held: bool, fire_for: float,
              clear_for: float) -> tuple[str, float] | None:
    """The one fire/resolve state machine every level-like rule shares.

    ``st`` carries ``pending_since``, ``firing_since`` and ``clear_since``. An alert fires
    once ``raised`` has held for ``fire_for`` seconds and resolves once ``held`` (the
    hysteresis condition, looser than ``raised``) has failed for ``clear_for`` seconds.
    Returns ("firing", start) or ("resolved", start) on a transition, else None.
    """
    if st.firing_since is None:
        if not raised:
            st.pending_since = None
            return None
        if st.pending_since is None:
            st.pending_since = ts
        if ts - st.pending_since < fire_for:
            return None
        st.firing_since, st.pending_since, st.clear_since = ts, None, None
        return ("firing", ts)
    if held:
        st.clear_since = None
        return None
    if st.clear_since is None:
        st.clear_since = ts
    if ts - st.clear_since < clear_for:
        return None
    starts = st.firing_since
    st.firing_since, st.clear_since = None, None
    return ("resolved", starts)


def push_window(times: list[float], values: list[float], ts: float, value: float,
                span: float, keep_edge: bool = False) -> bool:
    """Append a sample and drop those older than ``span`` (``keep_edge``: keep one exactly
    ``span`` old). Returns False, changing nothing, for a late or replayed sample."""
    if times and ts <= times[-1]:
        return False
    times.append(ts)
    values.append(value)
    cut = (bisect.bisect_left if keep_edge else bisect.bisect_right)(times, ts - span)
    del times[:cut]
    del values[:cut]
    return True


def window_statistic(values: list[float], statistic: str) -> float:
    if statistic == "mean":
        return sum(values) / len(values)
    if statistic == "max":
        return max(values)
    ordered = sorted(values)
    n = len(ordered)
    if statistic == "median":
        mid = n // 2
        return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    # p90, nearest-rank
    return ordered[min(n - 1, max(0, -(-9 * n // 10) - 1))]


class ThresholdRule:
    """Density or count over a window statistic, with `for` and hysteresis, per zone.

    Each severity is its own alert (fingerprint over site, rule, zone, severity), like
    two Prometheus alerting rules: warning clears under ``clear_below`` (default: the
    warn level), critical clears under the warn level.
    """

    def __init__(
        self, cfg: DensityRuleConfig | CountRuleConfig, site: str, camera_id: str = ""
    ) -> None:
        self.cfg = cfg
        self.kind = cfg.kind
        self.zone_id = cfg.zone
        self.site = site
        self.camera_id = camera_id
        warn_clear = cfg.clear_below if cfg.clear_below is not None else cfg.warn
        self.levels = [Level(SEVERITY_WARNING, cfg.warn, warn_clear)]
        if cfg.critical is not None:
            self.levels.append(Level(SEVERITY_CRITICAL, cfg.critical, cfg.warn))
        self.unit = "persons/m²" if self.kind == "density" else "people"
        self._fingerprints = {
            lv.severity: fingerprint(site, self.kind, self.zone_id, lv.severity)
            for lv in self.levels
        }

    def key(self) -> str:
        return self.zone_id

    def value_of(self, event: CountEvent) -> float | None:
        return event.density_ppm2 if self.kind == "density" else event.count

    def new_state(self) -> ThresholdState:
        return ThresholdState(levels={lv.severity: LevelState() for lv in self.levels})

    def observe(self, state: ThresholdState, ts: float, value: float) -> list[Alert]:
        """Add one sample; return the notifications it causes (usually none)."""
        if state.last_ts is not None and ts <= state.last_ts:
            return []  # late or replayed sample: the window already moved past it
        state.last_ts = ts
        push_window(state.times, state.values, ts, value, self.cfg.window)
        stat = window_statistic(state.values, self.cfg.statistic)
        out = []
        for level in self.levels:
            alert = self._step(level, state.levels[level.severity], ts, stat)
            if alert is not None:
                out.append(alert)
        return out

    def _step(self, level: Level, st: LevelState, ts: float, stat: float) -> Alert | None:
        edge = edge_step(st, ts, stat >= level.threshold, stat >= level.clear_below,
                         self.cfg.for_, self.cfg.clear_for)
        if edge is None:
            return None
        if edge[0] == "firing":
            return self._alert(level, "firing", ts, None, stat, level.threshold)
        return self._alert(level, "resolved", edge[1], ts, stat, level.clear_below)

    def _alert(
        self, level: Level, state: str, starts: float, ends: float | None, value: float,
        threshold: float,
    ) -> Alert:
        if state == "firing":
            summary = (f"{self.kind} in {self.zone_id} is {value:.2f} {self.unit}, at or above "
                       f"{level.severity} level {level.threshold:g} for {self.cfg.for_:g}s")
        else:
            summary = (f"{self.kind} in {self.zone_id} back to {value:.2f} {self.unit}, under "
                       f"{threshold:g} for {self.cfg.clear_for:g}s")
        return Alert(
            fingerprint=self._fingerprints[level.severity],
            rule=self.kind,
            zone_id=self.zone_id,
            severity=level.severity,
            state=state,
            starts_at=starts,
            ends_at=ends,
            value=round(value, 4),
            threshold=threshold,
            summary=summary,
            labels={"site": self.site, "zone": self.zone_id, "camera": self.camera_id,
                    "rule": self.kind, "severity": level.severity},
        )


@dataclass(slots=True)
class OfflineState:
    last_seen: float
    firing_since: float | None = None
    last_state: str = "up"
    last_reason: str = ""


class SilenceRule:
    """Nothing heard from a source for ``after`` seconds fires; the next reading resolves.

    Shared by camera_offline (no usable frames) and sensor_silent (no readings).
    """

    kind = ""
    entity = ""  # label name of what falls silent: camera or sensor

    def __init__(self, after: float, severity: str, site: str, entity_id: str,
                 zone_ids: list[str]) -> None:
        self.after = after
        self.severity = severity
        self.site = site
        self.entity_id = entity_id
        self.zone_ids = zone_ids
        self._fp = fingerprint(site, self.kind, entity_id, severity)

    def key(self) -> str:
        return self.entity_id

    def new_state(self, now: float) -> OfflineState:
        return OfflineState(last_seen=now)

    def seen(self, state: OfflineState, ts: float) -> list[Alert]:
        """The source delivered something stamped ts."""
        if ts <= state.last_seen and state.firing_since is None:
            return []
        state.last_seen = max(state.last_seen, ts)
        if state.firing_since is None:
            return []
        starts, state.firing_since = state.firing_since, None
        return [self._alert("resolved", starts, ts, 0.0)]

    def health(self, state: OfflineState, health_state: str, reason: str) -> None:
        """Remember why the source is not delivering, for the alert's summary."""
        state.last_state, state.last_reason = health_state, reason

    def tick(self, state: OfflineState, now: float) -> list[Alert]:
        silent = now - state.last_seen
        if state.firing_since is not None or silent < self.after:
            return []
        state.firing_since = now
        return [self._alert("firing", now, None, silent, state)]

    def describe(self, firing: bool, silent: float, st: OfflineState | None) -> str:
        raise NotImplementedError

    def _alert(self, state: str, starts: float, ends: float | None, silent: float,
               st: OfflineState | None = None) -> Alert:
        return Alert(
            fingerprint=self._fp,
            rule=self.kind,
            zone_id=",".join(self.zone_ids),
            severity=self.severity,
            state=state,
            starts_at=starts,
            ends_at=ends,
            value=round(silent, 3),
            threshold=self.after,
            summary=self.describe(state == "firing", silent, st),
            labels={"site": self.site, self.entity: self.entity_id, "rule": self.kind,
                    "severity": self.severity},
        )


class CameraOfflineRule(SilenceRule):
    """No frames from a camera for ``after`` seconds fires; the next frame resolves it."""

    kind = "camera_offline"
    entity = "camera"

    def __init__(self, cfg: CameraOfflineRuleConfig, site: str, camera_id: str,
                 zone_ids: list[str]) -> None:
        self.cfg = cfg
        self.camera_id = camera_id
        super().__init__(cfg.after, SEVERITY_CRITICAL, site, camera_id, zone_ids)

    def describe(self, firing: bool, silent: float, st: OfflineState | None) -> str:
        if not firing:
            return f"camera {self.camera_id} delivers frames again"
        summary = f"camera {self.camera_id} sent no usable frames for {silent:.0f}s"
        if st is not None and st.last_state != "up":
            summary += f" (it is {st.last_state}: {st.last_reason})"
        return summary


def state_to_dict(state: object) -> dict:
    """Plain JSON-able form, for tables backed by changelog topics."""
    from dataclasses import fields

    if not isinstance(state, ThresholdState | OfflineState):
        return {"t": type(state).__name__,
                **{f.name: getattr(state, f.name) for f in fields(state)}}
    if isinstance(state, ThresholdState):
        return {"t": "threshold", "times": list(state.times), "values": list(state.values),
                "last_ts": state.last_ts,
                "levels": {k: [v.pending_since, v.firing_since, v.clear_since]
                           for k, v in state.levels.items()}}
    return {"t": "offline", "last_seen": state.last_seen, "firing_since": state.firing_since,
            "last_state": state.last_state, "last_reason": state.last_reason}


def state_from_dict(data: dict) -> object:
    from dataclasses import is_dataclass

    from crowdwatch.streams import sensor_rules, trend_rules

    for module in (trend_rules, sensor_rules):
        cls = getattr(module, data["t"], None)
        if isinstance(cls, type) and is_dataclass(cls):
            return cls(**{k: v for k, v in data.items() if k != "t"})
    if data["t"] == "threshold":
        return ThresholdState(list(data["times"]), list(data["values"]), data["last_ts"],
                              {k: LevelState(*v) for k, v in data["levels"].items()})
    return OfflineState(data["last_seen"], data["firing_since"], data["last_state"],
                        data["last_reason"])
