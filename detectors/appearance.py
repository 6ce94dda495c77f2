"""Running a person detector within a per-camera budget, where the zones are.

The detector costs tens of milliseconds a crop, so it runs on every ``every``-th sample
only; between runs the counters carry what the last run saw (a person who stands still
stays where it saw them). It sees the privacy-masked working frame, like every counter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crowdwatch.detectors.boxes import Boxes, BoxModel, Image
from crowdwatch.detectors.crops import Crop, detect_in_crops, plan_crops, region_of
from crowdwatch.detectors.person_scale import person_height_map
from crowdwatch.detectors.zones import ZoneGeometry
from crowdwatch.errors import ConfigError

# Without a person size, heads may rise this share of the frame above a zone's top edge.
UNSIZED_HEADROOM = 0.2


@dataclass(frozen=True)
class FinderSettings:
    every: int = 30  # samples per detector run (1: every sample)
    min_person_px: float = 64.0  # the smallest zone person is scaled to this many pixels
    max_tiles: int = 4  # detector runs per sample at most (crops of the zones' region)


def person_heights(zone: ZoneGeometry) -> np.ndarray | None:
    """Expected person height (px) at each pixel of the zone's frame, or None when the
    zone has no geometry."""
    if not zone.knows_person_size:
        return None
    try:
        return person_height_map(zone.shape, height_ref=zone.height_ref,
                                 perspective=zone.perspective, homography=zone.homography,
                                 scale=zone.ref_scale)
    except ConfigError as exc:
        raise ConfigError(f"zone {zone.zone_id!r}: {exc}") from None


def _reach(zone: ZoneGeometry, heights: np.ndarray | None) -> tuple[np.ndarray, float | None]:
    """The zone's mask grown upwards by a person's height (whose body can be seen above
    its far edge), and the smallest person height in the zone."""
    mask = zone.mask > 0
    rows = zone.shape[0]
    y0, _, x0, x1 = zone.bbox
    if heights is None:
        rise = round(UNSIZED_HEADROOM * rows)
        smallest = None
    else:
        rise = round(float(heights[y0, x0:x1].max())) if x1 > x0 else 0
        smallest = float(heights[mask].min()) if mask.any() else None
    grown = mask.copy()
    for step in range(1, rise + 1):
        grown[:-step] |= mask[step:]
    return grown, smallest


class PersonFinder:
    """One camera's person detector runs: when they are due, and on which crops."""

    def __init__(self, model: BoxModel, settings: FinderSettings | None = None) -> None:
        self.model = model
        self.s = settings or FinderSettings()
        if self.s.every < 1:
            raise ConfigError("every must be 1 or more samples")
        self._crops: dict[tuple, list[Crop]] = {}
        self._since = 0
        self.runs = 0

    def due(self) -> bool:
        """Whether this sample runs the detector (the first always does)."""
        due = self._since == 0
        self._since = (self._since + 1) % self.s.every
        return due

    def crops(self, shape: tuple[int, int], zones: list[ZoneGeometry]) -> list[Crop]:
        key = (shape, tuple(z.zone_id for z in zones), tuple(z.shape for z in zones))
        found = self._crops.get(key)
        if found is None:
            reaches = [_reach(z, person_heights(z)) for z in zones]
            region = region_of([r[0] for r in reaches])
            sizes = [r[1] for r in reaches if r[1] is not None]
            found = [] if region is None else plan_crops(
                region, min(sizes) if sizes else None, self.model.input_size,
                self.s.min_person_px, self.s.max_tiles)
            self._crops[key] = found
        return found

    def find(self, image: Image, zones: list[ZoneGeometry]) -> Boxes:
        self.runs += 1
        return detect_in_crops(self.model, image, self.crops(image.shape[:2], zones))


def feet_in(zone: ZoneGeometry, boxes: Boxes) -> np.ndarray:
    """Which boxes stand in the zone (feet cut by the frame's bottom edge count at it)."""
    if not len(boxes):
        return np.zeros(0, bool)
    feet = boxes.feet()
    feet[:, 1] = np.minimum(feet[:, 1], zone.shape[0] - 1)
    feet[:, 0] = np.clip(feet[:, 0], 0, zone.shape[1] - 1)
    return zone.contains(feet)


class AppearanceDetector:
    """Counts people by the boxes a person detector finds, feet in the zone."""

    name = "appearance"
    ready = True  # no background: it counts from the first frame

    def __init__(self, finder: PersonFinder, correction: tuple[float, float] = (1.0, 0.0)
                 ) -> None:
        self.finder = finder
        self.correction = correction
        self._last: dict[str, float] = {}

    def prime(self, frame: Image) -> None:
        """Nothing to learn."""

    def raw_counts(self, frame: Image, zones: list[ZoneGeometry]) -> dict[str, float]:
        """Boxes with their feet in each zone (the last run's between runs)."""
        if self.finder.due() or any(z.zone_id not in self._last for z in zones):
            boxes = self.finder.find(frame, zones)
            self._last = {z.zone_id: float(feet_in(z, boxes).sum()) for z in zones}
        return {z.zone_id: self._last[z.zone_id] for z in zones}

    def count(self, frame: Image, zones: list[ZoneGeometry]) -> dict[str, tuple[float, float]]:
        slope, offset = self.correction
        return {zid: (max(0.0, slope * raw + offset), 1.0)
                for zid, raw in self.raw_counts(frame, zones).items()}
