"""Detector cost and accuracy on the simulated scene, one pinned core.

Prints one JSON object: per detector, ms per frame at 640x360 and 1280x720, and the
MAE on a fixed simulated sequence (held-out seed) against the generator's truth.
Run: python bench/bench_detectors.py [--samples N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from benchutil import pin_one_core

from crowdwatch.detectors.kinds.background import BackgroundDetectorConfig
from crowdwatch.detectors.kinds.hog import HogDetectorConfig
from crowdwatch.detectors.registry import build_detector
from crowdwatch.ingest.camera import CameraPipeline
from crowdwatch.ingest.sources import SimSource
from crowdwatch.progress import Progress
from crowdwatch.streams.runtime.demo import demo_config

SEQUENCE = "sim://school-gate?people=80&period=45&seed=4242"
DETECTORS = {
    "background": BackgroundDetectorConfig(kind="background"),
    "hog": HogDetectorConfig(kind="hog", upscale=2.0),
}


def ms_per_frame(kind: str, width: int, frames: list[np.ndarray], bar: Progress) -> float:
    """Detector time for frames handed over at ``width`` (the background counter resizes
    to its model's work width itself; HOG works at the width it is given)."""
    camera = demo_config().cameras[0].model_copy(update={"detect_width": width})
    pipeline = CameraPipeline(camera, build_detector(DETECTORS[kind]))
    views = [pipeline.preprocess(f) for f in frames]
    pipeline.detector.count(views[0], pipeline.zones)  # warm caches
    started = time.perf_counter()
    for view in views:
        pipeline.detector.count(view, pipeline.zones)
        bar.update(bar.done + 1)
    return 1000 * (time.perf_counter() - started) / len(views)


def mae(kind: str, samples: int, bar: Progress) -> tuple[float, int]:
    camera = demo_config().cameras[0].model_copy(update={"url": SEQUENCE})
    source = SimSource(SEQUENCE, camera.sample_hz, realtime=False)
    pipeline = CameraPipeline(camera, build_detector(DETECTORS[kind]))
    errors = []
    for i in range(samples):
        frame = source.read()
        (event,) = pipeline.process(frame)
        if i >= 5:
            errors.append(abs(event.count - source.scene.true_count(camera.zones[0].polygon)))
        bar.update(bar.done + 1)
    return float(np.mean(errors)), len(errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=190, help="sim samples for MAE (2 Hz)")
    parser.add_argument("--timing-frames", type=int, default=20)
    args = parser.parse_args()
    pin_one_core()
    source = SimSource(SEQUENCE, 2, realtime=False)
    frames = []
    for _ in range(args.timing_frames + 40):  # skip the quiet start: time crowded frames
        frames.append(source.read().image)
    frames = frames[-args.timing_frames:]
    total = len(DETECTORS) * (2 * args.timing_frames + args.samples)
    bar = Progress(total, "bench_detectors")
    result = {"sequence": SEQUENCE, "samples_for_mae": None, "cpu_affinity": "one core",
              "detectors": {}}
    for kind in DETECTORS:
        err, n = mae(kind, args.samples, bar)
        result["samples_for_mae"] = n
        result["detectors"][kind] = {
            "ms_per_frame_640x360": round(ms_per_frame(kind, 640, frames, bar), 2),
            "ms_per_frame_1280x720": round(ms_per_frame(kind, 1280, frames, bar), 2),
            "mae": round(err, 3),
        }
    bar.close()
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
