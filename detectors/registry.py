"""Detector plug-ins, chosen by the ``kind`` of a camera's detector config."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from crowdwatch.config import (
    BackgroundDetectorConfig,
    GeometryDetectorConfig,
    HogDetectorConfig,
    ZoneConfig,
)
from crowdwatch.detectors.background import BackgroundDetector, RegressionModel
from crowdwatch.detectors.base import Detector
from crowdwatch.detectors.geometry import GeometryDetector
from crowdwatch.detectors.hog import HogDetector

AnyDetectorConfig = BackgroundDetectorConfig | GeometryDetectorConfig | HogDetectorConfig


def has_geometry(zone: ZoneConfig) -> bool:
    """Whether a zone's person size is known without labels (see person_scale)."""
    return zone.height_ref is not None or zone.ground is not None


def _background(cfg: BackgroundDetectorConfig, zones: Sequence[ZoneConfig],
                real: bool) -> Detector:
    if cfg.model is None and real and zones and all(has_geometry(z) for z in zones):
        # The shipped model was fitted on the simulated scene and does not transfer to a
        # real one; geometry does, with no labels.
        return GeometryDetector()
    model = RegressionModel.load(cfg.model) if cfg.model else RegressionModel.default()
    return BackgroundDetector(model)


def _geometry(cfg: GeometryDetectorConfig, zones: Sequence[ZoneConfig], real: bool) -> Detector:
    return GeometryDetector(correction=(cfg.slope, cfg.offset), edge_weight=cfg.edge_weight)


def _hog(cfg: HogDetectorConfig, zones: Sequence[ZoneConfig], real: bool) -> Detector:
    return HogDetector(cfg.hit_threshold, cfg.win_stride, cfg.scale, cfg.upscale)


BUILDERS: dict[str, Callable] = {"background": _background, "geometry": _geometry, "hog": _hog}


def build_detector(cfg: AnyDetectorConfig, zones: Sequence[ZoneConfig] = (),
                   url: str = "") -> Detector:
    """A fresh detector instance for one camera (detectors keep per-camera state).

    ``url`` tells a real camera from the simulated scene the shipped model was fitted on.
    """
    return BUILDERS[cfg.kind](cfg, zones, not url.startswith("sim://"))
