"""Counts versus ground truth on real footage, every detector side by side in one run.

Each detector is calibrated on the first N labelled frames and scored on the rest
only. The background counter sees the frames as a stream (its in-memory background
primed on the calibration frames first); HOG, which is slow, can be scored on every
k-th frame, and the report says how many frames each detector was scored on.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from crowdwatch.detectors.background import RegressionModel
from crowdwatch.detectors.hog import HogDetector
from crowdwatch.detectors.zones import ZoneGeometry
from crowdwatch.errors import UsageError
from crowdwatch.ingest.sources import numbered_frames
from crowdwatch.tools.calibrate import fit_background, read_truth

# Published protocols: fit on the first N frames of these datasets, score on the rest.
KNOWN_PROTOCOLS = {"mall": 800}
DETECTORS = ("background", "background_global", "hog")


def default_train_frames(source: str, labelled: int) -> int:
    parts = {p.lower() for p in Path(source).parts}
    for name, frames in KNOWN_PROTOCOLS.items():
        if name in parts:
            return frames
    return max(5, int(0.2 * labelled))


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
    weight_map: str | None = None
    hog_stride: int = 5
    hog_upscale: float = 1.0
    detectors: tuple[str, ...] = DETECTORS
    limit: int | None = None  # last frame number to use (a short slice for tests)


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


def evaluate(setup: EvalSetup, progress: Callable[[int, int], None] | None = None) -> dict:
    """Run the protocol; return the report (per detector scores and series for plots)."""
    truth = read_truth(setup.truth_path, setup.zone, setup.native_shape)
    numbers = sorted(n for n in truth if setup.limit is None or n <= setup.limit)
    train = [n for n in numbers if n <= setup.train_frames]
    test = [n for n in numbers if n > setup.train_frames]
    if len(train) < 5 or not test:
        raise UsageError(f"need >= 5 calibration and >= 1 test frames; got {len(train)} "
                         f"and {len(test)} with --train-frames {setup.train_frames}")
    last = max(numbers)
    n_background = sum(d in setup.detectors for d in ("background", "background_global"))
    total = n_background * (setup.train_frames * 2 + (last - setup.train_frames)) + (
        last if "hog" in setup.detectors else 0)
    done = [0]

    def tick() -> None:
        done[0] += 1
        if progress:
            progress(done[0], total)

    report: dict = {"source": setup.source, "truth": setup.truth_path,
                    "train_frames": len(train), "test_frames": len(test), "detectors": {},
                    "series": {"frame": test, "truth": [truth[n] for n in test]}}
    for name in ("background", "background_global"):
        if name in setup.detectors:
            layout = "cells" if name == "background" else "global"
            report["detectors"][name], report["series"][name] = _eval_background(
                setup, layout, truth, train, test, tick)
    if "hog" in setup.detectors:
        report["detectors"]["hog"], report["series"]["hog"] = _eval_hog(
            setup, truth, train, test, tick)
    return report


def _eval_background(setup: EvalSetup, layout: str, truth: dict[int, float], train: list[int],
                     test: list[int], tick: Callable[[], None]) -> tuple[dict, dict]:
    blank = RegressionModel.blank(layout, weight_map=setup.weight_map if layout == "global"
                                  else None)
    prime = numbered_frames(setup.source, stop=setup.train_frames)
    labelled = numbered_frames(setup.source, stop=setup.train_frames)
    model, _, detector = fit_background(blank, prime, labelled, setup.zone,
                                        {n: truth[n] for n in train}, tick,
                                        trained_on=setup.source)
    preds, elapsed = {}, 0.0
    test_set = set(test)
    for number, image in numbered_frames(setup.source, start=setup.train_frames + 1,
                                         stop=max(test)):
        started = time.perf_counter()
        (count, _), = detector.count(image, [setup.zone]).values()
        elapsed += time.perf_counter() - started
        if number in test_set:
            preds[number] = count
        tick()
    pred = np.array([preds[n] for n in test])
    result: dict[str, Any] = scores(pred, np.array([truth[n] for n in test]))
    result |= {"ms_per_frame": round(1000 * elapsed / len(preds), 3), "frames": len(test),
               "layout": layout, "alpha": model.alpha}
    return result, {"frame": test, "count": [round(float(p), 3) for p in pred],
                    "model": dataclasses.asdict(model)}


def _eval_hog(setup: EvalSetup, truth: dict[int, float], train: list[int], test: list[int],
              tick: Callable[[], None]) -> tuple[dict, dict]:
    detector = HogDetector(upscale=setup.hog_upscale)
    raw: dict[int, float] = {}
    elapsed = 0.0
    scored = {n for n in train + test if n % setup.hog_stride == 0}
    for number, image in numbered_frames(setup.source, stop=max(test)):
        if number in scored:
            started = time.perf_counter()
            (count, _), = detector.count(image, [setup.zone]).values()
            elapsed += time.perf_counter() - started
            raw[number] = count
        tick()
    fit_rows = [n for n in train if n in raw]
    x = np.array([raw[n] for n in fit_rows])
    y = np.array([truth[n] for n in fit_rows])
    # Linear calibration of detections to counts (HOG misses a steady share of people).
    slope, offset = np.polyfit(x, y, 1) if np.ptp(x) > 0 else (0.0, float(y.mean()))
    frames = [n for n in test if n in raw]
    pred = np.maximum(0.0, slope * np.array([raw[n] for n in frames]) + offset)
    result: dict[str, Any] = scores(pred, np.array([truth[n] for n in frames]))
    result |= {"ms_per_frame": round(1000 * elapsed / max(1, len(raw)), 3),
               "frames": len(frames), "calibration": {"slope": round(float(slope), 4),
                                                      "offset": round(float(offset), 4)}}
    return result, {"frame": frames, "count": [round(float(p), 3) for p in pred]}


def plot_report(report: dict, path: str | Path) -> None:
    """Count and truth over time per detector, on the test frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = report["series"]
    fig, ax = plt.subplots(figsize=(12, 4.5))
    ax.plot(series["frame"], series["truth"], color="black", lw=1.2, label="truth")
    for name, det in report["detectors"].items():
        s = series[name]
        ax.plot(s["frame"], s["count"], lw=0.9, alpha=0.85,
                label=f"{name} (MAE {det['mae']:.2f}, {det['frames']} frames)",
                marker="." if det["frames"] < len(series["frame"]) else None)
    ax.set_xlabel("frame")
    ax.set_ylabel("people")
    ax.set_title(f"crowdwatch eval: {Path(report['source']).name} "
                 f"(calibrated on {report['train_frames']} frames)")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
