"""``alerts.grafana``: each alert as a Grafana annotation region (start to resolve)."""

from __future__ import annotations

from pydantic import Field

from crowdwatch.config import Seconds, SinkConfig
from crowdwatch.metrics import Metrics
from crowdwatch.streams.alerting.plugin import SinkKind, SinkTraits, register
from crowdwatch.streams.alerting.sinks import Sink


class GrafanaAnnotationSinkConfig(SinkConfig):
    """Write alerts as Grafana annotations, so every dashboard shows when they fired."""

    url: str = Field(description="Grafana base URL, e.g. http://grafana:3000")
    token_env: str = Field("CROWDWATCH_GRAFANA_TOKEN", description="Environment variable "
                           "holding a service-account token (Annotations: write).")
    dashboard_uid: str | None = Field(
        None, description="Pin annotations to one dashboard; default: organisation-wide, "
        "shown by any dashboard that queries the `crowdwatch` tag.")
    timeout: Seconds = Field(5.0, gt=0)
    retries: int = Field(3, ge=0, le=20, description="Re-sends on errors and HTTP 5xx.")


def _build(cfg: SinkConfig, metrics: Metrics) -> Sink:
    from crowdwatch.streams.alerting.grafana_annotations import GrafanaAnnotationSink

    assert isinstance(cfg, GrafanaAnnotationSinkConfig)
    return GrafanaAnnotationSink(cfg.url, cfg.token_env, metrics, cfg.dashboard_uid,
                                 cfg.timeout, cfg.retries)


KIND = register(SinkKind("grafana", GrafanaAnnotationSinkConfig, _build,
                         SinkTraits(annotates_grafana=True)))
