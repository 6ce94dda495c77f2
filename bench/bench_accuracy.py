"""Counting accuracy on the CUHK Mall standard protocol, every detector in one run.

Fit on frames 1-800, score on 801-2000, one pinned core. HOG is scored on every 5th
frame (it is ~7x slower); the report says how many frames each detector was scored on.
Prints one JSON object; --plot writes count and truth over time.
Data: $CROWDWATCH_DATA or ../shared/data (never copied into the repo).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from benchutil import pin_one_core

from crowdwatch.progress import Progress
from crowdwatch.tools.eval_report import plot_report
from crowdwatch.tools.evaluate import EvalSetup, evaluate, make_zone

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=os.environ.get("CROWDWATCH_DATA",
                                                         str(ROOT.parent / "shared" / "data")))
    parser.add_argument("--hog-stride", type=int, default=5)
    parser.add_argument("--plot", help="PNG of count vs truth over the test frames")
    args = parser.parse_args()
    pin_one_core()
    mall = Path(args.data) / "mall"
    if not mall.is_dir():
        sys.exit(f"bench_accuracy: {mall} not found; set CROWDWATCH_DATA")
    zone = make_zone((480, 640), roi_mask=str(mall / "roi_mask.png"))
    setup = EvalSetup(str(mall / "frames" / "seq_%06d.jpg"), str(mall / "counts.csv"), zone,
                      (480, 640), train_frames=800, train_pick="first",
                      weight_map=str(mall / "perspective.npy"), hog_stride=args.hog_stride)
    bar = Progress(1, "bench_accuracy")

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done)

    report = evaluate(setup, progress)
    bar.close()
    if args.plot:
        plot_report(report, args.plot)
    dets = report["detectors"]
    out = {
        "dataset": "CUHK Mall (Chen, Loy, Gong, Xiang; BMVC 2012)",
        "protocol": "fit 1-800, score 801-2000",
        "cpu_affinity": "one core",
        "detectors": {name: {k: d[k] for k in ("mae", "rmse", "mean_rel_error", "bias",
                                                "ms_per_frame", "frames")}
                      for name, d in dets.items()},
    }
    if "hog" in dets:
        out["background_vs_hog_mae_reduction"] = round(
            1 - dets["background"]["mae"] / dets["hog"]["mae"], 4)
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
