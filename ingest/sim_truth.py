"""Exact truth for crowd dynamics in the simulated scene: line crossings each way and
walking speeds, from the people's ground positions at every simulation step.

A crossing follows the project's rule (image coordinates, y down): a person's feet move
``in`` when they pass to the side where (b−a)×(p−a) > 0 for consecutive line points a,
b; ``out`` the other way. Only the sim has this truth: it knows where everyone is.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np


def side_of(a: np.ndarray, b: np.ndarray, p: np.ndarray) -> np.ndarray:
    """(b−a)×(p−a) for points ``p`` (n×2): > 0 on the line's ``in`` side."""
    return (b[0] - a[0]) * (p[:, 1] - a[1]) - (b[1] - a[1]) * (p[:, 0] - a[0])


def crossings(points: np.ndarray, before: np.ndarray, after: np.ndarray) -> tuple[int, int]:
    """(in, out) crossings of a polyline by the moves ``before`` → ``after`` (n×2 each,
    image pixels): a move counts where it passes through a segment, not its extension."""
    n_in = n_out = 0
    for a, b in itertools.pairwise(points):
        s0, s1 = side_of(a, b, before), side_of(a, b, after)
        flipped = np.flatnonzero((s0 <= 0) & (s1 > 0) | (s0 > 0) & (s1 <= 0))
        if not len(flipped):
            continue
        # Where along the move it crosses the infinite line, then where along the segment.
        p0, p1 = before[flipped], after[flipped]
        t = s0[flipped] / (s0[flipped] - s1[flipped])
        hit = p0 + (p1 - p0) * t[:, None]
        seg = b - a
        along = ((hit - a) @ seg) / float(seg @ seg)
        on = (along >= 0) & (along <= 1)
        n_in += int((on & (s1[flipped] > 0)).sum())
        n_out += int((on & (s1[flipped] <= 0)).sum())
    return n_in, n_out


@dataclass
class LineTally:
    """Crossings of one watched line (native image pixels) since it was watched."""

    points: np.ndarray
    n_in: int = 0
    n_out: int = 0
    log: list[tuple[float, str]] = field(default_factory=list)  # (time, "in"|"out")

    def update(self, t: float, before: np.ndarray, after: np.ndarray) -> None:
        n_in, n_out = crossings(self.points, before, after)
        self.n_in += n_in
        self.n_out += n_out
        self.log += [(t, "in")] * n_in + [(t, "out")] * n_out
