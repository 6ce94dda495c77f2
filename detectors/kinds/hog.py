"""``kind: hog``: OpenCV's HOG people detector, the sparse-scene baseline."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from crowdwatch.config import DetectorConfig
from crowdwatch.detectors.base import Detector
from crowdwatch.detectors.hog import HogDetector
from crowdwatch.detectors.plugin import BuildContext, DetectorKind, DetectorTraits, register


class HogDetectorConfig(DetectorConfig):
    kind: Literal["hog"]
    hit_threshold: float = Field(0.0, description="SVM margin a window needs to count.")
    win_stride: int = Field(8, ge=4, le=32)
    scale: float = Field(1.05, gt=1.0, le=2.0)
    upscale: float = Field(
        1.0, gt=0, le=4.0, description="Resize factor before detection (small figures need > 1)."
    )


def _build(cfg: DetectorConfig, ctx: BuildContext) -> Detector:
    assert isinstance(cfg, HogDetectorConfig)
    return HogDetector(cfg.hit_threshold, cfg.win_stride, cfg.scale, cfg.upscale)


KIND = register(DetectorKind("hog", HogDetectorConfig, _build,
                             DetectorTraits(sees_still_people=True)))
