"""Counts versus ground truth on real footage, every detector beside a constant guess.

One pass over the frames in time order, as a live camera sees them: the first
``warmup`` frames only build the in-memory backgrounds; then every labelled frame gets
each detector's raw output (features, geometric count, detections). Calibration uses
``train_frames`` labelled frames (spread evenly over the labelled span by default, or
the first ones), scoring uses the other labelled frames only.

Every report carries a ``constant`` baseline (the mean of the calibration frames; with
zero labels, the test mean, an oracle no real constant can beat) and each detector's
``skill`` = 1 − MAE / MAE_constant, so a counter worse than not looking is visible. A
detector whose output is near constant (collapsed calibration, empty raw response) is
flagged. The ``recommended`` counter is chosen on the calibration frames only
(cross-validated error), never on the scored ones.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from crowdwatch.detectors.appearance import AppearanceDetector, FinderSettings, PersonFinder
from crowdwatch.detectors.background import BackgroundDetector, RegressionModel, fit_ridge
from crowdwatch.detectors.fused import FusedDetector
from crowdwatch.detectors.geometry import GeometryDetector
from crowdwatch.detectors.hog import HogDetector
from crowdwatch.detectors.zones import ZoneGeometry
from crowdwatch.errors import UsageError
from crowdwatch.ingest.sources import numbered_frames
from crowdwatch.tools.calibrate import read_truth
from crowdwatch.tools.fewshot import blocked_folds, fit_correction, fit_with_deferred
from crowdwatch.tools.held_frames import HeldFrames

# Published protocols: fit on the first N frames of these datasets, score on the rest.
KNOWN_PROTOCOLS = {"mall": 800}
DETECTORS = ("fused", "appearance", "geometry", "background", "background_global", "hog")
# Counters that give a people count corrected by a few-shot slope and offset.
COUNTERS = ("fused", "appearance", "geometry", "hog")
# Counters that need the zone's person size (no labels: geometry).
SIZED = ("fused", "geometry")
PICKS = ("spread", "first")
DENSITY_BANDS = ((0.0, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, float("inf")))  # persons/m²
COLLAPSE_RATIO = 0.1  # output spread under this share of the truth's spread: collapsed


def default_train_frames(source: str, labelled: int) -> tuple[int, str]:
    """(frames, pick): a dataset's published split where known, else 20 % spread."""
    parts = {p.lower() for p in Path(source).parts}
    for name, frames in KNOWN_PROTOCOLS.items():
        if name in parts:
            return frames, "first"
    return max(5, int(0.2 * labelled)), "spread"


def scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    err = pred - truth
    return {
        "mae": round(float(np.abs(err).mean()), 4),
        "rmse": round(float(np.sqrt((err**2).mean())), 4),
        "mean_rel_error": round(float((np.abs(err) / np.maximum(truth, 1.0)).mean()), 4),
        "bias": round(float(err.mean()), 4),
    }


@dataclasses.dataclass
class EvalSetup:
    source: str
    truth_path: str
    zone: ZoneGeometry
    native_shape: tuple[int, int]
    train_frames: int
    weight_map: str | None = None  # perspective map (global layout weights)
    hog_stride: int = 5
    hog_upscale: float = 1.0
    detectors: tuple[str, ...] = ("background", "background_global", "hog")
    limit: int | None = None  # last frame number to use (a short slice for tests)
    train_pick: str = "spread"
    warmup: int = 0  # frames that only build the background (never scored or fitted)
    # Calibration frames that arrive while a background is still being built are kept
    # (at work width, in memory) up to this size and measured once it is ready.
    hold_mb: float = 512.0
    # The appearance counters' detector: runs per sample (their live budget) and settings.
    finder: FinderSettings = dataclasses.field(default_factory=FinderSettings)


def make_zone(native_shape: tuple[int, int], polygon: list[list[float]] | None = None,
              roi_mask: str | None = None) -> ZoneGeometry:
    """The evaluated region in native pixels: a polygon, a mask image, or the whole frame."""
    h, w = native_shape
    if roi_mask is not None:
        raster = cv2.imread(roi_mask, cv2.IMREAD_GRAYSCALE)
        if raster is None:
            raise UsageError(f"{roi_mask}: cannot read the ROI mask image")
        return ZoneGeometry("roi", None, native_shape, None, None, raster)
    poly = polygon or [[0, 0], [w, 0], [w, h], [0, h]]
    return ZoneGeometry("roi", np.asarray(poly, dtype=np.float64), native_shape, None, None)


def pick_train(numbers: list[int], n: int, pick: str) -> list[int]:
    """``n`` labelled frame numbers for calibration: evenly spread, or the first ones."""
    if pick not in PICKS:
        raise UsageError(f"--train-pick must be one of {', '.join(PICKS)}, not {pick!r}")
    if n <= 0:
        return []
    if n >= len(numbers):
        raise UsageError(f"--train-frames {n} leaves no frame to score ({len(numbers)} "
                         "labelled after warm-up)")
    if pick == "first":
        return numbers[:n]
    idx = np.unique(np.linspace(0, len(numbers) - 1, n).round().astype(int))
    return [numbers[i] for i in idx]


@dataclasses.dataclass
class _Collected:
    """Per detector: raw output per labelled frame, and time spent."""

    raw: dict[int, Any] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    calls: int = 0
    grid: list[int] | None = None  # cell grid (pixel regression, cells layout)
    held: HeldFrames | None = None  # calibration frames seen while warming up
    teacher: dict | None = None  # the fused counter's taught geometry scale
    detector_runs: int | None = None  # person-detector runs (appearance counters)


def _collect(setup: EvalSetup, labelled: set[int], train: set[int], hog_frames: set[int],
             last: int, progress: Callable[[int, int], None] | None) -> dict[str, _Collected]:
    """One pass in time order; each detector sees every frame (HOG only its own).

    A detector still building its background withholds counts, as it does live; the
    calibration frames that arrive meanwhile are measured once it is ready (see
    :mod:`crowdwatch.tools.held_frames`).
    """
    streams: dict[str, Any] = {}
    if "geometry" in setup.detectors:
        streams["geometry"] = GeometryDetector()
    for name, layout in (("background", "cells"), ("background_global", "global")):
        if name in setup.detectors:
            weights = setup.weight_map if layout == "global" else None
            streams[name] = BackgroundDetector(RegressionModel.blank(layout, weight_map=weights))
    hog = HogDetector(upscale=setup.hog_upscale) if "hog" in setup.detectors else None
    # The appearance counters run as live: every frame after the warm-up is counted (their
    # detector's budget and teacher follow the samples), the labelled ones are kept.
    live: dict[str, Any] = {}
    if "fused" in setup.detectors or "appearance" in setup.detectors:
        from crowdwatch.detectors.nanodet import NanoDet

        model = NanoDet()
        if "fused" in setup.detectors:
            live["fused"] = FusedDetector(PersonFinder(model, setup.finder))
        if "appearance" in setup.detectors:
            live["appearance"] = AppearanceDetector(PersonFinder(model, setup.finder))
    out = {name: _Collected() for name in [*live, *streams, *(["hog"] if hog else [])]}
    for name in streams:
        out[name].held = HeldFrames(setup.hold_mb)
    zone = setup.zone
    for number, image in numbered_frames(setup.source, stop=last):
        for name, det in live.items():
            if number <= setup.warmup or not det.ready:
                det.prime(image)
                continue
            started = time.perf_counter()
            count = det.raw_counts(image, [zone])[zone.zone_id]
            out[name].seconds += time.perf_counter() - started
            out[name].calls += 1
            if number in labelled:
                out[name].raw[number] = count
        for name, det in streams.items():
            col = out[name]
            if number <= setup.warmup or number not in labelled or not det.ready:
                assert col.held is not None
                col.raw |= dict(col.held.prime(det, number, image, zone,
                                               keep=number > setup.warmup and number in train))
                continue
            started = time.perf_counter()
            if name == "geometry":  # (raw count, new-edge length)
                value: Any = det.raw_features(image, [zone])[zone.zone_id]
            else:
                value = det.features(image, [zone])[zone.zone_id]
            col.seconds += time.perf_counter() - started
            col.calls += 1
            col.raw[number] = value
        if hog is not None and number in hog_frames:
            started = time.perf_counter()
            out["hog"].raw[number] = float(hog.count(image, [zone])[zone.zone_id][0])
            out["hog"].seconds += time.perf_counter() - started
            out["hog"].calls += 1
        if progress:
            progress(number, last)
    for name in ("background", "background_global"):
        if name in streams:
            out[name].grid = streams[name].grid
    if "fused" in live:
        out["fused"].teacher = live["fused"].teaching().get(zone.zone_id)
    for name, det in live.items():
        out[name].detector_runs = det.finder.runs
    return out


def _ridge_cv(feats: np.ndarray, truth: np.ndarray) -> float | None:
    if len(truth) < 10:
        return None
    errors = np.empty(len(truth))
    for held in blocked_folds(len(truth)):
        keep = np.ones(len(truth), bool)
        keep[held] = False
        coef, icpt, mean, scale, _ = fit_ridge(feats[keep], truth[keep])
        pred = np.maximum(0.0, ((feats[held] - mean) / scale) @ coef + icpt)
        errors[held] = np.abs(pred - truth[held])
    return round(float(errors.mean()), 4)


def _bands(pred: np.ndarray, truth: np.ndarray, area_m2: float | None,
           edges: list[float]) -> dict[str, dict[str, float]]:
    """Errors per density band (persons/m² with a known area) or per count tercile."""
    out: dict[str, dict[str, float]] = {}
    if area_m2:
        bands = [(lo, hi, f"{lo:g}-{hi:g}/m2" if hi != float("inf") else f">={lo:g}/m2")
                 for lo, hi in DENSITY_BANDS]
        value = truth / area_m2
    else:
        lims = [-np.inf, *edges, np.inf]
        bands = [(lims[i], lims[i + 1], f"count tercile {i + 1}") for i in range(3)]
        value = truth
    for lo, hi, label in bands:
        sel = (value >= lo) & (value < hi)
        if sel.any():
            err = pred[sel] - truth[sel]
            out[label] = {"frames": int(sel.sum()), "mae": round(float(np.abs(err).mean()), 4),
                          "mean_rel_error": round(float(
                              (np.abs(err) / np.maximum(truth[sel], 1.0)).mean()), 4)}
    return out


def evaluate(setup: EvalSetup, progress: Callable[[int, int], None] | None = None) -> dict:
    """Run the protocol; return the report (per detector scores and series for plots)."""
    truth = read_truth(setup.truth_path, setup.zone, setup.native_shape)
    numbers = sorted(n for n in truth if n > setup.warmup and (
        setup.limit is None or n <= setup.limit))
    if setup.train_frames < 0:
        raise UsageError("--train-frames must be 0 or more")
    train = pick_train(numbers, setup.train_frames, setup.train_pick)
    if 0 < len(train) < 5:
        raise UsageError(f"need 0 or >= 5 calibration frames; got {len(train)}")
    train_set = set(train)
    test = [n for n in numbers if n not in train_set]
    if not test:
        raise UsageError("no labelled frame left to score")
    labelled = set(numbers)
    hog_frames = {n for n in numbers if n in train_set or n % setup.hog_stride == 0}
    collected = _collect(setup, labelled, train_set, hog_frames, max(numbers), progress)
    y_train = np.array([truth[n] for n in train], dtype=float)
    y_test_all = {n: truth[n] for n in test}
    oracle = not train
    constant = float(np.mean(list(y_test_all.values()))) if oracle else float(y_train.mean())
    edges = list(np.percentile(list(y_test_all.values()), [100 / 3, 200 / 3]))
    report: dict[str, Any] = {
        "source": setup.source, "truth": setup.truth_path, "train_frames": len(train),
        "train_pick": setup.train_pick if train else None, "test_frames": len(test),
        "warmup_frames": setup.warmup, "constant_is_oracle": oracle, "detectors": {},
        "series": {"frame": test, "truth": [truth[n] for n in test]},
    }
    const_cv = None
    if len(train) >= 4:
        const_cv = fit_correction(np.zeros(len(train)), y_train).constant_cv_mae
    detectors: dict[str, dict] = {}
    series: dict[str, dict] = {}
    for name, col in collected.items():
        frames = [n for n in test if n in col.raw]
        if not frames:
            detectors[name] = {"skipped": f"never counted: its background was still being "
                               f"built after {max(numbers)} frames; give --warmup N with "
                               "longer footage (a live camera withholds counts meanwhile)"}
            continue
        result, pred = _fit_and_predict(name, col, train, y_train, frames, setup)
        if result is None:
            detectors[name] = {"skipped": pred}
            continue
        y = np.array([truth[n] for n in frames])
        base = float(np.abs(constant - y).mean())
        res: dict[str, Any] = scores(pred, y)
        skill = 1.0 - res["mae"] / base if base > 0 else 0.0
        spread = float(np.std(pred))
        collapsed = spread < COLLAPSE_RATIO * max(float(np.std(y)), 1e-9) or (
            name in COUNTERS and not any(
                float(np.atleast_1d(col.raw[n])[0]) > 0 for n in [*train, *frames]
                if n in col.raw))
        res |= result | {
            "skill": round(skill, 4), "constant_mae": round(base, 4),
            "beats_constant": skill > 0, "collapsed": bool(collapsed),
            "ms_per_frame": round(1000 * col.seconds / max(1, col.calls), 3),
            "frames": len(frames), "bands": _bands(pred, y, setup.zone.area_m2, edges)}
        if col.teacher is not None:
            res["teacher"] = col.teacher
        if col.detector_runs is not None:
            res["detector_runs"] = col.detector_runs
        if col.held and (col.held.released or col.held.not_kept):  # labelled while warming up
            res |= {"calibration_deferred": len(col.held.released),
                    "calibration_not_kept": col.held.not_kept}
        detectors[name] = res
        series[name] = {"frame": frames, "count": [round(float(p), 3) for p in pred]}
    y_all = np.array([truth[n] for n in test])
    detectors["constant"] = {**scores(np.full(len(y_all), constant), y_all), "skill": 0.0,
                             "value": round(constant, 3), "oracle": oracle, "frames": len(test),
                             "cv_mae": const_cv, "ms_per_frame": 0.0, "collapsed": False,
                             "bands": _bands(np.full(len(y_all), constant), y_all,
                                             setup.zone.area_m2, edges)}
    series["constant"] = {"frame": test, "count": [round(constant, 3)] * len(test)}
    report["detectors"] = detectors
    report["series"] |= series
    report["recommended"], report["recommended_because"] = recommend(detectors, const_cv)
    return report


def _fit_and_predict(name: str, col: _Collected, train: list[int], y_train: np.ndarray,
                     frames: list[int], setup: EvalSetup) -> tuple[dict | None, Any]:
    """(extra report fields, test predictions), or (None, why it was skipped)."""
    if name in COUNTERS:
        fit_rows = [i for i, n in enumerate(train) if n in col.raw]
        # Geometry gives (raw count, new-edge length) per frame, HOG a count.
        x_test = np.array([np.atleast_1d(col.raw[n]) for n in frames], dtype=float)
        x = np.array([np.atleast_1d(col.raw[train[i]]) for i in fit_rows],
                     dtype=float).reshape(-1, x_test.shape[1])
        second = x_test.shape[1] > 1
        released = set(col.held.released) if col.held else set()
        deferred = np.array([train[i] in released for i in fit_rows], bool)
        corr, used = fit_with_deferred(x[:, 0], y_train[fit_rows],
                                       x[:, 1] if second else None, deferred)
        pred = corr.apply(x_test[:, 0], x_test[:, 1] if second else None)
        calibration = {"layout": corr.layout, "slope": round(corr.slope, 4),
                       "offset": round(corr.offset, 4), "edge_weight": round(corr.edge_weight, 5)}
        if deferred.any():
            calibration["deferred_frames_used"] = used
        extra: dict[str, Any] = {"calibration": calibration, "cv_mae": corr.cv_mae}
        if corr.warning:
            extra["warning"] = corr.warning
        return extra, pred
    ready = [i for i, n in enumerate(train) if n in col.raw]  # counted, not warming up
    if len(ready) < 5:
        return None, "needs >= 5 labelled calibration frames (pixel regression)"
    layout = "cells" if name == "background" else "global"
    feats = np.array([col.raw[train[i]] for i in ready])
    y_train = y_train[ready]
    blank = RegressionModel.blank(layout, weight_map=setup.weight_map if layout == "global"
                                  else None)
    meta: dict[str, Any] = {"trained_on": setup.source}
    if layout == "cells":
        meta |= {"grid": col.grid, "zone_id": setup.zone.zone_id}
    model = blank.fitted(feats, y_train, **meta)
    pred = model.predict(np.array([col.raw[n] for n in frames]))
    return {"layout": layout, "alpha": model.alpha, "cv_mae": _ridge_cv(feats, y_train)}, pred


def recommend(detectors: dict[str, dict], const_cv: float | None) -> tuple[str | None, str]:
    """The counter to deploy, judged on calibration frames only."""
    scored = {n: d for n, d in detectors.items() if n != "constant" and "mae" in d}
    if const_cv is None:  # zero labels: only counters that need none can be trusted unseen
        for name, why in (("fused", "the fused counter (person detector + geometry) needs "
                           "no labels"), ("geometry", "the geometry counter needs none")):
            if name in scored and not scored[name]["collapsed"]:
                return name, f"no labelled frames: {why}"
        return None, "no labelled frames and no geometry: nothing can be judged"
    candidates = {n: d["cv_mae"] for n, d in scored.items()
                  if d.get("cv_mae") is not None and not d["collapsed"]}
    if not candidates:
        return "constant", "no counter could be cross-validated on the calibration frames"
    best = min(candidates, key=lambda n: candidates[n])
    if candidates[best] >= const_cv:
        return "constant", (f"no counter beats the constant on the calibration frames "
                            f"(best {best} {candidates[best]:.2f} vs {const_cv:.2f})")
    return best, f"lowest cross-validated MAE on the calibration frames ({candidates[best]:.2f})"
