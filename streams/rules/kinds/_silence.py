"""Nothing heard from a source for ``after`` seconds fires; the next delivery resolves.

Shared by camera_offline (no usable frames) and sensor_silent (no readings).
"""

from __future__ import annotations

from dataclasses import dataclass

from crowdwatch.events import Alert, AlertState, HealthState, Severity
from crowdwatch.streams.rules.base import Route, Rule, RuleSeries, RuleSpec, RuleState


@dataclass(slots=True)
class OfflineState(RuleState):
    last_seen: float
    firing_since: float | None = None
    last_state: str = HealthState.UP.value
    last_reason: str = ""


class SilenceRule(Rule[OfflineState]):
    entity_label = ""  # label name of what falls silent: camera or sensor
    state_type = OfflineState
    ticks = True

    def __init__(self, spec: RuleSpec, after: float, severity: str, site: str, entity_id: str,
                 zone_ids: list[str], routes: tuple[Route, ...],
                 guards_camera: str | None = None) -> None:
        super().__init__(spec, f"{self.entity_label}:{entity_id}", site, routes, guards_camera)
        self.after = after
        self.severity = Severity(severity)
        self.entity_id = entity_id
        self.zone_ids = zone_ids
        self._fp = self.fingerprint(entity_id, self.severity)

    def new_state(self, now: float) -> OfflineState:
        return OfflineState(last_seen=now)

    def fingerprints(self) -> set[str]:
        return {self._fp}

    def series(self) -> list[RuleSeries]:
        return [RuleSeries(self.kind, zone, self.severity.value) for zone in self.zone_ids]

    def on_seen(self, state: OfflineState, ts: float) -> list[Alert]:
        """The source delivered something stamped ts."""
        if ts <= state.last_seen and state.firing_since is None:
            return []
        state.last_seen = max(state.last_seen, ts)
        if state.firing_since is None:
            return []
        starts, state.firing_since = state.firing_since, None
        return [self._alert(AlertState.RESOLVED, starts, ts, 0.0)]

    def on_health(self, state: OfflineState, health: str, reason: str) -> None:
        """Remember why the source is not delivering, for the alert's summary."""
        state.last_state, state.last_reason = health, reason

    def on_tick(self, state: OfflineState, now: float) -> list[Alert]:
        silent = now - state.last_seen
        if state.firing_since is not None or silent < self.after:
            return []
        state.firing_since = now
        return [self._alert(AlertState.FIRING, now, None, silent, state)]

    def describe(self, firing: bool, silent: float, st: OfflineState | None) -> str:
        raise NotImplementedError

    def _alert(self, state: AlertState, starts: float, ends: float | None, silent: float,
               st: OfflineState | None = None) -> Alert:
        return self.alert(
            fingerprint=self._fp, zone_id="", zones=self.zone_ids, severity=self.severity,
            state=state, starts_at=starts, ends_at=ends, value=round(silent, 3),
            threshold=self.after, summary=self.describe(state is AlertState.FIRING, silent, st),
            labels={"site": self.site, self.entity_label: self.entity_id, "rule": self.kind,
                    "severity": self.severity.value})
