"""The background a busy place shows least often but most alike: a per-pixel mode.

A median background needs the floor visible at a pixel in more than half the samples.
Where a crowd gathers (a school gate at opening time, a queue, a station square at
rush hour) people cover the same pixels most of the time, and the median becomes
crowd-coloured mush: the standing crowd vanishes into the background and is not
counted. But people differ from sample to sample while the floor is the same every
time it shows, so the most *supported* value (the sample that most other samples
agree with, within the noise) is the floor even when it shows in a minority of
samples. The value kept is the mean of the samples that agree, which also averages
the noise away.
"""

from __future__ import annotations

import cv2
import numpy as np

from crowdwatch.detectors.foreground import MAX3_HALF_NORMAL_P30, channel_max

# Below this many grey levels two samples always agree (JPEG and sensor noise).
MIN_TOL = 12.0


def max_channel_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = cv2.absdiff(a, b)
    return d if d.ndim == 2 else channel_max(d)


def pair_noise(frames: list[np.ndarray]) -> float:
    """σ of the difference between two samples where nothing moved (grey levels).

    The 30th percentile of the per-pixel difference of sample pairs: most pixels of any
    pair are background (even in a crowd, people move between samples), so a low
    percentile measures noise and light flicker, not people.
    """
    if len(frames) < 2:
        return 0.0
    step = max(1, len(frames) // 4)
    values = [float(np.percentile(max_channel_diff(frames[i], frames[i - step]), 30))
              for i in range(step, len(frames), step)]
    return float(np.median(values)) / MAX3_HALF_NORMAL_P30


def modal_u8(frames: list[np.ndarray], candidates: int = 16, tol_sigmas: float = 3.0,
             min_tol: float = MIN_TOL, max_tol: float = 40.0,
             noise: float | None = None) -> np.ndarray:
    """Per-pixel most-supported value of same-shaped uint8 images.

    ``candidates`` samples (spread over the buffer) are tried at every pixel; each
    scores the number of samples within the tolerance of it in every channel
    (``tol_sigmas`` pair-noise sigmas, clamped; ``noise``: the frames' ``pair_noise``
    when the caller has it). The first best candidate wins, and the samples that agree
    with it are averaged. Cost: candidates × samples cheap image operations to score,
    one more pass over the samples to average, once per recompute, not per frame.
    """
    n = len(frames)
    if n <= 2:
        return frames[-1].copy()
    sigma = pair_noise(frames) if noise is None else noise
    tol = min(max_tol, max(min_tol, tol_sigmas * sigma))
    picks = np.unique(np.linspace(0, n - 1, min(candidates, n)).round().astype(int))
    first = frames[0]
    plane = first.shape[:2]
    # Differences are integers: d <= tol exactly when d <= floor(tol), in every channel.
    limit = float(np.floor(tol))
    channels = 1 if first.ndim == 2 else first.shape[2]
    low, high = (0.0,) * channels, (limit,) * channels
    diff = np.empty(first.shape, np.uint8)
    agree = np.empty(plane, np.uint8)
    # 16-bit counts: a buffer may hold more than 255 samples (cv2.add saturates).
    support = np.zeros(plane, np.uint16)
    one = np.ones(plane, np.uint16)
    best = np.full(plane, -1, np.int32)
    winner = np.zeros(plane, np.int16)
    for k, c in enumerate(picks):
        cand = frames[c]
        support.fill(0)
        for frame in frames:
            cv2.absdiff(frame, cand, dst=diff)
            cv2.inRange(diff, low, high, dst=agree)
            cv2.add(support, one, dst=support, mask=agree)
        count = support.astype(np.int32)
        better = count > best
        best[better] = count[better]
        winner[better] = k
    mode = np.empty_like(first)
    for k, c in enumerate(picks):
        won = winner == k
        np.copyto(mode, frames[c], where=won[..., None] if first.ndim == 3 else won)
    total = np.zeros(first.shape, np.float32)
    for frame in frames:  # the winner's supporters, summed in sample order
        cv2.absdiff(frame, mode, dst=diff)
        cv2.inRange(diff, low, high, dst=agree)
        cv2.accumulate(frame, total, mask=agree)
    out = total / (best[..., None] if first.ndim == 3 else best)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
