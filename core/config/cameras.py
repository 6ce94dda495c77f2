"""Cameras: stream, sampling, health thresholds, privacy masks, zones and the detector
(whose kinds are plug-ins registered here, as rule kinds are in `rules`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SerializeAsAny, ValidatorFunctionWrapHandler, field_validator

from crowdwatch.config.fields import Identifier, Polygon, Seconds, Strict
from crowdwatch.config.site import ZoneConfig
from crowdwatch.kinds import KindRegistry
from crowdwatch.util.shapes import polygon_problem

DETECTOR_PLUGIN_GROUP = "crowdwatch.detectors"


class DetectorConfig(Strict):
    """What every detector's config shares. Each kind subclasses it in its own module
    (``crowdwatch.detectors.kinds``) and registers itself, as rule kinds do."""

    kind: str

    def needs_person_size(self, camera: CameraConfig) -> bool:
        """Whether every zone of the camera must give a person size (height_ref or
        ground): a kind that weighs foreground by it cannot count without."""
        return False


DETECTORS: KindRegistry[DetectorConfig] = KindRegistry(DETECTOR_PLUGIN_GROUP)
register_detector_model = DETECTORS.register
detector_models = DETECTORS.models


def default_detector() -> DetectorConfig:
    """A camera's detector when none is given: the background counter (which counts by
    geometry on a real camera whose zones all have a person size)."""
    return detector_models()["background"](kind="background")


class HealthConfig(Strict):
    """When a camera that still sends frames counts as stale or tampered."""

    stale_after: Seconds = Field(10.0, gt=0, description="Unchanged picture this long: stale.")
    tamper_after: Seconds = Field(5.0, gt=0, description="Dark/blank/blurred/moved this long.")
    dark_level: float = Field(18.0, ge=0, le=255, description="Mean grey under this: dark.")
    uniform_std: float = Field(5.0, ge=0, description="Grey spread under this: covered.")
    defocus_ratio: float = Field(0.25, gt=0, lt=1, description="Share of start sharpness.")
    move_fraction: float = Field(0.06, gt=0, lt=1, description="Shift (share of width): moved.")
    heartbeat: Seconds = Field(10.0, gt=0, description="Health event at least this often.")


class ReconnectConfig(Strict):
    initial: Seconds = Field(1.0, gt=0, description="First retry delay (doubles, with jitter).")
    max: Seconds = Field(30.0, gt=0, description="Longest retry delay.")


class CameraConfig(Strict):
    id: Identifier
    url: str = Field(description="sim://scene?..., a video file path, file://..., rtsp://, http://")
    sample_hz: float = Field(2.0, gt=0, le=30, description="Samples per second sent to detection.")
    loop: bool = Field(False, description="Restart a video file at its end.")
    decode: Literal["auto", "keyframe", "all"] = Field(
        "auto", description="keyframe: decode keyframes only; all: decode every frame, convert "
        "sampled ones; auto: pick from the measured keyframe interval.")
    open_timeout: Seconds = Field(10.0, gt=0, description="Give up opening the stream after.")
    read_timeout: Seconds = Field(10.0, gt=0, description="A read stalled this long fails.")
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    detect_width: int = Field(640, ge=64, le=4096, description="Frames are downscaled to this.")
    motion_gap: Seconds = Field(
        0.2, ge=0.02, le=1.0, description="Speed and flow are measured between each sample "
        "and the frame this long after it (zones with lines only).")
    detector: SerializeAsAny[DetectorConfig] = Field(
        default_factory=default_detector, description="How this camera counts: `kind` "
        "names a detector plug-in (see `crowdwatch config schema`).")
    privacy_masks: list[Polygon] = Field(
        default_factory=list, description="Image regions blanked before any detector sees them."
    )
    zones: list[ZoneConfig] = Field(
        default_factory=list, description="Where to count. A camera with none is being set up "
        "(added from the console): it reports health and serves setup snapshots, and counts "
        "nothing.")

    @field_validator("detector", mode="wrap")
    @classmethod
    def _detector_kind(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """The detector validates against its own kind's model (from the registry)."""
        if isinstance(value, DetectorConfig) and type(value) is not DetectorConfig:
            return handler(value)
        return DETECTORS.adapter().validate_python(value)

    @field_validator("privacy_masks")
    @classmethod
    def _simple_masks(cls, value: list[list[list[float]]]) -> list[list[list[float]]]:
        for i, polygon in enumerate(value):
            problem = polygon_problem(polygon)
            if problem:
                raise ValueError(f"privacy mask {i}: {problem}")
        return value

