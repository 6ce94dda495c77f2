"""What surge and forecast share: one zone, one severity, count or density."""

from __future__ import annotations

from typing import ClassVar, Literal, TypeVar

from crowdwatch.events import Severity
from crowdwatch.streams.rules.base import EdgeState, Route, RuleSeries
from crowdwatch.streams.rules.kinds._zone import ZoneRuleSpec, ZoneValueRule

E = TypeVar("E", bound=EdgeState)


class TrendSpec(ZoneRuleSpec):
    metric: Literal["count", "density"] = "count"

    IDENTITY: ClassVar[tuple[str, ...]] = ("metric", "severity")

    def reads(self) -> str:
        return self.metric


class TrendRule(ZoneValueRule[E]):
    def __init__(self, cfg: TrendSpec, site: str, camera_id: str, route: Route | None,
                 severity: str = "warning") -> None:
        super().__init__(cfg, f"zone:{cfg.zone}", site, (route or cfg.camera_route(),))
        self.zone_id, self.camera_id = cfg.zone, camera_id
        self.metric = cfg.metric
        self.severity = Severity(severity)
        self._fp = self.fingerprint(cfg.zone, self.severity)

    def fingerprints(self) -> set[str]:
        return {self._fp}

    def series(self) -> list[RuleSeries]:
        return [RuleSeries(self.kind, self.zone_id, self.severity.value)]

    def labels(self) -> dict[str, str]:
        return {"site": self.site, "zone": self.zone_id, "camera": self.camera_id,
                "rule": self.kind, "severity": self.severity.value}

    def on_outage(self, state: E) -> None:
        state.clear_since = None
