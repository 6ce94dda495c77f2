"""The one YAML configuration file, validated with pydantic v2.

Unknown keys are rejected (a typo must not silently disable a rule), and every
problem is reported with its field path and its line in the file, all at once, so
a site engineer fixes the file in one pass.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializeAsAny,
    StrictInt,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from crowdwatch.errors import ConfigError
from crowdwatch.kinds import KindRegistry
from crowdwatch.service_levels import ServiceLevelsConfig
from crowdwatch.util.shapes import polygon_problem, quad_problem

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def _parse_duration(value: Any) -> Any:
    """'10s', '2m', '500ms', '1h' or a bare number of seconds."""
    if isinstance(value, bool):
        # pydantic turns ValueError (not TypeError) into a located validation error
        raise ValueError("expected a duration like '10s' or '2m'")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNIT_S[match.group(2)]
    raise ValueError(f"expected a duration like '10s' or '2m', got {value!r}")


Seconds = Annotated[float, BeforeValidator(_parse_duration), Field(ge=0)]
Point = Annotated[list[float], Field(min_length=2, max_length=2)]
Polygon = Annotated[list[Point], Field(min_length=3)]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]


class _Strict(BaseModel):
    # No infinite or NaN number anywhere in a site file: a level of .inf never fires,
    # a duration of .nan never ends.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


class SiteConfig(_Strict):
    name: str = Field("crowdwatch", title="Site name",
                      description="Label on every metric and alert.")
    timezone: str = Field("UTC", description="IANA zone for human-facing times.")

    @field_validator("timezone")
    @classmethod
    def _iana(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (like Europe/London or "
                             "UTC)") from None
        return value

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not value.isprintable():
            raise ValueError("must be printable: no control characters or line breaks (it "
                             "labels every metric and log line)")
        return value


class GroundPlane(_Strict):
    """Four image points and their ground coordinates in metres define a homography."""

    image: Annotated[list[Point], Field(min_length=4, max_length=4)] = Field(
        description="Four pixel points (in the camera's native resolution)."
    )
    world_m: Annotated[list[Point], Field(min_length=4, max_length=4)] = Field(
        description="The same four points on the ground, in metres."
    )

    @field_validator("image", "world_m")
    @classmethod
    def _general_position(cls, value: list[list[float]]) -> list[list[float]]:
        problem = quad_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class LineConfig(_Strict):
    """A counting line on its zone's ground plane: people crossing it each way."""

    id: Identifier = Field(description="Line id; unique across the site (zones' ids too).")
    points: Annotated[list[Point], Field(min_length=2, max_length=32)] = Field(
        description="Two or more image points (native pixels). Crossing `in` is moving to "
        "the side where (b−a)×(p−a) > 0 for consecutive points a, b (y down: for a line "
        "drawn top to bottom on screen, `in` is right to left); `out` the other way.")
    band_m: float = Field(2.0, gt=0.2, le=10.0, description="Width (m) of the ground band "
                          "around the line whose moving people measure the flow: wider is "
                          "steadier, narrower tells lines close together apart.")


class ZoneConfig(_Strict):
    id: Identifier = Field(description="Zone id; unique across the site.")
    polygon: Polygon | None = Field(
        None, description="Zone outline in image pixels (native resolution).")
    mask: str | None = Field(
        None, description="Instead of a polygon: a PNG the size of the frame, white = zone.")
    ground: GroundPlane | None = Field(None, description="Ground calibration for density.")
    height_ref: list[Annotated[list[float], Field(min_length=4, max_length=4)]] | None = Field(
        None, min_length=1,
        description="Standing people as [foot_x, foot_y, head_x, head_y] native pixels: "
        "gives the person size everywhere, so the geometry counter needs no labels.")
    perspective: str | None = Field(
        None, description="A relative perspective map (.npy, weight ∝ 1/person area), "
        "scaled by height_ref.")
    lines: list[LineConfig] = Field(
        default_factory=list, max_length=16, description="Counting lines on this zone's "
        "ground plane (needs `ground`): flow each way, per metre, and walking speed.")
    lat: float | None = Field(None, ge=-90, le=90, description="Zone latitude (map panels).")
    lon: float | None = Field(None, ge=-180, le=180, description="Zone longitude (map panels).")

    @model_validator(mode="after")
    def _one_outline(self) -> ZoneConfig:
        if (self.polygon is None) == (self.mask is None):
            raise ValueError("give exactly one of polygon or mask")
        return self

    @field_validator("polygon")
    @classmethod
    def _simple(cls, value: list[list[float]] | None) -> list[list[float]] | None:
        problem = None if value is None else polygon_problem(value)
        if problem:
            raise ValueError(problem)
        return value


DETECTOR_PLUGIN_GROUP = "crowdwatch.detectors"


class DetectorConfig(_Strict):
    """What every detector's config shares. Each kind subclasses it in its own module
    (``crowdwatch.detectors.kinds``) and registers itself, as rule kinds do."""

    kind: str

    def needs_person_size(self, camera: CameraConfig) -> bool:
        """Whether every zone of the camera must give a person size (height_ref or
        ground): a kind that weighs foreground by it cannot count without."""
        return False


_DETECTORS: KindRegistry[DetectorConfig] = KindRegistry(DETECTOR_PLUGIN_GROUP)
register_detector_model = _DETECTORS.register
detector_models = _DETECTORS.models


def default_detector() -> DetectorConfig:
    """A camera's detector when none is given: the background counter (which counts by
    geometry on a real camera whose zones all have a person size)."""
    return detector_models()["background"](kind="background")


class HealthConfig(_Strict):
    """When a camera that still sends frames counts as stale or tampered."""

    stale_after: Seconds = Field(10.0, gt=0, description="Unchanged picture this long: stale.")
    tamper_after: Seconds = Field(5.0, gt=0, description="Dark/blank/blurred/moved this long.")
    dark_level: float = Field(18.0, ge=0, le=255, description="Mean grey under this: dark.")
    uniform_std: float = Field(5.0, ge=0, description="Grey spread under this: covered.")
    defocus_ratio: float = Field(0.25, gt=0, lt=1, description="Share of start sharpness.")
    move_fraction: float = Field(0.06, gt=0, lt=1, description="Shift (share of width): moved.")
    heartbeat: Seconds = Field(10.0, gt=0, description="Health event at least this often.")


class ReconnectConfig(_Strict):
    initial: Seconds = Field(1.0, gt=0, description="First retry delay (doubles, with jitter).")
    max: Seconds = Field(30.0, gt=0, description="Longest retry delay.")


class CameraConfig(_Strict):
    id: Identifier
    url: str = Field(description="sim://scene?..., a video file path, file://..., rtsp://, http://")
    sample_hz: float = Field(2.0, gt=0, le=30, description="Samples per second sent to detection.")
    loop: bool = Field(False, description="Restart a video file at its end.")
    decode: Literal["auto", "keyframe", "all"] = Field(
        "auto", description="keyframe: decode keyframes only; all: decode every frame, convert "
        "sampled ones; auto: pick from the measured keyframe interval.")
    open_timeout: Seconds = Field(10.0, gt=0, description="Give up opening the stream after.")
    read_timeout: Seconds = Field(10.0, gt=0, description="A read stalled this long fails.")
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    detect_width: int = Field(640, ge=64, le=4096, description="Frames are downscaled to this.")
    motion_gap: Seconds = Field(
        0.2, ge=0.02, le=1.0, description="Speed and flow are measured between each sample "
        "and the frame this long after it (zones with lines only).")
    detector: SerializeAsAny[DetectorConfig] = Field(
        default_factory=default_detector, description="How this camera counts: `kind` "
        "names a detector plug-in (see `crowdwatch config schema`).")
    privacy_masks: list[Polygon] = Field(
        default_factory=list, description="Image regions blanked before any detector sees them."
    )
    zones: list[ZoneConfig] = Field(
        default_factory=list, description="Where to count. A camera with none is being set up "
        "(added from the console): it reports health and serves setup snapshots, and counts "
        "nothing.")

    @field_validator("detector", mode="wrap")
    @classmethod
    def _detector_kind(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """The detector validates against its own kind's model (from the registry)."""
        if isinstance(value, DetectorConfig) and type(value) is not DetectorConfig:
            return handler(value)
        return _DETECTORS.adapter().validate_python(value)

    @field_validator("privacy_masks")
    @classmethod
    def _simple_masks(cls, value: list[list[list[float]]]) -> list[list[list[float]]]:
        for i, polygon in enumerate(value):
            problem = polygon_problem(polygon)
            if problem:
                raise ValueError(f"privacy mask {i}: {problem}")
        return value


RuleSource = Literal["auto", "camera", "sensor"]
Loc = tuple[str | int, ...]
RULE_PLUGIN_GROUP = "crowdwatch.rules"


class RuleConfig(_Strict):
    """What every rule's config shares. Each kind subclasses it in its own module of the
    rule core (``crowdwatch.streams.rules.kinds``) and registers itself; this layer only
    knows the base, so the foundation never imports the rules."""

    kind: str
    id: Identifier | None = Field(
        None, description="Stable rule id (state, alerts); default: derived from the kind, "
        "what it watches and its settings, so reordering rules never changes it.")

    def problems(self, site: CrowdwatchConfig) -> list[tuple[Loc, str]]:
        """References that do not resolve against the rest of the site (field path, message)."""
        return []

    # Fields that define what the rule is, beside its kind and target: they make the
    # derived id. Others (timers, windows) are settings: changing one keeps the id and
    # starts the rule's state fresh.
    IDENTITY: ClassVar[tuple[str, ...]] = ("severity",)

    def target(self) -> str:
        """What the rule watches, for its derived id (a zone, camera or sensor id)."""
        for name in ("zone", "camera", "sensor"):
            value = getattr(self, name, None)
            if isinstance(value, str):
                return value
        return "all"

    def rule_id(self) -> str:
        """The given id, or ``kind:target:digest`` of what defines the rule, so reordering
        rules or retuning a timer never changes it."""
        if self.id:
            return self.id
        identity = {name: getattr(self, name, None) for name in self.IDENTITY}
        body = json.dumps(identity, sort_keys=True, default=str)
        return f"{self.kind}:{self.target()}:{hashlib.sha256(body.encode()).hexdigest()[:6]}"

    def settings_digest(self) -> str:
        """Digest of every setting: a stored state made under other settings is not reused."""
        body = json.dumps(self.model_dump(mode="json", by_alias=True, exclude={"id"}),
                          sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:8]


_RULES: KindRegistry[RuleConfig] = KindRegistry(RULE_PLUGIN_GROUP)
register_rule_model = _RULES.register
rule_models = _RULES.models


class JsonlSinkConfig(_Strict):
    path: str


class WebhookSinkConfig(_Strict):
    url: str = Field(description="Receiver URL (POST, JSON body).")
    secret_env: str | None = Field(
        None, description="Environment variable holding the HMAC-SHA256 signing key.")
    timeout: Seconds = Field(5.0, gt=0)
    retries: int = Field(5, ge=0, le=20, description="Re-sends on errors and HTTP 5xx/429.")


class AlertmanagerSinkConfig(_Strict):
    url: str = Field(description="Alertmanager base URL, e.g. http://127.0.0.1:9093")
    resend: Seconds = Field(60.0, gt=0, description="Re-send firing alerts this often.")
    dashboard_url: str | None = Field(
        None, description="Link in each alert; {zone} and {site} are filled in.")


class GrafanaAnnotationSinkConfig(_Strict):
    url: str = Field(description="Grafana base URL, e.g. http://grafana:3000")
    token_env: str = Field("CROWDWATCH_GRAFANA_TOKEN", description="Environment variable "
                           "holding a service-account token (Annotations: write).")
    dashboard_uid: str | None = Field(
        None, description="Pin annotations to one dashboard; default: organisation-wide, "
        "shown by any dashboard that queries the `crowdwatch` tag.")
    timeout: Seconds = Field(5.0, gt=0)
    retries: int = Field(3, ge=0, le=20, description="Re-sends on errors and HTTP 5xx.")


class AlertsConfig(_Strict):
    console: bool = Field(True, description="One readable line per notification on stderr.")
    jsonl: JsonlSinkConfig | None = None
    webhook: WebhookSinkConfig | None = None
    alertmanager: AlertmanagerSinkConfig | None = None
    grafana: GrafanaAnnotationSinkConfig | None = None


class SensorDevice(_Strict):
    """One sensor: which zone its readings belong to and how to read them."""

    id: Identifier = Field(description="Sensor id, as sent in messages and MQTT topics.")
    name: str | None = Field(None, description="Name in a recorded feed when it is not a "
                             "valid id (e.g. a CSV column such as '45 Queen Street').")
    zone: str | None = Field(None, description="Zone id the readings describe.")
    kind: Literal["counter", "occupancy", "gate"] = Field(
        "counter", description="counter: people per interval; occupancy: people present now; "
        "gate: passages.")
    scale: float = Field(1.0, gt=0, description="Readings are multiplied by this (e.g. a "
                         "counter that covers half the pavement: 2).")


class SensorZone(_Strict):
    """A zone that only sensors watch (no camera)."""

    id: Identifier
    area_m2: float | None = Field(None, gt=0, description="Walkable area; enables density.")
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)


class MqttSensorConfig(_Strict):
    host: str = Field("127.0.0.1", description="Broker host.")
    port: StrictInt = Field(1883, ge=1, le=65535)
    topic: str = Field("crowdwatch/sensors/+", description="Subscription; a `+` level names "
                       "the sensor when the payload does not.")
    qos: int = Field(1, ge=0, le=2, description="1: the broker keeps unacknowledged "
                     "readings for us across a reconnect.")
    receive_maximum: int = Field(100, ge=1, le=65535, description="QoS 1 readings the broker "
                                 "may have in flight to us at once (MQTT 5); the rest wait in "
                                 "its queue, and what overflows that is dropped and counted.")
    session_expiry: Seconds = Field(3600.0, ge=0, description="How long the broker keeps our "
                                    "subscription and queued readings while we are away.")
    client_id: str | None = Field(None, description="Default: crowdwatch-<site>-<pid>.")
    username_env: str | None = Field(None, description="Environment variable with the user.")
    password_env: str | None = Field(None, description="Environment variable with the password.")
    keepalive: Seconds = Field(30.0, ge=5)
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig)


class HttpSensorConfig(_Strict):
    host: str = Field("127.0.0.1", description="Bind address.")
    port: StrictInt = Field(9110, ge=0, le=65535, description="0 picks a free port.")
    path: str = Field("/v1/sensors", pattern=r"^/[A-Za-z0-9/_.-]*$")
    token_env: str = Field("CROWDWATCH_SENSOR_TOKEN", description="Environment variable with "
                           "the bearer token clients must send (requests without it get 401).")
    max_body_bytes: int = Field(65536, ge=256, description="Larger bodies get 413.")
    max_items: int = Field(1000, ge=1, description="Readings per request, at most.")
    request_timeout: Seconds = Field(10.0, gt=0, description="A client must send a whole "
                                     "request (headers and body) within this, or is cut off.")
    idle_timeout: Seconds = Field(5.0, gt=0, description="A kept-alive connection idle this "
                                  "long is closed.")
    max_connections: int = Field(512, ge=1, le=10000, description="Connections served at "
                                 "once (each costs a socket, not a thread); beyond it requests "
                                 "get 503.")
    workers: int = Field(4, ge=1, le=64, description="Threads that validate and hand on "
                         "readings (bounded: a flood queues, it never spawns threads).")


class SensorsConfig(_Strict):
    devices: list[SensorDevice] = Field(default_factory=list)
    zones: list[SensorZone] = Field(default_factory=list)
    mqtt: MqttSensorConfig | None = None
    http: HttpSensorConfig | None = None
    accept_unknown: bool = Field(False, description="Take readings from sensors not listed in "
                                 "devices (zone-less); default: dead-letter them.")
    max_future: Seconds = Field(300.0, ge=0, description="Readings stamped further ahead than "
                                "this (a wrong clock) are dead-lettered; within it they count "
                                "as received now.")
    max_past: Seconds = Field(3600.0, gt=0, description="Readings stamped further back than "
                              "this (a sender replaying old data, a wrong clock) are "
                              "dead-lettered.")
    combine_within: Seconds = Field(
        300.0, gt=0, description="A zone's value is the sum of its sensors' latest readings "
        "taken within this span of the newest one.")


class DeadLetterConfig(_Strict):
    path: str = Field("crowdwatch-deadletter.jsonl", description="Embedded mode: rejected "
                      "messages are appended here (created on the first one) with the reason.")
    max_raw_bytes: int = Field(4096, ge=64, description="Raw message kept up to this size.")


class ConsoleConfig(_Strict):
    """The web console served by the process (operators' live page)."""

    host: str = Field("127.0.0.1", description="Bind address. Beyond loopback the console "
                      "refuses to start unless the token variable holds a token.")
    port: StrictInt = Field(8080, ge=0, le=65535, description="0 disables the console.")
    token_env: str = Field("CROWDWATCH_CONSOLE_TOKEN", description="Environment variable "
                           "with the access token (required beyond loopback; optional on it).")
    admin_token_env: str = Field("CROWDWATCH_CONSOLE_ADMIN_TOKEN", description="Environment "
                                 "variable with the admin token: camera setup needs it once "
                                 "any token is set.")
    audit_log: str | None = Field(None, description="Also append each setup action (who, "
                                  "when, which camera; never pixels) to this JSONL file.")
    recordings: str | None = Field(None, description="Folder of recorded feeds (CSV, JSONL) "
                                   "the tuning page may replay; none: no tuning page.")
    history: Seconds = Field(1800.0, gt=0, le=86400, description="Sparkline span per zone.")
    push_every: Seconds = Field(1.0, gt=0, le=60, description="Live updates this often.")
    login_attempts: int = Field(5, ge=1, le=1000, description="Failed logins per client "
                                "per minute before it must wait.")


class MetricsConfig(_Strict):
    host: str = Field("127.0.0.1", description="Bind address of the /metrics endpoint.")
    port: StrictInt = Field(9108, ge=0, le=65535, description="0 disables the endpoint.")


class KafkaConfig(_Strict):
    """Scale-out mode: where the broker is and how topics are laid out."""

    bootstrap: str = Field("127.0.0.1:9092", description="host:port[,host:port]; the "
                           "CROWDWATCH_KAFKA_BOOTSTRAP environment variable overrides it.")
    topic_prefix: str = Field("crowdwatch", pattern=r"^[A-Za-z0-9._-]+$",
                              description="Topics are <prefix>.counts, .health, .sensors, "
                              ".alerts, .deadletter.")
    partitions: int = Field(6, ge=1, le=1000, description="Partitions per topic (max workers).")
    replication: int = Field(1, ge=1, le=5, description="Replicas per partition (3 on a site).")
    retention: Seconds = Field(86400.0, gt=0, description="How long events are kept.")
    max_message_bytes: int = Field(65536, ge=1024, description="Larger messages are "
                                   "dead-lettered as oversized.")
    group: str = Field("crowdwatch-worker", description="Consumer group of the workers.")
    max_batch: int = Field(5000, ge=1, le=100000, description="Records a worker evaluates "
                           "per transaction (state and offsets are committed per batch).")
    max_latency: Seconds = Field(
        1.0, gt=0, le=60, description="Capture-to-alert budget of a worker: a batch commits "
        "when it is full (max_batch) or its oldest event has waited half of this, less the "
        "recent commit time; the other half covers delivery and the transaction in flight. "
        "Larger: fewer, cheaper transactions; smaller: alerts sooner, more per-batch cost.")
    wire: Literal["compact", "json"] = Field(
        "compact", description="How ingest writes counts, health and readings: `compact` "
        "(a versioned JSON array, epoch timestamps: a third of the bytes, a quarter of the "
        "worker's decoding time) or `json` (objects with ISO timestamps, for other "
        "consumers of those topics). Workers read both, whatever this says.")
    compression: Literal["zstd", "lz4", "gzip", "none"] = Field(
        "zstd", description="How a worker compresses what it commits (state, alerts, dead "
        "letters). A rule's state under a fast zone is kBs of numbers: zstd writes ~1/10 "
        "of it, which kept the broker from stalling (bench_streams: steady capacity 6 730 "
        "-> 11 084 events/s). Consumers of the alerts topic must read it (Kafka clients "
        "since 2.1 do); `none` for older ones.")
    max_past: Seconds = Field(7 * 86400.0, gt=0, description="Events captured longer ago "
                              "than this are dead-lettered (stale_ts) by the worker; long "
                              "enough to catch up after an outage.")
    max_future: Seconds = Field(300.0, ge=0, description="Events stamped further ahead of the "
                                "worker's clock are dead-lettered (future_ts).")
    session_timeout: Seconds = Field(
        10.0, ge=6, description="A worker silent this long is presumed dead and its zones "
        "move to the others (shorter: faster failover; too short: needless rebalances).")
    failover_after: Seconds = Field(
        2.0, ge=0, description="Workers announce themselves on <prefix>.members; one silent "
        "this long (killed, its machine gone) is presumed dead and the others rejoin the "
        "group at once, so the coordinator drops it after rebalance_timeout instead of the "
        "session timeout. 0: wait for the session timeout.")
    rebalance_timeout: Seconds = Field(
        3.0, gt=0, description="How long a rebalance waits for every worker to rejoin; one "
        "that does not is dropped and its zones move.")

    @model_validator(mode="after")
    def _failover_beats_the_session(self) -> KafkaConfig:
        if self.failover_after and (self.failover_after + self.rebalance_timeout
                                    >= self.session_timeout):
            raise ValueError("failover_after + rebalance_timeout must be under "
                             "session_timeout (or set failover_after: 0)")
        return self

    @property
    def transaction_timeout(self) -> float:
        """A worker's open transaction is aborted after this: no later than its zones can
        move, so a worker that was paused, not dead, cannot commit for them afterwards."""
        if self.failover_after:
            return self.failover_after + self.rebalance_timeout
        return self.session_timeout


class EngineConfig(_Strict):
    tick: Seconds = Field(1.0, gt=0, description="How often time-based rules are evaluated.")
    queue_size: int = Field(10000, ge=10, description="Events buffered between stages.")
    state_file: str | None = Field(
        None, description="Embedded mode: what rules learn over weeks (seasonal, unusual) is "
        "kept here and loaded at start; `replay --learn` writes it. None: relearned after "
        "every restart.")
    save_every: Seconds = Field(300.0, gt=0, description="Save the state file this often "
                                "(and at exit).")


class CrowdwatchConfig(_Strict):
    site: SiteConfig = Field(default_factory=SiteConfig)
    cameras: list[CameraConfig] = Field(default_factory=list)
    sensors: SensorsConfig = Field(default_factory=SensorsConfig)
    rules: list[SerializeAsAny[RuleConfig]] = Field(default_factory=list)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    deadletter: DeadLetterConfig = Field(default_factory=DeadLetterConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    kafka: KafkaConfig = Field(default_factory=KafkaConfig)
    service_levels: ServiceLevelsConfig = Field(
        default_factory=ServiceLevelsConfig, description="Level-of-service boundaries (A-F) "
        "by density and by flow; default Fruin's walkway levels.")
    _zone_index: tuple[tuple[int, int], dict[str, tuple[CameraConfig, ZoneConfig]]] | None = \
        PrivateAttr(None)
    _sensor_zone_index: tuple[tuple[int, int], dict[str, SensorZone]] | None = PrivateAttr(None)

    @field_validator("rules", mode="wrap")
    @classmethod
    def _rule_kinds(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """Each rule validates against its own kind's model (from the registry)."""
        if isinstance(value, list) and all(isinstance(r, RuleConfig) for r in value):
            return handler(value)
        return _RULES.adapter(many=True).validate_python(value)

    @model_validator(mode="after")
    def _watches_something(self) -> CrowdwatchConfig:
        if not self.cameras and not self.sensors.devices:
            raise ValueError("nothing to watch: give at least one camera or sensors.devices")
        return self

    def zones(self) -> dict[str, tuple[CameraConfig, ZoneConfig]]:
        """Camera zones by id (indexed once: every rule asks, and a city has thousands)."""
        key = (id(self.cameras), len(self.cameras))
        if self._zone_index is None or self._zone_index[0] != key:
            self._zone_index = (key, {z.id: (c, z) for c in self.cameras for z in c.zones})
        return self._zone_index[1]

    def lines(self) -> dict[str, tuple[ZoneConfig, LineConfig]]:
        """Counting lines by id, with the zone whose ground plane they lie on."""
        return {line.id: (zone, line) for _, zone in self.zones().values() for line in zone.lines}

    def sensor_zones(self) -> dict[str, SensorZone]:
        key = (id(self.sensors.zones), len(self.sensors.zones))
        if self._sensor_zone_index is None or self._sensor_zone_index[0] != key:
            self._sensor_zone_index = (key, {z.id: z for z in self.sensors.zones})
        return self._sensor_zone_index[1]

    def zone_source(self, zone_id: str, source: str = "auto") -> str:
        """Where a rule on ``zone_id`` reads its values: 'camera' or 'sensor'."""
        if source != "auto":
            return source
        return "camera" if zone_id in self.zones() else "sensor"


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path or '<root>'}: {self.message}"


class ConfigFileError(ConfigError):
    """Every problem found in one configuration file."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {source}: {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s) in {source}:\n{lines}")


Check = Callable[["CrowdwatchConfig"], list[tuple[Loc, str]]]
MAX_ALIAS_EXPANSION = 100_000  # values aliases may add to a file's own; a real site adds few
MAX_CONFIG_BYTES = 32 * 1024 * 1024  # a 10,000-camera site is about 2 MB


def load_config(path: str | Path, checks: Sequence[Check] = ()) -> CrowdwatchConfig:
    """The site file, validated; ``checks`` add problems found by other layers (sources
    that do not open, files that are missing), reported with their lines like the rest."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigFileError(str(path), [Problem("", None, f"{size} bytes: larger than "
                                                      f"the {MAX_CONFIG_BYTES}-byte limit")])
        raw = path.read_bytes()
    except OSError as exc:
        problem = Problem("", None, f"cannot read: {exc.strerror}")
        raise ConfigFileError(str(path), [problem]) from None
    nul = raw.find(b"\0")
    if nul >= 0:
        raise ConfigFileError(str(path), [Problem("", None, f"a binary file (NUL byte at offset "
                                                  f"{nul}), not YAML")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigFileError(str(path), [Problem("", None, f"not UTF-8 text (byte offset "
                                                  f"{exc.start})")]) from None
    return parse_config(text, str(path), checks)


# libyaml's loader where the machine has it (a city's config is megabytes).
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_config(text: str, source: str = "<config>",
                 checks: Sequence[Check] = ()) -> CrowdwatchConfig:
    try:
        loader = _LOADER(text)  # parsed once: the node tree gives line numbers
        try:
            node = loader.get_single_node()
            shape = _shape_problems(node)
            if shape:
                raise ConfigFileError(source, shape)
            data = None if node is None else loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        position = getattr(exc, "position", None)  # a ReaderError: a character YAML refuses
        line = (mark.line + 1 if mark else
                text[:position].count("\n") + 1 if isinstance(position, int) else 1)
        raise ConfigFileError(source, [Problem("", line, f"not valid YAML: {exc}")]) from None
    if not isinstance(data, dict):
        raise ConfigFileError(source, [Problem("", 1, "expected a mapping at the top level")])
    try:
        config = CrowdwatchConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            message = err["msg"]
            if err["type"] == "extra_forbidden":
                message = "unknown key (not allowed here; check the spelling)"
            problems.append(Problem(_dotted(loc, node), _line_of(node, loc), message))
        problems.sort(key=lambda p: p.line or 0)
        raise ConfigFileError(source, problems) from None
    found = _cross_check(config)
    for check in checks:
        found += check(config)
    problems = [Problem(_dotted(loc, node), _line_of(node, loc), msg) for loc, msg in found]
    if problems:
        raise ConfigFileError(source, problems)
    return config


def _shape_problems(root: yaml.Node | None) -> list[Problem]:
    """What YAML allows but a site file must not hold: a key given twice (the second
    would silently win: a second `rules: []` deletes every rule), and aliases that
    expand beyond reason (a few KB of nested aliases can take gigabytes)."""
    problems: list[Problem] = []
    sizes: dict[int, int] = {}
    if root is None:
        return problems
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        kids: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                kids += [key, value]
                if not children_done and isinstance(key, yaml.ScalarNode):
                    line = key.start_mark.line + 1
                    if key.value in seen:
                        problems.append(Problem(key.value, line, f"key given twice (also on "
                                                f"line {seen[key.value]}); the second would "
                                                "silently replace the first"))
                    seen.setdefault(key.value, line)
        elif isinstance(node, yaml.SequenceNode):
            kids = list(node.value)
        if children_done:
            sizes[id(node)] = 1 + sum(sizes.get(id(k), 1) for k in kids)
            if sizes[id(node)] - len(sizes) > MAX_ALIAS_EXPANSION:
                return [Problem("", node.start_mark.line + 1, f"aliases expand it by more "
                                f"than {MAX_ALIAS_EXPANSION} values; write it out or use "
                                "fewer nested aliases")]
            continue
        stack.append((node, True))
        stack.extend((k, False) for k in kids if id(k) not in sizes)
    return problems


def _cross_check(config: CrowdwatchConfig) -> list[tuple[tuple, str]]:
    """Checks that span several sections: ids unique, references resolve."""
    found: list[tuple[tuple, str]] = []
    seen_cams: set[str] = set()
    seen_zones: set[str] = set()
    seen_lines: set[str] = set()
    for ci, cam in enumerate(config.cameras):
        if cam.id in seen_cams:
            found.append((("cameras", ci, "id"), f"duplicate camera id {cam.id!r}"))
        seen_cams.add(cam.id)
        needs_size = cam.detector.needs_person_size(cam)
        for zi, zone in enumerate(cam.zones):
            if needs_size and zone.height_ref is None and zone.ground is None:
                found.append((("cameras", ci, "zones", zi), f"zone {zone.id!r} gives no person "
                              f"size: the {cam.detector.kind} detector needs height_ref "
                              "(standing people's foot and head pixels) or ground"))
            if zone.id in seen_zones:
                found.append((("cameras", ci, "zones", zi, "id"), f"duplicate zone id {zone.id!r}"))
            seen_zones.add(zone.id)
            found += _line_problems(("cameras", ci, "zones", zi), zone, seen_lines)
    for zi, szone in enumerate(config.sensors.zones):
        if szone.id in seen_zones:
            found.append((("sensors", "zones", zi, "id"), f"duplicate zone id {szone.id!r}"))
        seen_zones.add(szone.id)
    sensor_ids: set[str] = set()
    for di, dev in enumerate(config.sensors.devices):
        if dev.id in sensor_ids:
            found.append((("sensors", "devices", di, "id"), f"duplicate sensor id {dev.id!r}"))
        sensor_ids.add(dev.id)
        if dev.zone is not None and dev.zone not in seen_zones:
            found.append((("sensors", "devices", di, "zone"), f"no zone with id {dev.zone!r}"))
    for di, dev in enumerate(config.sensors.devices):
        if dev.id in seen_cams:
            found.append((("sensors", "devices", di, "id"),
                          f"sensor id {dev.id!r} is also a camera's id: alerts, logs and "
                          "dashboards would not say which one is silent; rename one"))
    sensor_http = config.sensors.http
    if sensor_http is not None and sensor_http.port and sensor_http.port == config.metrics.port:
        found.append((("sensors", "http", "port"), f"port {sensor_http.port} is also "
                      "metrics.port: each endpoint needs its own port"))
    ports = {"metrics.port": config.metrics.port,
             "sensors.http.port": sensor_http.port if sensor_http is not None else 0}
    for name, port in ports.items():
        if config.console.port and config.console.port == port:
            found.append((("console", "port"), f"port {port} is also {name}: each endpoint "
                          "needs its own port"))
    rule_ids: dict[str, int] = {}
    for ri, rule in enumerate(config.rules):
        rid = rule.rule_id()
        if rid in rule_ids:
            found.append((("rules", ri, "id") if rule.id else ("rules", ri),
                          f"rule id {rid!r} is also rules[{rule_ids[rid]}]'s (same kind, "
                          "target and levels): give one of them its own `id`"))
        rule_ids.setdefault(rid, ri)
    found += [(("rules", ri, *loc), msg) for ri, rule in enumerate(config.rules)
              for loc, msg in rule.problems(config)]
    return found


def _line_problems(at: Loc, zone: ZoneConfig, seen: set[str]) -> list[tuple[tuple, str]]:
    """A zone's lines need its ground plane (metres) and site-unique ids."""
    found: list[tuple[tuple, str]] = []
    for li, line in enumerate(zone.lines):
        if zone.ground is None:
            found.append(((*at, "lines", li), f"line {line.id!r} needs zone {zone.id!r} to "
                          "have `ground` (a line's flow is per metre)"))
        if line.id in seen:
            found.append(((*at, "lines", li, "id"), f"duplicate line id {line.id!r}"))
        seen.add(line.id)
    return found


def _walk(node: yaml.Node | None, loc: tuple) -> tuple[yaml.Node | None, list, int]:
    """Follow loc through the YAML node tree; skip union tags pydantic adds to paths."""
    used: list = []
    last = -1
    for i, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
            if child is None:
                continue
            node = child
            used.append(part)
            last = i
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            used.append(part)
            last = i
        else:
            continue
    return node, used, last


def _line_of(root: yaml.Node | None, loc: tuple) -> int | None:
    node, _, _ = _walk(root, loc)
    return node.start_mark.line + 1 if node is not None else None


def _dotted(loc: tuple, root: yaml.Node | None) -> str:
    """cameras[0].zones[1].polygon, without pydantic's union tags; keeps unknown keys."""
    _, used, last = _walk(root, loc)
    tail = [p for p in loc[last + 1 :] if not (isinstance(p, str) and p in _union_tags())]
    out = ""
    for part in [*used, *tail]:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _union_tags() -> set[str]:
    """Discriminator values pydantic inserts into error paths (not keys of the file)."""
    return set(detector_models()) | set(rule_models())
