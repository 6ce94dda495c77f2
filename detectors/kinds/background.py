"""``kind: background``: pixel-feature regression over a background (a fitted model)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from crowdwatch.config import DetectorConfig
from crowdwatch.detectors.background import BackgroundDetector, RegressionModel
from crowdwatch.detectors.base import Detector
from crowdwatch.detectors.plugin import BuildContext, DetectorKind, DetectorTraits, register


class BackgroundDetectorConfig(DetectorConfig):
    kind: Literal["background"]
    model: str | None = Field(
        None, description="Model JSON from `crowdwatch calibrate`. Without one, a camera whose "
        "zones all have geometry (height_ref, or ground) counts by geometry with no labels; "
        "otherwise the shipped sim model is used."
    )


def _resolve(cfg: DetectorConfig, ctx: BuildContext) -> DetectorConfig:
    assert isinstance(cfg, BackgroundDetectorConfig)
    if cfg.model is None and not ctx.simulated and ctx.all_zones_sized:
        # The shipped model was fitted on the simulated scene and does not transfer to a
        # real one; geometry does, with no labels.
        from crowdwatch.detectors.kinds.geometry import GeometryDetectorConfig

        return GeometryDetectorConfig(kind="geometry")
    return cfg


def _build(cfg: DetectorConfig, ctx: BuildContext) -> Detector:
    assert isinstance(cfg, BackgroundDetectorConfig)
    model = RegressionModel.load(cfg.model) if cfg.model else RegressionModel.default()
    return BackgroundDetector(model)


KIND = register(DetectorKind("background", BackgroundDetectorConfig, _build,
                             DetectorTraits(learns_background=True), resolve=_resolve))
