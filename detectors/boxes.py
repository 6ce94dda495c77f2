"""Person boxes from an ONNX detector: the shipped NanoDet or a user's own export.

Boxes are an internal value of the appearance counters: they never leave the process
(only the counts made from them do), and nothing here keeps a box past the sample that
produced it, so no identity or trajectory can form.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from crowdwatch.errors import ModelError

Image = NDArray[np.uint8]
FloatArray = NDArray[np.float32]


@dataclass(frozen=True)
class Boxes:
    """N person boxes (x0, y0, x1, y1 in the image's pixels) and their scores."""

    xyxy: FloatArray
    scores: FloatArray

    @classmethod
    def empty(cls) -> Boxes:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.scores)

    def feet(self) -> FloatArray:
        """Bottom-centre of each box: where the person stands."""
        return np.stack([(self.xyxy[:, 0] + self.xyxy[:, 2]) / 2, self.xyxy[:, 3]],
                        axis=1).astype(np.float32)

    def shifted(self, dx: float, dy: float, scale: float) -> Boxes:
        """Boxes found in a crop resized by ``scale`` at (dx, dy), in the full image."""
        xyxy = self.xyxy / scale + np.array([dx, dy, dx, dy], np.float32)
        return Boxes(xyxy.astype(np.float32), self.scores)

    @classmethod
    def merged(cls, parts: list[Boxes], iou: float, contained: float) -> Boxes:
        """Union of overlapping crops' boxes, each person once: boxes of two crops are the
        same person when they overlap by ``iou`` or when the smaller lies within the
        larger by ``contained`` of its area (a person cut by one crop's edge is whole in
        the other, and the cut box lies inside the whole one)."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        xyxy = np.concatenate([p.xyxy for p in parts])
        scores = np.concatenate([p.scores for p in parts])
        source = np.concatenate([np.full(len(p), i) for i, p in enumerate(parts)])
        area = np.maximum(xyxy[:, 2] - xyxy[:, 0], 0) * np.maximum(xyxy[:, 3] - xyxy[:, 1], 0)
        # Larger boxes first (a whole person before its cut part), then by score.
        order = np.lexsort((-scores, -area))
        kept: list[int] = []
        for i in order:
            if kept:
                k = np.asarray(kept)
                w = np.minimum(xyxy[k, 2], xyxy[i, 2]) - np.maximum(xyxy[k, 0], xyxy[i, 0])
                h = np.minimum(xyxy[k, 3], xyxy[i, 3]) - np.maximum(xyxy[k, 1], xyxy[i, 1])
                inter = np.maximum(w, 0) * np.maximum(h, 0)
                union = area[k] + area[i] - inter
                same = inter >= iou * np.maximum(union, 1e-9)
                other_crop = source[k] != source[i]
                same |= other_crop & (inter >= contained * max(float(area[i]), 1e-9))
                if same.any():
                    continue
            kept.append(int(i))
        keep = np.asarray(sorted(kept), dtype=np.intp)
        return cls(xyxy[keep], scores[keep])


def nms(xyxy: FloatArray, scores: FloatArray, iou: float) -> NDArray[np.intp]:
    """Indices kept by greedy non-maximum suppression (OpenCV's)."""
    if not len(scores):
        return np.zeros(0, np.intp)
    rects = [(float(x0), float(y0), float(x1 - x0), float(y1 - y0)) for x0, y0, x1, y1 in xyxy]
    keep = cv2.dnn.NMSBoxes(rects, scores.astype(float).tolist(), 0.0, iou)
    return np.asarray(keep, dtype=np.intp).reshape(-1)


class BoxModel(Protocol):
    """A person detector on one image (a crop already at the scale wanted)."""

    input_size: tuple[int, int]  # (width, height) the model sees; crops are fitted to it

    def detect(self, image: Image) -> Boxes:
        ...


def onnx_session(path: str | Path, threads: int) -> object:
    """An onnxruntime CPU session limited to ``threads`` (ingest shares the cores)."""
    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover - onnxruntime is a core dependency
        raise ModelError("the appearance counters need onnxruntime: pip install "
                         "onnxruntime") from None
    if not Path(path).is_file():
        raise ModelError(f"{path}: no such model file")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"{path}: onnxruntime cannot load it: {exc}") from None


def letterbox(image: Image, size: tuple[int, int]) -> tuple[Image, float]:
    """The image resized to fit ``size`` (width, height) keeping its aspect ratio, at the
    top-left of a black canvas, and the resize factor."""
    width, height = size
    h, w = image.shape[:2]
    ratio = min(width / w, height / h)
    nw, nh = max(1, round(w * ratio)), max(1, round(h * ratio))
    canvas = np.zeros((height, width, 3), np.uint8)
    interp = cv2.INTER_AREA if ratio < 1 else cv2.INTER_LINEAR
    canvas[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=interp)
    return canvas, ratio
