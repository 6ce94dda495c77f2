"""Ghosts: where a group stood long enough to become background, and has left.

Any background learnt from the past keeps a group that stood still for most of its
span; when the group leaves, the floor it uncovers differs from that background and
looks like people (a *ghost*) until the background catches up, minutes later. The
samples the background is built from tell the two apart: a ghost's pixels show now what
they showed *before* the group came (an older run of samples agrees with the present,
then a run that does not: the group), while a person who has stopped agrees only with
the latest samples, and a passer-by with none. A foreground blob most of whose pixels
are uncovered floor in that sense is dropped. Nothing here is stored beyond the ring
buffer the background already keeps in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from crowdwatch.detectors.foreground import channel_max, channel_sum


@dataclass(frozen=True)
class GhostSettings:
    older_run: int = 6  # consecutive older samples that must agree with the present
    blob_share: float = 0.8  # a blob is a ghost when this share of its pixels is floor
    tolerance: float = 1.5  # agreement within this many foreground thresholds
    pixels_per_blob: int = 48  # pixels sampled per blob to judge it


class SampleGains:
    """Each buffered sample's overall brightness relative to the background (light
    drifts over the minutes a buffer spans), computed once per sample on a sparse grid."""

    def __init__(self) -> None:
        # id -> (the sample, its gain): the sample is kept to check identity, since a
        # freed sample's id can be reused by a new one before this cache is pruned.
        self._gains: dict[int, tuple[np.ndarray, float]] = {}

    def of(self, frames: list[np.ndarray], background: np.ndarray) -> np.ndarray:
        step = max(1, round((background.shape[0] * background.shape[1] / 2000) ** 0.5))
        grid_bg = channel_sum(background[::step, ::step].astype(np.float32)) + 1.0
        out = []
        for frame in frames:
            known = self._gains.get(id(frame))
            if known is None or known[0] is not frame:
                ratio = channel_sum(frame[::step, ::step].astype(np.float32)) / grid_bg
                known = (frame, float(np.median(ratio)))
                self._gains[id(frame)] = known
            out.append(known[1])
        alive = {id(f) for f in frames}
        self._gains = {k: v for k, v in self._gains.items() if k in alive}
        return np.asarray(out, np.float32)


def uncovered_floor(img: np.ndarray, ys: np.ndarray, xs: np.ndarray,
                    frames: list[np.ndarray], gains: np.ndarray, now_gain: float, tol: float,
                    older_run: int) -> np.ndarray:
    """Boolean per pixel (ys, xs): shows what it showed before the latest run of samples
    that disagreed with it."""
    if not len(ys) or len(frames) < older_run + 1:
        return np.zeros(len(ys), bool)
    now = img[ys, xs].astype(np.float32) / max(now_gain, 0.2)
    # All samples at once, newest first: (samples, pixels, channels).
    scale = np.maximum(np.asarray(gains, np.float32)[::-1], np.float32(0.2))
    flat = ys * img.shape[1] + xs  # np.take on flat pixels gathers ~3x faster
    past = np.stack([frame.reshape(-1, 3).take(flat, axis=0)
                     for frame in reversed(frames)]).astype(np.float32)
    past /= scale[:, None, None]
    past -= now[None]  # in place: (samples, pixels, channels) is the biggest array here
    agree = channel_max(np.abs(past, out=past)) <= tol
    # Only runs older than a disagreeing sample count; the longest such run of agreement.
    counted = agree & np.logical_or.accumulate(~agree, axis=0)
    total = np.cumsum(counted, axis=0, dtype=np.int32)
    at_break = np.maximum.accumulate(np.where(counted, 0, total), axis=0)
    return (total - at_break).max(axis=0) >= older_run


def drop_ghosts(img: np.ndarray, fg: np.ndarray, frames: list[np.ndarray],
                gains: np.ndarray, now_gain: float, threshold: float,
                s: GhostSettings) -> np.ndarray:
    """``fg`` without the blobs that are mostly uncovered floor (see the module doc).

    The share is estimated on at most ``s.pixels_per_blob`` pixels of each blob, spread
    over it, so a packed zone costs no more than a sparse one."""
    n, labels = cv2.connectedComponents(fg, connectivity=8)
    if n <= 1:
        return fg
    ys, xs = np.nonzero(fg)
    ids = labels[ys, xs]
    order = np.argsort(ids, kind="stable")
    sizes = np.bincount(ids, minlength=n)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.arange(len(ids)) - starts[ids[order]]
    step = np.maximum(1, -(-sizes // s.pixels_per_blob))
    picked = order[rank % step[ids[order]] == 0]
    floor = uncovered_floor(img, ys[picked], xs[picked], frames, gains, now_gain,
                            s.tolerance * threshold, s.older_run)
    if not floor.any():
        return fg
    share = np.bincount(ids[picked], weights=floor, minlength=n) / np.maximum(
        np.bincount(ids[picked], minlength=n), 1)
    ghost = share >= s.blob_share
    ghost[0] = False
    out = fg.copy()
    out[ghost[labels]] = 0
    return out
