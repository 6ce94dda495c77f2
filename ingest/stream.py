"""Network and file video through PyAV, decoding only what sampling needs.

At 1 sample per second a 25 fps camera would cost 25 full decodes per sample if every
frame were decoded. Two modes avoid that:

- ``keyframe``: non-key packets never reach the decoder (and the decoder skips them
  anyway, ``skip_frame=NONKEY``); a keyframe is decoded only when a sample is due.
  Right when keyframes come at least as often as samples are wanted.
- ``all``: every packet is decoded (P-frames need their references) but pixels are
  converted and scaled only for the frames that are sampled.

``auto`` measures the stream's keyframe interval on the first keyframes and picks
``keyframe`` when it is at most 1.5 sample periods, else ``all``; the choice is
reported in the camera's health. Scaling happens inside the pixel-format conversion
(swscale), so a 720p frame is never materialised at full size in BGR.
Every open and read has a timeout: a stalled socket raises instead of hanging.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

import av
import numpy as np

from crowdwatch.errors import SourceError
from crowdwatch.ingest.sources import Frame
from crowdwatch.util.pacing import Pacer
from crowdwatch.util.redact import redact_url

log = logging.getLogger("crowdwatch.ingest")
av.logging.set_level(av.logging.ERROR)

KEYFRAME_GAPS = 5  # recent keyframe gaps the interval estimate uses


class StreamSource:
    """RTSP, HTTP(S) (including MJPEG) and video files via FFmpeg (PyAV)."""

    def __init__(
        self,
        url: str,
        sample_hz: float,
        decode: str = "auto",
        out_width: int | None = 640,
        open_timeout: float = 10.0,
        read_timeout: float = 10.0,
        realtime: bool = True,
        loop: bool = False,
        pair_gap: float = 0.0,
    ) -> None:
        self.url = url
        self.pair_gap = pair_gap  # > 0: decode each sample's follower this much later
        self.safe_url = redact_url(url)
        self.sample_hz = sample_hz
        self.requested = decode
        self.out_width = out_width
        self.open_timeout = open_timeout
        self.read_timeout = read_timeout
        self.loop = loop
        self.live = url.startswith(("rtsp://", "rtsps://", "http://", "https://"))
        self.realtime = realtime and not self.live  # live streams are paced by the camera
        self.seq = 0
        self.mode = decode if decode != "auto" else "keyframe"
        self.keyframe_interval: float | None = None
        self.packets = 0
        self.decoded = 0
        self._open()

    # ---- opening ---------------------------------------------------------------------------
    def _open(self) -> None:
        options = {}
        if self.url.startswith(("rtsp://", "rtsps://")):
            options = {"rtsp_transport": "tcp", "timeout": str(int(self.read_timeout * 1e6))}
        elif self.live:
            options = {"rw_timeout": str(int(self.read_timeout * 1e6)), "reconnect": "0"}
        try:
            self.container = av.open(self.url, options=options,
                                     timeout=(self.open_timeout, self.read_timeout))
        except (av.FFmpegError, OSError) as exc:
            raise SourceError(f"{self.safe_url}: cannot open: {_reason(exc)}") from None
        if not self.container.streams.video:
            self.container.close()
            raise SourceError(f"{self.safe_url}: no video stream")
        self.stream = self.container.streams.video[0]
        # As a float once: Fraction arithmetic per packet costs ~0.2 ms per sample.
        self._time_base = float(self.stream.time_base) if self.stream.time_base else None
        self.ctx = self.stream.codec_context
        # One decoding thread: crowdwatch runs one process per core, many cameras each.
        self.ctx.thread_count = 1
        if self.mode == "keyframe":
            # Keyframes decoded alone feed no later frame, so deblocking only polishes
            # pixels that are then scaled down to detector size: skip it (~25 % faster).
            # Set before the decoder opens; a switch to `all` reopens without it.
            self.ctx.options = {"skip_loop_filter": "all"}
        self._keyframe_times: list[float] = []
        self._packets = self.container.demux(self.stream)
        self._next_due: float | None = None
        self._start_wall = time.time()
        self._pacer = Pacer()
        self._t0: float | None = None
        self._reopen_as_all = False
        self._set_mode(self.mode)

    def _reopen_all(self, rel: float) -> None:
        """Reopen the stream decoding every frame, resuming where this one was."""
        interval, keyframes = self.keyframe_interval, self._keyframe_times
        next_due, start_wall, pacer = self._next_due, self._start_wall, self._pacer
        t0 = self._t0
        self.close()
        self.mode = "all"
        self._open()
        self.keyframe_interval, self._keyframe_times = interval, keyframes
        self._start_wall, self._pacer = start_wall, pacer
        if not self.live:
            self.container.seek(int(rel / self.stream.time_base),  # type: ignore[operator]
                                stream=self.stream,
                                backward=True, any_frame=False)
            self._t0 = 0.0
        else:
            self._t0 = t0  # live times are the wall clock since the first open
        self._next_due = next_due

    def _set_mode(self, mode: str) -> None:
        self.mode = mode
        self.ctx.skip_frame = "NONKEY" if mode == "keyframe" else "DEFAULT"

    # ---- reading ---------------------------------------------------------------------------
    def _packet_time(self, packet: av.Packet) -> float | None:
        pts = packet.pts if packet.pts is not None else packet.dts
        if pts is None or self._time_base is None:
            return None
        return pts * self._time_base

    def _learn_keyframes(self, t: float) -> None:
        """Re-estimate the keyframe interval at each keyframe and pick the decode mode.

        Called before the keyframe is decoded, so switching to ``all`` starts decoding at
        a keyframe and never meets a P-frame whose references were skipped.
        """
        self._keyframe_times.append(t)
        del self._keyframe_times[: -(KEYFRAME_GAPS + 1)]
        if len(self._keyframe_times) < 2:
            return
        self.keyframe_interval = float(np.median(np.diff(self._keyframe_times)))
        if self.requested != "auto":
            return
        want = "keyframe" if self.keyframe_interval <= 1.5 / self.sample_hz else "all"
        if want != self.mode:
            log.info("camera stream %s: keyframes every %.2fs, decoding %s frames",
                     self.safe_url, self.keyframe_interval, want)
            if want == "all" and self.decoded:
                self._reopen_as_all = True  # P-frames need the deblocking filter back
            else:
                self._set_mode(want)

    def _packets_iter(self) -> Iterator[av.Packet]:
        try:
            for packet in self._packets:
                self.packets += 1
                yield packet
        except (av.FFmpegError, OSError) as exc:
            raise SourceError(f"{self.safe_url}: read failed: {_reason(exc)}") from None

    def read(self) -> Frame | None:
        """The next due sample, or None at the end of a file (without ``loop``)."""
        period = 1.0 / self.sample_hz
        for packet in self._packets_iter():
            if packet.size == 0:
                continue  # flush packet at end of stream
            # Live streams are sampled on the wall clock (their timestamps may assume a
            # frame rate the camera does not keep); files on their own timestamps.
            t = None if self.live else self._packet_time(packet)
            if t is None:
                t = time.monotonic() - self._pacer.start
            if self._t0 is None:
                self._t0 = t
            rel = t - self._t0
            if packet.is_keyframe:
                self._learn_keyframes(rel)
                if self._reopen_as_all:
                    self._reopen_all(rel)
                    return self.read()
            due = self._next_due is None or rel + 1e-6 >= self._next_due
            if self.mode == "keyframe" and not packet.is_keyframe:
                continue
            if self.mode == "keyframe" and not due:
                continue
            try:
                frames = packet.decode()
            except av.FFmpegError as exc:
                log.debug("decode error on %s: %s", self.safe_url, _reason(exc))
                continue
            self.decoded += len(frames)
            if not due or not frames:
                continue
            image = self._to_bgr(frames[-1])
            self._next_due = (rel // period + 1) * period if self._next_due is None else max(
                self._next_due + period, (rel // period + 1) * period)
            follower, follower_dt = self._follower(rel)
            frame = self._emit(rel, image)
            frame.follower, frame.follower_dt = follower, follower_dt
            return frame
        if self.live:
            raise SourceError(f"{self.safe_url}: stream ended")  # reconnect, never give up
        if self.loop and self.seq > 0:
            self.close()
            self._open()
            return self.read()
        return None

    def _follower(self, rel: float) -> tuple[np.ndarray | None, float]:
        """The first frame ``pair_gap`` or more after the sample at ``rel``, for speed and
        flow. The frames right after a sample refer to it, so even keyframe-only decoding
        can decode them: it decodes everything until the follower, then skips again."""
        if self.pair_gap <= 0:
            return None, 0.0
        self.ctx.skip_frame = "DEFAULT"
        try:
            for packet in self._packets_iter():
                if packet.size == 0:
                    continue
                try:
                    frames = packet.decode()
                except av.FFmpegError:
                    continue
                self.decoded += len(frames)
                if not frames:
                    continue
                if self.live or frames[-1].time is None or self._t0 is None:
                    later = time.monotonic() - self._pacer.start - (self._t0 or 0.0)
                else:
                    later = float(frames[-1].time) - self._t0
                gap = later - rel
                if gap + 1e-6 >= self.pair_gap:
                    return (self._to_bgr(frames[-1]), gap) if gap <= 4 * self.pair_gap else (
                        None, 0.0)
        finally:
            self._set_mode(self.mode)
        return None, 0.0

    def _to_bgr(self, frame: av.VideoFrame) -> np.ndarray:
        if self.out_width and frame.width > self.out_width:
            height = max(2, round(frame.height * self.out_width / frame.width / 2) * 2)
            return frame.reformat(width=self.out_width, height=height, format="bgr24",
                                  interpolation="AREA").to_ndarray()
        return frame.to_ndarray(format="bgr24")

    def _emit(self, rel: float, image: np.ndarray) -> Frame:
        if self.live:
            ts = time.time()
        else:
            if self.realtime:
                self._pacer.wait_until(rel)
            ts = self._start_wall + rel
        frame = Frame(self.seq, ts, image)
        self.seq += 1
        return frame

    def close(self) -> None:
        with contextlib.suppress(av.FFmpegError, OSError, AttributeError):
            self.container.close()


def _reason(exc: BaseException) -> str:
    """FFmpeg error text without any URL in it (URLs can carry credentials)."""
    text = getattr(exc, "strerror", None) or type(exc).__name__
    return str(text)
