"""Building a camera's detector from its config (kinds come from the plug-in registry)."""

from __future__ import annotations

from collections.abc import Sequence

from crowdwatch.config import DetectorConfig, ZoneConfig
from crowdwatch.detectors.base import Detector
from crowdwatch.detectors.plugin import (
    BuildContext,
    has_geometry,
    simulated_source,
)
from crowdwatch.detectors.plugin import (
    build_detector as build_in_context,
)

__all__ = ["build_detector", "has_geometry"]


def build_detector(cfg: DetectorConfig, zones: Sequence[ZoneConfig] = (),
                   url: str = "") -> Detector:
    """A fresh detector instance for one camera (detectors keep per-camera state).

    ``url`` tells a real camera from the simulated scene the shipped model was fitted on.
    """
    return build_in_context(cfg, BuildContext(tuple(zones), simulated_source(url)))
