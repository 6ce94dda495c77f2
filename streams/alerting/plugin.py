"""The sink plug-in contract: one module per sink owns its config section, factory and
traits, like rule and detector kinds.

A sink's module defines a ``SinkConfig`` subclass, a factory and the sink's traits, and
calls :func:`register`; ``alerts.<name>`` in a site file is then validated by that model
and :func:`build_sinks` builds it. Another package adds a sink by naming its module in the
``crowdwatch.sinks`` entry-point group.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from crowdwatch.config import AlertsConfig, SinkConfig, register_sink_model, sink_models
from crowdwatch.metrics import Metrics
from crowdwatch.streams.alerting.sinks import ConsoleSink, Sink


@dataclass(frozen=True)
class SinkTraits:
    """What the rest of the product needs to know about a sink, without naming it."""

    # Writes Grafana annotations: the dashboards then show them on their time axes.
    annotates_grafana: bool = False


@dataclass(frozen=True)
class SinkKind:
    name: str  # the section under `alerts:`
    config: type[SinkConfig]
    build: Callable[[SinkConfig, Metrics], Sink]
    traits: SinkTraits = SinkTraits()


_KINDS: dict[str, SinkKind] = {}


def register(kind: SinkKind) -> SinkKind:
    """Make a sink known to config validation and to :func:`build_sinks`."""
    register_sink_model(kind.name, kind.config)
    _KINDS[kind.name] = kind
    return kind


def sink_kinds() -> dict[str, SinkKind]:
    """Every registered sink, by section name (loads the plug-ins on first use)."""
    sink_models()
    return dict(_KINDS)


def build_sinks(alerts: AlertsConfig, metrics: Metrics) -> list[Sink]:
    """The console line where it is on, then each configured sink in registration order."""
    sinks: list[Sink] = [ConsoleSink()] if alerts.console else []
    kinds = sink_kinds()
    for name, cfg in alerts.configured().items():
        sinks.append(kinds[name].build(cfg, metrics))
    return sinks


def uses_trait(alerts: AlertsConfig, trait: str) -> bool:
    """Whether any configured sink has ``trait`` (e.g. ``annotates_grafana``)."""
    kinds = sink_kinds()
    return any(getattr(kinds[name].traits, trait) for name in alerts.configured())
