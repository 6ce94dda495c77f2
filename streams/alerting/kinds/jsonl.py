"""``alerts.jsonl``: one alert JSON per line in a local file."""

from __future__ import annotations

from pydantic import Field

from crowdwatch.config import SinkConfig
from crowdwatch.metrics import Metrics
from crowdwatch.streams.alerting.plugin import SinkKind, register
from crowdwatch.streams.alerting.sinks import JsonlSink, Sink


class JsonlSinkConfig(SinkConfig):
    """Append each notification as one JSON line (flushed per line)."""

    path: str = Field(description="File to append to (created with its folder).")


def _build(cfg: SinkConfig, metrics: Metrics) -> Sink:
    assert isinstance(cfg, JsonlSinkConfig)
    return JsonlSink(cfg.path)


KIND = register(SinkKind("jsonl", JsonlSinkConfig, _build))
