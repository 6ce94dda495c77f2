"""One camera: capture loop, downscale, privacy mask, detection, events out.

Each camera runs in its own thread under a supervisor loop: a source that fails is
reopened with exponential backoff and jitter, and one broken camera never stops or
slows the others. Only CountEvent and CameraHealth leave this module.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from crowdwatch.config import CameraConfig
from crowdwatch.detectors.appearance import FinderSettings, PersonFinder, feet_in
from crowdwatch.detectors.base import Detector
from crowdwatch.detectors.crops import detect_in_crops
from crowdwatch.detectors.registry import build_detector
from crowdwatch.detectors.zones import ZoneGeometry
from crowdwatch.errors import ModelError, SourceError
from crowdwatch.events import CameraHealth, CountEvent, HealthState
from crowdwatch.ingest.health import HealthMonitor, HealthSettings
from crowdwatch.ingest.motion import CameraMotion, ZoneDynamics, has_lines
from crowdwatch.ingest.privacy import PrivacyMasker
from crowdwatch.ingest.source_plugin import Source, open_source
from crowdwatch.ingest.sources import Frame
from crowdwatch.metrics import Metrics
from crowdwatch.util.backoff import Backoff
from crowdwatch.util.redact import redact_url

log = logging.getLogger("crowdwatch.ingest")

Emit = Callable[[CountEvent | CameraHealth], None]


# A label frame: masked JPEG, count per zone, new-edge length per zone (geometry only),
# and the heads the person detector suggests (native pixels) for the engineer to check.
LabelSample = tuple[bytes, dict[str, float], dict[str, float], list[list[float]]]
HEAD_SHARE = 0.1  # a head's centre sits about this share of a person box below its top


class CameraPipeline:
    """Frame → counts for one camera; no threads, so tests and eval can drive it directly."""

    def __init__(self, cfg: CameraConfig, detector: Detector | None = None) -> None:
        self.cfg = cfg
        self.detector = detector or build_detector(cfg.detector, cfg.zones, cfg.url)
        self._prepared_for: tuple[int, int] | None = None
        self.zones: list[ZoneGeometry] = []
        self.masker: PrivacyMasker | None = None
        self.scale = 1.0
        self.motion: CameraMotion | None = None  # speed and flow, for zones with lines

    def _prepare(self, native_shape: tuple[int, int]) -> None:
        height, width = native_shape
        self.scale = min(1.0, self.cfg.detect_width / width)
        shape = (round(height * self.scale), round(width * self.scale))
        self.zones = [ZoneGeometry.from_config(z, shape, self.scale) for z in self.cfg.zones]
        self.masker = PrivacyMasker(self.cfg.privacy_masks, self.scale)
        self.motion = CameraMotion(self.cfg, self.detector, self.zones) if has_lines(
            self.cfg) else None
        self._prepared_for = native_shape

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """Downscale, then blank privacy masks: the only view detectors ever get."""
        if self._prepared_for != image.shape[:2]:
            self._prepare(image.shape[:2])
        if self.scale != 1.0:
            size = (round(image.shape[1] * self.scale), round(image.shape[0] * self.scale))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        else:
            image = image.copy()
        assert self.masker is not None
        return self.masker.apply(image)

    @property
    def ready(self) -> bool:
        return self.detector.ready  # motion starts when its own background is ready

    def suggest_heads(self, image: np.ndarray) -> list[list[float]]:
        """Heads (native pixels) of the people the person detector finds standing in the
        zones of this frame: the labelling page pre-fills them for the engineer to confirm
        or correct. Runs only on an engineer's label request, outside the camera's budget;
        nothing of it leaves but these points, to the setup page that shows the frame."""
        view = self.preprocess(image)
        finder = getattr(self.detector, "finder", None)
        if not isinstance(finder, PersonFinder):
            finder = _suggesting_finder()
        if finder is None:
            return []
        boxes = detect_in_crops(finder.model, view, finder.crops(view.shape[:2], self.zones))
        if not len(boxes):
            return []
        standing = np.zeros(len(boxes), bool)
        for zone in self.zones:
            standing |= feet_in(zone, boxes)
        xyxy = boxes.xyxy[standing]
        heads = np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2,
                          xyxy[:, 1] + HEAD_SHARE * (xyxy[:, 3] - xyxy[:, 1])], axis=1)
        return [[round(float(x), 1), round(float(y), 1)] for x, y in heads / self.scale]

    def prime(self, frame: Frame) -> None:
        """Warm-up: the detector learns the view; no counts leave (they would be noise)."""
        view = self.preprocess(frame.image)
        if not self.detector.ready:
            self.detector.prime(view)
        if self.motion is not None:
            self.motion.prime(view)

    def process(self, frame: Frame) -> list[CountEvent]:
        view = self.preprocess(frame.image)
        counts = self.detector.count(view, self.zones)
        interval: float | None = None
        dynamics: dict[str, ZoneDynamics] = {}
        if self.motion is not None:
            follower = None if frame.follower is None else self.preprocess(frame.follower)
            interval, dynamics = self.motion.measure(view, follower, frame.follower_dt,
                                                     frame.ts)
        events = []
        for zone in self.zones:
            count, quality = counts[zone.zone_id]
            density = count / zone.area_m2 if zone.area_m2 else None
            moving = dynamics.get(zone.zone_id)
            speed = None if moving is None else moving.speed
            mean = None if speed is None else speed.speed_mps
            spread = None if speed is None else speed.spread_mps
            events.append(
                CountEvent(
                    camera_id=self.cfg.id,
                    zone_id=zone.zone_id,
                    ts=frame.ts,
                    count=round(count, 3),
                    density_ppm2=None if density is None else round(density, 4),
                    area_m2=None if zone.area_m2 is None else round(zone.area_m2, 3),
                    detector=self.detector.name,
                    quality=round(quality, 3),
                    frame_seq=frame.seq,
                    speed_mps=_rounded(mean),
                    speed_spread_mps=_rounded(spread),
                    interval_s=None if interval is None or not moving or not moving.lines
                    else round(interval, 3),
                    lines={} if moving is None else moving.lines,
                )
            )
        return events


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


_SUGGESTER: list[PersonFinder | None] = []
_SUGGESTER_LOCK = threading.Lock()


def _suggesting_finder() -> PersonFinder | None:
    """The shipped person detector, loaded once per process for label suggestions (None,
    logged once, when it cannot load: labelling then starts from no clicks)."""
    with _SUGGESTER_LOCK:
        if not _SUGGESTER:
            try:
                from crowdwatch.detectors.nanodet import NanoDet

                _SUGGESTER.append(PersonFinder(NanoDet(), FinderSettings(every=1)))
            except ModelError as exc:
                log.warning("label suggestions off: the person detector cannot load",
                            extra={"error": str(exc)})
                _SUGGESTER.append(None)
        return _SUGGESTER[0]


class CameraWorker(threading.Thread):
    """Supervised capture loop for one camera: open, sample, check health, count, emit."""

    def __init__(
        self,
        cfg: CameraConfig,
        emit: Emit,
        metrics: Metrics,
        stop: threading.Event,
        realtime: bool = True,
    ) -> None:
        super().__init__(name=f"camera-{cfg.id}", daemon=True)
        self.cfg = cfg
        self.emit = emit
        self.metrics = metrics
        self.stop_event = stop
        self.realtime = realtime
        self.pipeline = CameraPipeline(cfg)
        h = cfg.health
        self.monitor = HealthMonitor(HealthSettings(
            stale_after=h.stale_after, tamper_after=h.tamper_after, dark_level=h.dark_level,
            uniform_std=h.uniform_std, defocus_ratio=h.defocus_ratio,
            move_fraction=h.move_fraction))
        self.state = HealthState.DOWN
        self.reason = "not started"
        self.source: Source | None = None
        self.safe_url = redact_url(cfg.url)
        self._last_health = 0.0
        self._fps = 0.0
        # Setup requests answered by the capture thread from its next frame (in memory).
        self._requests_lock = threading.Lock()
        self._snapshot_waiters: list[tuple[threading.Event, list[Any]]] = []
        self._label_waiters: list[tuple[threading.Event, list[Any]]] = []

    def snapshot(self, timeout: float = 5.0) -> bytes | None:
        """One JPEG of the next frame with the privacy masks blanked, in memory only (for
        the setup page); None if no frame arrives within ``timeout``."""
        found: bytes | None = self._request(self._snapshot_waiters, timeout)
        return found

    def label_frame(self, timeout: float = 10.0) -> LabelSample | None:
        """The next *counted* frame as a masked JPEG (in memory) with what the detector
        counted in each zone on it and, from the geometry counter, each zone's new-edge
        length: one sample for few-shot calibration. None if the camera counts nothing
        within ``timeout`` (down, warming up)."""
        found: LabelSample | None = self._request(self._label_waiters, timeout)
        return found

    def _request(self, waiters: list[tuple[threading.Event, list[Any]]],
                 timeout: float) -> Any:
        """Wait for the capture thread to answer (see :meth:`_answer`); None on timeout."""
        done, box = threading.Event(), list[Any]()
        with self._requests_lock:
            waiters.append((done, box))
        if not done.wait(timeout):
            with self._requests_lock:
                if (done, box) in waiters:
                    waiters.remove((done, box))
            return None
        return box[0] if box else None

    def _answer(self, waiters: list[tuple[threading.Event, list[Any]]], value: Any) -> None:
        """Hand ``value`` (None: nothing to give) to everyone waiting in ``waiters``."""
        with self._requests_lock:
            taken = waiters[:]
            waiters.clear()
        for done, box in taken:
            if value is not None:
                box.append(value)
            done.set()

    def _masked_jpeg(self, image: np.ndarray) -> bytes | None:
        """The frame with the privacy masks blanked, as JPEG bytes (never written)."""
        masked = PrivacyMasker(self.cfg.privacy_masks).apply(image.copy())
        ok, encoded = cv2.imencode(".jpg", masked)
        return encoded.tobytes() if ok else None

    def _decode_mode(self) -> str:
        src = self.source
        if src is None:
            return ""
        return src.mode

    def _health(self, state: HealthState, reason: str = "", force: bool = False) -> None:
        now = time.time()
        changed = state != self.state or reason.split(":")[0] != self.reason.split(":")[0]
        if changed:
            level = logging.INFO if state == HealthState.UP else logging.WARNING
            log.log(level, "camera %s is %s%s", self.cfg.id, state,
                    f": {reason}" if reason else "",
                    extra={"camera": self.cfg.id, "state": state, "url": self.safe_url})
        if not (changed or force or now - self._last_health >= self.cfg.health.heartbeat):
            return
        self.state, self.reason, self._last_health = state, reason, now
        # Warming up is up (frames arrive); camera_state says counts are withheld.
        self.metrics.camera_up.labels(camera=self.cfg.id).set(
            1 if state in (HealthState.UP, HealthState.WARMING_UP) else 0)
        for s in HealthState:
            self.metrics.camera_state.labels(camera=self.cfg.id, state=s).set(
                1 if s == state else 0)
        self.emit(CameraHealth(self.cfg.id, now, state, round(self._fps, 3), reason,
                               self._decode_mode()))

    def run(self) -> None:
        delays = Backoff(self.cfg.reconnect.initial, self.cfg.reconnect.max)
        while not self.stop_event.is_set():
            try:
                self.source = open_source(
                    self.cfg.url, self.cfg.sample_hz, self.cfg.loop, self.realtime,
                    decode=self.cfg.decode, out_width=self.cfg.detect_width,
                    open_timeout=self.cfg.open_timeout, read_timeout=self.cfg.read_timeout,
                    pair_gap=self.cfg.motion_gap if has_lines(self.cfg) else 0.0)
                delays.reset()
                ended = self._capture_loop()
                if ended:
                    self._health(HealthState.DOWN, "end of stream")
                    return
                if self.stop_event.is_set():
                    return
            except SourceError as exc:
                self._health(HealthState.DOWN, str(exc))
            except Exception as exc:  # a bug in one camera must not take the others down
                log.exception("camera %s crashed; restarting it", self.cfg.id,
                              extra={"camera": self.cfg.id})
                self._health(HealthState.DOWN, f"internal error: {type(exc).__name__}")
            finally:
                if self.source is not None:
                    self.source.close()
                    self.source = None
            wait = delays.next_delay()
            log.info("camera %s: reconnecting to %s in %.1fs", self.cfg.id, self.safe_url,
                     wait, extra={"camera": self.cfg.id})
            self.stop_event.wait(wait)

    def _capture_loop(self) -> bool:
        """Returns True when the source ended for good (a file without loop)."""
        cam = self.cfg.id
        frames_total = self.metrics.frames_total.labels(camera=cam)
        fps_gauge = self.metrics.camera_fps.labels(camera=cam)
        detect_hist = self.metrics.detect_seconds.labels(detector=self.pipeline.detector.name)
        last = None
        source = self.source
        if source is None:
            return False
        while not self.stop_event.is_set():
            frame = source.read()
            if frame is None:
                return True
            frames_total.inc()
            if self._snapshot_waiters:
                self._answer(self._snapshot_waiters, self._masked_jpeg(frame.image))
            now = time.monotonic()
            if last is not None and now > last:
                self._fps = 0.7 * self._fps + 0.3 * (1.0 / (now - last)) if self._fps else (
                    1.0 / (now - last))
                fps_gauge.set(round(self._fps, 3))
            last = now
            verdict = self.monitor.observe(frame.image, frame.ts)
            if verdict.state == HealthState.UP and not self.pipeline.ready:
                # Every sample: the camera is alive (camera_offline must not fire) even
                # though no count leaves yet.
                self._health(HealthState.WARMING_UP, "building the background; counts withheld",
                             force=True)
                self.pipeline.prime(frame)
                continue
            self._health(verdict.state, verdict.reason)
            if verdict.state != HealthState.UP:
                continue  # a frozen or tampered view gives confident nonsense: no counts
            started = time.perf_counter()
            detector = self.pipeline.detector
            # Decided once per frame: a label request that arrives while this frame is
            # counted waits for the next, which measures its edges for it.
            with self._requests_lock:
                labelling = self._label_waiters[:]
                self._label_waiters.clear()
            if hasattr(detector, "measure_edges"):
                detector.measure_edges = bool(labelling)
            events = self.pipeline.process(frame)
            detect_hist.observe(time.perf_counter() - started)
            if labelling:
                jpeg = self._masked_jpeg(frame.image)
                self._answer(labelling, None if jpeg is None else (
                    jpeg, {e.zone_id: e.count for e in events},
                    dict(getattr(detector, "last_edges", {})),
                    self.pipeline.suggest_heads(frame.image)))
            for event in events:
                self.emit(event)
        return False
