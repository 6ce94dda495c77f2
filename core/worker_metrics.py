"""Prometheus metrics of the scale-out worker's transactions: how large its batches are,
how long a commit takes, and the latency budget they are held to.

Capture-to-alert latency itself is ``crowdwatch_capture_to_event_seconds`` (observed when
a batch's transaction commits, which is when its alerts leave); the self-alert
``CrowdwatchAlertLatencyOverBudget`` compares its p99 with the budget exported here, so
a changed ``kafka.max_latency`` needs no change to the alert rules.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, Histogram

BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000)
COMMIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.batch_records = Histogram(
            "crowdwatch_worker_batch_records", "Records per committed batch (small batches "
            "at a steady rate mean per-transaction costs dominate).", buckets=BATCH_BUCKETS,
            registry=r)
        self.commit_seconds = Histogram(
            "crowdwatch_worker_commit_seconds", "Time from a batch's transaction start to its "
            "commit (broker round trips).", buckets=COMMIT_BUCKETS, registry=r)
        self.latency_budget = Gauge(
            "crowdwatch_worker_latency_budget_seconds", "The capture-to-alert budget "
            "(kafka.max_latency) the worker's batches are held to.", registry=r)
