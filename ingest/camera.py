"""One camera: capture loop, downscale, privacy mask, detection, events out.

Each camera runs in its own thread under a supervisor loop: a source that fails is
reopened with exponential backoff and jitter, and one broken camera never stops or
slows the others. Only CountEvent and CameraHealth leave this module.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

import cv2
import numpy as np

from crowdwatch.config import CameraConfig
from crowdwatch.detectors.base import Detector
from crowdwatch.detectors.registry import build_detector
from crowdwatch.detectors.zones import ZoneGeometry
from crowdwatch.events import CameraHealth, CountEvent
from crowdwatch.ingest.privacy import PrivacyMasker
from crowdwatch.ingest.sources import Frame, SourceError, open_source, redact_url
from crowdwatch.metrics import Metrics

log = logging.getLogger("crowdwatch.ingest")

Emit = Callable[[object], None]


class CameraPipeline:
    """Frame → counts for one camera; no threads, so tests and eval can drive it directly."""

    def __init__(self, cfg: CameraConfig, detector: Detector | None = None) -> None:
        self.cfg = cfg
        self.detector = detector or build_detector(cfg.detector)
        self._prepared_for: tuple[int, int] | None = None
        self.zones: list[ZoneGeometry] = []
        self.masker: PrivacyMasker | None = None
        self.scale = 1.0

    def _prepare(self, native_shape: tuple[int, int]) -> None:
        height, width = native_shape
        self.scale = min(1.0, self.cfg.detect_width / width)
        shape = (round(height * self.scale), round(width * self.scale))
        self.zones = [ZoneGeometry.from_config(z, shape, self.scale) for z in self.cfg.zones]
        self.masker = PrivacyMasker(self.cfg.privacy_masks, self.scale)
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

    def process(self, frame: Frame) -> list[CountEvent]:
        view = self.preprocess(frame.image)
        counts = self.detector.count(view, self.zones)
        events = []
        for zone in self.zones:
            count, quality = counts[zone.zone_id]
            density = count / zone.area_m2 if zone.area_m2 else None
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
                )
            )
        return events


class CameraWorker(threading.Thread):
    """Supervised capture loop for one camera."""

    def __init__(
        self,
        cfg: CameraConfig,
        emit: Emit,
        metrics: Metrics,
        stop: threading.Event,
        realtime: bool = True,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
    ) -> None:
        super().__init__(name=f"camera-{cfg.id}", daemon=True)
        self.cfg = cfg
        self.emit = emit
        self.metrics = metrics
        self.stop_event = stop
        self.realtime = realtime
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.pipeline = CameraPipeline(cfg)
        self.state = "down"
        self.source = None

    def _health(self, state: str, fps: float = 0.0, reason: str = "") -> None:
        if state != self.state:
            log.info("camera %s is %s%s", self.cfg.id, state, f": {reason}" if reason else "",
                     extra={"camera": self.cfg.id, "state": state})
        self.state = state
        self.metrics.camera_up.labels(camera=self.cfg.id).set(1 if state == "up" else 0)
        self.emit(CameraHealth(self.cfg.id, time.time(), state, round(fps, 3), reason))

    def run(self) -> None:
        delay = self.backoff_initial
        while not self.stop_event.is_set():
            try:
                self.source = open_source(self.cfg.url, self.cfg.sample_hz, self.cfg.loop,
                                          self.realtime)
                self._health("up", self.cfg.sample_hz)
                delay = self.backoff_initial
                ended = self._capture_loop()
                if ended:
                    self._health("down", reason="end of stream")
                    return
                if self.stop_event.is_set():
                    return
            except SourceError as exc:
                self._health("down", reason=str(exc))
            except Exception as exc:  # a bug in one camera must not take the others down
                log.exception("camera %s crashed; restarting", self.cfg.id,
                              extra={"camera": self.cfg.id})
                self._health("down", reason=f"internal error: {type(exc).__name__}")
            finally:
                if self.source is not None:
                    self.source.close()
                    self.source = None
            wait = min(self.backoff_max, delay) * random.uniform(0.8, 1.2)
            log.info("camera %s: retrying %s in %.1fs", self.cfg.id, redact_url(self.cfg.url),
                     wait, extra={"camera": self.cfg.id})
            self.stop_event.wait(wait)
            delay = min(self.backoff_max, delay * 2)

    def _capture_loop(self) -> bool:
        """Returns True when the source ended for good (a file without loop)."""
        cam = self.cfg.id
        frames_total = self.metrics.frames_total.labels(camera=cam)
        fps_gauge = self.metrics.camera_fps.labels(camera=cam)
        detect_hist = self.metrics.detect_seconds.labels(detector=self.pipeline.detector.name)
        last = None
        while not self.stop_event.is_set():
            frame = self.source.read()
            if frame is None:
                return True
            started = time.perf_counter()
            events = self.pipeline.process(frame)
            detect_hist.observe(time.perf_counter() - started)
            frames_total.inc()
            now = time.monotonic()
            if last is not None and now > last:
                fps_gauge.set(round(1.0 / (now - last), 3))
            last = now
            for event in events:
                self.emit(event)
        return False
