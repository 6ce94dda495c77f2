"""The rule contract: what a rule kind provides, and the helpers kinds share.

A kind is one module in :mod:`crowdwatch.streams.rules.kinds`: a config model (a
:class:`RuleSpec`) that builds :class:`Rule` instances, a :class:`RuleState` dataclass,
and the logic. The engine routes inputs to rules by :class:`Input` and never asks what
kind a rule is, so a new kind is one new file.
"""

from __future__ import annotations

import bisect
import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar

from crowdwatch.config import RuleConfig
from crowdwatch.events import Alert, AlertState, CountEvent, Severity, fingerprint

if TYPE_CHECKING:
    from crowdwatch.config import CrowdwatchConfig

STATE_SCHEMA = 2  # bump when a state layout changes: older stored states start fresh
STATE_PREFIX = "rule/"  # store keys of rule state: rule/<rule id>@<settings digest>/<entity>


class Input(StrEnum):
    """What a rule can listen to; a :class:`Route` pairs one with a zone, camera or sensor."""

    CAMERA_ZONE = "camera_zone"  # one camera sample of a zone: count, density
    SENSOR_ZONE = "sensor_zone"  # a sensor zone's combined readings: count, density
    SENSOR = "sensor"  # one sensor's reading
    CAMERA_SEEN = "camera_seen"  # a camera delivered a counted frame or reported `up`
    SENSOR_SEEN = "sensor_seen"  # a sensor delivered a reading
    CAMERA_HEALTH = "camera_health"  # a camera's health report


@dataclass(frozen=True, slots=True)
class Route:
    input: Input
    key: str  # zone id for *_ZONE, sensor id for SENSOR*, camera id for CAMERA_*


@dataclass(frozen=True, slots=True)
class RuleSeries:
    """One label set a rule can raise, for metrics and dashboards (threshold if it has one)."""

    rule: str
    zone: str
    severity: str
    threshold: float | None = None
    rule_id: str = ""  # filled in by :meth:`Rule.labelled_series`
    # The zone value the threshold is a level of ("count" or "density"), for a rule whose
    # levels an operator reads against that value (the console colours tiles by them).
    level_of: str | None = None


_STATE_TYPES: dict[str, type[RuleState]] = {}


class RuleState:
    """Base of every rule's state: a small dataclass a changelog table stores as JSON."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _STATE_TYPES[cls.__name__] = cls

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls(**data)


def state_to_dict(state: RuleState) -> dict[str, Any]:
    """Plain JSON-able form with its type and schema version."""
    return {"t": type(state).__name__, "sv": STATE_SCHEMA, **state.to_dict()}


def state_from_dict(data: dict[str, Any]) -> RuleState | None:
    """The stored state, or None (start fresh) for an unknown type or another schema."""
    cls = _STATE_TYPES.get(str(data.get("t")))
    if cls is None or data.get("sv") != STATE_SCHEMA:
        return None
    try:
        return cls.from_dict({k: v for k, v in data.items() if k not in ("t", "sv")})
    except (TypeError, ValueError, KeyError):
        return None


@dataclass(slots=True)
class EdgeState(RuleState):
    """The timers of the shared fire/resolve state machine (:func:`edge_step`)."""

    pending_since: float | None = None
    firing_since: float | None = None
    clear_since: float | None = None


def edge_step(st: EdgeState, ts: float, raised: bool, held: bool, fire_for: float,
              clear_for: float) -> tuple[AlertState, float] | None:
    """The one fire/resolve state machine every level-like rule shares.

    An alert fires once ``raised`` has held for ``fire_for`` seconds and resolves once
    ``held`` (the hysteresis condition, looser than ``raised``) has failed for
    ``clear_for`` seconds. Returns (FIRING, start) or (RESOLVED, start) on a transition.
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
        return (AlertState.FIRING, ts)
    if held:
        st.clear_since = None
        return None
    if st.clear_since is None:
        st.clear_since = ts
    if ts - st.clear_since < clear_for:
        return None
    starts = st.firing_since
    st.firing_since, st.clear_since = None, None
    return (AlertState.RESOLVED, starts)


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


S = TypeVar("S", bound=RuleState)


class Rule(Generic[S]):
    """One rule instance watching one thing (a zone, a camera, a sensor).

    The engine keeps the instance's state under ``state_key``, calls the ``on_*`` hook of
    each :class:`Route` it listens on, and ``on_tick`` when ``ticks`` is set. Hooks return
    the notifications a step causes; the engine sends each fingerprint's firing and
    resolution once.
    """

    kind: ClassVar[str] = ""
    state_type: ClassVar[type[RuleState]]
    ticks: ClassVar[bool] = False
    # A rule whose state is learned over weeks (a seasonal model): the embedded engine
    # saves it to its state file and ``replay --learn`` warms it from a recording.
    persistent: ClassVar[bool] = False

    def __init__(self, spec: RuleSpec, entity: str, site: str, routes: tuple[Route, ...],
                 guards_camera: str | None = None) -> None:
        """``entity`` names what this instance watches with its namespace (``zone:a``,
        ``camera:c``, ``sensor:s``), so a camera and a sensor sharing an id never share
        state."""
        self.rule_id = spec.rule_id()
        self.digest = spec.settings_digest()
        self.entity = entity
        self.site = site
        self.routes = routes
        # The settings digest is in the key: a rule whose settings changed finds no state
        # and starts fresh; the engine resolves what its old settings left firing.
        self.state_key = f"{STATE_PREFIX}{self.rule_id}@{self.digest}/{entity}"
        # Set on a rule whose firing means the camera cannot be trusted (camera_offline):
        # while it fires, the camera's zone rules take no samples.
        self.guards_camera = guards_camera

    def fingerprint(self, *parts: str) -> str:
        """An alert's stable id: the site, this rule's id and what it is about."""
        return fingerprint(self.site, self.rule_id, *parts)

    def new_state(self, now: float) -> S:
        raise NotImplementedError

    def on_zone(self, state: S, zone_id: str, ts: float, count: float,
                density: float | None) -> list[Alert]:
        return []

    def on_count(self, state: S, event: CountEvent) -> list[Alert]:
        """A camera's count event for the zone (what a rule that reads more than the
        count and density, like a line's flow, overrides)."""
        return self.on_zone(state, event.zone_id, event.ts, event.count, event.density_ppm2)

    def on_sensor(self, state: S, sensor_id: str, ts: float, value: float) -> list[Alert]:
        return []

    def on_seen(self, state: S, ts: float) -> list[Alert]:
        return []

    def on_health(self, state: S, health: str, reason: str) -> None:
        return None

    def on_tick(self, state: S, now: float) -> list[Alert]:
        return []

    def on_outage(self, state: S) -> None:
        """The zone's camera became untrustworthy: samples before it must not count
        towards clearing after it."""
        return None

    def fingerprints(self) -> set[str]:
        return set()

    def outlook(self, state: S, now: float) -> dict[str, float]:
        """What the rule expects for its zone (``usual``, ``usual_low``/``_high``,
        ``forecast``), for dashboards; empty for rules that model nothing."""
        return {}

    def series(self) -> list[RuleSeries]:
        return []

    def labelled_series(self) -> list[RuleSeries]:
        """:meth:`series` with this rule's id: two rules of one kind on one zone are two
        label sets, so one resolving never zeroes the other's gauge."""
        return [dataclasses.replace(s, rule_id=self.rule_id) for s in self.series()]

    def alert(self, *, fingerprint: str, zone_id: str, severity: Severity | str,
              state: AlertState, starts_at: float, ends_at: float | None = None,
              value: float, threshold: float, summary: str,
              labels: dict[str, str], zones: list[str] | None = None) -> Alert:
        """The one place rules build an Alert (by keyword). ``zone_id`` is '' for an alert
        about a camera or sensor; ``zones`` defaults to ``[zone_id]``."""
        return Alert(fingerprint=fingerprint, rule=self.kind, zone_id=zone_id,
                     severity=Severity(severity), state=state,
                     starts_at=starts_at, ends_at=ends_at, value=value, threshold=threshold,
                     summary=summary, labels={**labels, "rule_id": self.rule_id},
                     rule_id=self.rule_id,
                     zones=list(zones) if zones is not None else ([zone_id] if zone_id else []))


class RuleSpec(RuleConfig):
    """A rule kind's config model: validated from YAML, and it builds the kind's rules."""

    # True for kinds that judge one zone's values (replay records them; tune sweeps them).
    watches_zone_values: ClassVar[bool] = False

    def build(self, site: CrowdwatchConfig) -> list[Rule[Any]]:
        raise NotImplementedError

    def reads(self) -> str | None:
        """For a rule on one zone's values: the metric it reads ('count' or 'density')."""
        return None

    def level(self) -> float | None:
        """The level the rule is about (tuning scores peaks above it), if it has one."""
        return None

    def lookahead(self) -> float:
        """How far ahead the rule warns (tuning's default lookahead)."""
        return 0.0
