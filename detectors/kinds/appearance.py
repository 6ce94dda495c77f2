"""``kind: appearance``: people counted by the shipped person detector's boxes alone."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from crowdwatch.config import DetectorConfig
from crowdwatch.detectors.appearance import AppearanceDetector, PersonFinder
from crowdwatch.detectors.base import Detector
from crowdwatch.detectors.kinds._person_detector import PersonDetectorSettings
from crowdwatch.detectors.nanodet import NanoDet
from crowdwatch.detectors.plugin import BuildContext, DetectorKind, DetectorTraits, register


class AppearanceDetectorConfig(PersonDetectorSettings):
    kind: Literal["appearance"]
    model: str | None = Field(None, description="A NanoDet-g-416 ONNX file; default: the "
                              "shipped one (see crowdwatch/models/NOTICE.md).")


def _build(cfg: DetectorConfig, ctx: BuildContext) -> Detector:
    assert isinstance(cfg, AppearanceDetectorConfig)
    model = NanoDet(cfg.model, cfg.score, cfg.threads)
    return AppearanceDetector(PersonFinder(model, cfg.finder()), (cfg.slope, cfg.offset))


KIND = register(DetectorKind("appearance", AppearanceDetectorConfig, _build,
                             DetectorTraits(sees_still_people=True)))
