"""`replay` and `tune`: recorded feeds through the rules on their own clock."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from crowdwatch.cli.common import load_for_alerts
from crowdwatch.config import CrowdwatchConfig, load_config
from crowdwatch.deadletter import DeadLetterFile
from crowdwatch.errors import UsageError
from crowdwatch.metrics import Metrics
from crowdwatch.progress import Progress


def _estimated_events(path: str, config: CrowdwatchConfig) -> int:
    with open(path, "rb") as fh:
        lines = sum(1 for _ in fh)
    return max(1, lines * max(1, len(config.sensors.devices)) if path.endswith(".csv")
               and not config.cameras else lines)


def cmd_replay(args: argparse.Namespace) -> int:
    from crowdwatch.streams.alerting.build import build_sinks
    from crowdwatch.streams.alerting.sinks import Dispatcher
    from crowdwatch.tools.recorded import RecordedFeed
    from crowdwatch.tools.replay import replay, summarize

    config = load_for_alerts(args.config, args.alerts_jsonl)
    if args.quiet:
        config.alerts.console = False
    if args.speed < 0:
        raise UsageError("--speed must be >= 0 (0: as fast as possible)")
    metrics = Metrics(config.site.name)
    deadletter = DeadLetterFile.of(config.deadletter, metrics, args.deadletter)
    dispatcher = Dispatcher(build_sinks(config.alerts, metrics), metrics)
    learn_to = _learn_target(args, config)
    feed = RecordedFeed(args.input, config, deadletter.reject)
    bar = Progress(_estimated_events(args.input, config), "replay")
    try:
        result = replay(config, feed, dispatcher.send, args.speed, bar.update)
    finally:
        bar.close()
        dispatcher.close()
        deadletter.close()
    summary = summarize(result, args.input, deadletter.count, feed.skipped_columns,
                        feed.repaired)
    if learn_to is not None:
        learn_to.save(result.learned)
        summary["learned"] = {"path": str(learn_to.path), "models": len(result.learned)}
    print(json.dumps(summary, indent=2))
    return 0


def _learn_target(args: argparse.Namespace, config: CrowdwatchConfig) -> Any:
    """Where ``--learn`` writes the models (checked before the replay runs)."""
    from crowdwatch.streams.runtime.state_file import StateFile

    if args.learn is None:
        return None
    path = args.learn or config.engine.state_file
    if not path:
        raise UsageError("--learn: give a path, or set engine.state_file in the config")
    from crowdwatch.streams.rules.registry import learns_over_weeks

    if not learns_over_weeks(config):
        raise UsageError("--learn: the config has no rule that learns (seasonal, unusual)")
    target = StateFile(path, config.site.name)
    target.check_writable()
    return target


def cmd_tune(args: argparse.Namespace) -> int:
    from crowdwatch.tools.recorded import RecordedFeed
    from crowdwatch.tools.tune import Sweep, plot_tuning, tune

    config = load_config(args.config)
    sweep = Sweep.parse(args.sweep)
    deadletter = DeadLetterFile.of(config.deadletter, Metrics(config.site.name), args.deadletter)
    bar = Progress(len(sweep.values), f"tune {sweep.param}")

    def progress(done: int, total: int) -> None:
        bar.update(done)

    try:
        report = tune(config, lambda: RecordedFeed(args.input, config, deadletter.reject),
                      args.rule, sweep, args.level, args.min_peak, args.merge, args.lookahead,
                      progress)
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


def register(sub: Any) -> None:
    rep = sub.add_parser("replay", help="feed a recorded feed through the rules on its own clock")
    rep.add_argument("--config", required=True, help="YAML config (zones, sensors, rules, sinks)")
    rep.add_argument("--input", required=True, help="JSONL events, count/sensor CSV, or a "
                     "wide date,hour,<sensor...> CSV")
    rep.add_argument("--speed", type=float, default=0.0,
                     help="N times real time (0: as fast as possible)")
    rep.add_argument("--alerts-jsonl", help="also append every notification to this file")
    rep.add_argument("--deadletter", help="rejected rows go here (default: deadletter.path)")
    rep.add_argument("--quiet", action="store_true", help="no console line per notification")
    rep.add_argument("--learn", nargs="?", const="", metavar="STATE_FILE",
                     help="save what the learning rules (seasonal, unusual) learned to this "
                     "state file (default: engine.state_file), so a new site starts with its "
                     "rhythm known; `run` and `worker` load it")
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
