"""`calibrate footage|sim|ground` and `eval`: fitting and judging the counters."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from crowdwatch.cli.common import load_site, points
from crowdwatch.errors import SourceError, UsageError
from crowdwatch.progress import Progress

HOLD_HELP = ("memory (MiB) for labelled frames that arrive while the background is being "
             "built; they are measured once it is ready (default %(default)s)")

def _geometry_zone(zone: Any, args: argparse.Namespace) -> Any:
    """Attach --height-ref, --perspective and --ground-* to an evaluation zone."""
    import numpy as np

    from crowdwatch.detectors.person_scale import HeightRef
    from crowdwatch.detectors.zones import ground_homography

    if getattr(args, "height_ref", None):
        try:
            raw = json.loads(args.height_ref)
        except ValueError:
            raise UsageError(f"--height-ref must be JSON like [[xf,yf,xh,yh],...]; got "
                             f"{args.height_ref!r}") from None
        zone.height_ref = HeightRef.parse(raw, "--height-ref")
        if args.perspective:
            zone.perspective = np.load(args.perspective)
    if getattr(args, "ground_image", None) or getattr(args, "ground_world", None):
        if not (args.ground_image and args.ground_world):
            raise UsageError("--ground-image and --ground-world go together")
        zone.homography = ground_homography(points(args.ground_image, "--ground-image"),
                                            points(args.ground_world, "--ground-world"))
        zone.area_m2 = zone.mask_area_m2()
    return zone


def _save_model(model: Any, out: Path, rows: int) -> int:
    model.save(out)
    print(json.dumps({"model": str(out), "layout": model.layout, "rows": rows,
                      "train_mae": round(model.train_mae or 0.0, 3), "alpha": model.alpha}))
    return 0


def cmd_calibrate_ground(args: argparse.Namespace) -> int:
    from crowdwatch.tools.calibrate import check_homography

    image = points(args.ground_image, "--ground-image")
    world = points(args.ground_world, "--ground-world")
    if len(image) != 4 or len(world) != 4:
        raise UsageError("a ground calibration takes exactly 4 image and 4 world points")
    check = check_homography(image, world)
    print(json.dumps(dataclasses.asdict(check), indent=2))
    for warning in check.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 1 if check.warnings else 0


def cmd_calibrate_footage(args: argparse.Namespace) -> int:
    from crowdwatch.detectors.background import RegressionModel
    from crowdwatch.ingest.sources import numbered_frames
    from crowdwatch.tools.calibrate import fit_background, read_truth
    from crowdwatch.tools.evaluate import make_zone

    _, first = next(numbered_frames(args.source))
    native = first.shape[:2]
    polygon = points(args.zone, "--zone") if args.zone else None
    zone = make_zone(native, polygon, args.roi_mask)
    truth = read_truth(args.truth, zone, native)
    last = args.train_frames or max(truth)
    labelled = {n: c for n, c in truth.items() if n <= last}
    if args.layout == "geometry":
        return _calibrate_geometry(args, _geometry_zone(zone, args), labelled, last)
    blank = RegressionModel.blank(args.layout, weight_map=args.perspective)
    bar = Progress(2 * last, "calibrate")
    model, samples, _ = fit_background(
        blank, numbered_frames(args.source, stop=last), numbered_frames(args.source, stop=last),
        zone, labelled, lambda: bar.update(bar.done + 1), trained_on=args.source)
    bar.close()
    return _save_model(model, args.out, len(samples.truth))


def _calibrate_geometry(args: argparse.Namespace, zone: Any, labelled: dict[int, float],
                        last: int) -> int:
    """Few-shot: the zero-label geometry count gets a scale (and offset) chosen by CV."""
    import numpy as np

    from crowdwatch.detectors.geometry import GeometryDetector
    from crowdwatch.ingest.sources import numbered_frames
    from crowdwatch.tools.fewshot import fit_with_deferred
    from crowdwatch.tools.held_frames import HeldFrames

    if not zone.knows_person_size:
        raise UsageError("--layout geometry needs --height-ref (with or without "
                         "--perspective) or --ground-image/--ground-world")
    detector = GeometryDetector()
    measured: dict[int, tuple[float, float]] = {}  # frame -> (raw count, new-edge length)
    held = HeldFrames(args.hold_mb)  # labelled while the background is being built
    bar = Progress(last, "calibrate")
    # Past the last labelled frame, footage is read only while labelled frames wait for
    # the background to be ready.
    for number, image in numbered_frames(args.source):
        if number > last and not held.waiting:
            break
        if number in labelled and detector.ready:
            measured[number] = detector.raw_features(image, [zone])[zone.zone_id]
        else:
            measured |= dict(held.prime(detector, number, image, zone,
                                        keep=number in labelled))
        bar.update(min(number, last))
    bar.close()
    if not measured:
        raise UsageError(f"{args.source}: the footage ended before the background was built "
                         f"({detector.samples_kept} of {detector.s.background.ready_kept} "
                         "samples); give a longer source")
    if held.not_kept:
        print(f"warning: {held.not_kept} labelled frames from before the background was "
              f"built were not kept (over --hold-mb {args.hold_mb:g})", file=sys.stderr)
    order = sorted(measured)
    ys = np.array([labelled[n] for n in order])
    raw, edges = np.array([measured[n] for n in order]).T
    deferred = np.isin(order, held.released)
    corr, used = fit_with_deferred(raw, ys, edges, deferred)
    if corr.warning:
        print(f"warning: {corr.warning}", file=sys.stderr)
    result = {"detector": {"kind": "geometry", "slope": round(corr.slope, 4),
                           "offset": round(corr.offset, 4),
                           "edge_weight": round(corr.edge_weight, 5)},
              "layout": corr.layout, "labelled_frames": len(ys),
              "deferred_frames": int(deferred.sum()), "deferred_frames_used": used,
              "expected_mae": corr.cv_mae, "constant_mae": corr.constant_cv_mae}
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result))
    return 0


def cmd_calibrate_sim(args: argparse.Namespace) -> int:
    from crowdwatch.tools.calibrate import calibrate_on_sim

    config = load_site(args.config)
    cameras = {c.id: c for c in config.cameras}
    camera = cameras.get(args.camera) if args.camera else config.cameras[0]
    if camera is None:
        raise UsageError(f"no camera {args.camera!r} in the config")
    if args.source:
        camera = camera.model_copy(update={"url": args.source})
    from crowdwatch.ingest.source_plugin import traits_of

    if not traits_of(camera.url).knows_truth:
        raise UsageError("`calibrate sim` fits cameras whose source knows its truth "
                         "(sim://); for footage use `calibrate footage --source ... "
                         "--truth ...`")
    seeds = list(range(args.first_seed, args.first_seed + args.runs))
    bar = Progress(len(seeds) * args.frames, "calibrate")
    model, samples = calibrate_on_sim(camera, seeds, args.frames,
                                      progress=lambda: bar.update(bar.done + 1))
    bar.close()
    return _save_model(model, args.out, len(samples.truth))


def cmd_eval(args: argparse.Namespace) -> int:
    from crowdwatch.ingest.sources import numbered_frames
    from crowdwatch.tools.calibrate import read_truth
    from crowdwatch.tools.eval_report import plot_report, summary_lines
    from crowdwatch.tools.evaluate import (
        DETECTORS,
        SIZED,
        EvalSetup,
        default_train_frames,
        evaluate,
        make_zone,
    )

    detectors = tuple(d.strip() for d in (args.detectors or "").split(",") if d.strip())
    unknown = set(detectors) - set(DETECTORS)
    if unknown:
        raise UsageError(f"unknown detector(s) {sorted(unknown)}; known: {', '.join(DETECTORS)}")
    try:
        _, first = next(numbered_frames(args.source))
    except StopIteration:
        raise SourceError(f"{args.source}: no frames") from None
    native = first.shape[:2]
    polygon = points(args.zone, "--zone") if args.zone else None
    zone = _geometry_zone(make_zone(native, polygon, args.roi_mask), args)
    if not detectors:
        detectors = tuple(d for d in DETECTORS if d not in SIZED or zone.knows_person_size)
    elif set(detectors) & set(SIZED) and not zone.knows_person_size:
        raise UsageError(f"the {', '.join(d for d in detectors if d in SIZED)} detector(s) "
                         "need --height-ref (with or without --perspective) or "
                         "--ground-image/--ground-world")
    labelled = len(read_truth(args.truth, zone, native))
    train, pick = default_train_frames(args.source, labelled)
    if args.train_frames is not None:
        train, pick = args.train_frames, "spread"
    pick = args.train_pick or pick
    setup = EvalSetup(args.source, args.truth, zone, native, train, args.perspective,
                      args.hog_stride, args.hog_upscale, detectors, args.limit, pick,
                      args.warmup, args.hold_mb)
    bar = Progress(1, "eval")

    def progress(done: int, total: int) -> None:
        bar.total = max(1, total)
        bar.update(done)

    report = evaluate(setup, progress)
    bar.close()
    series = report.pop("series")
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.plot:
        plot_report({**report, "series": series}, args.plot)
    for line in summary_lines(report):
        print(line)
    for name, det in report["detectors"].items():
        if det.get("warning"):
            print(f"warning: {name}: {det['warning']}", file=sys.stderr)
    return 0


def _zone_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--zone", help="zone polygon as JSON [[x,y],...] in native pixels")
    parser.add_argument("--roi-mask", help="zone as a mask image (white = counted)")
    parser.add_argument("--perspective", help=".npy relative perspective map (weight ∝ "
                        "1/person area): global-layout weights, and with --height-ref the "
                        "geometry counter's person size")
    parser.add_argument("--height-ref", help="standing people as JSON [[xf,yf,xh,yh],...] "
                        "(foot and head pixels): the geometry counter needs no labels")
    parser.add_argument("--ground-image", help="4 image points [[x,y],...] of a ground "
                        "homography (geometry counter, density bands)")
    parser.add_argument("--ground-world", help="the same 4 points on the ground, metres")


def register(sub: Any) -> None:
    cal = sub.add_parser("calibrate", help="fit a camera's counting model, or check a ground "
                         "homography")
    cal_sub = cal.add_subparsers(dest="calibrate_command", required=True)
    foot = cal_sub.add_parser("footage", help="fit on labelled footage (counts or head points)")
    foot.add_argument("--source", required=True,
                      help="video file or image pattern (seq_%%06d.jpg)")
    foot.add_argument("--truth", required=True,
                      help="CSV frame,count or head points frame,x,y (1-based)")
    _zone_flags(foot)
    foot.add_argument("--layout", choices=["cells", "global", "geometry"], default="cells",
                      help="cells: pixel regression, needs many labels; global: transferable; "
                      "geometry: few-shot correction of the zero-label geometry counter")
    foot.add_argument("--train-frames", type=int, help="use labelled frames up to this number")
    foot.add_argument("--hold-mb", type=float, default=512.0, help=HOLD_HELP)
    foot.add_argument("--out", type=Path, required=True, help="model JSON to write")
    foot.set_defaults(func=cmd_calibrate_footage)

    sim = cal_sub.add_parser("sim", help="fit a simulated (sim://) camera on its exact truth")
    sim.add_argument("--config", help="config with the camera; default: the demo")
    sim.add_argument("--camera", help="camera id; default: the first")
    sim.add_argument("--source", help="sim:// URL instead of the camera's")
    sim.add_argument("--out", type=Path, required=True, help="model JSON to write")
    sim.add_argument("--frames", type=int, default=200, help="samples per simulated run")
    sim.add_argument("--runs", type=int, default=3, help="simulated runs (different seeds)")
    sim.add_argument("--first-seed", type=int, default=101)
    sim.set_defaults(func=cmd_calibrate_sim)

    ground = cal_sub.add_parser("ground", help="check a ground homography (exit 1 on warnings)")
    ground.add_argument("--ground-image", required=True,
                        help="4 image points [[x,y],...] for a homography")
    ground.add_argument("--ground-world", required=True,
                        help="the same 4 points on the ground, metres")
    ground.set_defaults(func=cmd_calibrate_ground)

    ev = sub.add_parser("eval", help="counts vs ground truth, every detector side by side")
    ev.add_argument("--source", required=True, help="video file or pattern seq_%%06d.jpg")
    ev.add_argument("--truth", required=True, help="CSV frame,count or head points frame,x,y")
    _zone_flags(ev)
    ev.add_argument("--train-frames", type=int,
                    help="calibrate on N labelled frames, 0 for none (default: the dataset's "
                    "standard protocol where known, else 20%% of the labelled frames)")
    ev.add_argument("--train-pick", choices=["spread", "first"],
                    help="spread: N frames evenly over the labelled span (default); first: "
                    "the first N")
    ev.add_argument("--warmup", type=int, default=0,
                    help="the first N frames only build the background (not scored)")
    ev.add_argument("--hold-mb", type=float, default=512.0, help=HOLD_HELP)
    ev.add_argument("--detectors", help="comma list (default: all that the flags allow: "
                    "geometry,background,background_global,hog)")
    ev.add_argument("--hog-stride", type=int, default=5, help="score HOG on every k-th frame")
    ev.add_argument("--hog-upscale", type=float, default=1.0)
    ev.add_argument("--limit", type=int, help="use frames up to this number only")
    ev.add_argument("--json", required=True, help="report to write")
    ev.add_argument("--plot", help="PNG of count and truth over time")
    ev.set_defaults(func=cmd_eval)
