"""Routes events to rules and keeps rule state in a pluggable key→state store.

The store is a plain dict in the embedded engine; a scale-out worker can hand in a
table instead. The engine also guards notifications: a fingerprint that is already
firing is never sent again, and only a firing one can resolve.

Inhibition: while a camera is not trustworthy (stale, tampered or down, or camera_offline
firing) its zones' camera-fed rules take no samples and their clear timers restart,
so a dead or covered camera never produces a false all-clear; the alerts that were
firing stay firing until real counts show the zone is clear.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import MutableMapping
from typing import Any

from crowdwatch.config import (
    CameraOfflineRuleConfig,
    CountRuleConfig,
    CrowdwatchConfig,
    DensityRuleConfig,
    DisagreementRuleConfig,
    ForecastRuleConfig,
    SensorSilentRuleConfig,
    SurgeRuleConfig,
    rule_metric,
)
from crowdwatch.events import Alert, CameraHealth, CountEvent, SensorEvent
from crowdwatch.streams.rules import CameraOfflineRule, SilenceRule, ThresholdRule
from crowdwatch.streams.sensor_rules import DisagreementRule, SensorReading, SensorSilentRule
from crowdwatch.streams.trend_rules import ForecastRule, SurgeRule

ZONE_RULES = {"density": ThresholdRule, "count": ThresholdRule, "surge": SurgeRule,
              "forecast": ForecastRule}


class RuleEngine:
    def __init__(
        self,
        config: CrowdwatchConfig,
        start_ts: float,
        store: MutableMapping[str, Any] | None = None,
        offline_from_counts: bool = True,
        tick_known_only: bool = False,
    ) -> None:
        """``store`` keeps rule state and which alerts are firing (a dict, or a table).

        A scale-out worker passes ``offline_from_counts=False`` (camera liveness comes
        from the health topic, keyed by camera, so its state lives in one partition)
        and ``tick_known_only=True`` (a worker only judges sources whose state it owns).
        """
        site = config.site.name
        zones = config.zones()
        self.camera_rules: dict[str, list] = defaultdict(list)  # zone -> [(rid, rule)]
        self.sensor_rules: dict[str, list] = defaultdict(list)
        self.silence: dict[str, list[tuple[str, SilenceRule]]] = defaultdict(list)
        self.disagree_by_zone: dict[str, list] = defaultdict(list)
        self.disagree_by_sensor: dict[str, list] = defaultdict(list)
        self.store: MutableMapping[str, Any] = {} if store is None else store
        self.start_ts = start_ts
        self.offline_from_counts = offline_from_counts
        self.tick_known_only = tick_known_only
        self.combine_within = config.sensors.combine_within
        devices = {d.id: d for d in config.sensors.devices}
        self.zone_sensors: dict[str, list[str]] = defaultdict(list)
        for dev in config.sensors.devices:
            if dev.zone:
                self.zone_sensors[dev.zone].append(dev.id)
        self.zone_area = {z.id: z.area_m2 for z in config.sensors.zones}
        self.camera_zones = {c.id: [z.id for z in c.zones] for c in config.cameras}
        for index, rule in enumerate(config.rules):
            rid = f"r{index}"
            if isinstance(rule, DensityRuleConfig | CountRuleConfig | SurgeRuleConfig
                          | ForecastRuleConfig):
                camera = zones[rule.zone][0].id if rule.zone in zones else ""
                made = ZONE_RULES[rule.kind](rule, site, camera)
                if config.zone_source(rule.zone, rule.source) == "camera":
                    self.camera_rules[rule.zone].append((rid, made))
                else:
                    self.sensor_rules[rule.zone].append((rid, made))
            elif isinstance(rule, CameraOfflineRuleConfig):
                for cam in config.cameras:
                    if rule.camera in (None, cam.id):
                        r = CameraOfflineRule(rule, site, cam.id, [z.id for z in cam.zones])
                        self.silence[cam.id].append((rid, r))
            elif isinstance(rule, SensorSilentRuleConfig):
                for dev in config.sensors.devices:
                    if rule.sensor in (None, dev.id):
                        self.silence[dev.id].append((rid, SensorSilentRule(rule, site, dev.id,
                                                                           dev.zone)))
            elif isinstance(rule, DisagreementRuleConfig):
                made = DisagreementRule(rule, site, zones[rule.zone][0].id,
                                        devices[rule.sensor].scale)
                self.disagree_by_zone[rule.zone].append((rid, made))
                self.disagree_by_sensor[rule.sensor].append((rid, made))

    # -- events ---------------------------------------------------------------------

    def handle(self, event: Any) -> list[Alert]:
        """Feed one event; return the notifications to send (deduplicated)."""
        out: list[Alert] = []
        if isinstance(event, CountEvent):
            camera = event.camera_id
            if self.store.get(f"unhealthy/{camera}"):
                return []  # counts from a stale or tampered view are not evidence
            if self.offline_from_counts:
                out += self._seen(camera, event.ts)
                self._set_flag("down", camera, False)  # a counted frame proves it is back
            if not self._inhibited(camera):
                for rid, rule in self.camera_rules.get(event.zone_id, ()):
                    value = rule.value_of(event)
                    if value is not None:
                        out += self._observe(rid, event.zone_id, rule, event.ts, value)
                for rid, rule in self.disagree_by_zone.get(event.zone_id, ()):
                    out += self._with_state(f"{rid}/{event.zone_id}", rule.new_state,
                                            lambda st, r=rule: r.observe_camera(
                                                st, event.ts, event.count))
        elif isinstance(event, SensorEvent):
            out += self._sensor(event)
        elif isinstance(event, CameraHealth):
            for rid, rule in self.silence.get(event.camera_id, ()):
                key = f"{rid}/{event.camera_id}"
                state = self.store.get(key) or rule.new_state(self.start_ts)
                rule.health(state, event.state, event.reason)
                self.store[key] = state
            self._set_flag("unhealthy", event.camera_id, event.state in ("stale", "tampered"))
            self._set_flag("down", event.camera_id, event.state == "down")
            if event.state == "up":
                out += self._seen(event.camera_id, event.ts)
        return self._dedupe(out)

    def _observe(self, rid: str, zone_id: str, rule: Any, ts: float, value: float) -> list:
        return self._with_state(f"{rid}/{zone_id}", rule.new_state,
                                lambda st: rule.observe(st, ts, value))

    def _with_state(self, key: str, new_state, step) -> list[Alert]:
        state = self.store.get(key)
        if state is None:
            state = new_state()
        alerts = step(state)
        self.store[key] = state
        return alerts

    def _sensor(self, event: SensorEvent) -> list[Alert]:
        out = self._seen(event.sensor_id, event.ts)
        for rid, rule in self.disagree_by_sensor.get(event.sensor_id, ()):
            out += self._with_state(f"{rid}/{rule.zone_id}", rule.new_state,
                                    lambda st, r=rule: r.observe_sensor(st, event.ts,
                                                                        event.value))
        zone = event.zone_id
        if not zone or zone not in self.sensor_rules:
            return out
        key = f"sensor/{event.sensor_id}"
        last = self.store.get(key)
        if last is not None and event.ts <= last.ts:
            return out  # late or replayed reading
        self.store[key] = SensorReading(event.ts, event.value)
        total = self.zone_value(zone, event.ts)
        for rid, rule in self.sensor_rules[zone]:
            value = self.as_metric(zone, total, rule_metric(rule.cfg))
            out += self._observe(rid, zone, rule, event.ts, value)
        return out

    def zone_value(self, zone_id: str, ts: float) -> float:
        """Sum of the zone's sensors' latest readings taken within ``combine_within``."""
        total = 0.0
        for sensor_id in self.zone_sensors.get(zone_id, ()):
            reading = self.store.get(f"sensor/{sensor_id}")
            if reading is not None and ts - reading.ts <= self.combine_within:
                total += reading.value
        return total

    def as_metric(self, zone_id: str, people: float, metric: str) -> float:
        """A sensor zone's people as the metric a rule reads (density: per m² of its area;
        NaN for a zone without an area, which config checks keep away from density rules)."""
        if metric != "density":
            return people
        area = self.zone_area.get(zone_id)
        return people / area if area else float("nan")

    def _seen(self, source_id: str, ts: float) -> list[Alert]:
        out: list[Alert] = []
        for rid, rule in self.silence.get(source_id, ()):
            key = f"{rid}/{source_id}"
            state = self.store.get(key) or rule.new_state(self.start_ts)
            alerts = rule.seen(state, ts)
            self.store[key] = state
            if alerts and isinstance(rule, CameraOfflineRule):
                self._set_flag("offline", source_id, False)
            out += alerts
        return out

    # -- inhibition -----------------------------------------------------------------

    def _inhibited(self, camera_id: str) -> bool:
        return any(self.store.get(f"{flag}/{camera_id}")
                   for flag in ("unhealthy", "down", "offline"))

    def _set_flag(self, flag: str, camera_id: str, on: bool) -> None:
        """Camera trust flags: ``unhealthy`` (stale or tampered view), ``down`` (no frames,
        cleared by the next counted frame) and ``offline`` (camera_offline firing)."""
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
            for rid, _ in self.camera_rules.get(zone_id, ()):
                state = self.store.get(f"{rid}/{zone_id}")
                if state is None:
                    continue
                for sub in [state, *getattr(state, "levels", {}).values()]:
                    if hasattr(sub, "clear_since"):
                        sub.clear_since = None
                self.store[f"{rid}/{zone_id}"] = state

    def inhibited_zones(self) -> set[str]:
        """Zones whose camera is not trustworthy now (dashboards show 'no data')."""
        return {z for cam, zones in self.camera_zones.items() if self._inhibited(cam)
                for z in zones}

    # -- time -----------------------------------------------------------------------

    def tick(self, now: float) -> list[Alert]:
        """Evaluate time-based rules (camera offline, sensor silent) at ``now``."""
        out: list[Alert] = []
        for source_id, rules in self.silence.items():
            for rid, rule in rules:
                key = f"{rid}/{source_id}"
                state = self.store.get(key)
                if state is None:
                    if self.tick_known_only:
                        continue
                    state = rule.new_state(self.start_ts)
                alerts = rule.tick(state, now)
                if alerts:
                    self.store[key] = state
                    if isinstance(rule, CameraOfflineRule):
                        self._set_flag("offline", source_id, True)
                    out += alerts
        return self._dedupe(out)

    @property
    def firing(self) -> dict[str, bool]:
        """Fingerprints firing now (kept in the store so a restarted worker knows them)."""
        return {k[len("firing/"):]: True for k in list(self.store.keys())
                if k.startswith("firing/") and self.store.get(k)}

    def _dedupe(self, alerts: list[Alert]) -> list[Alert]:
        """Only the first firing and the first resolution of a fingerprint pass."""
        out = []
        for alert in alerts:
            key = f"firing/{alert.fingerprint}"
            if alert.state == "firing":
                if self.store.get(key):
                    continue
                self.store[key] = True
            else:
                if not self.store.get(key):
                    continue
                self.store[key] = False
            out.append(alert)
        return out
