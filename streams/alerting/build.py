"""The notification sinks a config asks for (sinks are plug-ins: see ``plugin``)."""

from __future__ import annotations

from crowdwatch.streams.alerting.plugin import build_sinks

__all__ = ["build_sinks"]
