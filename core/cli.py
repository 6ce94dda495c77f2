"""The ``crowdwatch`` command line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import sys
from pathlib import Path

from crowdwatch.config import ConfigError, CrowdwatchConfig, JsonlSinkConfig, load_config

log = logging.getLogger("crowdwatch.cli")

EXIT_CONFIG = 2


class UsageError(Exception):
    """A command-line value that cannot be used; exits 2 with the message."""


def _load(path: str | None) -> CrowdwatchConfig:
    if path is None:
        from crowdwatch.demo import demo_config

        return demo_config()
    return load_config(path)


def _load_for_alerts(path: str | None, alerts_jsonl: str | None) -> CrowdwatchConfig:
    """The config, with ``--alerts-jsonl`` added as a JSONL sink when given."""
    config = _load(path)
    if alerts_jsonl:
        config.alerts.jsonl = JsonlSinkConfig(path=alerts_jsonl)
    return config


def build_sinks(config: CrowdwatchConfig, metrics) -> list:
    """The notification sinks the config asks for."""
    from crowdwatch.streams.sinks import ConsoleSink, JsonlSink
    from crowdwatch.streams.webhook import WebhookSink

    sinks: list = []
    if config.alerts.console:
        sinks.append(ConsoleSink())
    if config.alerts.jsonl:
        sinks.append(JsonlSink(config.alerts.jsonl.path))
    if config.alerts.alertmanager:
        from crowdwatch.streams.alertmanager import AlertmanagerSink

        am = config.alerts.alertmanager
        sinks.append(AlertmanagerSink(am.url, metrics, am.resend, am.dashboard_url))
    if config.alerts.webhook:
        hook = config.alerts.webhook
        sinks.append(WebhookSink(hook.url, hook.secret_env, metrics, timeout=hook.timeout,
                                 retries=hook.retries))
    if config.alerts.grafana:
        from crowdwatch.streams.grafana_annotations import GrafanaAnnotationSink

        graf = config.alerts.grafana
        sinks.append(GrafanaAnnotationSink(graf.url, graf.token_env, metrics, graf.dashboard_uid,
                                           graf.timeout, graf.retries))
    return sinks


def cmd_run(args: argparse.Namespace) -> int:
    from crowdwatch.streams.embedded import EmbeddedRunner
    from crowdwatch.streams.sinks import Dispatcher

    config = _load_for_alerts(args.config, args.alerts_jsonl)
    metrics = _metrics_for(config, args.metrics_port)
    if metrics is None:
        return 1
    runner = EmbeddedRunner(config, Dispatcher(build_sinks(config, metrics), metrics), metrics,
                            realtime=not args.fast)
    signal.signal(signal.SIGTERM, lambda *_: runner.stop_event.set())
    try:
        runner.run(args.duration)
    except KeyboardInterrupt:
        log.info("interrupted; stopping cleanly")
        runner.stop()
    return 0


def _metrics_for(config: CrowdwatchConfig, port: int | None):
    """Metrics for this process, served on the configured port; None if it is taken."""
    from crowdwatch.metrics import Metrics

    if port is not None:
        config.metrics.port = port
    metrics = Metrics(config.site.name)
    if config.metrics.port:
        try:
            metrics.serve(config.metrics.host, config.metrics.port)
        except OSError as exc:
            print(f"crowdwatch: cannot serve metrics on {config.metrics.host}:"
                  f"{config.metrics.port}: {exc.strerror}; pick another with --metrics-port",
                  file=sys.stderr)
            return None
        log.info("metrics on http://%s:%d/metrics", config.metrics.host, config.metrics.port)
    return metrics


def cmd_ingest(args: argparse.Namespace) -> int:
    from crowdwatch.ingest.publisher import run_ingest

    config = _load(args.config)
    metrics = _metrics_for(config, args.metrics_port)
    if metrics is None:
        return 1
    return run_ingest(config, metrics, args.duration, realtime=not args.fast)


def cmd_worker(args: argparse.Namespace) -> int:
    from crowdwatch.streams.sinks import Dispatcher
    from crowdwatch.streams.worker import run_worker

    config = _load_for_alerts(args.config, args.alerts_jsonl)
    metrics = _metrics_for(config, args.metrics_port)
    if metrics is None:
        return 1
    run_worker(config, Dispatcher(build_sinks(config, metrics), metrics), metrics,
               loglevel=args.faust_log_level)
    return 0


def _feed(config: CrowdwatchConfig, path: str, deadletter):
    from crowdwatch.streams.recorded import RecordedFeed

    return RecordedFeed(path, config, deadletter.reject)


def _estimated_events(path: str, config: CrowdwatchConfig) -> int:
    with open(path, "rb") as fh:
        lines = sum(1 for _ in fh)
    return max(1, lines * max(1, len(config.sensors.devices)) if path.endswith(".csv")
               and not config.cameras else lines)


def cmd_replay(args: argparse.Namespace) -> int:
    from crowdwatch.deadletter import DeadLetterFile
    from crowdwatch.metrics import Metrics
    from crowdwatch.progress import Progress
    from crowdwatch.streams.replay import replay
    from crowdwatch.streams.sinks import Dispatcher

    config = _load_for_alerts(args.config, args.alerts_jsonl)
    if args.quiet:
        config.alerts.console = False
    if args.speed < 0:
        raise UsageError("--speed must be >= 0 (0: as fast as possible)")
    metrics = Metrics(config.site.name)
    deadletter = DeadLetterFile.of(config.deadletter, metrics, args.deadletter)
    dispatcher = Dispatcher(build_sinks(config, metrics), metrics)
    feed = _feed(config, args.input, deadletter)
    bar = Progress(_estimated_events(args.input, config), "replay")
    try:
        result = replay(config, feed, dispatcher.send, args.speed, bar.update)
    finally:
        bar.close()
        dispatcher.close()
        deadletter.close()
    by_rule: dict[str, dict[str, int]] = {}
    for alert in result.alerts:
        counts = by_rule.setdefault(alert.rule, {"firing": 0, "resolved": 0})
        counts[alert.state] += 1
    days = result.span_s / 86400
    summary = {"input": args.input, "events": dict(result.events),
               "span_days": round(days, 3), "alerts": by_rule,
               "firing_per_day": round(sum(c["firing"] for c in by_rule.values())
                                       / days, 3) if days else None,
               "deadletter": deadletter.count, "out_of_order": result.out_of_order}
    if feed.skipped_columns:
        summary["unmapped_columns"] = feed.skipped_columns
    if feed.repaired:
        summary["repaired_dates"] = {"rows": len(feed.repaired), "first": feed.repaired[:5]}
    print(json.dumps(summary, indent=2))
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from crowdwatch.deadletter import DeadLetterFile
    from crowdwatch.metrics import Metrics
    from crowdwatch.progress import Progress
    from crowdwatch.streams.tune import Sweep, plot_tuning, tune

    config = load_config(args.config)
    sweep = Sweep.parse(args.sweep)
    deadletter = DeadLetterFile.of(config.deadletter, Metrics(config.site.name), args.deadletter)
    bar = Progress(len(sweep.values), f"tune {sweep.param}")

    def progress(done: int, total: int) -> None:
        bar.update(done)

    try:
        report = tune(config, lambda: _feed(config, args.input, deadletter), args.rule, sweep,
                      args.level, args.min_peak, args.merge, args.lookahead, progress)
    finally:
        bar.close()
        deadletter.close()
    report["input"] = args.input
    report["deadletter"] = deadletter.count
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.plot:
        plot_tuning(report, args.plot)
    for row in report["results"]:
        lead = row["median_lead_s"]
        print(f"{sweep.param}={row['value']:g}: {row['alerts_per_day']:.3f} alerts/day, "
              f"{row['false_per_day']:.3f} false/day, caught {row['caught']}/{row['peaks']}"
              f", median lead {'-' if lead is None else f'{lead / 60:.0f} min'}")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.file)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    zones = sum(len(c.zones) for c in config.cameras)
    print(f"{args.file}: OK ({len(config.cameras)} camera(s), {zones} zone(s), "
          f"{len(config.rules)} rule(s))")
    return 0


def _points(text: str, flag: str) -> list[list[float]]:
    try:
        pts = json.loads(text)
        if (not isinstance(pts, list) or len(pts) < 3
                or not all(isinstance(p, list) and len(p) == 2 for p in pts)):
            raise ValueError
        return [[float(a), float(b)] for a, b in pts]
    except (ValueError, TypeError):
        raise UsageError(f"{flag} must be JSON like [[x,y],[x,y],...]; got {text!r}") from None


def cmd_calibrate(args: argparse.Namespace) -> int:
    if args.ground_image or args.ground_world:
        return _calibrate_ground(args)
    if args.out is None:
        print("crowdwatch: --out MODEL.json is required to fit a counter", file=sys.stderr)
        return EXIT_CONFIG
    if args.source and not args.source.startswith("sim://"):
        return _calibrate_footage(args)
    return _calibrate_sim(args)


def _save_model(model, out: Path, rows: int) -> int:
    model.save(out)
    print(json.dumps({"model": str(out), "layout": model.layout, "rows": rows,
                      "train_mae": round(model.train_mae or 0.0, 3), "alpha": model.alpha}))
    return 0


def _calibrate_ground(args: argparse.Namespace) -> int:
    from crowdwatch.detectors.calibrate import check_homography

    if not (args.ground_image and args.ground_world):
        print("crowdwatch: give both --ground-image and --ground-world", file=sys.stderr)
        return EXIT_CONFIG
    image = _points(args.ground_image, "--ground-image")
    world = _points(args.ground_world, "--ground-world")
    if len(image) != 4 or len(world) != 4:
        print("crowdwatch: a ground calibration takes exactly 4 image and 4 world points",
              file=sys.stderr)
        return EXIT_CONFIG
    try:
        check = check_homography(image, world)
    except ValueError as exc:
        print(f"crowdwatch: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    print(json.dumps(dataclasses.asdict(check), indent=2))
    for warning in check.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 1 if check.warnings else 0


def _calibrate_footage(args: argparse.Namespace) -> int:
    from crowdwatch.detectors.background import RegressionModel
    from crowdwatch.detectors.calibrate import fit_background, read_truth
    from crowdwatch.detectors.evaluate import make_zone
    from crowdwatch.ingest.sources import numbered_frames
    from crowdwatch.progress import Progress

    if not args.truth:
        print("crowdwatch: calibrating on footage needs --truth (frame,count CSV or head "
              "points)", file=sys.stderr)
        return EXIT_CONFIG
    _, first = next(numbered_frames(args.source))
    native = first.shape[:2]
    polygon = _points(args.zone, "--zone") if args.zone else None
    zone = make_zone(native, polygon, args.roi_mask)
    truth = read_truth(args.truth, zone, native)
    last = args.train_frames or max(truth)
    labelled = {n: c for n, c in truth.items() if n <= last}
    blank = RegressionModel.blank(args.layout, weight_map=args.perspective)
    bar = Progress(2 * last, "calibrate")
    model, samples, _ = fit_background(
        blank, numbered_frames(args.source, stop=last), numbered_frames(args.source, stop=last),
        zone, labelled, lambda: bar.update(bar.done + 1), trained_on=args.source)
    bar.close()
    return _save_model(model, args.out, len(samples.truth))


def _calibrate_sim(args: argparse.Namespace) -> int:
    from crowdwatch.detectors.calibrate import calibrate_on_sim
    from crowdwatch.progress import Progress

    config = _load(args.config)
    cameras = {c.id: c for c in config.cameras}
    camera = cameras.get(args.camera) if args.camera else config.cameras[0]
    if camera is None:
        print(f"crowdwatch: no camera {args.camera!r} in the config", file=sys.stderr)
        return EXIT_CONFIG
    if not camera.url.startswith("sim://"):
        print("crowdwatch: calibrate from a real camera needs labelled frames "
              "(--truth); this build fits sim cameras", file=sys.stderr)
        return EXIT_CONFIG
    if args.source:
        camera = camera.model_copy(update={"url": args.source})
    seeds = list(range(args.first_seed, args.first_seed + args.runs))
    bar = Progress(len(seeds) * args.frames, "calibrate")
    model, samples = calibrate_on_sim(camera, seeds, args.frames,
                                      progress=lambda: bar.update(bar.done + 1))
    bar.close()
    return _save_model(model, args.out, len(samples.truth))


def cmd_eval(args: argparse.Namespace) -> int:
    from crowdwatch.detectors.calibrate import read_truth
    from crowdwatch.detectors.evaluate import (
        DETECTORS,
        EvalSetup,
        default_train_frames,
        evaluate,
        make_zone,
        plot_report,
    )
    from crowdwatch.ingest.sources import SourceError, numbered_frames
    from crowdwatch.progress import Progress

    detectors = tuple(d.strip() for d in args.detectors.split(",") if d.strip())
    unknown = set(detectors) - set(DETECTORS)
    if unknown:
        print(f"crowdwatch: unknown detector(s) {sorted(unknown)}; known: {', '.join(DETECTORS)}",
              file=sys.stderr)
        return EXIT_CONFIG
    try:
        _, first = next(numbered_frames(args.source))
    except (SourceError, StopIteration) as exc:
        print(f"crowdwatch: cannot read {args.source}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    native = first.shape[:2]
    polygon = _points(args.zone, "--zone") if args.zone else None
    zone = make_zone(native, polygon, args.roi_mask)
    labelled = len(read_truth(args.truth, zone, native))
    train = args.train_frames or default_train_frames(args.source, labelled)
    setup = EvalSetup(args.source, args.truth, zone, native, train, args.perspective,
                      args.hog_stride, args.hog_upscale, detectors, args.limit)
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
    print(json.dumps(report["detectors"], indent=2))
    return 0


def cmd_dashboards_build(args: argparse.Namespace) -> int:
    from crowdwatch.dashboards.build import write_dashboards

    config = _load(args.config)
    written = write_dashboards(config, Path(args.out), args.prometheus_url, args.dashboards_path)
    for path in written:
        print(path)
    return 0


def cmd_dashboards_push(args: argparse.Namespace) -> int:
    import os
    import tempfile

    from crowdwatch.dashboards.build import write_dashboards
    from crowdwatch.dashboards.push import push_dashboards

    token = os.environ.get(args.token_env)
    if not token:
        print(f"crowdwatch: set {args.token_env} to a Grafana service-account token",
              file=sys.stderr)
        return EXIT_CONFIG
    if args.dir:
        paths = sorted(Path(args.dir, "dashboards").glob("*.json"))
        if not paths:
            print(f"crowdwatch: no dashboards under {args.dir}/dashboards; run "
                  "`crowdwatch dashboards build` first", file=sys.stderr)
            return EXIT_CONFIG
    else:
        tmp = Path(tempfile.mkdtemp(prefix="crowdwatch-dashboards-"))
        written = write_dashboards(_load(args.config), tmp, "http://prometheus:9090",
                                   "/var/lib/grafana/dashboards/crowdwatch")
        paths = [p for p in written if p.suffix == ".json"]
    try:
        results = push_dashboards(args.url, token, paths, args.folder)
    except Exception as exc:  # noqa: BLE001 - report any client or HTTP failure plainly
        print(f"crowdwatch: pushing to {args.url} failed: {exc}", file=sys.stderr)
        return 1
    for path, result in zip(paths, results, strict=True):
        print(f"{path.name}: {result.get('status', 'ok')} {result.get('url', '')}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crowdwatch",
        description="Crowd-safety monitor: counts and densities per zone, alerts, metrics. "
        "Counts crowds; never identifies people.",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    parser.add_argument("--log-format", default="logfmt", choices=["logfmt", "json"])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run cameras, detectors and rules in one process")
    run.add_argument("--config", help="YAML config; default: the built-in simulated demo")
    run.add_argument("--duration", type=float, help="stop after this many seconds")
    run.add_argument("--alerts-jsonl", help="also append every notification to this file")
    run.add_argument("--metrics-port", type=int, help="override metrics.port (0 disables)")
    run.add_argument("--fast", action="store_true",
                     help="do not pace file and sim sources to real time")
    run.set_defaults(func=cmd_run)

    ing = sub.add_parser("ingest", help="scale-out: run cameras and publish events to Kafka")
    ing.add_argument("--config", help="YAML config; default: the built-in demo")
    ing.add_argument("--duration", type=float, help="stop after this many seconds")
    ing.add_argument("--metrics-port", type=int, help="override metrics.port (0 disables)")
    ing.add_argument("--fast", action="store_true", help="do not pace files/sim to real time")
    ing.set_defaults(func=cmd_ingest)

    wrk = sub.add_parser("worker", help="scale-out: Faust worker running the rules on Kafka")
    wrk.add_argument("--config", help="YAML config; default: the built-in demo")
    wrk.add_argument("--alerts-jsonl", help="also append every notification to this file")
    wrk.add_argument("--metrics-port", type=int, help="override metrics.port (0 disables)")
    wrk.add_argument("--faust-log-level", default="warning")
    wrk.set_defaults(func=cmd_worker)

    rep = sub.add_parser("replay", help="feed a recorded feed through the rules on its own clock")
    rep.add_argument("--config", required=True, help="YAML config (zones, sensors, rules, sinks)")
    rep.add_argument("--input", required=True, help="JSONL events, count/sensor CSV, or a "
                     "wide date,hour,<sensor...> CSV")
    rep.add_argument("--speed", type=float, default=0.0,
                     help="N times real time (0: as fast as possible)")
    rep.add_argument("--alerts-jsonl", help="also append every notification to this file")
    rep.add_argument("--deadletter", help="rejected rows go here (default: deadletter.path)")
    rep.add_argument("--quiet", action="store_true", help="no console line per notification")
    rep.set_defaults(func=cmd_replay)

    tun = sub.add_parser("tune", help="sweep a rule parameter over a recorded feed and score it")
    tun.add_argument("--config", required=True)
    tun.add_argument("--input", required=True)
    tun.add_argument("--rule", required=True, help="KIND, KIND:ZONE or #INDEX of the rule")
    tun.add_argument("--sweep", required=True, help="PARAM=START:STOP:STEP or PARAM=V1,V2")
    tun.add_argument("--level", type=float, help="truth level for peaks (default: the rule's "
                     "warn or threshold)")
    tun.add_argument("--min-peak", type=float, default=0.0,
                     help="seconds a stretch must stay at or above the level to be a peak")
    tun.add_argument("--merge", type=float, default=3600.0,
                     help="stretches closer than this many seconds are one peak")
    tun.add_argument("--lookahead", type=float, help="how early (s) a firing may come and "
                     "still catch a peak (default: the rule's horizon, else 0)")
    tun.add_argument("--deadletter", help="rejected rows go here (default: deadletter.path)")
    tun.add_argument("--json", required=True, help="report to write")
    tun.add_argument("--plot", help="PNG of the trade-off")
    tun.set_defaults(func=cmd_tune)

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate a config file (exit 2 on problems)")
    check.add_argument("file")
    check.set_defaults(func=cmd_config_check)

    cal = sub.add_parser(
        "calibrate", help="fit a camera's counting model, or check a ground homography",
        description="Footage: --source VIDEO|PATTERN --truth CSV --out MODEL.json. "
        "Simulated camera: --out MODEL.json [--config --camera]. Ground plane: "
        "--ground-image '[[x,y]x4]' --ground-world '[[X,Y]x4]' (metres).")
    cal.add_argument("--config", help="config with the camera; default: the demo")
    cal.add_argument("--camera", help="camera id; default: the first")
    cal.add_argument("--source", help="video file, image pattern (seq_%%06d.jpg) or sim:// URL")
    cal.add_argument("--truth", help="CSV frame,count or head points frame,x,y (1-based)")
    cal.add_argument("--zone", help="zone polygon as JSON [[x,y],...] in native pixels")
    cal.add_argument("--roi-mask", help="zone as a mask image (white = counted)")
    cal.add_argument("--perspective", help=".npy per-pixel weight map (global layout)")
    cal.add_argument("--layout", choices=["cells", "global"], default="cells",
                     help="cells: most accurate on this camera; global: transferable")
    cal.add_argument("--train-frames", type=int, help="use labelled frames up to this number")
    cal.add_argument("--out", type=Path, help="model JSON to write")
    cal.add_argument("--frames", type=int, default=200, help="samples per simulated run")
    cal.add_argument("--runs", type=int, default=3, help="simulated runs (different seeds)")
    cal.add_argument("--first-seed", type=int, default=101)
    cal.add_argument("--ground-image", help="4 image points [[x,y],...] for a homography")
    cal.add_argument("--ground-world", help="the same 4 points on the ground, metres")
    cal.set_defaults(func=cmd_calibrate)

    ev = sub.add_parser("eval", help="counts vs ground truth, every detector side by side")
    ev.add_argument("--source", required=True, help="video file or pattern seq_%%06d.jpg")
    ev.add_argument("--truth", required=True, help="CSV frame,count or head points frame,x,y")
    ev.add_argument("--zone", help="zone polygon as JSON [[x,y],...] in native pixels")
    ev.add_argument("--roi-mask", help="zone as a mask image (white = counted)")
    ev.add_argument("--perspective", help=".npy per-pixel weight map (background_global)")
    ev.add_argument("--train-frames", type=int,
                    help="calibrate on frames up to N (default: the dataset's standard "
                    "protocol where known, else 20%% of the labelled frames)")
    ev.add_argument("--detectors", default="background,background_global,hog")
    ev.add_argument("--hog-stride", type=int, default=5, help="score HOG on every k-th frame")
    ev.add_argument("--hog-upscale", type=float, default=1.0)
    ev.add_argument("--limit", type=int, help="use frames up to this number only")
    ev.add_argument("--json", required=True, help="report to write")
    ev.add_argument("--plot", help="PNG of count and truth over time")
    ev.set_defaults(func=cmd_eval)

    dash = sub.add_parser("dashboards", help="Grafana dashboards as code")
    dash_sub = dash.add_subparsers(dest="dashboards_command", required=True)
    build = dash_sub.add_parser("build", help="write dashboard JSON and Grafana provisioning")
    build.add_argument("--config", help="crowdwatch config (thresholds); default: the demo")
    build.add_argument("--out", required=True, help="output folder")
    build.add_argument("--prometheus-url", default="http://prometheus:9090",
                       help="URL Grafana uses to reach Prometheus")
    build.add_argument("--dashboards-path", default="/var/lib/grafana/dashboards/crowdwatch",
                       help="where Grafana finds the JSON files (provider path)")
    build.set_defaults(func=cmd_dashboards_build)
    push = dash_sub.add_parser("push", help="create or update the dashboards on a Grafana")
    push.add_argument("--url", required=True, help="Grafana base URL")
    push.add_argument("--dir", help="folder written by `dashboards build` (else build now)")
    push.add_argument("--config", help="crowdwatch config when building now")
    push.add_argument("--folder", default="crowdwatch", help="Grafana folder title")
    push.add_argument("--token-env", default="CROWDWATCH_GRAFANA_TOKEN",
                      help="environment variable holding the token")
    push.set_defaults(func=cmd_dashboards_push)
    return parser


def main(argv: list[str] | None = None) -> int:
    from crowdwatch.logs import setup_logging

    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    except (UsageError, ValueError) as exc:
        print(f"crowdwatch: {exc}", file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
