"""The whole site file: every section, and the indexes rules ask of it."""

from __future__ import annotations

from typing import Any

from pydantic import (
    Field,
    PrivateAttr,
    SerializeAsAny,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from crowdwatch.config.alerts import AlertsConfig, alerts_model
from crowdwatch.config.cameras import CameraConfig
from crowdwatch.config.fields import Strict
from crowdwatch.config.kafka import KafkaConfig
from crowdwatch.config.rules import RULES, RuleConfig
from crowdwatch.config.sensors import SensorsConfig, SensorZone
from crowdwatch.config.services import ConsoleConfig, DeadLetterConfig, EngineConfig, MetricsConfig
from crowdwatch.config.site import LineConfig, SiteConfig, ZoneConfig
from crowdwatch.service_levels import ServiceLevelsConfig


class CrowdwatchConfig(Strict):
    site: SiteConfig = Field(default_factory=SiteConfig)
    cameras: list[CameraConfig] = Field(default_factory=list)
    sensors: SensorsConfig = Field(default_factory=SensorsConfig)
    rules: list[SerializeAsAny[RuleConfig]] = Field(default_factory=list)
    alerts: SerializeAsAny[AlertsConfig] = Field(
        default_factory=lambda: alerts_model()(), description="Where notifications go: the "
        "console line and any registered sink's section (jsonl, webhook, alertmanager, "
        "grafana, ...).")
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
        return RULES.adapter(many=True).validate_python(value)

    @field_validator("alerts", mode="wrap")
    @classmethod
    def _sink_sections(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """``alerts`` validates against the sections of the sinks registered now."""
        model = alerts_model()
        if isinstance(value, model):
            return value
        if isinstance(value, AlertsConfig):
            value = value.model_dump(exclude_unset=True)
        return model.model_validate(value)

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

