"""Zone geometry: polygon masks, ground-plane homography, area and perspective weights.

Everything here is in the camera's native pixel coordinates unless scaled with
:meth:`ZoneGeometry.at_scale`, because configs are written against the native view
while detection runs on a downscaled frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from crowdwatch.config import ZoneConfig
from crowdwatch.detectors.person_scale import HeightRef
from crowdwatch.errors import ConfigError


def shoelace_area(points: np.ndarray) -> float:
    """Area of a simple polygon (any units)."""
    x, y = points[:, 0], points[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def ground_homography(image_pts: list[list[float]], world_pts: list[list[float]]) -> np.ndarray:
    """Homography from image pixels to ground metres; refuses degenerate point sets."""
    src = np.asarray(image_pts, dtype=np.float64)
    dst = np.asarray(world_pts, dtype=np.float64)
    if shoelace_area(src) < 1.0 or shoelace_area(dst) < 1e-6:
        raise ConfigError("ground points are collinear or repeated; pick 4 spread-out points")
    h = cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32))
    return h.astype(np.float64)


def project(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 1, 2)
    return cv2.perspectiveTransform(pts, h).reshape(-1, 2)


def ground_area_m2(polygon: list[list[float]], h: np.ndarray) -> float:
    """Ground area of an image polygon: map its corners to metres, then shoelace.

    Straight image edges stay straight under a homography, so this is exact for
    polygons that lie on the calibrated plane.
    """
    return shoelace_area(project(h, np.asarray(polygon)))


def pixel_area_scale(h: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """|det J| of the image→ground map at every pixel: m² covered by one pixel."""
    height, width = shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    g, i, k = h[2]
    w = g * xs + i * ys + k
    # Jacobian determinant of a projective map simplifies to det(H) / w^3.
    return np.abs(np.linalg.det(h) / w**3)


@dataclass
class ZoneGeometry:
    """A zone at one image scale: mask, area in m² and a perspective weight map."""

    zone_id: str
    polygon: np.ndarray | None  # pixels at this scale (None for a raster zone)
    shape: tuple[int, int]  # (height, width) of frames at this scale
    homography: np.ndarray | None  # image pixels (this scale) -> metres
    area_m2: float | None
    raster: np.ndarray | None = None  # zone mask image (any size), instead of a polygon
    height_ref: HeightRef | None = None  # (foot, head) pairs in native pixels
    perspective: np.ndarray | None = None  # relative perspective map (any size)
    ref_scale: float = 1.0  # this scale relative to the native pixels of height_ref

    def scaled(self, shape: tuple[int, int], scale: float) -> ZoneGeometry:
        """The same zone on frames resized by ``scale`` to ``shape``."""
        h = self.homography
        if h is not None and scale != 1.0:
            h = h @ np.diag([1.0 / scale, 1.0 / scale, 1.0])
        poly = None if self.polygon is None else self.polygon * scale
        return ZoneGeometry(self.zone_id, poly, shape, h, self.area_m2, self.raster,
                            self.height_ref, self.perspective, self.ref_scale * scale)

    @classmethod
    def from_config(cls, zone: ZoneConfig, shape: tuple[int, int], scale: float) -> ZoneGeometry:
        raster = None
        poly = None
        if zone.mask is not None:
            raster = cv2.imread(zone.mask, cv2.IMREAD_GRAYSCALE)
            if raster is None:
                raise ConfigError(f"zone {zone.id}: cannot read mask image {zone.mask}")
        else:
            poly = np.asarray(zone.polygon, dtype=np.float64) * scale
        homography = None
        area = None
        if zone.ground is not None:
            image_pts = np.asarray(zone.ground.image, dtype=np.float64) * scale
            homography = ground_homography(image_pts.tolist(), zone.ground.world_m)
            if poly is not None:
                area = ground_area_m2(poly.tolist(), homography)
            else:
                area = cls(zone.id, None, shape, homography, None, raster).mask_area_m2()
        height_ref = None
        if zone.height_ref is not None:
            height_ref = HeightRef.parse(zone.height_ref, f"zone {zone.id}")
        perspective = None
        if zone.perspective is not None:
            try:
                perspective = np.load(zone.perspective)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"zone {zone.id}: cannot read perspective map "
                                  f"{zone.perspective}: {exc}") from None
        return cls(zone.id, poly, shape, homography, area, raster, height_ref, perspective,
                   scale)

    @property
    def knows_person_size(self) -> bool:
        """Whether the geometry counter can size people here with no labels."""
        return self.height_ref is not None or self.homography is not None

    def mask_area_m2(self) -> float:
        """Ground area of the mask (needs the homography), summed pixel by pixel."""
        assert self.homography is not None
        return float((pixel_area_scale(self.homography, self.shape) * (self.mask > 0)).sum())

    @cached_property
    def mask(self) -> np.ndarray:
        if self.raster is not None:
            resized = cv2.resize(self.raster, (self.shape[1], self.shape[0]),
                                 interpolation=cv2.INTER_NEAREST)
            return np.where(resized > 127, 255, 0).astype(np.uint8)
        mask = np.zeros(self.shape, dtype=np.uint8)
        cv2.fillPoly(mask, [np.round(np.asarray(self.polygon)).astype(np.int32)], 255)
        return mask

    @cached_property
    def bbox(self) -> tuple[int, int, int, int]:
        """(y0, y1, x0, x1) crop that contains the zone, so features skip the rest."""
        ys, xs = np.nonzero(self.mask)
        if len(ys) == 0:
            return (0, 0, 0, 0)
        return int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1

    def perspective_weight(self, weight_map: np.ndarray | None = None) -> np.ndarray:
        """Per-pixel weight ~ 1 / (image area of a person there), cropped to bbox.

        With a ground homography, a ground m² shrinks as Z^-3 in the image while a
        standing person shrinks as Z^-2, so person area ∝ J^(2/3), J = m² per pixel
        inverted. A ``weight_map`` from calibration (a perspective normalisation map,
        as crowd datasets ship) overrides it; with neither the weight is flat.
        """
        y0, y1, x0, x1 = self.bbox
        if weight_map is not None:
            p = np.asarray(weight_map, dtype=np.float32)
            if p.shape != self.shape:
                p = cv2.resize(p, (self.shape[1], self.shape[0]),  # type: ignore[assignment]
                               interpolation=cv2.INTER_LINEAR)
            weight = p[y0:y1, x0:x1].astype(np.float64)
        elif self.homography is not None:
            m2_per_px = pixel_area_scale(self.homography, self.shape)[y0:y1, x0:x1]
            px_per_m2 = 1.0 / np.maximum(m2_per_px, 1e-12)
            weight = px_per_m2 ** (-2.0 / 3.0)
        else:
            weight = np.ones((y1 - y0, x1 - x0))
        inside = self.mask[y0:y1, x0:x1] > 0
        # Not normalised per zone: a model fitted on one zone must transfer to another.
        return (weight * inside).astype(np.float32)

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Which points (N×2, pixels at this scale) fall inside the zone polygon."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if len(pts) == 0:
            return np.zeros(0, dtype=bool)
        if self.polygon is None:
            h, w = self.shape
            xs = np.clip(pts[:, 0].astype(int), 0, w - 1)
            ys = np.clip(pts[:, 1].astype(int), 0, h - 1)
            return self.mask[ys, xs] > 0
        poly = self.polygon.astype(np.float32)
        return np.array(
            [cv2.pointPolygonTest(poly, (float(x), float(y)), False) >= 0 for x, y in pts]
        )
