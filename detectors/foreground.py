"""Which pixels are people: background difference that ignores light, shadow and noise.

Three things make a raw difference lie on a real camera, and each is handled from the
frame itself, with no per-scene setting:

- *lighting changes* (clouds, lamps, auto-exposure, reflections drifting over a
  floor): the frame is divided by its local brightness ratio to the background, the
  median over a window several people wide, so people (a minority of any window)
  do not count as light;
- *shadows*: a pixel darker than the background by a plain factor, with the same
  chromaticity, is shadow, not foreground (the classic chromaticity/brightness test);
- *sensor noise*: the threshold follows the noise measured on this frame (a low
  percentile of the difference, which background pixels dominate) rather than a fixed
  grey level.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class ForegroundSettings:
    light_window: int = 10  # local light is measured over this % of the frame width
    noise_sigmas: float = 3.0  # threshold = this many noise sigmas ...
    min_threshold: float = 14.0  # ... but never below this (grey levels, 8-bit)
    max_threshold: float = 60.0  # ... nor above
    noise_percentile: float = 30.0  # percentile of |diff| taken as noise
    shadow_ratio: tuple[float, float] = (0.45, 0.93)  # brightness ratio band of a shadow
    shadow_chroma: float = 0.035  # max chromaticity change of a shadow
    open_px: int = 3  # opening removes specks smaller than this
    close_px: int = 5  # closing fills gaps inside a silhouette


# The largest of three channels' |N(0, σ)| has its 30th percentile at 0.97 σ
# (P(|N| < x)³ = 0.3).
_MAX3_HALF_NORMAL_P30 = 0.97


def _chroma(img: np.ndarray) -> np.ndarray:
    total = img.sum(axis=2, keepdims=True) + 1.0
    return img[:, :, :2] / total


def foreground_mask(img: np.ndarray, background: np.ndarray, zone_mask: np.ndarray,
                    s: ForegroundSettings) -> np.ndarray:
    """uint8 0/1 mask of foreground pixels inside ``zone_mask`` (same shape as img)."""
    inside = zone_mask > 0
    f_img = img.astype(np.float32)
    f_bg = background.astype(np.float32)
    g_img = f_img.sum(axis=2)
    g_bg = f_bg.sum(axis=2)
    ratio_u8 = np.clip(g_img / np.maximum(g_bg, 30.0) * 100.0, 0, 255).astype(np.uint8)
    window = s.light_window * img.shape[1] // 100 | 1
    gain = cv2.medianBlur(ratio_u8, max(3, window)).astype(np.float32) * 0.01
    gain = np.maximum(gain, 0.2)
    f_img /= gain[:, :, None]
    g_img /= gain
    diff = np.abs(f_img - f_bg).max(axis=2)
    zone_diff = diff[inside]
    sigma = float(np.percentile(zone_diff, s.noise_percentile)) / _MAX3_HALF_NORMAL_P30 if (
        zone_diff.size) else 0.0
    threshold = min(s.max_threshold, max(s.min_threshold, s.noise_sigmas * sigma))
    fg = (diff > threshold) & inside
    ratio = g_img / np.maximum(g_bg, 1.0)
    shadow = (ratio > s.shadow_ratio[0]) & (ratio < s.shadow_ratio[1])
    if shadow.any():
        chroma_gap = np.abs(_chroma(f_img) - _chroma(f_bg)).max(axis=2)
        fg &= ~(shadow & (chroma_gap < s.shadow_chroma))
    out = fg.astype(np.uint8)
    if s.open_px > 1:
        out = cv2.morphologyEx(out, cv2.MORPH_OPEN, np.ones((s.open_px, s.open_px), np.uint8))
    if s.close_px > 1:
        out = cv2.morphologyEx(out, cv2.MORPH_CLOSE,
                               np.ones((s.close_px, s.close_px), np.uint8))
    return out & inside.astype(np.uint8)
