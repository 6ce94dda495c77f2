"""How big a standing person looks at each pixel: the geometry behind zero-label counting.

A counter that knows the expected image size of a person everywhere in the view can
turn foreground into people without a single labelled frame. The size comes from what
an installer can measure in a minute, in order of preference:

- two or more (foot, head) pixel pairs of standing people (``height_ref``): under a
  pinhole camera with no roll, a person's image height is linear in the foot's row, so
  a least-squares line through the pairs gives it everywhere;
- a relative perspective map (as crowd datasets ship: weight ∝ 1/person image area)
  plus at least one pair to give it an absolute scale;
- a ground homography: the image width of one ground metre at the foot point is f/Z,
  and a person is ``person_height_m`` of those tall; pairs, when given, rescale it.

Everything here is per camera and per image scale; nothing is fitted to a dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from crowdwatch.errors import ConfigError

# Mean adult stature (m). Used only when a homography is the sole reference.
PERSON_HEIGHT_M = 1.7
# Image area of a standing person's silhouette over (image height)²: frontal projected
# area of an adult is ~0.55-0.65 m² at ~1.7 m stature (anthropometric surveys), i.e.
# about 0.2 h². A property of people, not of any scene.
SILHOUETTE_AREA_RATIO = 0.2


@dataclass(frozen=True)
class HeightRef:
    """(foot_x, foot_y, head_x, head_y) pixel tuples of standing people, native pixels."""

    pairs: tuple[tuple[float, float, float, float], ...]

    @classmethod
    def parse(cls, raw: object, where: str) -> HeightRef:
        try:
            pairs = tuple(tuple(float(v) for v in p) for p in raw)  # type: ignore[attr-defined]
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: height_ref must be a list of [xf, yf, xh, yh]") from None
        if not pairs or any(len(p) != 4 for p in pairs):
            raise ConfigError(f"{where}: height_ref must be a list of [xf, yf, xh, yh]")
        for p in pairs:
            if p[1] - p[3] <= 1.0:
                raise ConfigError(f"{where}: height_ref pair {list(p)} has the head not above "
                                  "the foot (image y grows downwards)")
        return cls(pairs)  # type: ignore[arg-type]

    def scaled(self, scale: float) -> np.ndarray:
        """N×4 array at a frame scale."""
        return np.asarray(self.pairs, dtype=np.float64) * scale

    @staticmethod
    def heights(arr: np.ndarray) -> np.ndarray:
        return np.hypot(arr[:, 0] - arr[:, 2], arr[:, 1] - arr[:, 3])


def _from_pairs(shape: tuple[int, int], arr: np.ndarray) -> np.ndarray:
    rows = arr[:, 1]
    if len(arr) < 2 or np.ptp(rows) < 0.05 * shape[0]:
        raise ConfigError("height_ref alone needs two or more people whose feet are at "
                          f"clearly different rows (got rows {rows.round(1).tolist()}); add a "
                          "pair nearer or farther, or give a perspective map or homography")
    slope, offset = np.polyfit(rows, HeightRef.heights(arr), 1)
    ys = np.arange(shape[0], dtype=np.float64)
    per_row = slope * ys + offset
    if slope <= 0:
        raise ConfigError(f"height_ref: people look taller farther away (slope {slope:.3f} "
                          "px/row); check that each pair is [foot_x, foot_y, head_x, head_y]")
    return np.repeat(np.maximum(per_row, 1.0)[:, None], shape[1], axis=1)


def _from_homography(shape: tuple[int, int], h: np.ndarray) -> np.ndarray:
    """Pixels per ground metre along the image row at each pixel (f/Z for no roll)."""
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    pts = np.stack([xs.ravel(), ys.ravel()], axis=1)
    here = cv2.perspectiveTransform(pts.reshape(-1, 1, 2), h).reshape(-1, 2)
    moved = (pts + np.array([1.0, 0.0])).reshape(-1, 1, 2)
    step = cv2.perspectiveTransform(moved, h).reshape(-1, 2)
    metres = np.hypot(*(step - here).T).reshape(shape)
    return 1.0 / np.maximum(metres, 1e-9)


def person_height_map(
    shape: tuple[int, int],
    *,
    height_ref: HeightRef | None = None,
    perspective: np.ndarray | None = None,
    homography: np.ndarray | None = None,
    scale: float = 1.0,
    person_height_m: float = PERSON_HEIGHT_M,
) -> np.ndarray:
    """Expected image height (px) of a person whose feet are at each pixel of ``shape``.

    ``scale`` is the frame scale relative to the native pixels of ``height_ref``;
    ``homography`` maps pixels at this scale to metres; ``perspective`` is resized.
    """
    pairs = height_ref.scaled(scale) if height_ref else None
    relative: np.ndarray | None = None
    if perspective is not None:
        p: np.ndarray = np.asarray(perspective, dtype=np.float64)
        if p.shape != shape:
            p = np.asarray(cv2.resize(p, (shape[1], shape[0]),
                                      interpolation=cv2.INTER_LINEAR), dtype=np.float64)
        if (p <= 0).any() or not np.isfinite(p).all():
            raise ConfigError("perspective map must be finite and positive everywhere")
        relative = 1.0 / np.sqrt(p)  # weight ∝ 1/area → height ∝ 1/sqrt(weight)
        if pairs is None:
            raise ConfigError("a perspective map is relative: add one or more height_ref "
                              "(foot, head) pairs to give it a scale")
    elif homography is not None:
        relative = _from_homography(shape, homography) * person_height_m
        if pairs is None:
            return relative
    elif pairs is not None:
        return _from_pairs(shape, pairs)
    else:
        raise ConfigError("counting without labels needs geometry: height_ref pairs, a "
                          "perspective map with a pair, or a ground homography")
    assert pairs is not None
    xs = np.clip(np.round(pairs[:, 0]).astype(int), 0, shape[1] - 1)
    ys = np.clip(np.round(pairs[:, 1]).astype(int), 0, shape[0] - 1)
    k = float(np.median(HeightRef.heights(pairs) / relative[ys, xs]))
    return relative * k


def mid_body_feet(height_at_foot: np.ndarray, share: float = 0.5
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(foot row, person height) of the person a pixel most likely belongs to.

    A pixel at row y is, on average, mid-body of a person whose feet are lower, at
    y_f = y + h(y_f)/2; solved by fixed-point iteration down each column. Feet beyond
    the bottom edge extrapolate the last rows' growth. ``share`` 1 gives the feet of a
    person whose head is at the pixel (the lowest feet it can belong to).
    """
    rows, cols = height_at_foot.shape
    ys = np.arange(rows, dtype=np.float64)[:, None].repeat(cols, axis=1)
    col_idx = np.arange(cols)[None, :].repeat(rows, axis=0)
    growth = (height_at_foot[-1] - height_at_foot[-2])[None, :] if rows > 1 else np.zeros(
        (1, cols))

    def height_at(foot: np.ndarray) -> np.ndarray:
        idx = np.clip(np.round(foot).astype(int), 0, rows - 1)
        h = height_at_foot[idx, col_idx]
        return np.where(foot > rows - 1, h + (foot - (rows - 1)) * growth, h)

    foot = ys.copy()
    for _ in range(4 if share <= 0.5 else 6):
        foot = ys + share * height_at(foot)
    return foot, np.maximum(height_at(foot), 1.0)


def body_area_map(height_at_foot: np.ndarray) -> np.ndarray:
    """Expected silhouette area (px²) of the person a pixel belongs to."""
    _, heights = mid_body_feet(height_at_foot)
    return SILHOUETTE_AREA_RATIO * heights**2
