"""RTSP, HTTP(S) (MJPEG included) and video files, decoded by FFmpeg through PyAV."""

from __future__ import annotations

from crowdwatch.ingest.source_plugin import PATH, OpenRequest, Source, SourceKind, register
from crowdwatch.util.files import missing_file

LIVE_SCHEMES = ("rtsp", "rtsps", "http", "https")


def _open(request: OpenRequest) -> Source:
    from crowdwatch.ingest.stream import StreamSource

    return StreamSource(request.url.removeprefix("file://"), request.sample_hz,
                        decode=request.decode, out_width=request.out_width,
                        open_timeout=request.open_timeout, read_timeout=request.read_timeout,
                        realtime=request.realtime, loop=request.loop,
                        pair_gap=request.pair_gap)


def _check(url: str) -> str | None:
    if "://" in url and not url.startswith("file://"):
        return None  # a live stream is only known when it answers
    return missing_file(url.removeprefix("file://"))


KIND = register(SourceKind("stream", (*LIVE_SCHEMES, "file", PATH), _open, _check))
