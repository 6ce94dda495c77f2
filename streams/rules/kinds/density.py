"""density: persons per m² in a calibrated zone, with `for` and hysteresis."""

from __future__ import annotations

from typing import Literal

from crowdwatch.streams.rules.kinds._threshold import ThresholdSpec
from crowdwatch.streams.rules.registry import rule_kind


@rule_kind
class DensityRuleConfig(ThresholdSpec):
    """Persons per m², on a calibrated zone."""

    kind: Literal["density"]
