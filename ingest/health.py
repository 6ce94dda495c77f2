"""Is what a camera sends still a view of the scene? Frozen, dark, covered, blurred, moved.

A camera can deliver frames at full rate and still be useless: an encoder stuck on one
image, a lens covered or sprayed, a camera knocked out of position. Counting on such
frames gives confident nonsense, so these states stop counts and raise alerts.
Every check works on a tiny grey thumbnail kept in memory; the reference view is a
median of the first samples, also in memory only.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from crowdwatch.events import HealthState

THUMB = (64, 36)
FOCUS = (160, 90)


@dataclass
class HealthSettings:
    stale_after: float = 10.0  # identical content this long → stale
    tamper_after: float = 5.0  # a tamper condition must hold this long
    frozen_diff: float = 0.35  # mean abs grey difference under this = same picture
    dark_level: float = 18.0  # mean grey under this = dark or covered
    uniform_std: float = 5.0  # grey spread under this = covered lens / blank
    defocus_ratio: float = 0.25  # sharpness under this share of the reference = blurred
    move_fraction: float = 0.06  # reference shift over this share of the width = moved
    reference_samples: int = 8


@dataclass
class Verdict:
    state: HealthState  # up | stale | tampered
    reason: str = ""


class HealthMonitor:
    """Feed it each sampled frame with its timestamp; it says up, stale or tampered."""

    def __init__(self, settings: HealthSettings | None = None) -> None:
        self.s = settings or HealthSettings()
        self._prev: np.ndarray | None = None
        self._frozen_since: float | None = None
        self._tamper_since: float | None = None
        self._tamper_reason = ""
        self._refs: list[np.ndarray] = []
        self._sharp: list[float] = []
        self.reference: np.ndarray | None = None
        self.reference_sharpness: float | None = None
        self.verdict = Verdict(HealthState.UP)

    def observe(self, image: np.ndarray, ts: float) -> Verdict:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        thumb = cv2.resize(gray, THUMB, interpolation=cv2.INTER_AREA).astype(np.float32)
        frozen = self._prev is not None and float(np.abs(thumb - self._prev).mean()) < (
            self.s.frozen_diff)
        self._prev = thumb
        if frozen:
            self._frozen_since = self._frozen_since if self._frozen_since is not None else ts
        else:
            self._frozen_since = None
        reason = self._tamper_check(gray, thumb, frozen)
        if reason:
            if self._tamper_since is None:
                self._tamper_since = ts
            self._tamper_reason = reason
        else:
            self._tamper_since = None
        if self._tamper_since is not None and ts - self._tamper_since >= self.s.tamper_after:
            self.verdict = Verdict(HealthState.TAMPERED, self._tamper_reason)
        elif self._frozen_since is not None and ts - self._frozen_since >= self.s.stale_after:
            frozen_s = ts - self._frozen_since
            self.verdict = Verdict(HealthState.STALE, f"picture unchanged for {frozen_s:.0f}s")
        else:
            self.verdict = Verdict(HealthState.UP)
        return self.verdict

    def _tamper_check(self, gray: np.ndarray, thumb: np.ndarray, frozen: bool) -> str:
        mean, std = float(thumb.mean()), float(thumb.std())
        if mean < self.s.dark_level:
            return f"view is dark (mean grey {mean:.0f}): lens covered or lights out"
        if std < self.s.uniform_std:
            return f"view is blank (grey spread {std:.1f}): lens covered or sprayed"
        small = cv2.resize(gray, FOCUS, interpolation=cv2.INTER_AREA)
        sharpness = float(cv2.Laplacian(small, cv2.CV_32F).var())
        if self.reference is None:
            if not frozen:
                self._refs.append(thumb)
                self._sharp.append(sharpness)
            if len(self._refs) >= self.s.reference_samples:
                self.reference = np.median(np.stack(self._refs), axis=0)
                self.reference_sharpness = float(np.median(self._sharp))
                self._refs, self._sharp = [], []
            return ""
        if self.reference_sharpness and sharpness < self.s.defocus_ratio * (
                self.reference_sharpness):
            return (f"view is blurred (sharpness {sharpness:.0f} vs {self.reference_sharpness:.0f}"
                    " at start): defocused or lens dirty")
        (dx, dy), response = cv2.phaseCorrelate(self.reference, thumb)
        shift = float(np.hypot(dx, dy))
        if response > 0.2 and shift > self.s.move_fraction * THUMB[0]:
            return f"view moved by {shift / THUMB[0]:.0%} of its width: camera turned or knocked"
        return ""
