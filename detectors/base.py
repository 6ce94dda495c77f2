"""What every detector is: frame in, per-zone (count, quality) out; never pixels out."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from crowdwatch.detectors.zones import ZoneGeometry

ZoneCounts = dict[str, tuple[float, float]]


class Detector(Protocol):
    """A people counter for one camera (it may keep per-camera state, e.g. a background)."""

    name: str

    def count(self, frame: np.ndarray, zones: list[ZoneGeometry]) -> ZoneCounts:
        """Return {zone_id: (estimated people, quality 0..1)} for a BGR frame."""
        ...

    @property
    def ready(self) -> bool:
        """False while the detector's state (e.g. a background) is still being built."""
        ...

    def prime(self, frame: np.ndarray) -> None:
        """Learn from a frame without counting it (warm-up)."""
        ...
