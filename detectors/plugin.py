"""The detector plug-in contract: one module per kind owns its config, factory and traits.

A kind's module defines a ``DetectorConfig`` subclass (``kind: Literal["name"]``), a
factory and the kind's traits, and calls :func:`register`; the CLI, eval and the console
read the traits instead of naming kinds. Another package adds a kind by naming its
module in the ``crowdwatch.detectors`` entry-point group.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from crowdwatch.config import (
    CameraConfig,
    DetectorConfig,
    ZoneConfig,
    detector_models,
    register_detector_model,
)
from crowdwatch.detectors.base import Detector


def has_geometry(zone: ZoneConfig) -> bool:
    """Whether a zone's person size is known without labels (see person_scale)."""
    return zone.height_ref is not None or zone.ground is not None


def simulated_source(url: str) -> bool:
    """Whether a camera URL opens a drawn scene (the source registry's trait)."""
    from crowdwatch.ingest.source_plugin import traits_of  # ingest builds detectors

    return traits_of(url).simulated


@dataclass(frozen=True)
class BuildContext:
    """What a factory may know about the camera it builds for."""

    zones: Sequence[ZoneConfig] = ()
    # The simulated scene (its people are drawn shapes, and the shipped background
    # model was fitted on it), as opposed to a real camera.
    simulated: bool = False

    @classmethod
    def of(cls, camera: CameraConfig) -> BuildContext:
        return cls(tuple(camera.zones), simulated_source(camera.url))

    @property
    def all_zones_sized(self) -> bool:
        return bool(self.zones) and all(has_geometry(z) for z in self.zones)


@dataclass(frozen=True)
class DetectorTraits:
    """What the rest of the product needs to know about a kind, without naming it."""

    learns_background: bool = False  # needs a warm-up before it counts
    counts_without_labels: bool = False  # zone geometry alone sizes its people
    sees_still_people: bool = False  # an appearance model: people who never move count
    # Its count is (slope · raw + edge_weight · edges + offset) of a geometric raw
    # count: the console's few-shot calibration writes those three numbers back.
    few_shot_correction: bool = False


@dataclass(frozen=True)
class DetectorKind:
    name: str
    config: type[DetectorConfig]
    build: Callable[[DetectorConfig, BuildContext], Detector]
    traits: DetectorTraits
    # What the camera really runs for this config (a kind may defer to another: the
    # background counter without a model counts by geometry on a real sized camera).
    resolve: Callable[[DetectorConfig, BuildContext], DetectorConfig] | None = None


_KINDS: dict[str, DetectorKind] = {}


def register(kind: DetectorKind) -> DetectorKind:
    """Make a detector kind known to config validation and to :func:`build_detector`."""
    register_detector_model(kind.config)
    _KINDS[kind.name] = kind
    return kind


def detector_kinds() -> dict[str, DetectorKind]:
    """Every registered kind by name (loads the plug-ins on first use)."""
    detector_models()
    return _KINDS


def effective(cfg: DetectorConfig, ctx: BuildContext) -> tuple[DetectorKind, DetectorConfig]:
    """The kind and config a camera really runs for ``cfg``."""
    kind = detector_kinds()[cfg.kind]
    if kind.resolve is not None:
        resolved = kind.resolve(cfg, ctx)
        if resolved is not cfg:
            return effective(resolved, ctx)
    return kind, cfg


def build_detector(cfg: DetectorConfig, ctx: BuildContext | None = None) -> Detector:
    """A fresh detector instance for one camera (detectors keep per-camera state)."""
    ctx = ctx or BuildContext()
    kind, resolved = effective(cfg, ctx)
    return kind.build(resolved, ctx)
