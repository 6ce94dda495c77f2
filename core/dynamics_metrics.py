"""Prometheus metrics of crowd dynamics: crossings per line and way, flow per metre,
walking speed, and levels of service, from the count events that carry them.

Crossings are counters (``rate()`` over any window gives people per second; divide by
``crowdwatch_line_length_m`` for per metre). The flow gauges are smoothed over about a
minute (an exponential average of each sample's rate), which is the span Fruin's flow
levels are read over, so a dashboard and the level gauge agree without a query trick.
"""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Counter, Gauge

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.events import CountEvent
from crowdwatch.service_levels import ServiceLevelsConfig, level_number, level_of

FLOW_SMOOTHING_S = 60.0
DIRECTIONS = ("in", "out")


class DynamicsMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.levels = ServiceLevelsConfig()
        self.crossings = Counter(
            "crowdwatch_line_crossings", "People crossing the line, by direction (in, out).",
            ["line", "zone", "direction"], registry=r)
        self.flow = Gauge(
            "crowdwatch_line_flow_ppmm", "People per metre of line per minute, by direction "
            "(in, out, both), smoothed over about a minute.", ["line", "zone", "direction"],
            registry=r)
        self.length = Gauge("crowdwatch_line_length_m", "Length of the line on the ground (m).",
                            ["line", "zone"], registry=r)
        self.line_level = Gauge(
            "crowdwatch_line_level_of_service", "Level of service of the flow through the line "
            "both ways: 1=A ... 6=F (boundaries in service_levels.flow).", ["line", "zone"],
            registry=r)
        self.speed = Gauge(
            "crowdwatch_zone_speed_mps", "Mean walking speed of the people seen in the zone "
            "(m/s; standing people count as 0).", ["camera", "zone"], registry=r)
        self.zone_level = Gauge(
            "crowdwatch_zone_level_of_service", "Level of service of the zone by density: "
            "1=A ... 6=F (boundaries in service_levels.density).", ["camera", "zone"],
            registry=r)
        self._smoothed: dict[tuple[str, str], tuple[float, float]] = {}  # (value, ts)

    def describe(self, config: CrowdwatchConfig) -> None:
        """Zero the label sets dashboards query; take the site's level boundaries."""
        self.levels = config.service_levels
        self._smoothed.clear()
        for zone, line in config.lines().values():
            for direction in DIRECTIONS:
                self.crossings.labels(line=line.id, zone=zone.id, direction=direction)
            for direction in (*DIRECTIONS, "both"):
                self.flow.labels(line=line.id, zone=zone.id, direction=direction).set(0)
            self.line_level.labels(line=line.id, zone=zone.id).set(1)
        for camera in config.cameras:
            if any(z.lines for z in camera.zones):  # cameras that measure speed
                for zone in camera.zones:
                    self.speed.labels(camera=camera.id, zone=zone.id)
                    self.zone_level.labels(camera=camera.id, zone=zone.id).set(1)

    def observe(self, event: CountEvent) -> None:
        if event.density_ppm2 is not None:
            self.zone_level.labels(camera=event.camera_id, zone=event.zone_id).set(
                level_number(level_of(event.density_ppm2, self.levels.density)))
        if event.speed_mps is not None:
            self.speed.labels(camera=event.camera_id, zone=event.zone_id).set(event.speed_mps)
        for line_id, crossed in event.lines.items():
            self.length.labels(line=line_id, zone=event.zone_id).set(crossed["length_m"])
            for direction in DIRECTIONS:
                self.crossings.labels(line=line_id, zone=event.zone_id,
                                      direction=direction).inc(crossed[direction])
            for direction in (*DIRECTIONS, "both"):
                rate = event.flow_ppmm(line_id, direction)
                if rate is not None:
                    value = self._smooth(line_id, direction, rate, event)
                    self.flow.labels(line=line_id, zone=event.zone_id,
                                     direction=direction).set(round(value, 3))
                    if direction == "both":
                        self.line_level.labels(line=line_id, zone=event.zone_id).set(
                            level_number(level_of(value, self.levels.flow)))

    def _smooth(self, line_id: str, direction: str, rate: float, event: CountEvent) -> float:
        key = (line_id, direction)
        last = self._smoothed.get(key)
        if last is None or event.ts <= last[1]:
            value = rate if last is None else last[0]
        else:
            keep = math.exp(-(event.ts - last[1]) / FLOW_SMOOTHING_S)
            value = keep * last[0] + (1 - keep) * rate
        self._smoothed[key] = (value, max(event.ts, last[1] if last else event.ts))
        return value
