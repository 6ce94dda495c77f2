"""Per-camera privacy masks, applied before any detector sees a frame."""

from __future__ import annotations

import cv2
import numpy as np


class PrivacyMasker:
    """Blanks configured polygons (native pixels) in frames of a given scale, in place."""

    def __init__(self, polygons: list[list[list[float]]], scale: float = 1.0) -> None:
        self.polygons = [np.round(np.asarray(p) * scale).astype(np.int32) for p in polygons]

    def apply(self, image: np.ndarray) -> np.ndarray:
        if self.polygons:
            cv2.fillPoly(image, self.polygons, (0, 0, 0))
        return image
