"""Fit a camera's background-regression model from labelled frames.

Labels come from a truth CSV (``frame,count``, 1-based frame numbers) or, for the
simulated scene, from the generator itself. Frames are fed in order so the
background model sees the scene as it would live; only labelled frames after a short
warm-up become training rows.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from crowdwatch.config import CameraConfig
from crowdwatch.detectors.background import BackgroundDetector, RegressionModel
from crowdwatch.ingest.camera import CameraPipeline
from crowdwatch.ingest.sim import SimParams
from crowdwatch.ingest.sources import Frame, SimSource

log = logging.getLogger("crowdwatch.calibrate")


def read_truth_csv(path: str | Path) -> dict[int, float]:
    """``frame,count`` rows (extra columns allowed) → {frame number: count}."""
    path = Path(path)
    truth: dict[int, float] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        cols = {c.lower(): c for c in reader.fieldnames or []}
        frame_col = cols.get("frame") or cols.get("frame_index")
        if frame_col is None or "count" not in cols:
            raise ValueError(f"{path}: needs columns frame (or frame_index) and count")
        for line_no, row in enumerate(reader, start=2):
            try:
                truth[int(row[frame_col])] = float(row[cols["count"]])
            except (TypeError, ValueError):
                raise ValueError(f"{path}:{line_no}: bad frame or count {row!r}") from None
    return truth


@dataclass
class Samples:
    features: np.ndarray  # N × F
    truth: np.ndarray  # N


def collect_samples(
    frames: Iterable[Frame],
    pipeline: CameraPipeline,
    zone_id: str,
    label: Callable[[Frame], float | None],
    warmup: int = 5,
    progress: Callable[[int], None] | None = None,
) -> Samples:
    detector = pipeline.detector
    assert isinstance(detector, BackgroundDetector)
    feats, truth = [], []
    for i, frame in enumerate(frames):
        view = pipeline.preprocess(frame.image)
        f = detector.features(view, pipeline.zones)[zone_id]
        y = label(frame)
        if i >= warmup and y is not None:
            feats.append(f)
            truth.append(y)
        if progress:
            progress(i + 1)
    if not feats:
        raise ValueError("no labelled frames after warm-up; nothing to fit")
    return Samples(np.array(feats), np.array(truth, dtype=float))


def calibrate_on_sim(
    camera: CameraConfig, seeds: Iterable[int], frames_per_seed: int,
    progress: Callable[[int], None] | None = None,
) -> tuple[RegressionModel, Samples]:
    """Fit on several runs of the simulated scene, labelled by the generator's truth."""
    zone = camera.zones[0]
    all_f, all_t = [], []
    done = 0
    for seed in seeds:
        url = replace(SimParams.from_url(camera.url), seed=seed).to_url()
        source = SimSource(url, camera.sample_hz, realtime=False)
        pipeline = CameraPipeline(
            camera, BackgroundDetector(RegressionModel(coef=[0.0, 0.0], intercept=0.0))
        )

        def frames(src: SimSource = source):
            for _ in range(frames_per_seed):
                yield src.read()

        s = collect_samples(
            frames(), pipeline, zone.id,
            lambda _f, src=source: float(src.scene.true_count(zone.polygon)),
            progress=(lambda n, base=done: progress(base + n)) if progress else None,
        )
        done += frames_per_seed
        all_f.append(s.features)
        all_t.append(s.truth)
    samples = Samples(np.vstack(all_f), np.concatenate(all_t))
    model = RegressionModel.fit(samples.features, samples.truth, trained_on=camera.url)
    return model, samples
