"""A user's own licensed person detector, exported to ONNX: boxes and classes (or
per-class scores) out, its input size and normalisation from the config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crowdwatch.detectors.boxes import Boxes, Image, letterbox, nms, onnx_session
from crowdwatch.errors import ModelError


@dataclass(frozen=True)
class OnnxLayout:
    """How a user's export is fed and read."""

    input_size: tuple[int, int]  # (width, height)
    channels: str = "bgr"  # or "rgb"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)  # on 0-255 pixels, input channel order
    std: tuple[float, float, float] = (255.0, 255.0, 255.0)
    boxes_output: str = "boxes"  # (N, 4) or (1, N, 4)
    scores_output: str = "scores"  # (N,), (1, N), or per class (1, N, C)
    classes_output: str | None = None  # (N,) or (1, N) class ids, when scores are per box
    box_format: str = "xyxy"  # or "cxcywh"
    normalized: bool = False  # boxes in 0..1 of the input instead of input pixels
    person_class: int = 0
    nms_iou: float = 0.5


class OnnxBoxes:
    """Person boxes from a user's ONNX detector on one image."""

    def __init__(self, model: str | Path, layout: OnnxLayout, score: float,
                 threads: int = 1) -> None:
        self.path = str(model)
        self.layout = layout
        self.score = score
        self.input_size = layout.input_size
        self.session = onnx_session(model, threads)
        inputs = self.session.get_inputs()  # type: ignore[attr-defined]
        self.input_name = inputs[0].name
        names = {o.name for o in self.session.get_outputs()}  # type: ignore[attr-defined]
        wanted = [layout.boxes_output, layout.scores_output,
                  *([layout.classes_output] if layout.classes_output else [])]
        missing = [n for n in wanted if n not in names]
        if missing:
            raise ModelError(f"{model}: no output named {', '.join(missing)} (it has "
                             f"{', '.join(sorted(names))}); set boxes_output/scores_output/"
                             "classes_output")
        self.outputs = wanted
        self._mean = np.asarray(layout.mean, np.float32)
        self._std = np.asarray(layout.std, np.float32)

    def detect(self, image: Image) -> Boxes:
        canvas, ratio = letterbox(image, self.input_size)
        if self.layout.channels == "rgb":
            canvas = canvas[:, :, ::-1]
        x = ((canvas.astype(np.float32) - self._mean) / self._std).transpose(2, 0, 1)[None]
        try:
            values = self.session.run(self.outputs, {self.input_name: x})  # type: ignore[attr-defined]
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"{self.path}: inference failed: {exc}") from None
        return self._read(values, ratio)

    def _read(self, values: list[np.ndarray], ratio: float) -> Boxes:
        lay = self.layout
        boxes = np.asarray(values[0], np.float32).reshape(-1, 4)
        scores = np.asarray(values[1], np.float32)
        if scores.ndim == 3 or (scores.ndim == 2 and scores.shape[0] == len(boxes)
                                and scores.shape[1] > 1):
            scores = scores.reshape(len(boxes), -1)[:, lay.person_class]
        else:
            scores = scores.reshape(-1)
            if lay.classes_output is not None:
                classes = np.asarray(values[2]).reshape(-1)
                scores = np.where(classes.astype(int) == lay.person_class, scores, 0.0)
        if len(scores) != len(boxes):
            raise ModelError(f"{self.path}: {len(boxes)} boxes but {len(scores)} scores")
        keep = scores >= self.score
        boxes, scores = boxes[keep], scores[keep].astype(np.float32)
        if lay.normalized:
            boxes = boxes * np.array([*self.input_size, *self.input_size], np.float32)
        if lay.box_format == "cxcywh":
            cx, cy, w, h = boxes.T
            boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        boxes = (boxes / ratio).astype(np.float32)
        kept = nms(boxes, scores, lay.nms_iou)
        return Boxes(boxes[kept], scores[kept])
