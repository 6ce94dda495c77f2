"""Routes events to rules and keeps rule state in a pluggable key→state store.

The engine knows inputs (camera samples of a zone, sensor readings, liveness, health),
never rule kinds: each rule says which :class:`~crowdwatch.streams.rules.base.Route` it
listens on. The store is a plain dict in the embedded engine; a scale-out worker hands
in a table. A fingerprint that is already firing is never sent again, and only a
firing one can resolve.

Inhibition: while a camera is not trustworthy (stale, tampered or down, or a rule that
guards it firing) its zones' camera-fed rules take no samples and their clear timers
restart, so a dead or covered camera never produces a false all-clear; the alerts that
were firing stay firing until real counts show the zone is clear.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.events import (
    Alert,
    AlertState,
    CameraHealth,
    CountEvent,
    HealthState,
    SensorEvent,
    Severity,
)
from crowdwatch.streams.rules.base import STATE_PREFIX, Input, Rule, RuleSeries, RuleState
from crowdwatch.streams.rules.registry import build_rules

Event = CountEvent | SensorEvent | CameraHealth


@dataclass(slots=True)
class SensorReading(RuleState):
    """A sensor's latest reading, kept so a zone's sensors can be summed."""

    ts: float
    value: float


@dataclass(slots=True)
class FiringRecord(RuleState):
    """What a firing alert needs to be resolved later, even by a config without its rule."""

    rule_id: str
    digest: str
    rule: str
    zone_id: str
    severity: str
    starts_at: float
    threshold: float
    labels: dict[str, str]
    zones: list[str]

    @classmethod
    def of(cls, alert: Alert, digest: str) -> FiringRecord:
        return cls(alert.rule_id, digest, alert.rule, alert.zone_id, str(alert.severity),
                   alert.starts_at, alert.threshold, dict(alert.labels), list(alert.zones))

    def resolution(self, fingerprint: str, now: float, reason: str, summary: str) -> Alert:
        return Alert(fingerprint=fingerprint, rule=self.rule, zone_id=self.zone_id,
                     severity=Severity(self.severity), state=AlertState.RESOLVED,
                     starts_at=self.starts_at, ends_at=now, value=0.0,
                     threshold=self.threshold, summary=summary,
                     labels={**self.labels, "resolved_by": reason}, rule_id=self.rule_id,
                     zones=list(self.zones))


FIRING_PREFIX = "firing/"


class RuleEngine:
    def __init__(
        self,
        config: CrowdwatchConfig,
        start_ts: float,
        store: MutableMapping[str, Any] | None = None,
        offline_from_counts: bool = True,
    ) -> None:
        """``store`` keeps rule state and which alerts are firing (a dict, or a table).

        A scale-out worker passes ``offline_from_counts=False`` (camera liveness comes
        from the health topic, keyed by camera, so its state lives in one partition), and
        to :meth:`tick` only the rules of the partitions it owns.
        """
        self.rules = build_rules(config)
        self.digests = {rule.rule_id: rule.digest for rule in self.rules}
        self.store: MutableMapping[str, Any] = {} if store is None else store
        self.start_ts = start_ts
        self.offline_from_counts = offline_from_counts
        self.combine_within = config.sensors.combine_within
        self.routes: dict[Input, dict[str, list[Rule[Any]]]] = {i: defaultdict(list)
                                                                for i in Input}
        for rule in self.rules:
            for route in rule.routes:
                self.routes[route.input][route.key].append(rule)
        self.tickers = [rule for rule in self.rules if rule.ticks]
        self.learners = [rule for rule in self.rules if rule.persistent]
        self.zone_sensors: dict[str, list[str]] = defaultdict(list)
        for dev in config.sensors.devices:
            if dev.zone:
                self.zone_sensors[dev.zone].append(dev.id)
        self.zone_area = {z.id: z.area_m2 for z in config.sensors.zones}
        self.camera_zones = {c.id: [z.id for z in c.zones] for c in config.cameras}
        self._camera_zone = self.routes[Input.CAMERA_ZONE]

    def series(self) -> list[RuleSeries]:
        """Every label set the rules can raise (metrics pre-create them)."""
        return [series for rule in self.rules for series in rule.labelled_series()]

    # -- state ----------------------------------------------------------------------

    def _state(self, rule: Rule[Any]) -> Any:
        """The rule's stored state; a missing or foreign one (another rule's, an older
        schema) starts fresh instead of crashing the rule."""
        state = self.store.get(rule.state_key)
        if not isinstance(state, rule.state_type):
            state = rule.new_state(self.start_ts)
        return state

    # -- events ---------------------------------------------------------------------

    def handle(self, event: Event) -> list[Alert]:
        """Feed one event; return the notifications to send (deduplicated)."""
        out: list[Alert] = []
        if isinstance(event, CountEvent):
            camera = event.camera_id
            if self.store.get(f"unhealthy/{camera}"):
                return []  # counts from a stale or tampered view are not evidence
            if self.offline_from_counts:
                out += self._seen(Input.CAMERA_SEEN, camera, event.ts)
                self._set_flag("down", camera, False)  # a counted frame proves it is back
            if not self._inhibited(camera):
                for rule in self._camera_zone.get(event.zone_id, ()):
                    state = self._state(rule)
                    out += rule.on_count(state, event)
                    self.store[rule.state_key] = state
        elif isinstance(event, SensorEvent):
            out += self._sensor(event)
        elif isinstance(event, CameraHealth):
            for rule in self.routes[Input.CAMERA_HEALTH].get(event.camera_id, ()):
                state = self._state(rule)
                rule.on_health(state, event.state, event.reason)
                self.store[rule.state_key] = state
            self._set_flag("unhealthy", event.camera_id,
                           event.state in (HealthState.STALE, HealthState.TAMPERED,
                                           HealthState.WARMING_UP))
            self._set_flag("down", event.camera_id, event.state == HealthState.DOWN)
            if event.state in (HealthState.UP, HealthState.WARMING_UP):  # alive
                out += self._seen(Input.CAMERA_SEEN, event.camera_id, event.ts)
        return self._dedupe(out)

    def _sensor(self, event: SensorEvent) -> list[Alert]:
        out = self._seen(Input.SENSOR_SEEN, event.sensor_id, event.ts)
        for rule in self.routes[Input.SENSOR].get(event.sensor_id, ()):
            state = self._state(rule)
            out += rule.on_sensor(state, event.sensor_id, event.ts, event.value)
            self.store[rule.state_key] = state
        zone = event.zone_id
        zone_rules = self.routes[Input.SENSOR_ZONE].get(zone or "")
        if not zone or not zone_rules:
            return out
        key = f"sensor/{event.sensor_id}"
        last = self.store.get(key)
        if isinstance(last, SensorReading) and event.ts <= last.ts:
            return out  # late or replayed reading
        self.store[key] = SensorReading(event.ts, event.value)
        total = self.zone_value(zone, event.ts)
        density = self.zone_density(zone, total)
        for rule in zone_rules:
            state = self._state(rule)
            out += rule.on_zone(state, zone, event.ts, total, density)
            self.store[rule.state_key] = state
        return out

    def zone_value(self, zone_id: str, ts: float) -> float:
        """Sum of the zone's sensors' latest readings taken within ``combine_within``."""
        total = 0.0
        for sensor_id in self.zone_sensors.get(zone_id, ()):
            reading = self.store.get(f"sensor/{sensor_id}")
            if isinstance(reading, SensorReading) and ts - reading.ts <= self.combine_within:
                total += reading.value
        return total

    def zone_density(self, zone_id: str, people: float) -> float | None:
        """A sensor zone's people per m² of its area (None for a zone without an area)."""
        area = self.zone_area.get(zone_id)
        return people / area if area else None

    def as_metric(self, zone_id: str, people: float, metric: str) -> float:
        """A sensor zone's people as the metric a rule reads (density: NaN for a zone
        without an area, which config checks keep away from density rules)."""
        if metric != "density":
            return people
        density = self.zone_density(zone_id, people)
        return float("nan") if density is None else density

    def _seen(self, source: Input, source_id: str, ts: float) -> list[Alert]:
        out: list[Alert] = []
        for rule in self.routes[source].get(source_id, ()):
            state = self._state(rule)
            alerts = rule.on_seen(state, ts)
            self.store[rule.state_key] = state
            if alerts and rule.guards_camera:
                self._set_flag("offline", rule.guards_camera, False)
            out += alerts
        return out

    # -- inhibition -----------------------------------------------------------------

    def _inhibited(self, camera_id: str) -> bool:
        return any(self.store.get(f"{flag}/{camera_id}")
                   for flag in ("unhealthy", "down", "offline"))

    def _set_flag(self, flag: str, camera_id: str, on: bool) -> None:
        """Camera trust flags: ``unhealthy`` (stale or tampered view), ``down`` (no frames,
        cleared by the next counted frame) and ``offline`` (a guarding rule firing)."""
        key = f"{flag}/{camera_id}"
        if bool(self.store.get(key)) == on:
            return
        was = self._inhibited(camera_id)
        self.store[key] = on
        if on and not was:
            self._restart_clear_timers(camera_id)

    def _restart_clear_timers(self, camera_id: str) -> None:
        """Samples before the outage must not count towards clear_for after it."""
        for zone_id in self.camera_zones.get(camera_id, ()):
            for rule in self._camera_zone.get(zone_id, ()):
                state = self.store.get(rule.state_key)
                if isinstance(state, rule.state_type):
                    rule.on_outage(state)
                    self.store[rule.state_key] = state

    def inhibited_zones(self) -> set[str]:
        """Zones whose camera is not trustworthy now (dashboards show 'no data')."""
        return {z for cam, zones in self.camera_zones.items() if self._inhibited(cam)
                for z in zones}

    # -- time -----------------------------------------------------------------------

    def tick(self, now: float, rules: list[Rule[Any]] | None = None) -> list[Alert]:
        """Evaluate time-based rules (camera offline, sensor silent) at ``now``; a worker
        passes the ``rules`` whose state it owns."""
        out: list[Alert] = []
        for rule in self.tickers if rules is None else rules:
            state = self.store.get(rule.state_key)
            if not isinstance(state, rule.state_type):
                state = rule.new_state(self.start_ts)
            alerts = rule.on_tick(state, now)
            if alerts:
                self.store[rule.state_key] = state
                if rule.guards_camera:
                    self._set_flag("offline", rule.guards_camera,
                                   alerts[-1].state == AlertState.FIRING)
                out += alerts
        return self._dedupe(out)

    # -- learned state ----------------------------------------------------------------

    def learned_state(self) -> dict[str, RuleState]:
        """The state of rules that learn over weeks (what a state file keeps)."""
        out = {}
        for rule in self.learners:
            state = self.store.get(rule.state_key)
            if isinstance(state, rule.state_type):
                out[rule.state_key] = state
        return out

    def seed(self, states: dict[str, RuleState],
             owns: Callable[[Rule[Any]], bool] | None = None) -> int:
        """Load learned state saved earlier where the store has none (a worker passes
        ``owns``: only its partition's rules); keys no current rule reads (a rule removed,
        its settings changed) are ignored. Returns how many were taken."""
        taken = 0
        for rule in self.learners:
            state = states.get(rule.state_key)
            if (not isinstance(state, rule.state_type) or rule.state_key in self.store
                    or (owns is not None and not owns(rule))):
                continue
            # a copy: the caller's states stay as they were (a bench seeds twice)
            self.store[rule.state_key] = type(state).from_dict(state.to_dict())
            taken += 1
        return taken

    def outlooks(self, now: float) -> dict[str, dict[str, float]]:
        """Per zone, what its modelling rules expect now (usual band, forecast)."""
        out: dict[str, dict[str, float]] = {}
        for rule in self.learners:
            state = self.store.get(rule.state_key)
            zone = rule.entity.partition(":")[2]
            if isinstance(state, rule.state_type):
                out.setdefault(zone, {}).update(rule.outlook(state, now))
        return out

    # -- config changes -------------------------------------------------------------

    def reconcile(self, now: float,
                  owns: Callable[[Rule[Any]], bool] | None = None) -> list[Alert]:
        """After a restart (or a reload) with an edited config: resolve what a removed
        rule, or a rule whose settings changed, left firing (with the reason in the
        ``resolved_by`` label), and drop rule state no current rule can read. A worker
        passes ``owns``: an alert whose rule now lives in another partition (the edit
        regrouped what it reads) is resolved here, and that partition starts it fresh."""
        out: list[Alert] = []
        for key in [k for k in list(self.store.keys()) if k.startswith(FIRING_PREFIX)]:
            record = self.store.get(key)
            if not isinstance(record, FiringRecord):
                self.store.pop(key, None)  # an older layout: nothing to resolve it with
                continue
            digest = self.digests.get(record.rule_id)
            rule = self.rule_of_fingerprint.get(key[len(FIRING_PREFIX):])
            moved = owns is not None and rule is not None and not owns(rule)
            if digest == record.digest and not moved:
                continue
            reason = ("rule_removed" if digest is None else
                      "rule_changed" if digest != record.digest else "rule_moved")
            what = {"rule_removed": "was removed from the config",
                    "rule_changed": "changed its settings and starts afresh",
                    "rule_moved": "now reads from another partition and starts afresh there",
                    }[reason]
            out.append(record.resolution(
                key[len(FIRING_PREFIX):], now, reason,
                f"rule {record.rule_id} {what}; its alert is resolved"))
            del self.store[key]
        live = {rule.state_key for rule in self.rules if owns is None or owns(rule)}
        for key in [k for k in list(self.store.keys()) if k.startswith(STATE_PREFIX)]:
            if key not in live:
                del self.store[key]
        return out

    @cached_property
    def rule_of_fingerprint(self) -> dict[str, Rule[Any]]:
        """Which rule raises each fingerprint (built once, when a reconcile first asks)."""
        return {fp: rule for rule in self.rules for fp in rule.fingerprints()}

    @property
    def firing(self) -> dict[str, bool]:
        """Fingerprints firing now (kept in the store so a restarted worker knows them)."""
        return {k[len(FIRING_PREFIX):]: True for k in list(self.store.keys())
                if k.startswith(FIRING_PREFIX) and self.store.get(k)}

    def _dedupe(self, alerts: list[Alert]) -> list[Alert]:
        """Only the first firing and the first resolution of a fingerprint pass."""
        out = []
        for alert in alerts:
            key = FIRING_PREFIX + alert.fingerprint
            if alert.state == AlertState.FIRING:
                if self.store.get(key):
                    continue
                self.store[key] = FiringRecord.of(alert, self.digests.get(alert.rule_id, ""))
            else:
                if not self.store.get(key):
                    continue
                del self.store[key]
            out.append(alert)
        return out
