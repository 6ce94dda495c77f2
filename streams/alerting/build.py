"""The notification sinks a config asks for."""

from __future__ import annotations

from crowdwatch.config import AlertsConfig
from crowdwatch.metrics import Metrics
from crowdwatch.streams.alerting.sinks import ConsoleSink, JsonlSink, Sink
from crowdwatch.streams.alerting.webhook import WebhookSink


def build_sinks(alerts: AlertsConfig, metrics: Metrics) -> list[Sink]:
    sinks: list[Sink] = []
    if alerts.console:
        sinks.append(ConsoleSink())
    if alerts.jsonl:
        sinks.append(JsonlSink(alerts.jsonl.path))
    if alerts.alertmanager:
        from crowdwatch.streams.alerting.alertmanager import AlertmanagerSink

        am = alerts.alertmanager
        sinks.append(AlertmanagerSink(am.url, metrics, am.resend, am.dashboard_url))
    if alerts.webhook:
        hook = alerts.webhook
        sinks.append(WebhookSink(hook.url, hook.secret_env, metrics, timeout=hook.timeout,
                                 retries=hook.retries))
    if alerts.grafana:
        from crowdwatch.streams.alerting.grafana_annotations import GrafanaAnnotationSink

        graf = alerts.grafana
        sinks.append(GrafanaAnnotationSink(graf.url, graf.token_env, metrics, graf.dashboard_uid,
                                           graf.timeout, graf.retries))
    return sinks
