"""Counting people from geometry alone: no labelled frame needed.

With the expected silhouette area ``a(p)`` of a person at every pixel (from
:mod:`crowdwatch.detectors.person_scale`), foreground becomes people in two ways that
are one formula:

- *objects* (sparse scenes): each connected foreground blob is at least one person if
  it is at least ``min_person`` of one, so a half-hidden walker still counts as one and
  a speck of noise as none;
- *area* (dense scenes): people overlap, so covered area grows slower than the crowd.
  If people fall independently in a cell where a fraction ``c`` is covered, the
  expected number there is ``-ln(1 - c) / a`` per pixel area (the Boolean/Poisson
  coverage model), which corrects the occlusion with no fitted constant.

A blob's count is ``max(1, Σ w·f)`` over its pixels (``w = 1/a``, ``f`` the cell's
occlusion factor), so the counter switches from objects to area as density grows.

Feet, not pixels, are counted: a pixel weighs ``1/a`` of its owner, and only if the
owner's feet are in the zone. The owner's feet are taken where the foreground below
the pixel ends, but no lower than a head height (``owner_weights``): a lone person is
then counted whole at their feet, whatever part of them a pixel is, so a person in a
zone that looks shallow from a low camera counts fully and one in front of it not at
all (a fixed "middle of a person" rule cut both in half).

A second, label-free measurement rides along for few-shot calibration: the length of
the edges that are in the frame but not in the background, in person heights
(each edge pixel weighs ``1/h``: outlines grow with a person's size, not area). It
sees people whose clothes match the floor (their outline remains) and is blind to
soft reflections and shading, so it complements the area. It has no zero-label
meaning (edges per person depend on the camera's sharpness), so only a fit on
labelled frames gives it a weight; ``count = slope·raw + edge_weight·edges + offset``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from crowdwatch.detectors.background import BackgroundCamera, BackgroundSettings
from crowdwatch.detectors.base import ZoneCounts
from crowdwatch.detectors.foreground import (
    BackgroundPlanes,
    ForegroundSettings,
    foreground_mask,
    frame_light,
)
from crowdwatch.detectors.ghosts import GhostSettings, SampleGains, drop_ghosts
from crowdwatch.detectors.person_scale import (
    SILHOUETTE_AREA_RATIO,
    mid_body_feet,
    person_height_map,
)
from crowdwatch.detectors.zones import ZoneGeometry
from crowdwatch.errors import ConfigError

MAX_COVER = 0.92  # coverage above this is indistinguishable from full


@dataclass
class GeometrySettings:
    work_width: int = 320
    min_person: float = 0.3  # a blob smaller than this share of a person is noise
    cell_heights: float = 2.5  # occlusion cells span several people (Poisson needs a few)
    # Whose pixel is it: "runs" (per frame, from where the foreground below it ends) or
    # "mid_body" (fixed: the person it would be the middle of).
    owners: str = "runs"
    # A standing crowd must not become background: a long buffer, and no count until it
    # has stopped changing (a quiet scene: 12 samples, ~40 s at 2 samples/s) or, whatever
    # it does, half of it is filled (about 3 minutes).
    background: BackgroundSettings = field(
        default_factory=lambda: BackgroundSettings(buffer=60, every=16, recompute=64,
                                                   ready_kept=30, estimator="mode"))
    foreground: ForegroundSettings = field(default_factory=ForegroundSettings)
    ghosts: GhostSettings | None = field(default_factory=GhostSettings)  # None: keep them


@dataclass
class _ZonePlan:
    """Per zone, at work resolution: pixel weights and the occlusion cells."""

    mask: np.ndarray  # uint8: pixels a person standing in the zone can cover
    weight: np.ndarray  # 1 / expected silhouette area, 0 outside the zone (mid-body owner)
    cells: np.ndarray  # int32 cell index per pixel (0 outside)
    cell_pixels: np.ndarray  # zone pixels per cell
    n_cells: int
    per_height: np.ndarray  # 1 / expected person height, 0 outside the zone (edge lengths)
    zone: np.ndarray  # bool: the zone's own pixels (where feet count)
    lowest_feet: np.ndarray  # int row of the feet of a person whose head is at the pixel
    area_at_feet: np.ndarray  # expected silhouette area of a person with feet at the pixel


def people_region(zone_mask: np.ndarray, foot_rows: np.ndarray) -> np.ndarray:
    """Pixels whose most likely owner stands in the zone (feet, not pixels, are counted).

    Counting only the zone's own pixels would cut off the upper body of everyone near
    its far edge (all of it, for a low camera) and add the bodies of people standing in
    front of it. Feet below the frame's edge belong to the zone if the zone reaches that
    edge: the picture cuts the zone there, not the people in it.
    """
    rows, cols = zone_mask.shape
    idx = np.clip(np.round(foot_rows).astype(int), 0, rows - 1)
    return (zone_mask[idx, np.arange(cols)[None, :]] > 0).astype(np.uint8)


def plan_zone(zone: ZoneGeometry, settings: GeometrySettings) -> _ZonePlan:
    heights = person_height_map(zone.shape, height_ref=zone.height_ref,
                                perspective=zone.perspective, homography=zone.homography,
                                scale=zone.ref_scale)
    feet, body_heights = mid_body_feet(heights)
    area = SILHOUETTE_AREA_RATIO * body_heights**2
    mask = people_region(zone.mask, feet)
    weight = np.where(mask > 0, 1.0 / area, 0.0).astype(np.float32)
    # Cells about a person wide, in bands whose height follows the person size.
    rows, cols = zone.shape
    cells = np.zeros(zone.shape, np.int32)
    next_id, y = 1, 0
    while y < rows:
        side = max(3, round(settings.cell_heights * float(np.median(heights[y]))))
        band = slice(y, min(rows, y + side))
        col_ids = np.arange(cols) // side
        cells[band] = next_id + col_ids[None, :]
        next_id += int(col_ids.max()) + 1
        y += side
    per_height = np.where(mask > 0, 1.0 / body_heights, 0.0).astype(np.float32)
    lowest, _ = mid_body_feet(heights, share=1.0)
    lowest_rows = np.clip(np.round(lowest).astype(np.int32), 0, rows - 1)
    zone_px = zone.mask > 0
    if settings.owners == "runs":
        # Any pixel between a zone row and a head height above it may be an in-zone
        # person's: which one is decided per frame from the foreground.
        above = np.vstack([np.zeros((1, cols), np.int32), np.cumsum(zone_px, axis=0)])
        reach = above[lowest_rows + 1, np.arange(cols)[None, :]] - above[:-1]
        region = reach > 0
        # ... and the foreground below them, down to a head height, to see where their
        # runs end (a person in front of the zone ends below it).
        down = np.maximum.accumulate(np.where(region, lowest_rows, -1), axis=0)
        mask = (region | (np.arange(rows)[:, None] <= down)).astype(np.uint8)
    cells *= mask > 0
    cell_pixels = np.bincount(cells.ravel(), minlength=next_id).astype(np.float64)
    return _ZonePlan(mask, weight, cells, cell_pixels, next_id, per_height, zone_px,
                     lowest_rows, (SILHOUETTE_AREA_RATIO * heights**2).astype(np.float32))


def run_bottoms(fg: np.ndarray) -> np.ndarray:
    """Per foreground pixel, the row where its vertical foreground run ends below it
    (the nearest run end at or below a pixel is its own run's)."""
    rows = fg.shape[0]
    on = fg > 0
    below = np.zeros_like(on)
    below[:-1] = on[1:]
    ends = np.where(on & ~below, np.arange(rows, dtype=np.int32)[:, None], rows - 1)
    return np.minimum.accumulate(ends[::-1], axis=0)[::-1]


def owner_weights(fg: np.ndarray, plan: _ZonePlan) -> np.ndarray:
    """1/area of each foreground pixel's owner if the owner's feet are in the zone, else 0.

    The owner's feet are no lower than a head height below the pixel, and no lower than
    where the foreground under the pixel ends: for a lone person that is their feet,
    whatever part of them the pixel is; in a crowd, the nearest person's. So a person
    standing in the zone counts whole however shallow the zone looks from the camera,
    and one standing in front of it does not count at all.
    """
    weights = np.zeros(fg.shape, np.float32)
    ys, xs, feet = owner_feet(fg, plan)
    weights[ys, xs] = 1.0 / plan.area_at_feet[feet, xs]
    return weights


def owner_feet(fg: np.ndarray, plan: _ZonePlan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, columns, owner's foot rows) of the foreground pixels whose owner stands in
    the zone (see :func:`owner_weights`): where a person's weight is, and where on the
    ground it stands (the motion meter projects velocities there)."""
    ys, xs = np.nonzero(fg)
    if not len(ys):
        return ys, xs, ys
    y0, y1 = int(ys.min()), int(ys.max()) + 1
    bottoms = run_bottoms(fg[y0:y1])[ys - y0, xs] + y0
    feet = np.minimum(plan.lowest_feet[ys, xs], bottoms)
    inside = plan.zone[feet, xs]
    return ys[inside], xs[inside], feet[inside]


def people_weights(fg: np.ndarray, plan: _ZonePlan, owners: str = "runs") -> np.ndarray:
    """Per foreground pixel, its share of an in-zone person, occlusion included: the
    owner's 1/area times the Poisson factor of its occlusion cell."""
    covered = np.bincount(plan.cells.ravel(), weights=fg.ravel().astype(np.float64),
                          minlength=plan.n_cells)
    cover = np.minimum(covered / np.maximum(plan.cell_pixels, 1.0), MAX_COVER)
    factor = np.ones_like(cover)
    some = cover > 1e-6
    factor[some] = -np.log1p(-cover[some]) / cover[some]
    weight = plan.weight if owners == "mid_body" else owner_weights(fg, plan)
    return weight * factor[plan.cells]


def blob_people(fg: np.ndarray, per_pixel: np.ndarray, min_person: float,
                whole: bool = True) -> float:
    """People in a foreground mask: each connected blob's weight, blobs under
    ``min_person`` dropped as noise, and (``whole``) every kept blob at least one person."""
    n_blobs, labels = cv2.connectedComponents(fg, connectivity=8)
    if n_blobs <= 1:
        return 0.0
    blob = np.bincount(labels.ravel(), weights=per_pixel.ravel(), minlength=n_blobs)[1:]
    blob = blob[blob >= min_person]
    return float(np.maximum(blob, 1.0).sum() if whole else blob.sum())


def count_people(fg: np.ndarray, plan: _ZonePlan, min_person: float,
                 owners: str = "runs") -> float:
    """People in one zone from its foreground mask (see the module docstring)."""
    if not fg.any():
        return 0.0
    return blob_people(fg, people_weights(fg, plan, owners), min_person)


def edges_of(img: np.ndarray) -> np.ndarray:
    """Boolean edge map (Canny with its customary 1:3 hysteresis on 8-bit grey)."""
    gray = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return cv2.Canny(gray, 50, 150) > 0


def new_edge_length(frame_edges: np.ndarray, background_edges: np.ndarray,
                    plan: _ZonePlan) -> float:
    """Edges in the frame but not in the background, in person heights (module docstring)."""
    fresh = frame_edges & ~background_edges
    return float(plan.per_height[fresh].sum())


class GeometryDetector(BackgroundCamera):
    """Zero-label counter for one camera (its background lives in memory only)."""

    name = "geometry"

    def __init__(self, settings: GeometrySettings | None = None,
                 correction: tuple[float, float] = (1.0, 0.0), edge_weight: float = 0.0) -> None:
        self.s = settings or GeometrySettings()
        super().__init__(self.s.work_width, self.s.background)
        self.correction = correction  # count = slope * raw + offset (few-shot) ...
        self.edge_weight = edge_weight  # ... + edge_weight * new edge length
        self._plans: dict[tuple, _ZonePlan] = {}
        # (background image, its edges): compared by identity, as an id can be reused
        # once an old background is freed.
        self._bg_edges: tuple[np.ndarray, np.ndarray] | None = None
        self._gains = SampleGains()
        self._planes = BackgroundPlanes()
        # Labelling asks for the edge length of the frame it keeps (it may be weighed by
        # the few-shot fit even while this camera does not weigh it yet).
        self.measure_edges = False
        self.last_edges: dict[str, float] = {}
        self._last: tuple[np.ndarray, float, dict[str, tuple[_ZonePlan, np.ndarray]]] | None = None

    def _plan(self, zone: ZoneGeometry, shape: tuple[int, int], scale: float) -> _ZonePlan:
        key = (zone.zone_id, zone.shape, shape)
        plan = self._plans.get(key)
        if plan is None:
            try:
                plan = plan_zone(self._zone_at(zone, shape, scale), self.s)
            except ConfigError as exc:
                raise ConfigError(f"zone {zone.zone_id!r}: {exc}") from None
            self._plans[key] = plan
        return plan

    def _background_edges(self) -> np.ndarray:
        assert self.bg.image is not None
        if self._bg_edges is None or self._bg_edges[0] is not self.bg.image:
            self._bg_edges = (self.bg.image, edges_of(self.bg.image))
        return self._bg_edges[1]

    def raw_features(self, frame: np.ndarray, zones: list[ZoneGeometry],
                     edges: bool = True) -> dict[str, tuple[float, float]]:
        """(uncorrected geometric count, new edge length) per zone; updates the background."""
        img, scale = self.work_image(frame)
        self.bg.update(img)
        return self.measure(img, scale, zones, edges)

    def measure(self, img: np.ndarray, scale: float, zones: list[ZoneGeometry],
                edges: bool = True, *, history: int | None = None
                ) -> dict[str, tuple[float, float]]:
        """:meth:`raw_features` of a frame already at work width, against the background
        as it is now, without learning from the frame. ``history``: how many of the
        background's samples came before the frame (all, for a frame just taken); the
        ghost check looks only at those, as it did when the frame was live."""
        frame_edges = edges_of(img) if edges else None
        out = {}
        for zone, (plan, fg) in zip(zones, self._people_masks(img, scale, zones, history),
                                    strict=True):
            length = 0.0 if frame_edges is None else new_edge_length(
                frame_edges, self._background_edges(), plan)
            out[zone.zone_id] = (count_people(fg, plan, self.s.min_person, self.s.owners),
                                 length)
        return out

    def observe(self, frame: np.ndarray, zones: list[ZoneGeometry]
                ) -> tuple[float, list[tuple[_ZonePlan, np.ndarray]]]:
        """Learn from the frame; (work scale, each zone's plan and counted foreground), for
        a counter that weighs the foreground itself (the fused counter)."""
        img, scale = self.work_image(frame)
        self.bg.update(img)
        return scale, self._people_masks(img, scale, zones, None)

    def people_masks(self, frame: np.ndarray, zones: list[ZoneGeometry]
                     ) -> dict[str, np.ndarray]:
        """Each zone's counted foreground (uint8, work width) against the background as
        it is now, without learning from the frame: what a second signal can be checked
        against (people it sees outside these masks are people this counter misses)."""
        img, scale = self.work_image(frame)
        return {zone.zone_id: fg for zone, (_, fg) in
                zip(zones, self._people_masks(img, scale, zones, None), strict=True)}

    def foreground_of(self, zones: list[ZoneGeometry]) -> tuple[np.ndarray, float,
                                                              list[tuple[_ZonePlan, np.ndarray]]]:
        """(work image, work scale, each zone's plan and counted foreground) of the frame
        counted last, for zones counted then or new ones (lines' bands): what the motion
        meter weighs, without a second pass over the zones the count already made."""
        assert self._last is not None, "foreground_of before any frame was counted"
        img, scale, done = self._last
        missing = [z for z in zones if z.zone_id not in done]
        if missing and done:
            # A region inside what was counted needs no second pass: its foreground is
            # the counted foreground within its own mask.
            covered = np.zeros(img.shape[:2], np.uint8)
            seen = np.zeros(img.shape[:2], np.uint8)
            for plan, fg in done.values():
                covered |= plan.mask
                seen |= fg
            still = []
            for zone in missing:
                plan = self._plan(zone, img.shape[:2], scale)
                if (plan.mask & ~covered).any():
                    still.append(zone)
                else:
                    done[zone.zone_id] = (plan, seen & plan.mask)
            missing = still
        if missing:
            done.update(zip([z.zone_id for z in missing],
                            self._people_masks(img, scale, missing, None, keep=False),
                            strict=True))
        return img, scale, [done[z.zone_id] for z in zones]

    def _people_masks(self, img: np.ndarray, scale: float, zones: list[ZoneGeometry],
                      history: int | None, keep: bool = True
                      ) -> list[tuple[_ZonePlan, np.ndarray]]:
        out = self._masks(img, scale, zones, history)
        if keep and history is None:
            self._last = (img, scale, {z.zone_id: m for z, m in zip(zones, out, strict=True)})
        return out

    def _masks(self, img: np.ndarray, scale: float, zones: list[ZoneGeometry],
               history: int | None) -> list[tuple[_ZonePlan, np.ndarray]]:
        assert self.bg.image is not None
        light = frame_light(img, self.bg.image, self.s.foreground)
        past = self.bg.frames if history is None else self.bg.frames[:history]
        gains = self._gains.of(past, self.bg.image) if self.s.ghosts else None
        out = []
        for zone in zones:
            plan = self._plan(zone, img.shape[:2], scale)
            fg = foreground_mask(img, self.bg.image, plan.mask, self.s.foreground, light,
                                 self._planes)
            if self.s.ghosts and gains is not None:
                fg = drop_ghosts(img, fg, past, gains, light[0], light[1], self.s.ghosts)
            out.append((plan, fg))
        return out

    def count(self, frame: np.ndarray, zones: list[ZoneGeometry]) -> ZoneCounts:
        slope, offset = self.correction
        quality = self.bg.warm
        measured = self.edge_weight != 0.0 or self.measure_edges
        feats = self.raw_features(frame, zones, edges=measured)
        self.last_edges = {zid: length for zid, (_, length) in feats.items()} if measured else {}
        return {zid: (max(0.0, slope * raw + self.edge_weight * length + offset), quality)
                for zid, (raw, length) in feats.items()}
