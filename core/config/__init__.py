"""The one YAML configuration file, validated with pydantic v2.

Unknown keys are rejected (a typo must not silently disable a rule), and every
problem is reported with its field path and its line in the file, all at once, so
a site engineer fixes the file in one pass.

Each section's models live in their own module (``site``, ``cameras``, ``sensors``,
``rules``, ``alerts``, ``services``, ``kafka``); ``model`` joins them, ``cross_check``
holds the checks that span sections, ``loading`` reads files and maps errors to lines,
``schema`` writes the JSON Schema editors use. Everything is importable from here.
"""

from crowdwatch.config.alerts import (
    SINK_PLUGIN_GROUP,
    AlertsConfig,
    SinkConfig,
    alerts_model,
    register_sink_model,
    sink_models,
)
from crowdwatch.config.cameras import (
    DETECTOR_PLUGIN_GROUP,
    CameraConfig,
    DetectorConfig,
    HealthConfig,
    ReconnectConfig,
    default_detector,
    detector_models,
    register_detector_model,
)
from crowdwatch.config.fields import Identifier, Loc, Point, Polygon, Seconds
from crowdwatch.config.kafka import KafkaConfig
from crowdwatch.config.loading import (
    MAX_ALIAS_EXPANSION,
    MAX_CONFIG_BYTES,
    Check,
    ConfigFileError,
    Problem,
    load_config,
    parse_config,
)
from crowdwatch.config.model import CrowdwatchConfig
from crowdwatch.config.rules import (
    RULE_PLUGIN_GROUP,
    RuleConfig,
    RuleSource,
    register_rule_model,
    rule_models,
)
from crowdwatch.config.sensors import (
    HttpSensorConfig,
    MqttSensorConfig,
    SensorDevice,
    SensorsConfig,
    SensorZone,
)
from crowdwatch.config.services import ConsoleConfig, DeadLetterConfig, EngineConfig, MetricsConfig
from crowdwatch.config.site import GroundPlane, LineConfig, SiteConfig, ZoneConfig
from crowdwatch.errors import ConfigError

__all__ = [
    "DETECTOR_PLUGIN_GROUP",
    "MAX_ALIAS_EXPANSION",
    "MAX_CONFIG_BYTES",
    "RULE_PLUGIN_GROUP",
    "SINK_PLUGIN_GROUP",
    "AlertsConfig",
    "CameraConfig",
    "Check",
    "ConfigError",
    "ConfigFileError",
    "ConsoleConfig",
    "CrowdwatchConfig",
    "DeadLetterConfig",
    "DetectorConfig",
    "EngineConfig",
    "GroundPlane",
    "HealthConfig",
    "HttpSensorConfig",
    "Identifier",
    "KafkaConfig",
    "LineConfig",
    "Loc",
    "MetricsConfig",
    "MqttSensorConfig",
    "Point",
    "Polygon",
    "Problem",
    "ReconnectConfig",
    "RuleConfig",
    "RuleSource",
    "Seconds",
    "SensorDevice",
    "SensorZone",
    "SensorsConfig",
    "SinkConfig",
    "SiteConfig",
    "ZoneConfig",
    "alerts_model",
    "default_detector",
    "detector_models",
    "load_config",
    "parse_config",
    "register_detector_model",
    "register_rule_model",
    "register_sink_model",
    "rule_models",
    "sink_models",
]
