"""count: people counted in a zone over a window statistic, with `for` and hysteresis."""

from __future__ import annotations

from typing import Literal

from crowdwatch.streams.rules.kinds._threshold import ThresholdSpec
from crowdwatch.streams.rules.registry import rule_kind


@rule_kind
class CountRuleConfig(ThresholdSpec):
    """People counted in the zone (no calibration needed)."""

    kind: Literal["count"]
