"""``sim://scene?people=..&seed=..``: the built-in simulated scene, which knows its truth."""

from __future__ import annotations

from crowdwatch.errors import ConfigError
from crowdwatch.ingest.sim import SimParams
from crowdwatch.ingest.source_plugin import (
    OpenRequest,
    Source,
    SourceKind,
    SourceTraits,
    register,
)
from crowdwatch.ingest.sources import SimSource


def _open(request: OpenRequest) -> Source:
    return SimSource(request.url, request.sample_hz, realtime=request.realtime,
                     pair_gap=request.pair_gap)


def _check(url: str) -> str | None:
    try:
        SimParams.from_url(url)
    except ConfigError as exc:
        return str(exc)
    return None


KIND = register(SourceKind("sim", ("sim",), _open, _check,
                           SourceTraits(simulated=True, knows_truth=True)))
