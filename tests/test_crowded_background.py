"""A crowd that gathers and stays is counted, not absorbed: background and foreground
when people cover the zone most of the time (the failure that made a school-gate
crowd vanish at its peak)."""

from __future__ import annotations

import numpy as np

from crowdwatch.detectors.background import order_statistic_u8
from crowdwatch.detectors.background_mode import modal_u8
from crowdwatch.detectors.foreground import ForegroundSettings, foreground_mask


def floor_image(rng: np.random.Generator, shape: tuple[int, int] = (120, 200)) -> np.ndarray:
    base = np.full((*shape, 3), (196, 190, 180), np.float32)  # light paving
    base += rng.normal(0, 8, shape)[:, :, None]  # paving texture
    return np.clip(base, 0, 255).astype(np.uint8)


def with_people(rng: np.random.Generator, img: np.ndarray, region: tuple[slice, slice],
                share: float, size: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Random-coloured figures covering about ``share`` of ``region``; (frame, mask)."""
    out = img.copy()
    covered = np.zeros(img.shape[:2], bool)
    ys, xs = region
    for y in range(ys.start, ys.stop, size):
        for x in range(xs.start, xs.stop, size):
            if rng.random() < share:
                out[y:y + size, x:x + size] = rng.integers(20, 235, 3)
                covered[y:y + size, x:x + size] = True
    return out, covered


def noisy(rng: np.random.Generator, img: np.ndarray, sigma: float = 4.0) -> np.ndarray:
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def test_mode_background_keeps_the_floor_where_people_stand_most_of_the_time():
    rng = np.random.default_rng(3)
    floor = floor_image(rng)
    region = (slice(30, 90), slice(50, 150))
    frames = []
    for i in range(60):
        share = 0.8 if i % 10 < 7 else 0.0  # the crowd is there 70 % of the time
        frames.append(noisy(rng, with_people(rng, floor, region, share)[0]))
    inside = (slice(30, 90), slice(50, 150))
    mode_err = np.abs(modal_u8(frames).astype(float) - floor)[inside].mean()
    median_err = np.abs(order_statistic_u8(frames, 30).astype(float) - floor)[inside].mean()
    assert mode_err < 4.0, mode_err
    assert median_err > 3 * mode_err, (median_err, mode_err)  # why the median is not used


def test_a_crowd_filling_the_zone_is_still_foreground_under_a_light_change():
    rng = np.random.default_rng(4)
    floor = floor_image(rng)
    zone = np.zeros(floor.shape[:2], np.uint8)
    zone[30:90, 50:150] = 1
    frame, covered = with_people(rng, floor, (slice(30, 90), slice(50, 150)), 0.85, size=8)
    frame = noisy(rng, np.clip(frame * 1.12, 0, 255))  # the sun comes out
    fg = foreground_mask(frame, noisy(rng, floor), zone, ForegroundSettings()) > 0
    inside = zone > 0
    hit = fg[covered & inside].mean()
    false = fg[~covered & inside].mean()
    assert hit > 0.8, hit
    assert false < 0.1, false
    assert not fg[~inside].any()
