"""Counting by regression on background-subtraction features (privacy-friendly, cheap).

A per-camera MOG2 model separates moving foreground from the scene. Per zone the
foreground area and foreground edge length are weighted by perspective (a far person
covers fewer pixels than a near one) and a small linear model maps them to a count.
The model is fitted per camera by ``crowdwatch calibrate``; a default fitted on the
built-in simulated scene ships with the package.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from crowdwatch.detectors.base import ZoneCounts
from crowdwatch.detectors.zones import ZoneGeometry

MODEL_VERSION = 1
FEATURES = ("fg_area_w", "fg_edges_w")


@dataclass
class RegressionModel:
    """Linear map from perspective-weighted features to a people count."""

    coef: list[float]
    intercept: float
    detect_width: int = 640
    features: list[str] = field(default_factory=lambda: list(FEATURES))
    perspective: str | None = None  # .npy of relative person size, relative to the model file
    trained_on: str = ""
    train_mae: float | None = None
    kind: str = "background"
    version: int = MODEL_VERSION

    def predict(self, feats: np.ndarray) -> np.ndarray:
        return np.maximum(0.0, feats @ np.asarray(self.coef) + self.intercept)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> RegressionModel:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: cannot read background model: {exc}") from None
        if data.get("kind") != "background" or data.get("version") != MODEL_VERSION:
            raise ValueError(
                f"{path}: not a background model v{MODEL_VERSION} "
                f"(kind={data.get('kind')!r}, version={data.get('version')!r})"
            )
        try:
            model = cls(**data)
        except TypeError as exc:
            raise ValueError(f"{path}: {exc}") from None
        if len(model.coef) != len(model.features):
            raise ValueError(f"{path}: {len(model.coef)} coefficients for {model.features}")
        if model.perspective and not Path(model.perspective).is_absolute():
            model.perspective = str(path.parent / model.perspective)
        return model

    @classmethod
    def default(cls) -> RegressionModel:
        ref = resources.files("crowdwatch") / "models" / "background_sim.json"
        with resources.as_file(ref) as path:
            return cls.load(path)

    @classmethod
    def fit(cls, feats: np.ndarray, truth: np.ndarray, **meta) -> RegressionModel:
        """Least squares with an intercept; drops to no intercept if it would go negative."""
        x = np.column_stack([feats, np.ones(len(feats))])
        sol, *_ = np.linalg.lstsq(x, truth, rcond=None)
        model = cls(coef=[float(c) for c in sol[:-1]], intercept=float(sol[-1]), **meta)
        model.train_mae = float(np.mean(np.abs(model.predict(feats) - truth)))
        return model


class BackgroundDetector:
    """One instance per camera: it carries that camera's background model."""

    name = "background"

    def __init__(
        self,
        model: RegressionModel | None = None,
        history: int = 120,
        var_threshold: float = 16.0,
        warmup: int = 5,
    ) -> None:
        self.model = model or RegressionModel.default()
        self.subtractor = cv2.createBackgroundSubtractorMOG2(
            history=history, varThreshold=var_threshold, detectShadows=False
        )
        self.warmup = warmup
        self.frames = 0
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self._weights: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._person_scale = (
            np.load(self.model.perspective).astype(np.float32) if self.model.perspective else None
        )

    def _resize(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        width = frame.shape[1]
        if width == self.model.detect_width:
            return frame, 1.0
        scale = self.model.detect_width / width
        size = (self.model.detect_width, max(1, round(frame.shape[0] * scale)))
        return cv2.resize(frame, size, interpolation=cv2.INTER_AREA), scale

    def _zone_at(self, zone: ZoneGeometry, shape: tuple[int, int], scale: float) -> ZoneGeometry:
        if scale == 1.0 and zone.shape == shape:
            return zone
        h = zone.homography
        if h is not None and scale != 1.0:
            h = h @ np.diag([1.0 / scale, 1.0 / scale, 1.0])
        return ZoneGeometry(zone.zone_id, zone.polygon * scale, shape, h, zone.area_m2)

    def _weights_for(self, zone: ZoneGeometry) -> tuple[np.ndarray, np.ndarray]:
        key = (zone.zone_id, zone.shape)
        if key not in self._weights:
            w = zone.perspective_weight(self._person_scale)
            self._weights[key] = (w, np.sqrt(w))
        return self._weights[key]

    def features(self, frame: np.ndarray, zones: list[ZoneGeometry]) -> dict[str, np.ndarray]:
        """Update the background with this frame; return each zone's feature vector."""
        small, scale = self._resize(frame)
        fg = self.subtractor.apply(small)
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, self._kernel)
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        edges = cv2.Canny(gray, 60, 150)
        edges &= fg
        self.frames += 1
        self._fg_ratio = float(np.count_nonzero(fg)) / fg.size
        out = {}
        for zone in zones:
            z = self._zone_at(zone, fg.shape, scale)
            y0, y1, x0, x1 = z.bbox
            w_area, w_edge = self._weights_for(z)
            fg_crop = fg[y0:y1, x0:x1].astype(np.float32) * (1.0 / 255.0)
            ed_crop = edges[y0:y1, x0:x1].astype(np.float32) * (1.0 / 255.0)
            out[zone.zone_id] = np.array(
                [float((fg_crop * w_area).sum()), float((ed_crop * w_edge).sum())]
            )
        return out

    def count(self, frame: np.ndarray, zones: list[ZoneGeometry]) -> ZoneCounts:
        feats = self.features(frame, zones)
        quality = min(1.0, self.frames / self.warmup)
        if self._fg_ratio > 0.6:  # most of the view changed at once: lighting or a moved camera
            quality *= 0.3
        return {
            zid: (float(self.model.predict(f[None, :])[0]), quality) for zid, f in feats.items()
        }
