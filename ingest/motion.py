"""Speed and flow for one camera: the motion meter run on each sample and its follower.

The camera's own geometry counter is reused where its detector has one (geometry,
fused): the foreground it just counted is what the meter weighs. A detector without one
(hog, onnx, the regression counter) gets a geometry counter here, fed every sample.
Rates become crossings over the interval since the previous sample, so the numbers that
leave add up to people whatever the sample rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from crowdwatch.config import CameraConfig
from crowdwatch.detectors.base import Detector
from crowdwatch.detectors.geometry import GeometryDetector
from crowdwatch.detectors.lines import LineGeometry
from crowdwatch.detectors.motion import MotionMeter, ZoneMotion
from crowdwatch.detectors.zones import ZoneGeometry


def has_lines(cfg: CameraConfig) -> bool:
    return any(zone.lines for zone in cfg.zones)


def geometry_of(detector: Detector) -> GeometryDetector | None:
    """The geometry counter inside a detector, if it has one."""
    if isinstance(detector, GeometryDetector):
        return detector
    inner = getattr(detector, "geometry", None)
    return inner if isinstance(inner, GeometryDetector) else None


@dataclass
class ZoneDynamics:
    """What one sample adds to a zone's count event."""

    speed: ZoneMotion
    lines: dict[str, dict[str, float]] = field(default_factory=dict)  # id -> in, out, length_m


class CameraMotion:
    def __init__(self, cfg: CameraConfig, detector: Detector, zones: list[ZoneGeometry]) -> None:
        by_id = {z.zone_id: z for z in zones}
        self.lines = [LineGeometry.build(line.id, line.points, by_id[zone.id], line.band_m)
                      for zone in cfg.zones for line in zone.lines]
        self.zone_of = {line.line_id: line.zone_id for line in self.lines}
        self.meter = MotionMeter(self.lines)
        self.shared = geometry_of(detector)
        self.geometry = self.shared or GeometryDetector()
        self.zones = zones
        self.period = 1.0 / cfg.sample_hz
        self._last_ts: float | None = None

    @property
    def ready(self) -> bool:
        return self.geometry.ready

    def prime(self, view: np.ndarray) -> None:
        if self.shared is None:
            self.geometry.prime(view)

    def measure(self, view: np.ndarray, follower: np.ndarray | None, follower_dt: float,
                ts: float) -> tuple[float, dict[str, ZoneDynamics]]:
        """(interval covered, per zone dynamics) of a sample the detector has counted."""
        if self.shared is None:
            if not self.geometry.ready:
                self.geometry.prime(view)  # counts go out meanwhile, without motion
            else:
                self.geometry.count(view, self.zones)
        interval = self.period if self._last_ts is None else min(
            max(ts - self._last_ts, 0.0), 4 * self.period)
        self._last_ts = ts
        if follower is None or follower_dt <= 0 or not self.geometry.ready:
            return interval, {}
        speeds, flows = self.meter.measure(self.geometry, follower, follower_dt,
                                           self.zones)
        out = {zid: ZoneDynamics(speed) for zid, speed in speeds.items()}
        for line_id, flow in flows.items():
            out[self.zone_of[line_id]].lines[line_id] = {
                "in": round(flow.in_per_s * interval, 4),
                "out": round(flow.out_per_s * interval, 4),
                "length_m": round(flow.length_m, 3)}
        return interval, out
