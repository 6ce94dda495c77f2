"""Few-shot calibration: a handful of labelled frames corrects a counter, never replaces it.

With ≤ 30 labels, hundreds of free weights learn the labelled frames by heart. Here a
counter's raw output (the zero-label geometry count, or HOG detections) gets at most
two numbers: a scale, or a scale and an offset. Which of those (or none, or giving up
for the constant) is chosen by blocked cross-validation on the labelled frames, and
that cross-validated error is reported as the expected error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

LAYOUTS = ("none", "scale", "affine", "constant")
Fit = Callable[[np.ndarray, np.ndarray], tuple[float, float]]


@dataclass(frozen=True)
class Correction:
    layout: str  # one of LAYOUTS
    slope: float
    offset: float
    cv_mae: float | None  # expected error (blocked cross-validation), None without labels
    constant_cv_mae: float | None
    warning: str | None = None

    def apply(self, raw: np.ndarray) -> np.ndarray:
        return np.maximum(0.0, self.slope * np.asarray(raw, dtype=float) + self.offset)


def _none(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    return 1.0, 0.0


def _scale(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    denom = float(x @ x)
    return (float(x @ y) / denom if denom > 1e-9 else 1.0), 0.0


def _affine(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    if np.ptp(x) < 1e-9:
        return 0.0, float(y.mean())
    slope, offset = np.polyfit(x, y, 1)
    return float(slope), float(offset)


def _constant(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    return 0.0, float(y.mean())


FITS: dict[str, Fit] = {"none": _none, "scale": _scale, "affine": _affine,
                        "constant": _constant}


def blocked_folds(n: int, k: int = 5) -> list[np.ndarray]:
    """Contiguous blocks of indices: neighbouring frames are near copies, so a random
    split would leak and flatter a model that memorises."""
    k = max(2, min(k, n))
    return [block for block in np.array_split(np.arange(n), k) if len(block)]


def cv_mae(fit: Fit, x: np.ndarray, y: np.ndarray) -> float:
    errors = np.empty(len(y))
    for held in blocked_folds(len(y)):
        keep = np.ones(len(y), bool)
        keep[held] = False
        slope, offset = fit(x[keep], y[keep])
        errors[held] = np.abs(np.maximum(0.0, slope * x[held] + offset) - y[held])
    return float(errors.mean())


def fit_correction(raw: np.ndarray, truth: np.ndarray) -> Correction:
    """Pick and fit the correction with the lowest cross-validated error."""
    x = np.asarray(raw, dtype=float)
    y = np.asarray(truth, dtype=float)
    if len(y) == 0:
        return Correction("none", 1.0, 0.0, None, None)
    if len(y) < 4:  # too few to cross-validate: a scale is the least that can go wrong
        slope, offset = _scale(x, y)
        return Correction("scale", slope, offset, None, None,
                          f"only {len(y)} labelled frames: scale fitted without validation")
    errors = {name: cv_mae(fit, x, y) for name, fit in FITS.items()}
    # Ties go to the simpler layout (LAYOUTS order), so noise never buys a parameter.
    best = min(LAYOUTS[:3], key=lambda name: (round(errors[name], 6), LAYOUTS.index(name)))
    warning = None
    if errors[best] >= errors["constant"]:
        warning = (f"the counter does not beat a constant on the labelled frames "
                   f"(cross-validated MAE {errors[best]:.2f} vs {errors['constant']:.2f}); "
                   "check the geometry and the zone, or label frames that differ more")
        best = "constant"
    slope, offset = FITS[best](x, y)
    return Correction(best, slope, offset, round(errors[best], 4),
                      round(errors["constant"], 4), warning)
