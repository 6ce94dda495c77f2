"""A counter against the simulator's exact truth: the gate zone, zero labels, time order.

Shared by the transfer benchmark and the tests, so both score the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from crowdwatch.detectors.base import Detector
from crowdwatch.detectors.zones import ZoneGeometry, ground_area_m2, ground_homography
from crowdwatch.ingest.sim import SimParams, SimScene, gate_zone_config


def sim_gate_zone(params: SimParams) -> tuple[ZoneGeometry, list[list[float]]]:
    """The demo's gate zone on this sim camera, with its ground calibration, and its
    polygon (native pixels) for the generator's truth."""
    cfg = gate_zone_config(params)
    homography = ground_homography(cfg["ground"]["image"], cfg["ground"]["world_m"])
    zone = ZoneGeometry("gate", np.asarray(cfg["polygon"]), (params.height, params.width),
                        homography, ground_area_m2(cfg["polygon"], homography))
    return zone, cfg["polygon"]


def count_on_sim(detector: Detector, params: SimParams, frames: int, warmup: int,
                 progress: Callable[[int, int], None] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, float]:
    """(counts, truth, seconds counting) over ``frames`` samples at 2 per second, after
    ``warmup`` samples that only build the detector's state; ``progress(done, total)``
    after each sample."""
    zone, polygon = sim_gate_zone(params)
    scene = SimScene(params)
    pred, truth, elapsed = [], [], 0.0
    for i in range(warmup + frames):
        scene.advance_to(i * 0.5)
        image = scene.render()
        if i < warmup:
            detector.prime(image)
        else:
            started = time.perf_counter()
            pred.append(detector.count(image, [zone])[zone.zone_id][0])
            elapsed += time.perf_counter() - started
            truth.append(scene.true_count(polygon))
        if progress:
            progress(i + 1, warmup + frames)
    return np.array(pred), np.array(truth, dtype=float), elapsed
