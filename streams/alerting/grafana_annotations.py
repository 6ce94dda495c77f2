"""Grafana annotations for alert start and end, through grafana-client.

A firing alert creates an annotation at its start; its resolution turns that into a
region (PATCH ``timeEnd``), so operators see on every time-series panel when and for
how long a zone was over its level. Tags: ``crowdwatch``, the rule, the zone and the
severity, which the dashboards' annotation queries select on. Delivery runs on the
sink's own thread with retries; Grafana being down never blocks detection.
"""

from __future__ import annotations

import logging
import os
import time

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from crowdwatch.errors import ConfigError
from crowdwatch.events import Alert, AlertState
from crowdwatch.metrics import Metrics
from crowdwatch.streams.alerting.sinks import QueuedSink
from crowdwatch.util.backoff import Backoff
from crowdwatch.util.redact import redact_url

log = logging.getLogger("crowdwatch.alerts")


def annotation_tags(alert: Alert) -> list[str]:
    tags = ["crowdwatch", f"rule:{alert.rule}", f"severity:{alert.severity}"]
    tags += [f"zone:{zone}" for zone in alert.zones or [alert.zone_id] if zone]
    for name in ("camera", "sensor"):
        if alert.labels.get(name):
            tags.append(f"{name}:{alert.labels[name]}")
    return tags


def _ms(ts: float) -> int:
    return round(ts * 1000)


class GrafanaAnnotationSink(QueuedSink):
    name = "grafana"

    def __init__(self, url: str, token_env: str, metrics: Metrics,
                 dashboard_uid: str | None = None, timeout: float = 5.0, retries: int = 3,
                 backoff: float = 0.5) -> None:
        token = os.environ.get(token_env)
        if not token:
            raise ConfigError(f"grafana annotations: set {token_env} to a service-account token")
        self.api = GrafanaApi.from_url(url=url, credential=token, timeout=timeout)
        self.safe_url = redact_url(url)
        self.dashboard_uid = dashboard_uid
        self.retries, self.backoff = retries, backoff
        self.ids: dict[str, int] = {}  # fingerprint -> annotation id of the firing alert
        super().__init__(metrics)

    def deliver(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            self._with_retries(alert)

    def _send(self, alert: Alert) -> None:
        tags, text = annotation_tags(alert), f"{alert.state.upper()}: {alert.summary}"
        known = self.ids.get(alert.fingerprint)
        if alert.state == AlertState.RESOLVED and known is not None:
            self.api.annotations.partial_update_annotation(
                known, time_from=_ms(alert.starts_at), time_to=_ms(alert.ends_at or time.time()),
                tags=tags, text=text)
            del self.ids[alert.fingerprint]
            return
        ends = _ms(alert.ends_at) if alert.state == AlertState.RESOLVED and alert.ends_at else None
        result = self.api.annotations.add_annotation(
            dashboard_uid=self.dashboard_uid, time_from=_ms(alert.starts_at), time_to=ends,
            tags=tags, text=text)
        if alert.state == AlertState.FIRING and isinstance(result, dict) and "id" in result:
            self.ids[alert.fingerprint] = int(result["id"])

    def _with_retries(self, alert: Alert) -> None:
        delays = Backoff(self.backoff)
        for attempt in range(self.retries + 1):
            try:
                self._send(alert)
                self.metrics.alerts_sent.labels(sink=self.name, outcome="ok").inc()
                return
            except GrafanaClientError as exc:  # 4xx: a re-send would fail the same way
                reason, retryable = f"HTTP {getattr(exc, 'status_code', '?')}", False
            except (GrafanaException, OSError) as exc:
                reason, retryable = type(exc).__name__, True
            except Exception as exc:
                reason, retryable = type(exc).__name__, True
            if not retryable or attempt == self.retries or self._stop.is_set():
                break
            self.metrics.alerts_sent.labels(sink=self.name, outcome="retry").inc()
            time.sleep(delays.next_delay())
        self.metrics.alerts_sent.labels(sink=self.name, outcome="error").inc()
        log.error("grafana %s did not take the annotation for alert %s (%s %s): %s",
                  self.safe_url, alert.fingerprint, alert.rule, alert.state, reason,
                  extra={"sink": self.name, "fingerprint": alert.fingerprint})
