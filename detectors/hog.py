"""OpenCV's HOG + linear SVM people detector: a baseline for sparse scenes.

It finds upright, unoccluded people of at least ~64x128 pixels (after ``upscale``);
in dense or oblique crowds it undercounts badly, which is why it is the baseline.
Needs OpenCV 4.x: OpenCV 5 removed ``cv2.HOGDescriptor``.
"""

from __future__ import annotations

import cv2
import numpy as np

from crowdwatch.detectors.base import ZoneCounts
from crowdwatch.detectors.zones import ZoneGeometry
from crowdwatch.errors import ModelError


class HogDetector:
    name = "hog"
    ready = True  # stateless: counts from the first frame

    def prime(self, frame: np.ndarray) -> None:
        """Nothing to learn."""

    def __init__(
        self,
        hit_threshold: float = 0.0,
        win_stride: int = 8,
        scale: float = 1.05,
        upscale: float = 1.0,
    ) -> None:
        if not hasattr(cv2, "HOGDescriptor"):
            raise ModelError(
                f"OpenCV {cv2.__version__} has no HOGDescriptor; install opencv-python-headless<5"
            )
        self.hog = cv2.HOGDescriptor()
        people = cv2.HOGDescriptor.getDefaultPeopleDetector()
        self.hog.setSVMDetector(people)  # type: ignore[call-overload]
        self.hit_threshold = hit_threshold
        self.win_stride = (win_stride, win_stride)
        self.scale = scale
        self.upscale = upscale

    def detect(self, frame: np.ndarray) -> np.ndarray:
        """Foot points (N×2, frame pixels) of detected people."""
        img = frame
        if self.upscale != 1.0:
            img = cv2.resize(frame, None, fx=self.upscale, fy=self.upscale,
                             interpolation=cv2.INTER_LINEAR)
        gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img
        rects, _ = self.hog.detectMultiScale(
            gray, hitThreshold=self.hit_threshold, winStride=self.win_stride,
            padding=(8, 8), scale=self.scale,
        )
        if len(rects) == 0:
            return np.zeros((0, 2))
        boxes = np.asarray(rects, dtype=np.float64) / self.upscale
        # The default window has ~8% margin under the feet.
        return np.column_stack([boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1] + boxes[:, 3] * 0.92])

    def count(self, frame: np.ndarray, zones: list[ZoneGeometry]) -> ZoneCounts:
        feet = self.detect(frame)
        return {z.zone_id: (float(z.contains(feet).sum()), 1.0) for z in zones}
