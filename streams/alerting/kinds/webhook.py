"""``alerts.webhook``: a signed JSON POST per notification, retried."""

from __future__ import annotations

from pydantic import Field

from crowdwatch.config import Seconds, SinkConfig
from crowdwatch.metrics import Metrics
from crowdwatch.streams.alerting.plugin import SinkKind, register
from crowdwatch.streams.alerting.sinks import Sink


class WebhookSinkConfig(SinkConfig):
    """POST each notification as JSON to a receiver, HMAC-signed where a key is given."""

    url: str = Field(description="Receiver URL (POST, JSON body).")
    secret_env: str | None = Field(
        None, description="Environment variable holding the HMAC-SHA256 signing key.")
    timeout: Seconds = Field(5.0, gt=0)
    retries: int = Field(5, ge=0, le=20, description="Re-sends on errors and HTTP 5xx/429.")


def _build(cfg: SinkConfig, metrics: Metrics) -> Sink:
    from crowdwatch.streams.alerting.webhook import WebhookSink

    assert isinstance(cfg, WebhookSinkConfig)
    return WebhookSink(cfg.url, cfg.secret_env, metrics, timeout=cfg.timeout,
                       retries=cfg.retries)


KIND = register(SinkKind("webhook", WebhookSinkConfig, _build))
