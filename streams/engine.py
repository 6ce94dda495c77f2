"""Routes events to rules and keeps rule state in a pluggable key→state store.

The store is a plain dict in the embedded engine; a scale-out worker can hand in a
table instead. The engine also guards notifications: a fingerprint that is already
firing is never sent again, and only a firing one can resolve.
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
    ForecastRuleConfig,
    SurgeRuleConfig,
)
from crowdwatch.events import Alert, CameraHealth, CountEvent
from crowdwatch.streams.rules import CameraOfflineRule, ThresholdRule
from crowdwatch.streams.trend_rules import ForecastRule, SurgeRule


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
        and ``tick_known_only=True`` (a worker only judges cameras whose state it owns).
        """
        site = config.site.name
        zones = config.zones()
        self.by_zone: dict[str, list[ThresholdRule]] = defaultdict(list)
        self.offline: dict[str, list[CameraOfflineRule]] = defaultdict(list)
        self.store: MutableMapping[str, Any] = {} if store is None else store
        self.start_ts = start_ts
        self.offline_from_counts = offline_from_counts
        self.tick_known_only = tick_known_only
        for index, rule in enumerate(config.rules):
            if isinstance(rule, DensityRuleConfig | CountRuleConfig):
                camera = zones[rule.zone][0].id
                self.by_zone[rule.zone].append((f"r{index}", ThresholdRule(rule, site, camera)))
            elif isinstance(rule, SurgeRuleConfig | ForecastRuleConfig):
                camera = zones[rule.zone][0].id
                cls = SurgeRule if isinstance(rule, SurgeRuleConfig) else ForecastRule
                self.by_zone[rule.zone].append((f"r{index}", cls(rule, site, camera)))
            elif isinstance(rule, CameraOfflineRuleConfig):
                for cam in config.cameras:
                    if rule.camera in (None, cam.id):
                        r = CameraOfflineRule(rule, site, cam.id, [z.id for z in cam.zones])
                        self.offline[cam.id].append((f"r{index}", r))

    def handle(self, event: Any) -> list[Alert]:
        """Feed one event; return the notifications to send (deduplicated)."""
        out: list[Alert] = []
        if isinstance(event, CountEvent):
            for rid, rule in self.by_zone.get(event.zone_id, ()):
                value = rule.value_of(event)
                if value is None:
                    continue
                key = f"{rid}/{event.zone_id}"
                state = self.store.get(key)
                if state is None:
                    state = rule.new_state()
                out += rule.observe(state, event.ts, value)
                self.store[key] = state
            if self.offline_from_counts:
                out += self._seen(event.camera_id, event.ts)
        elif isinstance(event, CameraHealth):
            for rid, rule in self.offline.get(event.camera_id, ()):
                key = f"{rid}/{event.camera_id}"
                state = self.store.get(key) or rule.new_state(self.start_ts)
                rule.health(state, event.state, event.reason)
                self.store[key] = state
            if event.state == "up":
                out += self._seen(event.camera_id, event.ts)
        return self._dedupe(out)

    def _seen(self, camera_id: str, ts: float) -> list[Alert]:
        out: list[Alert] = []
        for rid, rule in self.offline.get(camera_id, ()):
            key = f"{rid}/{camera_id}"
            state = self.store.get(key) or rule.new_state(self.start_ts)
            out += rule.seen(state, ts)
            self.store[key] = state
        return out

    def tick(self, now: float) -> list[Alert]:
        """Evaluate time-based rules (camera offline) at ``now``."""
        out: list[Alert] = []
        for camera_id, rules in self.offline.items():
            for rid, rule in rules:
                key = f"{rid}/{camera_id}"
                state = self.store.get(key)
                if state is None:
                    if self.tick_known_only:
                        continue
                    state = rule.new_state(self.start_ts)
                alerts = rule.tick(state, now)
                if alerts:
                    self.store[key] = state
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
