"""Alertmanager sink (v2 API): labelled alerts, refreshed while firing, resolved once.

Alertmanager treats an alert it has not heard about for ``resolve_timeout`` as resolved,
so firing alerts are re-sent every ``resend`` seconds (a refresh, never a duplicate: the
label set is the alert's identity). Resolution sends ``endsAt``. Delivery runs on its
own thread; an Alertmanager that is down never blocks the engine or other sinks.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request

from crowdwatch.events import Alert, AlertState, iso
from crowdwatch.metrics import Metrics
from crowdwatch.streams.alerting.sinks import QueuedSink
from crowdwatch.util.redact import redact_url

log = logging.getLogger("crowdwatch.alerts")


def to_alertmanager(alert: Alert, dashboard_url: str | None = None) -> dict:
    labels = {k: v for k, v in alert.labels.items() if v and k != "predicted_at"}
    labels["alertname"] = f"crowdwatch_{alert.rule}"
    annotations = {"summary": alert.summary, "value": f"{alert.value:g}",
                   "threshold": f"{alert.threshold:g}"}
    if "predicted_at" in alert.labels:
        annotations["predicted_at"] = alert.labels["predicted_at"]
    zone = alert.zone_id or (alert.zones[0] if alert.zones else "")
    if len(alert.zones) > 1:
        annotations["zones"] = ", ".join(alert.zones)
    link = dashboard_url.format(zone=zone, site=labels.get("site", "")) if (
        dashboard_url) else ""
    if link:
        annotations["dashboard"] = link
    body = {"labels": labels, "annotations": annotations, "startsAt": iso(alert.starts_at),
            "generatorURL": link or "https://github.com/crowdwatch/crowdwatch"}
    if alert.state == AlertState.RESOLVED:
        body["endsAt"] = iso(alert.ends_at or time.time())
    return body


class AlertmanagerSink(QueuedSink):
    name = "alertmanager"
    batch_size = 100

    def __init__(self, url: str, metrics: Metrics, resend: float = 60.0,
                 dashboard_url: str | None = None, timeout: float = 5.0) -> None:
        self.endpoint = url.rstrip("/") + "/api/v2/alerts"
        self.safe_url = redact_url(url)
        self.resend = resend
        self.dashboard_url = dashboard_url
        self.timeout = timeout
        self.firing: dict[str, Alert] = {}
        self._last_refresh = time.monotonic()
        super().__init__(metrics, queue_size=10000)

    def deliver(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            if alert.state == AlertState.FIRING:
                self.firing[alert.fingerprint] = alert
            else:
                self.firing.pop(alert.fingerprint, None)
        self._post(alerts)

    def idle(self) -> None:
        if time.monotonic() - self._last_refresh >= self.resend and self.firing:
            self._post(list(self.firing.values()), refresh=True)
            self._last_refresh = time.monotonic()

    def _post(self, alerts: list[Alert], refresh: bool = False) -> None:
        body = json.dumps([to_alertmanager(a, self.dashboard_url) for a in alerts]).encode()
        request = urllib.request.Request(self.endpoint, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                resp.read()
            outcome = "refresh" if refresh else "ok"
        except (urllib.error.URLError, OSError) as exc:
            outcome = "error"
            log.error("alertmanager %s did not take %d alert(s): %s; firing ones are re-sent "
                      "within %.0fs", self.safe_url, len(alerts),
                      getattr(exc, "reason", exc), self.resend, extra={"sink": self.name})
        self.metrics.alerts_sent.labels(sink=self.name, outcome=outcome).inc(len(alerts))
