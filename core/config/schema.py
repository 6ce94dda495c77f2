"""The JSON Schema of site.yaml, for editors (YAML language servers complete and check a
file against it) and for the configuration reference.

The site model validates rules and detectors through their kind registries, so its own
schema only knows the base models; here they are replaced by the discriminated unions of
every registered kind (plug-ins from other packages included), each with its fields and
descriptions.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, create_model

from crowdwatch.config.alerts import alerts_model
from crowdwatch.config.cameras import DETECTORS, CameraConfig, default_detector
from crowdwatch.config.fields import DURATION_MARK, DURATION_PATTERN
from crowdwatch.config.model import CrowdwatchConfig
from crowdwatch.config.rules import RULES
from crowdwatch.kinds import discriminated

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def site_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of a site file, every registered rule, detector and sink kind in it."""
    camera_field = CameraConfig.model_fields["detector"]
    camera = create_model(
        "CameraConfig", __base__=CameraConfig, __doc__=CameraConfig.__doc__,
        detector=(discriminated(DETECTORS.distinct()),
                  Field(default_factory=default_detector, description=camera_field.description)))
    site_fields = CrowdwatchConfig.model_fields
    cameras: Any = list[camera]  # type: ignore[valid-type]
    rules: Any = list[discriminated(RULES.distinct())]  # type: ignore[misc]
    site = create_model(
        "SiteFile", __base__=CrowdwatchConfig,
        alerts=(alerts_model(), Field(default_factory=lambda: alerts_model()(),
                                      description=site_fields["alerts"].description)),
        cameras=(cameras, Field(default_factory=list,
                                description=site_fields["cameras"].description)),
        rules=(rules, Field(default_factory=list,
                            description=site_fields["rules"].description)))
    schema = _durations(site.model_json_schema())
    schema["$schema"] = SCHEMA_DIALECT
    schema["title"] = "crowdwatch site file"
    schema["description"] = ("A crowdwatch site: cameras and their zones, sensors, rules, "
                             "alert sinks and services (`crowdwatch config schema`).")
    return schema


_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def _durations(node: Any) -> Any:
    """A duration field takes seconds or a string like '10s' or '2m': say so, keeping
    the field's bounds on the number."""
    if isinstance(node, list):
        return [_durations(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _durations(value) for key, value in node.items()}
    if not node.pop(DURATION_MARK, False):
        return node
    node.pop("ge", None)  # pydantic leaks the Annotated Field's own bound under its name
    number = {"type": "number", **{key: node.pop(key) for key in _BOUNDS if key in node}}
    node.pop("type", None)
    text = {"type": "string", "pattern": DURATION_PATTERN}
    return {**node, "anyOf": [number, text]}
