"""Where notifications go. The readable console line is built in; every other sink is a
plug-in (``crowdwatch.streams.alerting.kinds``, or another package's module in the
``crowdwatch.sinks`` entry-point group) that registers its config model under its section
name here, so ``alerts:`` accepts exactly the sinks that exist:

    alerts: {console: true, jsonl: {path: alerts.jsonl}, webhook: {url: ...}}
"""

from __future__ import annotations

from functools import cache

from pydantic import Field, create_model

from crowdwatch.config.fields import Strict
from crowdwatch.kinds import KindRegistry

SINK_PLUGIN_GROUP = "crowdwatch.sinks"


class SinkConfig(Strict):
    """What every sink's config shares (each sink's module subclasses it)."""


SINKS: KindRegistry[SinkConfig] = KindRegistry(SINK_PLUGIN_GROUP)


def register_sink_model(name: str, model: type[SinkConfig]) -> None:
    """Make ``alerts.<name>`` a section validated by ``model`` (called by the sink's module)."""
    SINKS.register(model, name)


def sink_models() -> dict[str, type[SinkConfig]]:
    return SINKS.models()


class AlertsConfig(Strict):
    """The console line, and one optional section per registered sink (``alerts_model``)."""

    console: bool = Field(True, description="One readable line per notification on stderr.")

    def sink(self, name: str) -> SinkConfig | None:
        """The named sink's config, or None where the file does not configure it."""
        value = getattr(self, name, None)
        return value if isinstance(value, SinkConfig) else None

    def configured(self) -> dict[str, SinkConfig]:
        """Every sink the file configures, by section name."""
        return {name: cfg for name in sink_models() if (cfg := self.sink(name)) is not None}

    def with_sink(self, name: str, config: SinkConfig) -> AlertsConfig:
        """A copy with ``alerts.<name>`` set (the CLI's --alerts-jsonl)."""
        if name not in sink_models():
            raise KeyError(f"no alert sink named {name!r}")
        return self.model_copy(update={name: config})


def alerts_model() -> type[AlertsConfig]:
    """``AlertsConfig`` with one optional section per registered sink."""
    return _alerts_model(tuple(sink_models().items()))


@cache
def _alerts_model(sinks: tuple[tuple[str, type[SinkConfig]], ...]) -> type[AlertsConfig]:
    fields: dict = {name: (model | None, Field(None, description=(model.__doc__ or "").strip()
                                                or None))
                    for name, model in sinks}
    return create_model("AlertsConfig", __base__=AlertsConfig, __doc__=AlertsConfig.__doc__,
                        **fields)
