"""Crowd dynamics without tracking: line crossings each way and walking speed vs the
simulator's exact truth, on randomised cameras nothing was fitted on.

Each camera is a ``counterflow`` walkway (people walk both ways, slowing where it is
crowded) seen from a random height (3-15 m), focal length, tilt and walkway direction,
with a crowd curve that goes from empty to a peak of 0.1-2 persons/m² and back. The
zone's ground homography and one line across the walkway are all the configuration
(zero labels); the camera runs the product's path (``SimSource`` with its follower
frame, ``CameraPipeline`` with the geometry counter and the motion meter). One
``bottleneck`` camera (a gate narrower than the dismissal crowd needs) is scored
beside them.

Per camera: crossings counted in and out vs true, rel_error = (|in − true in| +
|out − true out|) / (true in + true out); the mean speed in the zone vs the true mean of
the people there. The trivial baseline beside it: the zone's density times a nominal
1.34 m/s walking speed, split evenly both ways (what a line "knows" with no motion).
Rules: each camera also runs a `density` rule (warn 1.08, critical 2.15 persons/m²,
Fruin's D|E and E|F) and a `congestion` rule with its defaults; the bottleneck's lead is
how long the congestion warning came before the density rule's critical alert, the
free-flow figure how many congestion alerts the walkways raised.
Cost: the motion meter's milliseconds per sample at 640 px on one pinned core, beside
the counter's own in the same run.

Prints one JSON object; --plot writes crossings over time per camera.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from benchutil import pin_one_core

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.ingest.camera import CameraPipeline
from crowdwatch.ingest.sim import SimParams
from crowdwatch.ingest.sim_walkers import walkway_zone_config
from crowdwatch.ingest.sources import SimSource
from crowdwatch.progress import Progress
from crowdwatch.streams.rules.engine import RuleEngine

ROOT = Path(__file__).resolve().parents[1]
SIZE = (360, 640)
NOMINAL_SPEED = 1.34  # m/s, a commonly cited mean free walking speed
T0 = 1.8e9
# The density rule the congestion warning must beat: Fruin's D|E and E|F boundaries.
DENSITY_WARN, DENSITY_CRITICAL = 1.08, 2.15
GOALS = {"sim_line_rel_error": ("<=", 0.10), "sim_line_max_rel_error": ("<=", 0.20),
         "sim_speed_rel_error": ("<=", 0.15), "ms_per_sample_added": ("<=", 4.0),
         "congestion_lead_over_density_s": (">=", 30.0),
         "congestion_false_alerts_free_flow": ("==", 0)}


def random_walkway(seed: int, scene: str = "counterflow") -> SimParams:
    """A walker scene with a random camera that still sees the walkway's middle."""
    rng = np.random.default_rng(5000 + seed)
    cam_h = float(rng.uniform(3.0, 15.0))
    focal = float(rng.uniform(0.5, 1.2))
    h, w = SIZE
    near_row = float(rng.uniform(0.8, 0.97)) * h  # where ground 13 m away lands
    horizon = near_row - focal * w * cam_h / 13.0
    if horizon < 0:  # too steep for this lens: widen it until the zone fits
        focal = near_row / (w * cam_h / 13.0) * 0.98
        horizon = near_row - focal * w * cam_h / 13.0
    peak = int(rng.integers(15, 300)) if scene == "counterflow" else int(rng.integers(80, 160))
    return SimParams(scene=scene, people=peak, base=0, period=float(rng.uniform(150, 240)),
                     seed=seed, width=w, height=h, noise=float(rng.uniform(2, 6)),
                     cam_h=cam_h, focal=focal, horizon=horizon / h,
                     heading=float(rng.uniform(0, 180)), share=float(rng.uniform(0.3, 0.7)),
                     speed=float(rng.uniform(1.0, 1.5)), gate=float(rng.uniform(1.5, 3.0)))


class _Timed:
    """Wall time of each call of a bound method, kept in ``ms``."""

    def __init__(self, method):
        self.method, self.ms = method, []

    def __call__(self, *args, **kwargs):
        started = time.perf_counter()
        out = self.method(*args, **kwargs)
        self.ms.append((time.perf_counter() - started) * 1000)
        return out


def run_camera(params: SimParams, sample_hz: float, bar: Progress) -> dict:
    zone = walkway_zone_config(params)
    url = params.to_url()
    site = CrowdwatchConfig.model_validate({
        "cameras": [{"id": f"cam{params.seed}", "url": url, "sample_hz": sample_hz,
                     "detector": {"kind": "geometry"}, "zones": [zone]}],
        "rules": [{"kind": "density", "zone": zone["id"], "warn": DENSITY_WARN,
                   "critical": DENSITY_CRITICAL, "for": "10s"},
                  {"kind": "congestion", "zone": zone["id"]}]})
    cam = site.cameras[0]
    engine = RuleEngine(site, start_ts=T0)
    first: dict[str, float] = {}
    congestions = 0
    source = SimSource(url, sample_hz, realtime=False, start_ts=T0, pair_gap=cam.motion_gap)
    tally = source.scene.watch_line("across", zone["lines"][0]["points"])
    pipe = CameraPipeline(cam)
    samples = round(1.5 * params.period * sample_hz)
    counted = {"in": 0.0, "out": 0.0}
    baseline = {"in": 0.0, "out": 0.0}
    start = None
    speeds, true_speeds, series = [], [], []
    count_timer = motion_timer = None
    for i in range(samples):
        frame = source.read()
        bar.update(bar.done + 1)
        if not pipe.ready:
            pipe.prime(frame)
            continue
        if start is None:
            start = (tally.n_in, tally.n_out)
            count_timer = _Timed(pipe.detector.count)
            pipe.detector.count = count_timer  # type: ignore[method-assign]
            assert pipe.motion is not None
            motion_timer = _Timed(pipe.motion.measure)
            pipe.motion.measure = motion_timer  # type: ignore[method-assign]
        truth_speed = source.scene.true_speed(zone["polygon"])
        (event,) = pipe.process(frame)
        for alert in engine.handle(event):
            if alert.state == "firing":
                name = f"{alert.rule}:{alert.severity}"
                first.setdefault(name, alert.starts_at - T0)
                congestions += alert.rule == "congestion"
        crossed = event.lines.get("across")
        if crossed is not None:
            for way in ("in", "out"):
                counted[way] += crossed[way]
                baseline[way] += ((event.density_ppm2 or 0.0) * NOMINAL_SPEED
                                  * crossed["length_m"] * (event.interval_s or 0.0) / 2)
        if event.speed_mps is not None and truth_speed is not None:
            speeds.append(event.speed_mps)
            true_speeds.append(truth_speed)
        series.append((i / sample_hz, counted["in"], counted["out"],
                       tally.n_in - start[0], tally.n_out - start[1]))
    true = {"in": tally.n_in - start[0], "out": tally.n_out - start[1]} if start else {}
    total = max(1, sum(true.values()))

    def rel(est: dict) -> float:
        return round(sum(abs(est[w] - true[w]) for w in ("in", "out")) / total, 4)

    speed_rel = (abs(np.mean(speeds) - np.mean(true_speeds)) / np.mean(true_speeds)
                 if speeds else None)
    return {
        "scene": params.scene, "url": url, "cam_h": round(params.cam_h, 2),
        "heading": round(params.heading, 1), "peak_people": params.people,
        "peak_density_ppm2": round(params.people / 156.0, 2) if params.scene == "counterflow"
        else None,
        "in": {"true": true.get("in"), "counted": round(counted["in"], 2)},
        "out": {"true": true.get("out"), "counted": round(counted["out"], 2)},
        "rel_error": rel(counted), "baseline_rel_error": rel(baseline),
        "speed_mps": {"true": round(float(np.mean(true_speeds)), 3) if speeds else None,
                      "measured": round(float(np.mean(speeds)), 3) if speeds else None},
        "speed_rel_error": None if speed_rel is None else round(float(speed_rel), 4),
        "ms_count": round(float(np.median(count_timer.ms)), 3) if count_timer else None,
        "ms_motion": round(float(np.median(motion_timer.ms)), 3) if motion_timer else None,
        "series": series,
        "congestion_first_s": first.get("congestion:warning"),
        "density_critical_first_s": first.get("density:critical"),
        "congestion_alerts": congestions,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cameras", type=int, default=6)
    ap.add_argument("--sample-hz", type=float, default=2.0, help="a camera's default rate")
    ap.add_argument("--plot", type=Path, help="write crossings vs truth per camera (PNG)")
    args = ap.parse_args()
    pin_one_core()
    scenes = [random_walkway(seed) for seed in range(args.cameras)]
    bottleneck = random_walkway(args.cameras, "bottleneck")
    total = sum(round(1.5 * p.period * args.sample_hz) for p in [*scenes, bottleneck])
    bar = Progress(total, "bench_flow")
    rows = [run_camera(p, args.sample_hz, bar) for p in scenes]
    gate = run_camera(bottleneck, args.sample_hz, bar)
    bar.close()
    errors = [r["rel_error"] for r in rows]
    speed_errors = [r["speed_rel_error"] for r in rows if r["speed_rel_error"] is not None]
    result = {
        "cameras": len(rows),
        "sim_line_rel_error": round(float(np.mean(errors)), 4),
        "sim_line_max_rel_error": round(float(np.max(errors)), 4),
        "baseline_line_rel_error": round(float(np.mean([r["baseline_rel_error"]
                                                         for r in rows])), 4),
        "sim_speed_rel_error": round(float(np.mean(speed_errors)), 4) if speed_errors else None,
        "ms_per_sample_added": round(float(np.median([r["ms_motion"] for r in rows])), 3),
        "ms_per_sample_counter": round(float(np.median([r["ms_count"] for r in rows])), 3),
        "bottleneck_line_rel_error": gate["rel_error"],
        "congestion_lead_over_density_s": _lead(gate),
        "congestion_first_s": gate["congestion_first_s"],
        "density_critical_first_s": gate["density_critical_first_s"],
        "congestion_false_alerts_free_flow": sum(r["congestion_alerts"] for r in rows),
        "goals": {k: f"{op} {v}" for k, (op, v) in GOALS.items()},
        "per_camera": [{k: v for k, v in r.items() if k != "series"} for r in [*rows, gate]],
    }
    if args.plot:
        plot(args.plot, [*rows, gate])
        result["plot"] = str(args.plot)
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


def _lead(gate: dict) -> float | None:
    """Seconds the congestion warning came before the density rule's critical alert in
    the bottleneck (the end of the run if density never got there; None: no warning)."""
    warned = gate["congestion_first_s"]
    if warned is None:
        return None
    critical = gate["density_critical_first_s"]
    end = gate["series"][-1][0] if gate["series"] else warned
    return round((critical if critical is not None else end) - warned, 1)


def plot(path: Path, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(rows), figsize=(3.2 * len(rows), 3.2), squeeze=False)
    for ax, row in zip(axes[0], rows, strict=True):
        s = np.array(row["series"])
        if len(s):
            ax.plot(s[:, 0], s[:, 3], "k-", lw=1, label="true in")
            ax.plot(s[:, 0], s[:, 1], "k--", lw=1, label="counted in")
            ax.plot(s[:, 0], s[:, 4], "r-", lw=1, label="true out")
            ax.plot(s[:, 0], s[:, 2], "r--", lw=1, label="counted out")
        ax.set_title(f"{row['scene']} {row['cam_h']} m, {row['heading']}°\n"
                     f"peak {row['peak_people']}, rel err {row['rel_error']:.2f}", fontsize=8)
        ax.set_xlabel("s")
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    raise SystemExit(main())
