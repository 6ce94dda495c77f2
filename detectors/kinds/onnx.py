"""``kind: onnx``: your own licensed person detector (an ONNX export giving boxes and
classes or scores), counted by feet in the zone, alone or fused with geometry."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from crowdwatch.config import CameraConfig, DetectorConfig
from crowdwatch.detectors.appearance import AppearanceDetector, PersonFinder
from crowdwatch.detectors.base import Detector
from crowdwatch.detectors.fused import FusedDetector
from crowdwatch.detectors.kinds._person_detector import PersonDetectorSettings
from crowdwatch.detectors.onnx_boxes import OnnxBoxes, OnnxLayout
from crowdwatch.detectors.plugin import BuildContext, DetectorKind, DetectorTraits, register

Triple = Annotated[list[Annotated[float, Field(ge=-1000, le=1000)]],
                   Field(min_length=3, max_length=3)]


class OnnxDetectorConfig(PersonDetectorSettings):
    kind: Literal["onnx"]
    model: str = Field(description="Path of the ONNX file (your export; you hold its licence).")
    input_size: Annotated[list[Annotated[int, Field(ge=32, le=4096)]],
                          Field(min_length=2, max_length=2)] = Field(
        description="[width, height] the model takes; crops are letterboxed to it.")
    channels: Literal["bgr", "rgb"] = Field("rgb", description="Channel order it expects.")
    mean: Triple = Field([0.0, 0.0, 0.0], description="Subtracted per channel (0-255 pixels).")
    std: Triple = Field([255.0, 255.0, 255.0], description="Then divided per channel.")
    boxes_output: str = Field("boxes", min_length=1, description="Output with (N, 4) boxes.")
    scores_output: str = Field("scores", min_length=1, description="Output with a score per "
                               "box (N) or per box and class (N, C).")
    classes_output: str | None = Field(None, description="Output with each box's class id, "
                                       "when scores are per box.")
    box_format: Literal["xyxy", "cxcywh"] = "xyxy"
    normalized: bool = Field(False, description="Boxes in 0..1 of the input, not pixels.")
    person_class: int = Field(0, ge=0, le=100_000, description="The person class id.")
    fuse: bool = Field(False, description="Add the geometry foreground the boxes leave "
                       "unexplained (needs the zones' person size), as `kind: fused` does.")

    def layout(self) -> OnnxLayout:
        return OnnxLayout((self.input_size[0], self.input_size[1]), self.channels,
                          (self.mean[0], self.mean[1], self.mean[2]),
                          (self.std[0], self.std[1], self.std[2]), self.boxes_output,
                          self.scores_output, self.classes_output, self.box_format,
                          self.normalized, self.person_class)

    def needs_person_size(self, camera: CameraConfig) -> bool:
        return self.fuse


def _build(cfg: DetectorConfig, ctx: BuildContext) -> Detector:
    assert isinstance(cfg, OnnxDetectorConfig)
    finder = PersonFinder(OnnxBoxes(cfg.model, cfg.layout(), cfg.score, cfg.threads),
                          cfg.finder())
    if cfg.fuse:
        return FusedDetector(finder, correction=(cfg.slope, cfg.offset))
    return AppearanceDetector(finder, (cfg.slope, cfg.offset))


KIND = register(DetectorKind("onnx", OnnxDetectorConfig, _build,
                             DetectorTraits(sees_still_people=True)))
