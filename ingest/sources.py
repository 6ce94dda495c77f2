"""Frame sources: the simulated scene and anything OpenCV can open (files, image sequences).
Which one a camera URL opens is the source registry's choice (``source_plugin``).

A source yields *samples*, not every frame: at ``sample_hz`` it skips the frames in
between without decoding them (``grab`` without ``retrieve``), since counting
crowds needs a few looks per second and decoding is most of the cost.
Frames stay in memory; nothing here writes pixels anywhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from crowdwatch.errors import SourceError
from crowdwatch.ingest.sim import SimParams, SimScene
from crowdwatch.util.pacing import Pacer
from crowdwatch.util.redact import redact_url

__all__ = ["Frame", "SimSource", "SourceError", "VideoSource", "numbered_frames", "redact_url"]


@dataclass
class Frame:
    seq: int
    ts: float  # capture time, epoch seconds UTC
    image: np.ndarray
    # The frame ``follower_dt`` seconds later, for speed and flow (None: not decoded).
    follower: np.ndarray | None = None
    follower_dt: float = 0.0


class SimSource:
    """The built-in synthetic scene, sampled at ``sample_hz``; knows the true count."""

    mode = "sim"

    def __init__(
        self,
        url: str,
        sample_hz: float,
        realtime: bool = True,
        start_ts: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        pair_gap: float = 0.0,
    ) -> None:
        self.params = SimParams.from_url(url)
        # Rendered after each sample, this much later (the scene's step, 0.1 s, at least).
        self.pair_gap = 0.0 if pair_gap <= 0 else max(SimScene.STEP_S,
                                                      round(pair_gap / SimScene.STEP_S)
                                                      * SimScene.STEP_S)
        self.scene = SimScene(self.params)
        self.sample_hz = sample_hz
        self.realtime = realtime
        self.sleep = sleep
        self.start_ts = time.time() if start_ts is None else start_ts
        self._pacer = Pacer(sleep=sleep)
        self.seq = 0

    def read(self) -> Frame | None:
        t = self.seq / self.sample_hz
        if self.realtime:
            self._pacer.wait_until(t)
        self.scene.advance_to(t)
        frame = Frame(self.seq, self.start_ts + t, self.scene.render())
        self.seq += 1
        if self.pair_gap and self.pair_gap < 1.0 / self.sample_hz:
            self.scene.advance_to(t + self.pair_gap)
            frame.follower, frame.follower_dt = self.scene.render(), self.pair_gap
        return frame

    def close(self) -> None:
        pass


class VideoSource:
    """A video file, image sequence (``frames/seq_%06d.jpg``) or stream OpenCV can open."""

    mode = "opencv"

    def __init__(
        self,
        url: str,
        sample_hz: float,
        loop: bool = False,
        realtime: bool = True,
        fps: float | None = None,
        start_ts: float | None = None,
    ) -> None:
        self.url = url
        self.path = url.removeprefix("file://")
        self.sample_hz = sample_hz
        self.loop = loop
        self.realtime = realtime
        self.start_ts = time.time() if start_ts is None else start_ts
        self._fps_override = fps
        self.cap: cv2.VideoCapture | None = None
        self.seq = 0
        self._frame_no = 0  # frames consumed from the file so far, across loops
        self._open()

    def _open(self) -> None:
        if "%" not in self.path and "://" not in self.path and not Path(self.path).exists():
            raise SourceError(f"{self.path}: no such file")
        cap = cv2.VideoCapture(self.path)
        if not cap.isOpened():
            raise SourceError(f"{redact_url(self.url)}: OpenCV cannot open it")
        self.cap = cap
        fps = self._fps_override or cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 0 < fps < 1000 else 25.0
        self.step = max(1, round(self.fps / self.sample_hz))
        self._pacer = Pacer()
        self._pacer.start = time.monotonic() - self._frame_no / self.fps

    def read(self) -> Frame | None:
        assert self.cap is not None
        for _ in range(self.step - 1):
            if not self.cap.grab():
                break
            self._frame_no += 1
        ok, image = self.cap.read()
        if not ok:
            if not self.loop or self.seq == 0:
                return None
            self.cap.release()
            self._open()
            ok, image = self.cap.read()
            if not ok:
                return None
        t = self._frame_no / self.fps
        self._frame_no += 1
        if self.realtime:
            self._pacer.wait_until(t)
        frame = Frame(self.seq, self.start_ts + t, image)
        self.seq += 1
        return frame

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()


def numbered_frames(source: str, start: int = 1, stop: int | None = None,
                    start_number: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """Every frame of a video file or image-sequence pattern as (1-based number, image).

    Numbers follow the file names of a pattern (``seq_%06d.jpg`` from ``start_number``)
    or the position in a video; frames before ``start`` are skipped without decoding
    where the format allows, and iteration ends after ``stop``.
    """
    if "%" in source:
        number = max(start, start_number)
        while stop is None or number <= stop:
            path = source % number
            if not Path(path).exists():
                if number == max(start, start_number):
                    raise SourceError(f"{path}: no such file (pattern {source})")
                return
            image = cv2.imread(path, cv2.IMREAD_COLOR)
            if image is None:
                raise SourceError(f"{path}: not an image OpenCV can read")
            yield number, image
            number += 1
        return
    if not Path(source).exists():
        raise SourceError(f"{source}: no such file")
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        raise SourceError(f"{source}: OpenCV cannot open it")
    try:
        number = 0
        while stop is None or number < stop:
            number += 1
            if number < start:
                if not cap.grab():
                    return
                continue
            ok, image = cap.read()
            if not ok:
                return
            yield number, image
    finally:
        cap.release()
