"""Few-shot calibration: a handful of labelled frames corrects a counter, never replaces it.

With ≤ 30 labels, hundreds of free weights learn the labelled frames by heart. Here a
counter's raw output (the zero-label geometry count, or HOG detections) gets at most
two numbers: a scale, or a scale and an offset; with a second label-free measurement
(the geometry counter's new-edge length) and ≥ 10 labels, a third: that measurement's
weight. Which of those (or none, or giving up for the constant) is chosen by blocked
cross-validation on the labelled frames, and that cross-validated error is reported as
the expected error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

LAYOUTS = ("none", "scale", "affine", "edges", "constant")
MIN_FRAMES_FOR_EDGES = 10  # three numbers need a few more frames than two
# Live frames enough to calibrate on without frames measured after the fact (few-shot budget).
ENOUGH_LIVE_FRAMES = 30
# A fit maps (x, y) to (slope, offset, edge_weight); x is N×2: raw, second measurement.
Fit = Callable[[np.ndarray, np.ndarray], tuple[float, float, float]]


@dataclass(frozen=True)
class Correction:
    layout: str  # one of LAYOUTS
    slope: float
    offset: float
    cv_mae: float | None  # expected error (blocked cross-validation), None without labels
    constant_cv_mae: float | None
    warning: str | None = None
    edge_weight: float = 0.0  # people per unit of the second measurement ("edges")

    def apply(self, raw: np.ndarray, edges: np.ndarray | None = None) -> np.ndarray:
        out = self.slope * np.asarray(raw, dtype=float) + self.offset
        if self.edge_weight:
            if edges is None:
                raise ValueError("this correction weighs the new-edge length: pass edges")
            out = out + self.edge_weight * np.asarray(edges, dtype=float)
        return np.maximum(0.0, out)


def _none(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    return 1.0, 0.0, 0.0


def _scale(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    raw = x[:, 0]
    denom = float(raw @ raw)
    return (float(raw @ y) / denom if denom > 1e-9 else 1.0), 0.0, 0.0


def _affine(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    raw = x[:, 0]
    if np.ptp(raw) < 1e-9:
        return 0.0, float(y.mean()), 0.0
    slope, offset = np.polyfit(raw, y, 1)
    return float(slope), float(offset), 0.0


def _edges(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least squares on raw and edges, both weights kept non-negative (more of either
    never means fewer people); a weight that would go negative drops its feature."""
    design = np.column_stack([x, np.ones(len(y))])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    if coef[0] >= 0 and coef[1] >= 0:
        return float(coef[0]), float(coef[2]), float(coef[1])
    fits = []
    for col in (0, 1):
        if np.ptp(x[:, col]) < 1e-9:
            continue
        slope, offset = np.polyfit(x[:, col], y, 1)
        slope = max(0.0, float(slope))
        offset = float(y.mean() - slope * x[:, col].mean())
        err = float(np.abs(slope * x[:, col] + offset - y).mean())
        fits.append((err, (slope, offset, 0.0) if col == 0 else (0.0, offset, slope)))
    return min(fits)[1] if fits else _constant(x, y)


def _constant(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    return 0.0, float(y.mean()), 0.0


FITS: dict[str, Fit] = {"none": _none, "scale": _scale, "affine": _affine,
                        "edges": _edges, "constant": _constant}


def blocked_folds(n: int, k: int = 5) -> list[np.ndarray]:
    """Contiguous blocks of indices: neighbouring frames are near copies, so a random
    split would leak and flatter a model that memorises."""
    k = max(2, min(k, n))
    return [block for block in np.array_split(np.arange(n), k) if len(block)]


def _predict(params: tuple[float, float, float], x: np.ndarray) -> np.ndarray:
    slope, offset, edge_weight = params
    return np.maximum(0.0, slope * x[:, 0] + edge_weight * x[:, 1] + offset)


def cv_mae(fit: Fit, x: np.ndarray, y: np.ndarray) -> float:
    errors = np.empty(len(y))
    for held in blocked_folds(len(y)):
        keep = np.ones(len(y), bool)
        keep[held] = False
        errors[held] = np.abs(_predict(fit(x[keep], y[keep]), x[held]) - y[held])
    return float(errors.mean())


def fit_correction(raw: np.ndarray, truth: np.ndarray,
                   edges: np.ndarray | None = None) -> Correction:
    """Pick and fit the correction with the lowest cross-validated error.

    ``edges`` (the geometry counter's new-edge length per frame) opens the "edges"
    layout once there are ``MIN_FRAMES_FOR_EDGES`` labelled frames.
    """
    y = np.asarray(truth, dtype=float)
    x = np.column_stack([np.asarray(raw, dtype=float),
                         np.zeros(len(y)) if edges is None else np.asarray(edges, dtype=float)])
    if len(y) == 0:
        return Correction("none", 1.0, 0.0, None, None)
    if len(y) < 4:  # too few to cross-validate: a scale is the least that can go wrong
        slope, offset, _ = _scale(x, y)
        return Correction("scale", slope, offset, None, None,
                          f"only {len(y)} labelled frames: scale fitted without validation")
    tried = [n for n in LAYOUTS if n != "edges" or (
        edges is not None and len(y) >= MIN_FRAMES_FOR_EDGES)]
    errors = {name: cv_mae(FITS[name], x, y) for name in tried}
    # Ties go to the simpler layout (LAYOUTS order), so noise never buys a parameter.
    best = min((n for n in tried if n != "constant"),
               key=lambda name: (round(errors[name], 6), LAYOUTS.index(name)))
    warning = None
    if errors[best] >= errors["constant"]:
        warning = (f"the counter does not beat a constant on the labelled frames "
                   f"(cross-validated MAE {errors[best]:.2f} vs {errors['constant']:.2f}); "
                   "check the geometry and the zone, or label frames that differ more")
        best = "constant"
    slope, offset, edge_weight = FITS[best](x, y)
    return Correction(best, slope, offset, round(errors[best], 4),
                      round(errors["constant"], 4), warning, edge_weight)


def fit_with_deferred(raw: np.ndarray, truth: np.ndarray, edges: np.ndarray | None,
                      deferred: np.ndarray) -> tuple[Correction, bool]:
    """:func:`fit_correction`, deciding whether the frames marked ``deferred`` (labelled
    while the background was being built, measured once it was ready) join the fit.

    They are measured the same way, but a scene drifts (light, things moved), and frames
    from before the counting started can pull the fit away from the frames it will
    count. Measured on Mall: fitting frames 1-800 predicted 801-1200 with MAE 2.19, the
    432 of them counted live 2.01; but 400 labels of which 32 were live gave 4.81 alone
    and 2.58 with the deferred ones. A cross-validated choice on the live frames cannot
    see that drift (it picked the wrong side both times), so the rule is plain: deferred
    frames join when the live ones are the smaller part of the labels (the labelled span
    was mostly warm-up, and the live frames alone are a thin slice of it) or fewer than
    ``ENOUGH_LIVE_FRAMES``, the few-shot budget. Returns (correction, whether deferred
    frames were used).
    """
    y = np.asarray(truth, dtype=float)
    raw = np.asarray(raw, dtype=float)
    second = None if edges is None else np.asarray(edges, dtype=float)
    late = ~np.asarray(deferred, bool)
    live, early = int(late.sum()), int((~late).sum())
    use = early > 0 and (live < early or live < ENOUGH_LIVE_FRAMES)
    rows = np.arange(len(y)) if use else np.flatnonzero(late)
    return fit_correction(raw[rows], y[rows], None if second is None else second[rows]), use
