"""sensor_silent: a sensor that sends nothing for ``after`` seconds."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from crowdwatch.config import CrowdwatchConfig, Loc, Seconds
from crowdwatch.streams.rules.base import Input, Route, Rule, RuleSpec
from crowdwatch.streams.rules.kinds._silence import OfflineState, SilenceRule
from crowdwatch.streams.rules.registry import rule_kind


@rule_kind
class SensorSilentRuleConfig(RuleSpec):
    """A sensor that sends nothing for ``after`` raises a warning; its next reading clears it."""

    kind: Literal["sensor_silent"]
    sensor: str | None = Field(None, description="Sensor id; default: every configured sensor.")
    after: Seconds = Field(900.0, gt=0, description="Silence this long raises the alert.")
    severity: Literal["warning", "critical"] = "warning"

    def problems(self, site: CrowdwatchConfig) -> list[tuple[Loc, str]]:
        if self.sensor is not None and self.sensor not in {d.id for d in site.sensors.devices}:
            return [(("sensor",), f"no sensor with id {self.sensor!r}")]
        return []

    def build(self, site: CrowdwatchConfig) -> list[Rule[Any]]:
        return [SensorSilentRule(self, site.site.name, dev.id, dev.zone)
                for dev in site.sensors.devices if self.sensor in (None, dev.id)]


class SensorSilentRule(SilenceRule):
    """A sensor that sends nothing for ``after`` seconds; its next reading resolves it."""

    kind = "sensor_silent"
    entity_label = "sensor"

    def __init__(self, cfg: SensorSilentRuleConfig, site: str, sensor_id: str,
                 zone_id: str | None) -> None:
        super().__init__(cfg, cfg.after, cfg.severity, site, sensor_id,
                         [zone_id] if zone_id else [], (Route(Input.SENSOR_SEEN, sensor_id),))
        self.cfg = cfg

    def describe(self, firing: bool, silent: float, st: OfflineState | None) -> str:
        if not firing:
            return f"sensor {self.entity_id} reports again"
        return f"sensor {self.entity_id} sent no reading for {silent:.0f}s"
