"""Labelled frames that arrive while a counter's background is still being built.

A background counter withholds counts until its background is ready, as it does live.
Calibration frames are different: an installer labels frames from a camera that has
been running, so a frame labelled during the warm-up is kept (at the counter's work
width, in memory only, up to a size limit) and measured against the background once it
is ready. Without this, a "first N frames" calibration on footage that starts cold
loses most of its frames, or fits counts taken from a background still full of people.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from crowdwatch.detectors.zones import ZoneGeometry


class Measures(Protocol):
    """A background counter that can measure a work-width frame without learning it."""

    @property
    def samples_kept(self) -> int: ...

    @property
    def ready(self) -> bool: ...

    def prime(self, frame: np.ndarray) -> None: ...

    def work_image(self, frame: np.ndarray) -> tuple[np.ndarray, float]: ...

    def measure(self, img: np.ndarray, scale: float, zones: list[ZoneGeometry],
                *, history: int | None = None) -> dict: ...


class HeldFrames:
    """Frames kept for one counter until its background is ready (in memory only)."""

    def __init__(self, limit_mb: float) -> None:
        self.limit = limit_mb * 2**20
        # (frame number, frame at work width, scale, background samples before it)
        self._frames: list[tuple[int, np.ndarray, float, int]] = []
        self._bytes = 0
        self.released: list[int] = []  # frames measured after the background was ready
        self.not_kept = 0  # frames over the memory limit (lost to calibration)

    def prime(self, counter: Measures, number: int, frame: np.ndarray, zone: ZoneGeometry,
              keep: bool) -> list[tuple[int, Any]]:
        """A warm-up frame: feed it to the counter's background, keep it if it is labelled
        (after, so its history ends with it); once the background is ready, the kept
        frames' raw outputs (:meth:`release`), else nothing."""
        counter.prime(frame)
        if keep:
            self.keep(number, counter, frame)
        return self.release(counter, zone) if counter.ready else []

    def keep(self, number: int, counter: Measures, frame: np.ndarray) -> None:
        """Keep a frame the counter has just learnt from (its history ends there)."""
        small, scale = counter.work_image(frame)
        if self._bytes + small.nbytes > self.limit:
            self.not_kept += 1
            return
        self._frames.append((number, small.copy(), scale, counter.samples_kept))
        self._bytes += small.nbytes

    @property
    def waiting(self) -> int:
        """Frames kept and not yet measured."""
        return len(self._frames)

    def release(self, counter: Measures, zone: ZoneGeometry) -> list[tuple[int, Any]]:
        """(frame number, the counter's raw output for the zone), oldest first; empties."""
        out = [(number, counter.measure(small, scale, [zone], history=kept)[zone.zone_id])
               for number, small, scale, kept in self._frames]
        self.released += [number for number, _ in out]
        self._frames, self._bytes = [], 0
        return out
