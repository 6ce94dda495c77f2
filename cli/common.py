"""What several commands share: loading the site, serving metrics, parsing points."""

from __future__ import annotations

import json
import logging

from crowdwatch.config import CrowdwatchConfig, load_config
from crowdwatch.errors import UsageError
from crowdwatch.metrics import Metrics

log = logging.getLogger("crowdwatch.cli")


def load_site(path: str | None) -> CrowdwatchConfig:
    """The config file, or the built-in simulated demo when none is given."""
    if path is None:
        from crowdwatch.streams.runtime.demo import demo_config

        return demo_config()
    from crowdwatch.ingest.source_checks import source_problems

    return load_config(path, checks=[source_problems])


def load_for_alerts(path: str | None, alerts_jsonl: str | None) -> CrowdwatchConfig:
    """The config, with ``--alerts-jsonl`` added as a JSONL sink when given."""
    config = load_site(path)
    if alerts_jsonl:
        from crowdwatch.streams.alerting.kinds.jsonl import JsonlSinkConfig

        config.alerts = config.alerts.with_sink("jsonl", JsonlSinkConfig(path=alerts_jsonl))
    return config


def metrics_for(config: CrowdwatchConfig, port: int | None) -> Metrics:
    """Metrics for this process, served on the configured port."""
    if port is not None:
        config.metrics.port = port
    metrics = Metrics(config.site.name)
    if config.metrics.port:
        try:
            metrics.serve(config.metrics.host, config.metrics.port)
        except OSError as exc:
            raise UsageError(f"cannot serve metrics on {config.metrics.host}:"
                             f"{config.metrics.port}: {exc.strerror}; pick another with "
                             "--metrics-port") from None
        log.info("metrics on http://%s:%d/metrics", config.metrics.host, config.metrics.port)
    return metrics


def points(text: str, flag: str) -> list[list[float]]:
    """A JSON polygon or point list given on the command line."""
    try:
        pts = json.loads(text)
        if (not isinstance(pts, list) or len(pts) < 3
                or not all(isinstance(p, list) and len(p) == 2 for p in pts)):
            raise ValueError
        return [[float(a), float(b)] for a, b in pts]
    except (ValueError, TypeError):
        raise UsageError(f"{flag} must be JSON like [[x,y],[x,y],...]; got {text!r}") from None
