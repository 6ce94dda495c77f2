"""The operations dashboard: is the pipeline healthy (frame rates, latency, drops, dead
letters, lag, sink failures) and are the scale-out workers within their latency budget."""

from __future__ import annotations

from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.dashboards.common import (
    CAMERA,
    SITE,
    camera_var,
    dashboard,
    query,
    series_panel,
    site_var,
)


def operations(config: CrowdwatchConfig) -> Dashboard:
    rate = "[$__rate_interval]"
    d = dashboard("operations", "crowdwatch: operations",
                  "Is the pipeline healthy: frame rates, latency, drops, dead letters, lag.",
                  config, [site_var(), camera_var()])
    d = d.with_row(Row("Ingest"))
    d = d.with_panel(series_panel(
        "Frames per second by camera", 12,
        query(f"crowdwatch_camera_fps{{{SITE}, {CAMERA}}}", "{{camera}}")))
    d = d.with_panel(series_panel(
        "Dropped frames per second", 12,
        query(f"sum by (camera) (rate(crowdwatch_frames_dropped_total{{{SITE}, {CAMERA}}}"
              f"{rate}))", "{{camera}}")))
    d = d.with_panel(
        timeseries.Panel().title("Detector time p95 by detector").height(8).span(12)
        .with_target(query(f"histogram_quantile(0.95, sum by (le, detector) "
                           f"(rate(crowdwatch_detect_seconds_bucket{{{SITE}}}{rate})))",
                           "{{detector}}"))
        .unit("s"))
    latency = f"rate(crowdwatch_capture_to_event_seconds_bucket{{{SITE}}}{rate})"
    d = d.with_panel(
        timeseries.Panel().title("Capture-to-event latency").height(8).span(12)
        .with_target(query(f"histogram_quantile(0.5, sum by (le) ({latency}))", "p50"))
        .with_target(query(f"histogram_quantile(0.99, sum by (le) ({latency}))", "p99",
                           ref="B"))
        .unit("s"))
    d = d.with_row(Row("Stream engine and alerts"))
    d = d.with_panel(series_panel(
        "Events per second by type", 8,
        query(f"sum by (type) (rate(crowdwatch_events_total{{{SITE}}}{rate}))", "{{type}}")))
    d = d.with_panel(series_panel(
        "Consumer lag (events waiting)", 8,
        query(f"sum by (stage) (crowdwatch_consumer_lag_events{{{SITE}}})", "{{stage}}")))
    d = d.with_panel(series_panel(
        "Dead letters per second", 8,
        query(f"sum by (reason) (rate(crowdwatch_deadletter_total{{{SITE}}}{rate}))"
              " or vector(0)", "{{reason}}")))
    d = d.with_panel(series_panel(
        "Alert sink delivery failures per second", 12,
        query(f"sum by (sink) (rate(crowdwatch_alerts_sent_total{{{SITE}, "
              f"outcome=\"error\"}}{rate}))", "{{sink}}")))
    d = d.with_panel(series_panel(
        "Notifications sent per minute", 12,
        query(f"sum by (sink, outcome) (increase(crowdwatch_alerts_sent_total{{{SITE}}}[5m]))"
              " / 5", "{{sink}} {{outcome}}")))
    return worker_panels(d)


# Panels of the scale-out workers' own metrics: they have data only where workers run, so
# the tests query them on a Prometheus scraping a real worker (tests/test_kafka.py).
WORKER_PANELS = frozenset({"Capture-to-alert p99 by worker, and its budget",
                           "Records per committed batch", "Transaction commit time"})


def worker_panels(d: Dashboard) -> Dashboard:
    """Is each worker within its latency budget, and if not, why: small batches (per-
    transaction costs dominate) or slow commits (the broker)."""
    rate = "[$__rate_interval]"
    budget = f"crowdwatch_worker_latency_budget_seconds{{{SITE}}}"
    latency = f"rate(crowdwatch_capture_to_event_seconds_bucket{{{SITE}}}{rate})"
    d = d.with_row(Row("Scale-out workers"))
    d = d.with_panel(
        timeseries.Panel().title("Capture-to-alert p99 by worker, and its budget").height(8)
        .span(8).description("Over its budget (kafka.max_latency) for 5 minutes, a worker "
                             "raises CrowdwatchAlertLatencyOverBudget: add workers.")
        .with_target(query(f"histogram_quantile(0.99, sum by (instance, le) ({latency})) "
                           f"and on (instance) {budget}", "p99 {{instance}}"))
        .with_target(query(f"max by (instance) ({budget})", "budget {{instance}}", ref="B"))
        .unit("s"))
    batches = f"rate(crowdwatch_worker_batch_records_bucket{{{SITE}}}{rate})"
    d = d.with_panel(
        timeseries.Panel().title("Records per committed batch").height(8).span(8)
        .with_target(query(f"histogram_quantile(0.5, sum by (instance, le) ({batches}))",
                           "p50 {{instance}}"))
        .with_target(query(f"sum by (instance) (rate(crowdwatch_worker_batch_records_sum"
                           f"{{{SITE}}}{rate})) / sum by (instance) (rate("
                           f"crowdwatch_worker_batch_records_count{{{SITE}}}{rate}))",
                           "mean {{instance}}", ref="B")))
    commits = f"rate(crowdwatch_worker_commit_seconds_bucket{{{SITE}}}{rate})"
    d = d.with_panel(
        timeseries.Panel().title("Transaction commit time").height(8).span(8)
        .with_target(query(f"histogram_quantile(0.5, sum by (instance, le) ({commits}))",
                           "p50 {{instance}}"))
        .with_target(query(f"histogram_quantile(0.99, sum by (instance, le) ({commits}))",
                           "p99 {{instance}}", ref="B"))
        .unit("s"))
    return d
