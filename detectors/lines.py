"""Counting lines on a zone's ground plane: segments, their `in` side, their bands.

A line is two or more image points (native pixels) in a zone whose ground homography
gives metres. A crossing is ``in`` when a person's feet move to the side where
(b−a)×(p−a) > 0 for consecutive points a, b (image coordinates, y down: for a line
drawn top to bottom on screen, ``in`` is right to left), ``out`` the other way.

Each segment gets a *band* on the ground, ``band_m`` wide and centred on it: the motion
meter weighs the people standing in the band by their velocity across it, which is how
a flow through the line is measured without following anyone.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from crowdwatch.detectors.zones import ZoneGeometry, project, shoelace_area
from crowdwatch.errors import ConfigError


@dataclass(frozen=True)
class Segment:
    """One straight piece of a line, at the view's scale."""

    a: np.ndarray  # image points (view pixels)
    b: np.ndarray
    normal_m: np.ndarray  # unit ground vector towards the `in` side
    length_m: float
    band: ZoneGeometry  # the ground band around it, as a zone the geometry counter weighs


@dataclass(frozen=True)
class LineGeometry:
    line_id: str
    zone_id: str
    homography: np.ndarray  # view pixels -> ground metres (the zone's)
    segments: tuple[Segment, ...]
    band_m: float

    @property
    def length_m(self) -> float:
        return sum(s.length_m for s in self.segments)

    @classmethod
    def build(cls, line_id: str, points_native: list[list[float]], zone: ZoneGeometry,
              band_m: float) -> LineGeometry:
        """The line on ``zone``'s ground plane (the zone already at the view's scale)."""
        if zone.homography is None:
            raise ConfigError(f"line {line_id!r}: zone {zone.zone_id!r} has no ground "
                              "calibration; a line needs one to measure metres")
        h = zone.homography
        pts = np.asarray(points_native, dtype=np.float64) * zone.ref_scale
        y0, y1, x0, x1 = zone.bbox
        inside = np.array([[(x0 + x1) / 2, (y0 + y1) / 2]])
        ground = _ground(h, pts, line_id, inside)
        segments = []
        for k, (a, b) in enumerate(itertools.pairwise(pts)):
            ga, gb = ground[k], ground[k + 1]
            along = gb - ga
            length = float(np.hypot(*along))
            if length < 1e-3:
                raise ConfigError(f"line {line_id!r}: points {k} and {k + 1} are the same "
                                  "place on the ground")
            normal = np.array([-along[1], along[0]]) / length
            # Which ground side is the image's `in` side: step off the segment's middle
            # in the image towards (b−a)×(p−a) > 0 and see where that lands.
            mid, d = (a + b) / 2, b - a
            probe = mid + np.array([-d[1], d[0]]) / max(float(np.hypot(*d)), 1e-9)
            gm, gp = _ground(h, np.stack([mid, probe]), line_id, inside)
            if float(normal @ (gp - gm)) < 0:
                normal = -normal
            half = normal * band_m / 2
            quad_m = np.stack([ga - half, gb - half, gb + half, ga + half])
            quad_px = project(np.linalg.inv(h), quad_m)
            if shoelace_area(quad_px) < 1.0:
                raise ConfigError(f"line {line_id!r}: segment {k} covers no pixels")
            band = ZoneGeometry(f"{line_id}#{k}", quad_px, zone.shape, h, length * band_m,
                                None, zone.height_ref, zone.perspective, zone.ref_scale)
            segments.append(Segment(a, b, normal, length, band))
        return cls(line_id, zone.zone_id, h, tuple(segments), band_m)


def _ground(h: np.ndarray, pts: np.ndarray, line_id: str, inside: np.ndarray) -> np.ndarray:
    """Ground metres of image points; refuses a point on the far side of the horizon
    (where the projective scale changes sign from the zone's own)."""
    def w_of(p: np.ndarray) -> np.ndarray:
        return h[2, 0] * p[:, 0] + h[2, 1] * p[:, 1] + h[2, 2]

    if (w_of(pts) * np.sign(w_of(inside)[0]) <= 1e-9).any():
        raise ConfigError(f"line {line_id!r}: a point lies above the horizon of its zone's "
                          "ground plane")
    return project(h, pts)


def homography_jacobian(h: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d(ground)/d(image) at image points: n×2×2, metres per pixel."""
    xp = h[0, 0] * x + h[0, 1] * y + h[0, 2]
    yp = h[1, 0] * x + h[1, 1] * y + h[1, 2]
    w = h[2, 0] * x + h[2, 1] * y + h[2, 2]
    w2 = w * w
    jac = np.empty((len(x), 2, 2))
    jac[:, 0, 0] = (h[0, 0] * w - xp * h[2, 0]) / w2
    jac[:, 0, 1] = (h[0, 1] * w - xp * h[2, 1]) / w2
    jac[:, 1, 0] = (h[1, 0] * w - yp * h[2, 0]) / w2
    jac[:, 1, 1] = (h[1, 1] * w - yp * h[2, 1]) / w2
    return jac
