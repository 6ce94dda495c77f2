"""Where and at what scale to run a person detector: the zones' region, tiled so that the
smallest person the geometry predicts there reaches the detector's useful size.

A detector with a fixed input (416×416 for NanoDet) shrinks a whole frame until far
people are a few pixels tall and lost; running it on crops at the scale the zone's
geometry asks for finds them, and running it only where the zones are (including the
bodies that rise above a zone's far edge) skips the rest of the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from crowdwatch.detectors.boxes import Boxes, BoxModel, Image

# Share of a tile two neighbours overlap (a person cut by one is whole in the other).
TILE_OVERLAP = 0.25
MERGE_IOU = 0.5  # boxes of the same person seen by two tiles overlap at least this much ...
MERGE_CONTAINED = 0.7  # ... or the one a tile's edge cut lies this much inside the other


@dataclass(frozen=True)
class Crop:
    """A frame region (pixels) the detector sees resized by ``scale``."""

    x0: int
    y0: int
    x1: int
    y1: int
    scale: float


def region_of(masks: list[np.ndarray]) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) bounding the union of the masks, or None when all are empty."""
    union = np.zeros_like(masks[0], dtype=bool) if masks else None
    if union is None:
        return None
    for mask in masks:
        union |= mask > 0
    ys, xs = np.nonzero(union)
    if not len(ys):
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def plan_crops(region: tuple[int, int, int, int], smallest_person_px: float | None,
               input_size: tuple[int, int], min_person_px: float, max_tiles: int,
               max_upscale: float = 3.0) -> list[Crop]:
    """Tiles covering ``region`` at one scale: the scale that brings the smallest person
    (frame pixels, from the geometry; None when unknown: the frame's own scale) to
    ``min_person_px``, lowered until the region fits in ``max_tiles`` tiles."""
    x0, y0, x1, y1 = region
    width, height = x1 - x0, y1 - y0
    tile_w, tile_h = input_size
    wanted = 1.0 if not smallest_person_px else min_person_px / max(smallest_person_px, 1.0)
    scale = float(min(max_upscale, max(wanted, 1e-3)))
    while True:
        nx = _tiles_along(width * scale, tile_w)
        ny = _tiles_along(height * scale, tile_h)
        if nx * ny <= max_tiles or scale <= 1e-3:
            break
        scale *= 0.9
    if nx == 1 and ny == 1:
        # One tile: the detector letterboxes the region; the scale is what fits it.
        fit = min(tile_w / width, tile_h / height)
        return [Crop(x0, y0, x1, y1, float(min(fit, max_upscale)))]
    crop_w = min(width, math.ceil(tile_w / scale))
    crop_h = min(height, math.ceil(tile_h / scale))
    return [Crop(cx, cy, cx + crop_w, cy + crop_h, scale)
            for cy in _starts(y0, height, crop_h, ny) for cx in _starts(x0, width, crop_w, nx)]


def _tiles_along(length: float, tile: int) -> int:
    if length <= tile:
        return 1
    step = tile * (1.0 - TILE_OVERLAP)
    return 1 + math.ceil((length - tile) / step)


def _starts(origin: int, length: int, crop: int, count: int) -> list[int]:
    if count == 1:
        return [origin]
    return [origin + round(i * (length - crop) / (count - 1)) for i in range(count)]


def detect_in_crops(model: BoxModel, image: Image, crops: list[Crop]) -> Boxes:
    """Every crop's person boxes in frame pixels, duplicates across tiles merged."""
    parts = []
    for crop in crops:
        part = image[crop.y0:crop.y1, crop.x0:crop.x1]
        parts.append(model.detect(part).shifted(crop.x0, crop.y0, 1.0))
    return Boxes.merged(parts, MERGE_IOU, MERGE_CONTAINED)
