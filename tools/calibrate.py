"""Fit a camera's counting model from labelled frames; check a ground homography.

Labels come from a truth CSV (``frame,count``), from head points (``frame,x,y``, one
row per head) or, for the simulated scene, from the generator itself. Frames are fed
in time order, as a live camera would see them, after a priming pass that lets the
in-memory background settle.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from crowdwatch.config import CameraConfig
from crowdwatch.detectors.background import BackgroundDetector, BackgroundSettings, RegressionModel
from crowdwatch.detectors.zones import ZoneGeometry, ground_area_m2, ground_homography, project
from crowdwatch.errors import ModelError, UsageError
from crowdwatch.ingest.camera import CameraPipeline
from crowdwatch.ingest.sim import SimParams
from crowdwatch.ingest.sources import SimSource


def read_truth(path: str | Path, zone: ZoneGeometry | None = None,
               native_shape: tuple[int, int] | None = None) -> dict[int, float]:
    """Truth per 1-based frame: a ``frame,count`` CSV, or head points ``frame,x,y``.

    Head points are counted inside ``zone`` when one is given (points in native pixels;
    the zone is scaled from ``native_shape``).
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        cols = {c.strip().lower(): c for c in reader.fieldnames or []}
        frame_col = cols.get("frame") or cols.get("frame_index")
        if frame_col is None:
            raise UsageError(f"{path}: needs a frame (or frame_index) column; has {list(cols)}")
        if "count" in cols:
            truth: dict[int, float] = {}
            for line_no, row in enumerate(reader, start=2):
                try:
                    truth[int(row[frame_col])] = float(row[cols["count"]])
                except (TypeError, ValueError):
                    raise UsageError(f"{path}:{line_no}: bad frame or count {row!r}") from None
            return truth
        if "x" in cols and "y" in cols:
            frames, points = [], []
            for line_no, row in enumerate(reader, start=2):
                try:
                    frames.append(int(row[frame_col]))
                    points.append((float(row[cols["x"]]), float(row[cols["y"]])))
                except (TypeError, ValueError):
                    raise UsageError(f"{path}:{line_no}: bad head point {row!r}") from None
            return _count_points(np.array(frames), np.array(points), zone, native_shape)
    raise UsageError(f"{path}: needs a count column, or x and y columns of head points")


def _count_points(frames: np.ndarray, points: np.ndarray, zone: ZoneGeometry | None,
                  native_shape: tuple[int, int] | None) -> dict[int, float]:
    keep = np.ones(len(frames), dtype=bool)
    if zone is not None and len(points):
        scale = zone.shape[1] / native_shape[1] if native_shape else 1.0
        keep = zone.contains(points * scale)
    counts = np.bincount(frames[keep], minlength=frames.max() + 1 if len(frames) else 1)
    return {int(f): float(counts[f]) for f in np.unique(frames)}


@dataclass
class Samples:
    frames: list[int]
    features: np.ndarray  # N × F
    truth: np.ndarray  # N


def background_features(
    detector: BackgroundDetector,
    frames: Iterable[tuple[int, np.ndarray]],
    zone: ZoneGeometry,
    progress: Callable[[], None] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """(frame number, feature vector) per frame, in order; the background keeps learning."""
    for number, image in frames:
        feats = detector.features(image, [zone])[zone.zone_id]
        if progress:
            progress()
        yield number, feats


def fit_background(
    blank: RegressionModel,
    prime: Iterable[tuple[int, np.ndarray]],
    labelled: Iterable[tuple[int, np.ndarray]],
    zone: ZoneGeometry,
    truth: dict[int, float],
    progress: Callable[[], None] | None = None,
    trained_on: str = "",
) -> tuple[RegressionModel, Samples, BackgroundDetector]:
    """Prime the background, collect features on labelled frames, fit ridge weights.

    Returns the fitted model, its training rows and the detector (its background has
    seen every frame so far, so evaluation can continue the same stream).
    """
    detector = BackgroundDetector(blank)
    for _, image in prime:
        detector.prime(image)
        if progress:
            progress()
    numbers, feats, ys = [], [], []
    for number, f in background_features(detector, labelled, zone, progress):
        if number in truth:
            numbers.append(number)
            feats.append(f)
            ys.append(truth[number])
    if len(feats) < 5:
        raise ModelError(f"only {len(feats)} labelled frames found; need at least 5")
    samples = Samples(numbers, np.array(feats), np.array(ys, dtype=float))
    meta: dict[str, Any] = {"trained_on": trained_on}
    if blank.layout == "cells":
        meta["grid"] = detector.grid
        meta["zone_id"] = zone.zone_id
    model = blank.fitted(samples.features, samples.truth, **meta)
    detector.model = model
    return model, samples, detector


def calibrate_on_sim(
    camera: CameraConfig, seeds: Iterable[int], frames_per_seed: int,
    progress: Callable[[], None] | None = None,
    settings: BackgroundSettings | None = None,
) -> tuple[RegressionModel, Samples]:
    """Fit a global model on several runs of the simulated scene (generator truth)."""
    settings = settings or BackgroundSettings(buffer=60, every=4, recompute=8)
    blank = RegressionModel.blank("global", background=settings)
    zone_cfg = camera.zones[0]
    all_f, all_t, all_n = [], [], []
    for seed in seeds:
        url = replace(SimParams.from_url(camera.url), seed=seed).to_url()
        source = SimSource(url, camera.sample_hz, realtime=False)
        detector = BackgroundDetector(blank)
        pipeline = CameraPipeline(camera.model_copy(update={"url": url}), detector)
        for i in range(frames_per_seed):
            frame = source.read()
            if frame is None:
                break
            view = pipeline.preprocess(frame.image)
            f = detector.features(view, pipeline.zones)[zone_cfg.id]
            if i >= 8:  # background settling
                all_f.append(f)
                all_t.append(source.scene.true_count(zone_cfg.polygon or []))
                all_n.append(i)
            if progress:
                progress()
    samples = Samples(all_n, np.array(all_f), np.array(all_t, dtype=float))
    model = blank.fitted(samples.features, samples.truth, trained_on=camera.url)
    return model, samples


@dataclass
class HomographyCheck:
    homography: list[list[float]]
    area_m2: float
    max_reprojection_m: float
    convex: bool
    warnings: list[str]


def check_homography(image_pts: list[list[float]], world_pts: list[list[float]]
                     ) -> HomographyCheck:
    """Derive the image→ground homography and say whether it is safe to use.

    Raises ValueError for points that cannot define a ground plane (crossed order,
    collinear); returns warnings for ones that can but look wrong.
    """
    for name, pts in (("image", image_pts), ("world", world_pts)):
        if not _convex_in_order(np.asarray(pts, dtype=np.float64)):
            raise UsageError(f"{name} points are not a convex quadrilateral in order; list the "
                             "4 corners around the area (clockwise or anticlockwise)")
    h = ground_homography(image_pts, world_pts)
    back = project(h, np.asarray(image_pts))
    err = float(np.abs(back - np.asarray(world_pts)).max())
    area = ground_area_m2(image_pts, h)
    convex = True
    warnings = []
    if err > 0.01:
        warnings.append(f"points do not map back exactly ({err:.3f} m): check their order")
    if area < 1.0:
        warnings.append(f"ground area is only {area:.2f} m²: are the world points in metres?")
    return HomographyCheck(h.tolist(), area, err, convex, warnings)


def _convex_in_order(pts: np.ndarray) -> bool:
    signs = set()
    for i in range(len(pts)):
        a, b, c = pts[i], pts[(i + 1) % len(pts)], pts[(i + 2) % len(pts)]
        signs.add(np.sign((b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0])))
    return len(signs) == 1 and 0 not in signs
