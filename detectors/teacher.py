"""The person detector as teacher: a camera nobody labelled learns its geometry scale.

A person standing apart from everyone else is what a person detector finds best, and
what the geometry counter should weigh as exactly one person; the weight it gives
instead is its size prior's error (silhouette area, height reference). So every
isolated, moving person the detector boxes is a label for free: the scale is the
number of such people over the geometry weight of the foreground inside their boxes,
pooled with forgetting (light and seasons change), bounded, and reported with how many
people taught it and how far the two disagreed. People standing still (little
foreground in their box) teach nothing: the geometry counter cannot see them at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crowdwatch.detectors.boxes import Boxes


@dataclass(frozen=True)
class TeacherSettings:
    min_foreground: float = 0.3  # share of an isolated box that must be foreground (moving)
    min_people: int = 20  # isolated people seen before the learnt scale is used
    half_life: float = 2000.0  # people after which an old one weighs half
    bounds: tuple[float, float] = (0.5, 2.0)  # the scale is kept within these


def isolated(boxes: Boxes) -> np.ndarray:
    """Which boxes overlap no other box."""
    xyxy = boxes.xyxy
    n = len(boxes)
    if n < 2:
        return np.ones(n, bool)
    w = np.minimum(xyxy[:, None, 2], xyxy[None, :, 2]) - np.maximum(xyxy[:, None, 0],
                                                                    xyxy[None, :, 0])
    h = np.minimum(xyxy[:, None, 3], xyxy[None, :, 3]) - np.maximum(xyxy[:, None, 1],
                                                                    xyxy[None, :, 1])
    touching = (w > 0) & (h > 0)
    np.fill_diagonal(touching, False)
    return np.asarray(~touching.any(axis=1), dtype=bool)


class Teacher:
    """One zone's geometry scale, learnt from the isolated people a detector boxes."""

    def __init__(self, settings: TeacherSettings | None = None) -> None:
        self.s = settings or TeacherSettings()
        self._people = 0.0  # forgetting sums of people ...
        self._weight = 0.0  # ... and of the geometry weight inside their boxes
        self._abs_diff = 0.0  # forgetting sum of |1 − weight| per person
        self.people = 0

    def observe(self, weight: float) -> None:
        """One isolated, moving person whose box holds ``weight`` of geometry people."""
        keep = 0.5 ** (1.0 / self.s.half_life)
        self._people = keep * self._people + 1.0
        self._weight = keep * self._weight + weight
        self._abs_diff = keep * self._abs_diff + abs(1.0 - weight)
        self.people += 1

    @property
    def in_use(self) -> bool:
        return self.people >= self.s.min_people and self._weight > 0

    @property
    def scale(self) -> float:
        """The geometry scale to use (1 until enough people taught it)."""
        if not self.in_use:
            return 1.0
        lo, hi = self.s.bounds
        return float(min(hi, max(lo, self._people / self._weight)))

    def report(self) -> dict[str, float | int | bool]:
        """What was learnt, from how many people, and how far the two disagreed."""
        ratio = self._people / self._weight if self._weight > 0 else 1.0
        lo, hi = self.s.bounds
        return {"scale": round(self.scale, 4), "people": self.people, "in_use": self.in_use,
                "bounded": self.in_use and not lo <= ratio <= hi,
                "geometry_error_per_person": round(self._abs_diff / max(self._people, 1e-9), 3)}
