"""Where notifications go: the console line, a JSONL file, a webhook, Alertmanager, Grafana."""

from __future__ import annotations

from pydantic import Field

from crowdwatch.config.fields import Seconds, Strict


class JsonlSinkConfig(Strict):
    path: str


class WebhookSinkConfig(Strict):
    url: str = Field(description="Receiver URL (POST, JSON body).")
    secret_env: str | None = Field(
        None, description="Environment variable holding the HMAC-SHA256 signing key.")
    timeout: Seconds = Field(5.0, gt=0)
    retries: int = Field(5, ge=0, le=20, description="Re-sends on errors and HTTP 5xx/429.")


class AlertmanagerSinkConfig(Strict):
    url: str = Field(description="Alertmanager base URL, e.g. http://127.0.0.1:9093")
    resend: Seconds = Field(60.0, gt=0, description="Re-send firing alerts this often.")
    dashboard_url: str | None = Field(
        None, description="Link in each alert; {zone} and {site} are filled in.")


class GrafanaAnnotationSinkConfig(Strict):
    url: str = Field(description="Grafana base URL, e.g. http://grafana:3000")
    token_env: str = Field("CROWDWATCH_GRAFANA_TOKEN", description="Environment variable "
                           "holding a service-account token (Annotations: write).")
    dashboard_uid: str | None = Field(
        None, description="Pin annotations to one dashboard; default: organisation-wide, "
        "shown by any dashboard that queries the `crowdwatch` tag.")
    timeout: Seconds = Field(5.0, gt=0)
    retries: int = Field(3, ge=0, le=20, description="Re-sends on errors and HTTP 5xx.")


class AlertsConfig(Strict):
    console: bool = Field(True, description="One readable line per notification on stderr.")
    jsonl: JsonlSinkConfig | None = None
    webhook: WebhookSinkConfig | None = None
    alertmanager: AlertmanagerSinkConfig | None = None
    grafana: GrafanaAnnotationSinkConfig | None = None
