"""``alerts.alertmanager``: firing and resolved alerts posted to Prometheus Alertmanager."""

from __future__ import annotations

from pydantic import Field

from crowdwatch.config import Seconds, SinkConfig
from crowdwatch.metrics import Metrics
from crowdwatch.streams.alerting.plugin import SinkKind, register
from crowdwatch.streams.alerting.sinks import Sink


class AlertmanagerSinkConfig(SinkConfig):
    """Post alerts to Alertmanager (its routing, silences and inhibition then apply)."""

    url: str = Field(description="Alertmanager base URL, e.g. http://127.0.0.1:9093")
    resend: Seconds = Field(60.0, gt=0, description="Re-send firing alerts this often.")
    dashboard_url: str | None = Field(
        None, description="Link in each alert; {zone} and {site} are filled in.")


def _build(cfg: SinkConfig, metrics: Metrics) -> Sink:
    from crowdwatch.streams.alerting.alertmanager import AlertmanagerSink

    assert isinstance(cfg, AlertmanagerSinkConfig)
    return AlertmanagerSink(cfg.url, metrics, cfg.resend, cfg.dashboard_url)


KIND = register(SinkKind("alertmanager", AlertmanagerSinkConfig, _build))
