"""The person detector as teacher: a camera nobody labelled learns its geometry scale.

Where people stand apart, a person detector counts them well, and the geometry counter's
error is mostly its size prior (silhouette area, height reference). So on samples where
the detector's boxes barely overlap, the ratio of its count to the geometry's raw count
is a label for free. The ratio is pooled with forgetting (light and seasons change),
bounded, and reported with how many samples taught it and how well the two agreed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crowdwatch.detectors.boxes import Boxes


@dataclass(frozen=True)
class TeacherSettings:
    max_overlap: float = 0.1  # share of box area hidden by other boxes: above, not sparse
    min_samples: int = 10  # sparse samples before the learnt scale is used
    half_life: float = 500.0  # sparse samples after which an old one weighs half
    bounds: tuple[float, float] = (0.5, 2.0)  # the scale is kept within these


def overlap_share(boxes: Boxes) -> float:
    """1 − union area / summed area of the boxes: 0 when nobody hides anybody."""
    if len(boxes) < 2:
        return 0.0
    xyxy = boxes.xyxy.astype(np.float64)
    x0, y0 = np.floor(xyxy[:, :2].min(axis=0)).astype(int)
    x1, y1 = np.ceil(xyxy[:, 2:].max(axis=0)).astype(int)
    canvas = np.zeros((max(1, y1 - y0), max(1, x1 - x0)), bool)
    total = 0.0
    for bx0, by0, bx1, by1 in np.round(xyxy - [x0, y0, x0, y0]).astype(int):
        canvas[by0:by1, bx0:bx1] = True
        total += max(0, bx1 - bx0) * max(0, by1 - by0)
    return 0.0 if total <= 0 else float(1.0 - canvas.sum() / total)


class Teacher:
    """One zone's geometry scale, learnt from a detector's counts in sparse samples."""

    def __init__(self, settings: TeacherSettings | None = None) -> None:
        self.s = settings or TeacherSettings()
        self._taught = 0.0  # forgetting sums of detector counts ...
        self._raw = 0.0  # ... and of geometry raw counts
        self._abs_diff = 0.0  # |detector − scaled geometry| on the samples seen ...
        self._weight = 0.0  # ... and their forgetting count
        self.samples = 0

    def observe(self, detected: float, geometry_raw: float, boxes: Boxes) -> None:
        if detected < 1 or geometry_raw <= 0 or overlap_share(boxes) > self.s.max_overlap:
            return
        keep = 0.5 ** (1.0 / self.s.half_life)
        self._abs_diff = keep * self._abs_diff + abs(detected - self.scale * geometry_raw)
        self._taught = keep * self._taught + detected
        self._raw = keep * self._raw + geometry_raw
        self._weight = keep * self._weight + 1.0
        self.samples += 1

    @property
    def scale(self) -> float:
        """The geometry scale to use (1 until enough sparse samples)."""
        if self.samples < self.s.min_samples or self._raw <= 0:
            return 1.0
        lo, hi = self.s.bounds
        return float(min(hi, max(lo, self._taught / self._raw)))

    def report(self) -> dict[str, float | int | bool]:
        """What was learnt, from how many samples, and how well the two agreed."""
        ratio = self._taught / self._raw if self._raw > 0 else 1.0
        lo, hi = self.s.bounds
        return {"scale": round(self.scale, 4), "samples": self.samples,
                "in_use": self.samples >= self.s.min_samples,
                "bounded": not lo <= ratio <= hi,
                "mean_abs_disagreement": round(self._abs_diff / max(self._weight, 1e-9), 3)}
