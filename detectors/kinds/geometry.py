"""``kind: geometry``: the zero-label counter (foreground sized by the zone's geometry)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from crowdwatch.config import DetectorConfig
from crowdwatch.detectors.base import Detector
from crowdwatch.detectors.geometry import GeometryDetector
from crowdwatch.detectors.plugin import BuildContext, DetectorKind, DetectorTraits, register


class GeometryDetectorConfig(DetectorConfig):
    kind: Literal["geometry"]
    slope: float = Field(1.0, ge=0, description="Few-shot correction: count = slope·raw + "
                         "edge_weight·edges + offset (from `crowdwatch calibrate footage "
                         "--layout geometry` or the console's calibration).")
    offset: float = Field(0.0, description="Few-shot correction offset (people).")
    edge_weight: float = Field(0.0, ge=0, description="Few-shot weight of the new-edge "
                               "length (edges not in the background, in person heights); 0 "
                               "leaves it out.")


def _build(cfg: DetectorConfig, ctx: BuildContext) -> Detector:
    assert isinstance(cfg, GeometryDetectorConfig)
    return GeometryDetector(correction=(cfg.slope, cfg.offset), edge_weight=cfg.edge_weight)


KIND = register(DetectorKind("geometry", GeometryDetectorConfig, _build, DetectorTraits(
    learns_background=True, counts_without_labels=True, few_shot_correction=True)))
