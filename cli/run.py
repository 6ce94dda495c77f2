"""`run` (embedded), `ingest` and `worker` (scale-out): the long-running commands."""

from __future__ import annotations

import argparse
import logging
import signal
from typing import Any

from crowdwatch.cli.common import load_for_alerts, load_site, metrics_for

log = logging.getLogger("crowdwatch.cli")


def cmd_run(args: argparse.Namespace) -> int:
    from crowdwatch.console.live import LiveView
    from crowdwatch.console.server import ConsoleServer
    from crowdwatch.streams.alerting.build import build_sinks
    from crowdwatch.streams.alerting.sinks import Dispatcher
    from crowdwatch.streams.rules.registry import rule_series
    from crowdwatch.streams.runtime.embedded import EmbeddedRunner

    config = load_for_alerts(args.config, args.alerts_jsonl)
    if args.console_port is not None:
        config.console.port = args.console_port
    metrics = metrics_for(config, args.metrics_port)
    live = LiveView(config, rule_series(config), config.console.history) \
        if config.console.port else None
    runner = EmbeddedRunner(config, Dispatcher(build_sinks(config.alerts, metrics), metrics),
                            metrics, realtime=not args.fast, live=live)
    console = None
    if live is not None:  # refuses unsafe exposure before anything starts
        setup = camera_setup(args.config, runner)
        console = ConsoleServer(config.console, live, setup=setup,
                                tuning=console_tuning(setup.editor, runner))
    if console is not None and console.start():
        print(f"crowdwatch console: {console.url}", flush=True)
    def stop(signum: int, _frame: object) -> None:
        log.info("%s received; stopping cleanly", signal.Signals(signum).name)
        runner.stop_event.set()

    # Both signals explicitly: a process started with SIGINT ignored (nohup, a shell's
    # background job) must still stop on it, and neither relies on KeyboardInterrupt.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        runner.run(args.duration)
    finally:
        if console is not None:
            console.stop()
    return 0


def camera_setup(path: str | None, runner: Any) -> Any:
    """The console's setup hooks on the embedded runner (saving needs a site file)."""
    from crowdwatch.config import CameraConfig, parse_config
    from crowdwatch.console.setup import Setup
    from crowdwatch.console.site_editor import SiteEditor
    from crowdwatch.detectors.zones import ground_area_m2, ground_homography
    from crowdwatch.ingest.source_checks import source_problems

    def validate(text: str, source: str) -> Any:
        return parse_config(text, source, checks=[source_problems])

    def areas(cam: CameraConfig) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for zone in cam.zones:
            out[zone.id] = None
            if zone.ground is not None and zone.polygon:
                homography = ground_homography(zone.ground.image, zone.ground.world_m)
                out[zone.id] = round(ground_area_m2(zone.polygon, homography), 2)
        return out

    def fit(raw: list[float], truth: list[float], edges: list[float] | None) -> dict[str, Any]:
        import numpy as np

        from crowdwatch.tools.fewshot import fit_correction

        lengths = None if edges is None else np.asarray(edges, dtype=float)
        found = fit_correction(np.asarray(raw, dtype=float), np.asarray(truth, dtype=float),
                               lengths)
        return {"layout": found.layout, "slope": found.slope, "offset": found.offset,
                "edge_weight": found.edge_weight,
                "cv_mae": found.cv_mae, "constant_cv_mae": found.constant_cv_mae,
                "warning": found.warning, "corrected": [
                    round(float(v), 2) for v in found.apply(np.asarray(raw), lengths)]}

    def geometry_of(cam: CameraConfig) -> tuple[float, float, float] | None:
        from crowdwatch.detectors.plugin import BuildContext, effective

        # A real camera with geometry and no model counts with the geometry counter.
        kind, det = effective(cam.detector, BuildContext.of(cam))
        if not kind.traits.few_shot_correction:
            return None
        return (getattr(det, "slope", 1.0), getattr(det, "offset", 0.0),
                getattr(det, "edge_weight", 0.0))

    editor = SiteEditor(path, validate) if path else None
    return Setup(editor, lambda: runner.config, runner.snapshot, runner.reload, areas,
                 runner.config.console.audit_log, runner.label_frame, fit, geometry_of)


def console_tuning(editor: Any, runner: Any) -> Any:
    """The console's tuning page on ``crowdwatch tune``'s replay and scoring (None when
    ``console.recordings`` is not set)."""
    from pathlib import Path

    from crowdwatch.console.tuning import Tuning
    from crowdwatch.streams.rules.registry import kinds
    from crowdwatch.tools.recorded import RecordedFeed
    from crowdwatch.tools.tune import Sweep, tune

    folder = runner.config.console.recordings
    if not folder:
        return None

    def run_tune(config: Any, path: Path, rule: str, sweep: str, level: float | None,
                 min_peak: float, progress: Any) -> dict[str, Any]:
        rejected: list[Any] = []
        report = tune(config, lambda: RecordedFeed(path, config, lambda *a: rejected.append(a)),
                      rule, Sweep.parse(sweep), level, min_peak, progress=progress)
        report["rejected_rows"] = len(rejected)
        return report

    tunable = {name for name, model in kinds().items() if model.watches_zone_values}
    return Tuning(Path(folder), editor, lambda: runner.config, runner.reload, run_tune, tunable)


def cmd_ingest(args: argparse.Namespace) -> int:
    from crowdwatch.console.live import LiveView
    from crowdwatch.console.server import ConsoleServer
    from crowdwatch.streams.rules.registry import rule_series
    from crowdwatch.streams.runtime.kafka_ingest import IngestRunner

    config = load_site(args.config)
    if args.console_port is not None:
        config.console.port = args.console_port
    metrics = metrics_for(config, args.metrics_port)
    live = LiveView(config, rule_series(config), config.console.history, alerts_here=False) \
        if config.console.port else None
    runner = IngestRunner(config, metrics, realtime=not args.fast, live=live)
    console = None
    if live is not None:  # camera setup in scale-out mode; rules (and tuning) are the workers'
        console = ConsoleServer(config.console, live, setup=camera_setup(args.config, runner))
    if console is not None and console.start():
        print(f"crowdwatch console: {console.url}", flush=True)
    try:
        return runner.run(args.duration)
    finally:
        if console is not None:
            console.stop()


def cmd_worker(args: argparse.Namespace) -> int:
    from crowdwatch.streams.alerting.build import build_sinks
    from crowdwatch.streams.alerting.sinks import Dispatcher
    from crowdwatch.streams.runtime.worker_main import run_worker

    config = load_for_alerts(args.config, args.alerts_jsonl)
    metrics = metrics_for(config, args.metrics_port)
    run_worker(config, Dispatcher(build_sinks(config.alerts, metrics), metrics), metrics)
    return 0


def register(sub: Any) -> None:
    run = sub.add_parser("run", help="run cameras, detectors and rules in one process")
    run.add_argument("--config", help="YAML config; default: the built-in simulated demo")
    run.add_argument("--duration", type=float, help="stop after this many seconds")
    run.add_argument("--alerts-jsonl", help="also append every notification to this file")
    run.add_argument("--metrics-port", type=int, help="override metrics.port (0 disables)")
    run.add_argument("--console-port", type=int, help="override console.port (0 disables)")
    run.add_argument("--fast", action="store_true",
                     help="do not pace file and sim sources to real time")
    run.set_defaults(func=cmd_run)

    ing = sub.add_parser("ingest", help="scale-out: run cameras and publish events to Kafka")
    ing.add_argument("--config", help="YAML config; default: the built-in demo")
    ing.add_argument("--duration", type=float, help="stop after this many seconds")
    ing.add_argument("--metrics-port", type=int, help="override metrics.port (0 disables)")
    ing.add_argument("--console-port", type=int, help="override console.port (0 disables)")
    ing.add_argument("--fast", action="store_true", help="do not pace files/sim to real time")
    ing.set_defaults(func=cmd_ingest)

    wrk = sub.add_parser("worker", help="scale-out: a worker running the rules on Kafka")
    wrk.add_argument("--config", help="YAML config; default: the built-in demo")
    wrk.add_argument("--alerts-jsonl", help="also append every notification to this file")
    wrk.add_argument("--metrics-port", type=int, help="override metrics.port (0 disables)")
    wrk.set_defaults(func=cmd_worker)
