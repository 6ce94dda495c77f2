"""The source plug-in contract: one module per source kind, chosen by the camera URL's
scheme, owns its opening, its check of the URL as written, and its traits.

A kind's module builds a :class:`SourceKind` and calls :func:`register`; the camera
loop, `config check` and the detectors' build context ask this registry instead of
testing URL prefixes. Another package adds a kind by naming its module in the
``crowdwatch.sources`` entry-point group. A kind's settings are the camera's own fields
(sample rate, decode mode, timeouts) and its URL's query, so it has no config section.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from crowdwatch.errors import SourceError
from crowdwatch.ingest.sources import Frame
from crowdwatch.kinds import load_plugins
from crowdwatch.util.redact import redact_url

SOURCE_PLUGIN_GROUP = "crowdwatch.sources"
PATH = ""  # the scheme of a URL without one: a file path or an image-sequence pattern


class Source(Protocol):
    """What the camera loop reads samples from."""

    mode: str  # how it decodes (reported in camera health): "keyframe", "sim", ...

    def read(self) -> Frame | None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class OpenRequest:
    """Everything a kind may need to open one camera's source."""

    url: str
    sample_hz: float
    loop: bool = False
    realtime: bool = True
    decode: str = "auto"
    out_width: int | None = 640
    open_timeout: float = 10.0
    read_timeout: float = 10.0
    pair_gap: float = 0.0  # > 0: each sample's follower frame this much later, if it can


@dataclass(frozen=True)
class SourceTraits:
    """What the rest of the product needs to know about a kind, without naming it."""

    # A drawn scene, not a camera: the shipped background model was fitted on it.
    simulated: bool = False
    # Knows its true count per frame (`calibrate sim` fits a model on it).
    knows_truth: bool = False


def _claims_all(url: str) -> bool:
    return True


@dataclass(frozen=True)
class SourceKind:
    name: str
    schemes: tuple[str, ...]  # lower case, without "://"; PATH for a bare path
    open: Callable[[OpenRequest], Source]
    # The URL as written, before anything opens: a problem to report, or None.
    check: Callable[[str], str | None]
    traits: SourceTraits = SourceTraits()
    # Among kinds sharing a scheme, the highest priority whose `claims` accepts the URL
    # wins (an image-sequence pattern is a path that a video path is not).
    claims: Callable[[str], bool] = _claims_all
    priority: int = 0


_KINDS: dict[str, SourceKind] = {}
_loaded = False


def register(kind: SourceKind) -> SourceKind:
    _KINDS[kind.name] = kind
    return kind


def source_kinds() -> dict[str, SourceKind]:
    """Every registered kind by name (loads the plug-ins on first use)."""
    global _loaded
    if not _loaded:
        _loaded = True
        load_plugins(SOURCE_PLUGIN_GROUP)
    return dict(_KINDS)


def scheme_of(url: str) -> str:
    head, sep, _ = url.partition("://")
    return head.lower() if sep else PATH


def kind_for(url: str) -> SourceKind:
    """The kind that opens ``url``; SourceError naming the schemes there are if none."""
    scheme = scheme_of(url)
    matching = [k for k in source_kinds().values() if scheme in k.schemes and k.claims(url)]
    if not matching:
        known = sorted({f"{s}://" if s else "a file path" for k in source_kinds().values()
                        for s in k.schemes})
        raise SourceError(f"{redact_url(url)}: no source reads {scheme}:// URLs (known: "
                          f"{', '.join(known)})")
    return max(matching, key=lambda k: k.priority)


def traits_of(url: str) -> SourceTraits:
    """The traits of the kind that would open ``url`` (defaults for an unknown scheme)."""
    try:
        return kind_for(url).traits
    except SourceError:
        return SourceTraits()


def url_problem(url: str) -> str | None:
    """What is wrong with a camera URL as written (scheme unknown, parameters impossible,
    file missing), for `config check` and every start."""
    try:
        kind = kind_for(url)
    except SourceError as exc:
        return str(exc)
    return kind.check(url)


def open_source(url: str, sample_hz: float, loop: bool = False, realtime: bool = True,
                decode: str = "auto", out_width: int | None = 640, open_timeout: float = 10.0,
                read_timeout: float = 10.0, pair_gap: float = 0.0) -> Source:
    """Open a camera's source with the kind its URL names. ``pair_gap`` > 0 asks for each
    sample's follower frame (speed and flow), where the kind can give one."""
    request = OpenRequest(url, sample_hz, loop, realtime, decode, out_width, open_timeout,
                          read_timeout, pair_gap)
    return kind_for(url).open(request)
