"""The ``crowdwatch`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path

from crowdwatch.config import ConfigError, CrowdwatchConfig, JsonlSinkConfig, load_config

log = logging.getLogger("crowdwatch.cli")

EXIT_CONFIG = 2


def _load(path: str | None) -> CrowdwatchConfig:
    if path is None:
        from crowdwatch.demo import demo_config

        return demo_config()
    return load_config(path)


def cmd_run(args: argparse.Namespace) -> int:
    from crowdwatch.metrics import Metrics
    from crowdwatch.streams.embedded import EmbeddedRunner
    from crowdwatch.streams.sinks import ConsoleSink, Dispatcher, JsonlSink

    config = _load(args.config)
    if args.alerts_jsonl:
        config.alerts.jsonl = JsonlSinkConfig(path=args.alerts_jsonl)
    if args.metrics_port is not None:
        config.metrics.port = args.metrics_port
    metrics = Metrics(config.site.name)
    if config.metrics.port:
        try:
            metrics.serve(config.metrics.host, config.metrics.port)
        except OSError as exc:
            print(f"crowdwatch: cannot serve metrics on {config.metrics.host}:"
                  f"{config.metrics.port}: {exc.strerror}; pick another with --metrics-port",
                  file=sys.stderr)
            return 1
        log.info("metrics on http://%s:%d/metrics", config.metrics.host, config.metrics.port)
    sinks = []
    if config.alerts.console:
        sinks.append(ConsoleSink())
    if config.alerts.jsonl:
        sinks.append(JsonlSink(config.alerts.jsonl.path))
    runner = EmbeddedRunner(config, Dispatcher(sinks, metrics), metrics,
                            realtime=not args.fast)
    signal.signal(signal.SIGTERM, lambda *_: runner.stop_event.set())
    try:
        runner.run(args.duration)
    except KeyboardInterrupt:
        log.info("interrupted; stopping cleanly")
        runner.stop()
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


def cmd_calibrate(args: argparse.Namespace) -> int:
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
    seeds = list(range(args.first_seed, args.first_seed + args.runs))
    bar = Progress(len(seeds) * args.frames, "calibrate")
    model, samples = calibrate_on_sim(camera, seeds, args.frames, progress=bar.update)
    bar.close()
    model.save(args.out)
    print(json.dumps({"model": str(args.out), "rows": len(samples.truth),
                      "train_mae": round(model.train_mae or 0.0, 3), "coef": model.coef,
                      "intercept": model.intercept}))
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

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate a config file (exit 2 on problems)")
    check.add_argument("file")
    check.set_defaults(func=cmd_config_check)

    cal = sub.add_parser("calibrate", help="fit a camera's counting model")
    cal.add_argument("--config", help="config with the camera; default: the demo")
    cal.add_argument("--camera", help="camera id; default: the first")
    cal.add_argument("--out", required=True, type=Path, help="model JSON to write")
    cal.add_argument("--frames", type=int, default=200, help="samples per simulated run")
    cal.add_argument("--runs", type=int, default=3, help="simulated runs (different seeds)")
    cal.add_argument("--first-seed", type=int, default=101)
    cal.set_defaults(func=cmd_calibrate)
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


if __name__ == "__main__":
    sys.exit(main())
