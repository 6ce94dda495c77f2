"""The shipped person detector: NanoDet-g-416 (COCO-trained, Apache-2.0), on onnxruntime.

Pre- and post-processing follow upstream's ``nanodet-g.yml`` and GFL head (RangiLyu/
nanodet): BGR input normalised by per-channel mean and std, keep-ratio letterbox to
416×416, three levels (strides 8, 16, 32) each giving 80 class scores and, per side, a
distribution over ``reg_max + 1`` distance bins (its expectation × stride is the
distance from the cell centre). Only COCO class 0 (person) is read. The model file, its
licence and how it was built are in ``crowdwatch/models`` (see NOTICE.md there).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from crowdwatch.detectors.boxes import Boxes, FloatArray, Image, letterbox, nms, onnx_session
from crowdwatch.errors import ModelError

MODEL_FILE = "nanodet-g-416.onnx"
MEAN_BGR = np.array([103.53, 116.28, 123.675], np.float32)
STD_BGR = np.array([57.375, 57.12, 58.395], np.float32)
STRIDES = (8, 16, 32)
REG_MAX = 10
PERSON = 0  # COCO class index
NMS_IOU = 0.6  # upstream's test_cfg


def shipped_model() -> Path:
    """Path of the model file in the installed package."""
    return Path(str(files("crowdwatch") / "models" / MODEL_FILE))


class NanoDet:
    """Person boxes from NanoDet-g-416 on one image."""

    input_size = (416, 416)

    def __init__(self, model: str | Path | None = None, score: float = 0.3,
                 threads: int = 1) -> None:
        self.session = onnx_session(model or shipped_model(), threads)
        self.score = score
        inputs = self.session.get_inputs()  # type: ignore[attr-defined]
        self.input_name = inputs[0].name
        outputs = self.session.get_outputs()  # type: ignore[attr-defined]
        # Outputs come as (1, cells, 80) class scores and (1, cells, 44) distances per
        # level; the cell count tells the level.
        by_cells: dict[tuple[int, int], str] = {
            (int(o.shape[1]), int(o.shape[2])): o.name for o in outputs}
        self.levels: list[tuple[str, str, int]] = []
        for stride in STRIDES:
            cells = (self.input_size[0] // stride) * (self.input_size[1] // stride)
            try:
                self.levels.append((by_cells[(cells, 80)], by_cells[(cells, 4 * (REG_MAX + 1))],
                                    stride))
            except KeyError:
                raise ModelError(f"{model or shipped_model()}: not a NanoDet-g-416 export "
                                 f"(no outputs for stride {stride})") from None
        self._bins = np.arange(REG_MAX + 1, dtype=np.float32)

    def detect(self, image: Image) -> Boxes:
        canvas, ratio = letterbox(image, self.input_size)
        x = ((canvas.astype(np.float32) - MEAN_BGR) / STD_BGR).transpose(2, 0, 1)[None]
        names = [n for level in self.levels for n in level[:2]]
        values = dict(zip(names, self.session.run(names, {self.input_name: x}),  # type: ignore[attr-defined]
                          strict=True))
        found: list[tuple[FloatArray, FloatArray]] = []
        for cls_name, reg_name, stride in self.levels:
            person = values[cls_name][0][:, PERSON]
            idx = np.nonzero(person >= self.score)[0]
            if not len(idx):
                continue
            found.append((self._decode(values[reg_name][0][idx], idx, stride) / ratio,
                          person[idx].astype(np.float32)))
        if not found:
            return Boxes.empty()
        xyxy = np.concatenate([f[0] for f in found]).astype(np.float32)
        scores = np.concatenate([f[1] for f in found])
        keep = nms(xyxy, scores, NMS_IOU)
        return Boxes(xyxy[keep], scores[keep])

    def _decode(self, reg: NDArray[np.float32], idx: NDArray[np.intp], stride: int
                ) -> FloatArray:
        cols = self.input_size[0] // stride
        cy = (idx // cols + 0.5) * stride
        cx = (idx % cols + 0.5) * stride
        logits = reg.reshape(-1, 4, REG_MAX + 1)
        prob = np.exp(logits - logits.max(axis=-1, keepdims=True))
        prob /= prob.sum(axis=-1, keepdims=True)
        dist = (prob * self._bins).sum(axis=-1) * stride  # left, top, right, bottom
        return np.stack([cx - dist[:, 0], cy - dist[:, 1], cx + dist[:, 2], cy + dist[:, 3]],
                        axis=1).astype(np.float32)
