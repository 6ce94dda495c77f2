"""Prometheus metrics for every stage, on a private registry per process run.

Label sets stay bounded (camera, zone, rule, severity, detector, sink, reason) and
never carry anything personal.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from crowdwatch import __version__
from crowdwatch.config import CrowdwatchConfig
from crowdwatch.dynamics_metrics import DynamicsMetrics
from crowdwatch.events import SensorEvent
from crowdwatch.worker_metrics import WorkerMetrics


class SeriesLike(Protocol):
    """A label set a rule can raise (the rule core's RuleSeries)."""

    @property
    def rule(self) -> str: ...
    @property
    def zone(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def threshold(self) -> float | None: ...
    @property
    def level_of(self) -> str | None: ...
    @property
    def rule_id(self) -> str: ...

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0)
DETECT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)


class Metrics:
    def __init__(self, site: str = "crowdwatch") -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.site = site
        self.zone_people = Gauge(
            "crowdwatch_zone_people", "Latest people count per zone.", ["camera", "zone"],
            registry=r)
        self.zone_density = Gauge(
            "crowdwatch_zone_density_ppm2", "Latest density per zone, persons per m².",
            ["camera", "zone"], registry=r)
        self.camera_up = Gauge(
            "crowdwatch_camera_up", "1 while the camera delivers frames.", ["camera"], registry=r)
        self.camera_state = Gauge(
            "crowdwatch_camera_state", "1 for the camera's current health state (up, stale, "
            "down, tampered).", ["camera", "state"], registry=r)
        self.camera_fps = Gauge(
            "crowdwatch_camera_fps", "Samples per second actually processed.", ["camera"],
            registry=r)
        self.frames_total = Counter(
            "crowdwatch_frames", "Frames sampled and counted.", ["camera"], registry=r)
        self.frames_dropped = Counter(
            "crowdwatch_frames_dropped", "Samples dropped because the pipeline was behind.",
            ["camera"], registry=r)
        self.detect_seconds = Histogram(
            "crowdwatch_detect_seconds", "Detector time per frame.", ["detector"],
            buckets=DETECT_BUCKETS, registry=r)
        self.capture_to_event = Histogram(
            "crowdwatch_capture_to_event_seconds",
            "Capture timestamp to event handled by the stream engine (scale-out worker: to "
            "the commit of its batch, when the batch's alerts leave).",
            buckets=LATENCY_BUCKETS, registry=r)
        self.events_total = Counter(
            "crowdwatch_events", "Events handled by the stream engine.", ["type"], registry=r)
        self.deadletter_total = Counter(
            "crowdwatch_deadletter", "Messages rejected to the dead-letter sink.", ["reason"],
            registry=r)
        self.listener_up = Gauge(
            "crowdwatch_listener_up", "1 while a sensor listener runs (MQTT: and is connected "
            "to its broker).", ["listener"], registry=r)
        self.listener_restarts = Counter(
            "crowdwatch_listener_restarts", "Sensor listeners started again after dying.",
            ["listener"], registry=r)
        self.mqtt_broker_dropped = Gauge(
            "crowdwatch_mqtt_broker_dropped_messages", "Messages the MQTT broker says it "
            "dropped since it started ($SYS; e.g. queues full in a burst): a gap between "
            "what sensors sent and what arrived.", registry=r)
        self.deadletter_write_errors = Counter(
            "crowdwatch_deadletter_write_errors", "Rejections the dead-letter file could not "
            "keep (read-only or full disk); they are still counted and logged.", registry=r)
        self.alerts_firing = Gauge(
            "crowdwatch_alerts_firing", "Alerts firing now.", ["rule", "severity"], registry=r)
        self.alerts_sent = Counter(
            "crowdwatch_alerts_sent", "Alert notifications handed to sinks.", ["sink", "outcome"],
            registry=r)
        self.alert_active = Gauge(
            "crowdwatch_alert_active", "1 while an alert is firing, else 0, per rule and zone "
            "(a camera alert sets it on each of the camera's zones).",
            ["rule", "rule_id", "zone", "severity"], registry=r)
        self.rule_threshold = Gauge(
            "crowdwatch_rule_threshold", "Configured level of a threshold rule (dashboards draw "
            "it as a line).", ["rule", "rule_id", "zone", "severity"], registry=r)
        self.zone_info = Gauge(
            "crowdwatch_zone_info", "Always 1; zone metadata (camera, map position).",
            ["camera", "zone", "lat", "lon"], registry=r)
        self.sensor_value = Gauge(
            "crowdwatch_sensor_value", "Latest reading per configured sensor (scaled).",
            ["sensor", "zone", "kind"], registry=r)
        self.sensor_last = Gauge(
            "crowdwatch_sensor_last_reading_timestamp_seconds",
            "Timestamp of each sensor's latest reading (silence shows as age).", ["sensor"],
            registry=r)
        self.zone_expected = Gauge(
            "crowdwatch_zone_expected", "What the zone's time-of-week model expects: "
            "usual (median of past weeks for this hour of this weekday), usual_low/usual_high "
            "(the band the unusual rule tolerates), forecast (at the seasonal rule's horizon).",
            ["zone", "what"], registry=r)
        self.state_saves = Counter(
            "crowdwatch_state_saves_total", "State file saves by result (ok, error).",
            ["result"], registry=r)
        self.zone_inhibited = Gauge(
            "crowdwatch_zone_inhibited", "1 while the zone's camera is offline or untrustworthy "
            "(its count is withheld and its alerts cannot clear).", ["zone"], registry=r)
        self.consumer_lag = Gauge(
            "crowdwatch_consumer_lag_events", "Events waiting for the rule engine.", ["stage"],
            registry=r)
        self.worker_partitions = Gauge(
            "crowdwatch_worker_partitions", "Partitions this scale-out worker owns (state "
            "restored), so a takeover after a crash shows.", registry=r)
        self.worker_failovers = Counter(
            "crowdwatch_worker_failovers", "Peers this worker presumed dead (their "
            "announcements stopped) and rejoined the group for, so their partitions moved "
            "before the session timeout.", registry=r)
        self.last_event = Gauge(
            "crowdwatch_last_event_timestamp_seconds",
            "When the rule engine last handled an event (liveness: stalls show as age).",
            registry=r)
        self.info = Gauge(
            "crowdwatch_build_info", "Always 1; labels say what runs.", ["site", "version"],
            registry=r)
        self.info.labels(site=site, version=__version__).set(1)
        self.dynamics = DynamicsMetrics(r)
        self.worker = WorkerMetrics(r)

    def describe_config(self, config: CrowdwatchConfig,
                        rule_series: Iterable[SeriesLike] = ()) -> None:
        """Publish what the config says (zones, thresholds) and zero every label set that
        dashboards query, so panels show 0 rather than 'no data' before anything happens.
        ``rule_series`` comes from the rules themselves (the runtime asks the rule core)."""
        for cam in config.cameras:
            self.frames_dropped.labels(camera=cam.id)
            self.frames_total.labels(camera=cam.id)
            for zone in cam.zones:
                lat = "" if zone.lat is None else f"{zone.lat:.6f}"
                lon = "" if zone.lon is None else f"{zone.lon:.6f}"
                self.zone_info.labels(camera=cam.id, zone=zone.id, lat=lat, lon=lon).set(1)
                self.zone_inhibited.labels(zone=zone.id).set(0)
        self.dynamics.describe(config)
        for series in rule_series:
            if series.threshold is not None:
                self.rule_threshold.labels(rule=series.rule, rule_id=series.rule_id,
                                           zone=series.zone,
                                           severity=series.severity).set(series.threshold)
            self.alert_active.labels(rule=series.rule, rule_id=series.rule_id, zone=series.zone,
                                     severity=series.severity).set(0)
            self.alerts_firing.labels(rule=series.rule, severity=series.severity)

    def observe_sensor(self, event: SensorEvent) -> None:
        self.sensor_value.labels(sensor=event.sensor_id, zone=event.zone_id or "",
                                 kind=event.kind).set(event.value)
        self.sensor_last.labels(sensor=event.sensor_id).set(event.ts)

    def serve(self, host: str, port: int) -> None:
        """Start the /metrics endpoint in a daemon thread."""
        start_http_server(port, addr=host, registry=self.registry)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        return self.registry.get_sample_value(name, labels or {})
