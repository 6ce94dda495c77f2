"""Detector plug-ins, chosen by the ``kind`` of a camera's detector config."""

from __future__ import annotations

from collections.abc import Callable

from crowdwatch.config import BackgroundDetectorConfig, HogDetectorConfig
from crowdwatch.detectors.background import BackgroundDetector, RegressionModel
from crowdwatch.detectors.base import Detector
from crowdwatch.detectors.hog import HogDetector


def _background(cfg: BackgroundDetectorConfig) -> Detector:
    model = RegressionModel.load(cfg.model) if cfg.model else RegressionModel.default()
    return BackgroundDetector(model)


def _hog(cfg: HogDetectorConfig) -> Detector:
    return HogDetector(cfg.hit_threshold, cfg.win_stride, cfg.scale, cfg.upscale)


BUILDERS: dict[str, Callable] = {"background": _background, "hog": _hog}


def build_detector(cfg: BackgroundDetectorConfig | HogDetectorConfig) -> Detector:
    """A fresh detector instance for one camera (detectors keep per-camera state)."""
    return BUILDERS[cfg.kind](cfg)
