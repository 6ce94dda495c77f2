"""An image sequence, ``frames/seq_%06d.jpg``: numbered files read with OpenCV."""

from __future__ import annotations

from crowdwatch.ingest.source_plugin import PATH, OpenRequest, Source, SourceKind, register
from crowdwatch.ingest.sources import VideoSource


def _open(request: OpenRequest) -> Source:
    return VideoSource(request.url, request.sample_hz, loop=request.loop,
                       realtime=request.realtime)


def _is_pattern(url: str) -> bool:
    return "%" in url


def _check(url: str) -> str | None:
    return None  # which numbers exist is known only when reading


KIND = register(SourceKind("sequence", (PATH,), _open, _check, claims=_is_pattern,
                           priority=1))
