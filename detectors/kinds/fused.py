"""``kind: fused``: the person detector's boxes plus the geometry foreground they leave
unexplained (see ``crowdwatch.detectors.fused``); needs the zones' person size."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from crowdwatch.config import CameraConfig, DetectorConfig
from crowdwatch.detectors.appearance import PersonFinder
from crowdwatch.detectors.base import Detector
from crowdwatch.detectors.fused import FusedDetector
from crowdwatch.detectors.kinds._person_detector import PersonDetectorSettings
from crowdwatch.detectors.nanodet import NanoDet
from crowdwatch.detectors.plugin import BuildContext, DetectorKind, DetectorTraits, register


class FusedDetectorConfig(PersonDetectorSettings):
    kind: Literal["fused"]
    model: str | None = Field(None, description="A NanoDet-g-416 ONNX file; default: the "
                              "shipped one (see crowdwatch/models/NOTICE.md).")
    teach: bool = Field(True, description="Learn the geometry scale from the detector's "
                        "counts where people stand apart (a camera nobody labelled).")

    def needs_person_size(self, camera: CameraConfig) -> bool:
        return True


def _build(cfg: DetectorConfig, ctx: BuildContext) -> Detector:
    assert isinstance(cfg, FusedDetectorConfig)
    model = NanoDet(cfg.model, cfg.score, cfg.threads)
    return FusedDetector(PersonFinder(model, cfg.finder()), correction=(cfg.slope, cfg.offset),
                         teach=cfg.teach)


KIND = register(DetectorKind("fused", FusedDetectorConfig, _build, DetectorTraits(
    learns_background=True, counts_without_labels=True, sees_still_people=True)))
