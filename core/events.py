"""Event types that flow between ingest, detectors, the stream engine and sinks.

Every event is JSON with a schema version ``v`` and UTC timestamps (epoch seconds as
floats inside the process, ISO-8601 in the object form on the wire, epoch seconds in the
compact array form crowdwatch writes on its own topics). Only numbers and identifiers live
here, never pixels: this module is the privacy boundary of the ingest process.
Plain slotted dataclasses keep the embedded engine fast (no validation per event);
validation happens once, in :func:`event_from_json`, where untrusted bytes come in.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

import orjson

# Re-exported: readers of events catch EventError and read JSON from here.
from crowdwatch.safe_json import EventError as EventError
from crowdwatch.safe_json import load_json as load_json

SCHEMA_VERSION = 1
# No crowdwatch event is stamped before 2000 or after 2100: a timestamp outside is a
# broken clock or an attack, and would break every sink that formats it.
MIN_TS, MAX_TS = 946_684_800.0, 4_102_444_800.0
MAX_LINES = 16  # lines per zone (as the config allows)


class HealthState(StrEnum):
    """What a camera's health report says (equal to its wire string)."""

    UP = "up"
    STALE = "stale"
    DOWN = "down"
    TAMPERED = "tampered"
    WARMING_UP = "warming_up"  # frames arrive, the background is not built: no counts yet


class AlertState(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


E = TypeVar("E", HealthState, AlertState, Severity)
HEALTH_STATES = tuple(s.value for s in HealthState)
ALERT_STATES = tuple(s.value for s in AlertState)


def iso(ts: float | None) -> str | None:
    """Epoch seconds to an ISO-8601 UTC string with millisecond precision."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


def parse_ts(value: Any, name: str) -> float:
    """Accept epoch seconds or an ISO-8601 string (naive means UTC), 2000 to 2100."""
    if isinstance(value, bool):
        raise EventError("bad_field", f"{name}: expected a timestamp, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise EventError("bad_field", f"{name}: timestamp is not finite")
        ts = float(value)
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value)
        except ValueError as exc:
            raise EventError("bad_field", f"{name}: {exc}") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        ts = dt.timestamp()
    else:
        raise EventError("bad_field",
                         f"{name}: expected a timestamp, got {type(value).__name__}")
    if not MIN_TS <= ts <= MAX_TS:
        raise EventError("bad_ts", f"{name}: {value!r} is outside 2000-2100")
    return ts


@dataclass(slots=True)
class CountEvent:
    """People counted in one zone of one camera sample."""

    TYPE: ClassVar[str] = "count"
    TS_FIELDS: ClassVar[tuple[str, ...]] = ("ts",)
    camera_id: str
    zone_id: str
    ts: float
    count: float
    density_ppm2: float | None = None
    area_m2: float | None = None
    detector: str = ""
    quality: float = 1.0
    frame_seq: int = 0
    # Crowd dynamics (zones with lines; no identity: aggregates of the whole zone):
    speed_mps: float | None = None  # mean walking speed of the people seen moving or not
    speed_spread_mps: float | None = None
    interval_s: float | None = None  # time this sample stands for (crossings cover it)
    # Per line of the zone: people crossing each way in the interval, and its length.
    lines: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.zone_id

    def flow_ppmm(self, line_id: str, direction: str) -> float | None:
        """Persons per metre of line per minute crossing ``in``, ``out`` or ``both`` ways
        in this sample (None: the sample does not measure the line)."""
        crossed = self.lines.get(line_id)
        if crossed is None or not self.interval_s:
            return None
        people = crossed["in"] + crossed["out"] if direction == "both" else crossed[direction]
        return people / self.interval_s * 60.0 / crossed["length_m"]


@dataclass(slots=True)
class CameraHealth:
    """Health of one camera: up, stale (frozen), down or tampered."""

    TYPE: ClassVar[str] = "health"
    TS_FIELDS: ClassVar[tuple[str, ...]] = ("ts",)
    camera_id: str
    ts: float
    state: HealthState
    fps: float = 0.0
    reason: str = ""
    decode: str = ""  # how frames are decoded: keyframe, all, sim, images

    @property
    def key(self) -> str:
        return self.camera_id


@dataclass(slots=True)
class SensorEvent:
    """A reading from a non-camera sensor (door counter, gate, occupancy)."""

    TYPE: ClassVar[str] = "sensor"
    TS_FIELDS: ClassVar[tuple[str, ...]] = ("ts",)
    sensor_id: str
    ts: float
    kind: str
    value: float
    zone_id: str | None = None

    @property
    def key(self) -> str:
        return self.zone_id or self.sensor_id


@dataclass(slots=True)
class Alert:
    """A notification about a rule on a zone, a camera or a sensor.

    ``fingerprint`` is stable per alert and includes the rule's id, so two rules of one
    kind on one zone are two alerts. ``zone_id`` is set only for an alert about one zone;
    ``zones`` lists every zone the alert affects (a camera's zones for camera_offline),
    so dashboards filter on one zone and nothing joins ids into one string.
    """

    TYPE: ClassVar[str] = "alert"
    TS_FIELDS: ClassVar[tuple[str, ...]] = ("starts_at", "ends_at")
    fingerprint: str
    rule: str
    zone_id: str
    severity: Severity
    state: AlertState
    starts_at: float
    value: float
    threshold: float
    summary: str
    ends_at: float | None = None
    labels: dict[str, str] = field(default_factory=dict)
    rule_id: str = ""
    zones: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """What the alert is about (zone, camera or sensor id): its Kafka key."""
        return (self.zone_id or self.labels.get("camera") or self.labels.get("sensor")
                or self.rule_id)


EVENT_TYPES: dict[str, Any] = {
    cls.TYPE: cls for cls in (CountEvent, CameraHealth, SensorEvent, Alert)
}


def fingerprint(*parts: str) -> str:
    """Stable 16-hex-digit id for an alert: same inputs, same id, across processes."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def event_to_dict(event: Any) -> dict[str, Any]:
    """Wire form: ``{"v": 1, "type": ..., ...}`` with ISO timestamps (a copy: the
    event's own dicts and lists are not shared with the result)."""
    names = _names(type(event))
    data: dict[str, Any] = {"v": SCHEMA_VERSION, "type": event.TYPE}
    for name in names:
        value = getattr(event, name)
        if isinstance(value, dict):
            value = {k: dict(v) if isinstance(v, dict) else v for k, v in value.items()}
        elif isinstance(value, list):
            value = list(value)
        data[name] = value
    for name in event.TS_FIELDS:
        data[name] = iso(data[name])
    return data


def event_to_bytes(event: Any) -> bytes:
    """The wire form as UTF-8 JSON (numpy scalars written as numbers)."""
    return orjson.dumps(event_to_dict(event), option=orjson.OPT_SERIALIZE_NUMPY)


def event_to_json(event: Any) -> str:
    return event_to_bytes(event).decode()


def event_to_compact(event: Any) -> bytes:
    """The compact wire form crowdwatch writes on its own input topics: a JSON array of
    the schema version, the type and every field in declaration order, timestamps as
    epoch seconds (``[1, "count", "cam-1", "gate", 1764000000.25, 12.0, ...]``). A third
    of the bytes of the object form and about a quarter of its decoding time, which the
    worker's throughput depends on; readers take both, so other producers keep writing
    objects. A field added later goes last, with a default, so older arrays still read."""
    values = [getattr(event, name) for name in _names(type(event))]
    return orjson.dumps([SCHEMA_VERSION, event.TYPE, *values],
                        option=orjson.OPT_SERIALIZE_NUMPY)


def _names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def _event_class(version: Any, etype: Any, expected: Any) -> Any:
    if version != SCHEMA_VERSION:
        raise EventError("bad_version", f"v={version!r}, this build reads v={SCHEMA_VERSION}")
    cls = EVENT_TYPES.get(etype) if isinstance(etype, str) else None
    if cls is None:
        raise EventError("unknown_type", f"type={etype!r}")
    if expected is not None and cls is not expected:
        raise EventError("unexpected_type", f"type={etype!r} where {expected.TYPE!r} belongs")
    return cls


def event_from_dict(data: Any, expected: Any = None) -> Any:
    """Validate a decoded message (an object, or the compact array) and build the event;
    raise :class:`EventError` if invalid."""
    if isinstance(data, list):
        return _event_from_compact(data, expected)
    if not isinstance(data, dict):
        raise EventError("not_an_object", f"expected a JSON object, got {type(data).__name__}")
    cls = _event_class(data.get("v"), data.get("type"), expected)
    fields = dict(data)
    del fields["v"], fields["type"]
    for name in cls.TS_FIELDS:
        if fields.get(name) is not None:
            fields[name] = parse_ts(fields[name], name)
    try:
        event = cls(**fields)
    except TypeError as exc:
        raise EventError("bad_fields", str(exc)) from None
    _check_types(event)
    return event


def _event_from_compact(data: list[Any], expected: Any) -> Any:
    if len(data) < 2 or not isinstance(data[1], str):
        raise EventError("not_an_object", "expected a JSON object or a compact array "
                         "[v, type, fields...], got another list")
    cls = _event_class(data[0], data[1], expected)
    names = _names(cls)
    if len(data) - 2 > len(names):
        raise EventError("bad_fields", f"{len(data) - 2} fields where a {cls.TYPE} has "
                         f"{len(names)}")
    try:
        event = cls(*data[2:])
    except TypeError as exc:
        raise EventError("bad_fields", str(exc)) from None
    for name in cls.TS_FIELDS:
        value = getattr(event, name)
        if value is not None:
            setattr(event, name, parse_ts(value, name))
    _check_types(event)
    return event


def event_from_json(raw: str | bytes, expected: type | None = None) -> Any:
    return event_from_dict(load_json(raw), expected)


def _check_types(event: Any) -> None:
    """Reject values that would poison rules later (NaN counts, unknown states)."""
    if isinstance(event, CountEvent):
        _number(event.count, "count")
        if event.count < 0:
            raise EventError("bad_field", "count: negative")
        if event.density_ppm2 is not None:
            _number(event.density_ppm2, "density_ppm2")
        _check_dynamics(event)
    elif isinstance(event, CameraHealth):
        event.state = _member(HealthState, event.state, "state")
    elif isinstance(event, SensorEvent):
        _number(event.value, "value")
    elif isinstance(event, Alert):
        event.state = _member(AlertState, event.state, "state")
        event.severity = _member(Severity, event.severity, "severity")


def _member(enum: type[E], value: Any, name: str) -> E:
    """The wire string as its enum member (decoded events carry enums, never strings)."""
    try:
        return enum(value)
    except ValueError:
        allowed = tuple(m.value for m in enum)  # type: ignore[attr-defined]
        raise EventError("bad_field", f"{name}: {value!r} not in {allowed}") from None


def _check_dynamics(event: CountEvent) -> None:
    for name in ("speed_mps", "speed_spread_mps", "interval_s"):
        value = getattr(event, name)
        if value is not None:
            _number(value, name)
            if value < 0:
                raise EventError("bad_field", f"{name}: negative")
    if not isinstance(event.lines, dict) or len(event.lines) > MAX_LINES:
        raise EventError("bad_field", f"lines: expected an object of at most {MAX_LINES} lines")
    for line_id, crossed in event.lines.items():
        if not isinstance(crossed, dict) or set(crossed) != {"in", "out", "length_m"}:
            raise EventError("bad_field", f"lines.{line_id}: expected in, out and length_m")
        for name, value in crossed.items():
            _number(value, f"lines.{line_id}.{name}")
            if value < 0 or (name == "length_m" and value == 0):
                raise EventError("bad_field", f"lines.{line_id}.{name}: must be positive")


def _number(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise EventError("bad_field", f"{name}: expected a finite number, got {value!r}")
