"""Replay and tuning on recorded feeds, including the real Auckland counters."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from crowdwatch.config import load_config
from crowdwatch.tools.recorded import RecordedFeed
from crowdwatch.tools.tune import Peak, Sweep, find_peaks, score
from tests.helpers import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
AKL_CONFIG = ROOT / "examples" / "akl.yaml"


def cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crowdwatch.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_akl_table_reads_as_hourly_readings_in_local_time(shared_data, tmp_path):
    config = load_config(AKL_CONFIG)
    rejected = []
    feed = RecordedFeed(shared_data / "akl" / "hourly_counts.csv", config,
                        lambda *a: rejected.append(a))
    first = []
    for event in feed:
        first.append(event)
        if len(first) == 21 * 30:
            break
    # First row: 2019-01-01 6:00-6:59 NZDT (UTC+13), stamped when the hour is complete.
    assert first[0].ts == datetime(2019, 1, 1, 7, tzinfo=ZoneInfo("Pacific/Auckland")).timestamp()
    assert first[0].ts == datetime(2018, 12, 31, 18, tzinfo=UTC).timestamp()
    courthouse = [e for e in first if e.sensor_id == "1-courthouse-lane"]
    assert courthouse[0].value == 4.0 and courthouse[0].zone_id == "zone-1-courthouse-lane"
    # Hours 0-5 listed under a date are that night (the next calendar day): time only grows.
    stamps = [e.ts for e in courthouse]
    assert all(b - a == 3600 for a, b in itertools.pairwise(stamps))
    # Empty cells are gaps, not zeros: the two sensors that start in 2022 send nothing.
    assert not [e for e in first if e.sensor_id.startswith("188-quay-street")]
    assert rejected == []


def test_replay_cli_on_the_auckland_counters(shared_data, tmp_path):
    started = time.monotonic()
    done = cli("replay", "--config", str(AKL_CONFIG), "--input",
               str(shared_data / "akl" / "hourly_counts.csv"), "--quiet",
               "--alerts-jsonl", str(tmp_path / "alerts.jsonl"),
               "--learn", str(tmp_path / "state.json"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert time.monotonic() - started < 150
    assert summary["events"]["sensor"] > 1_000_000 and summary["span_days"] > 2500
    assert summary["out_of_order"] == 0 and summary["deadletter"] == 0
    # Three rows of the export carry a wrong date; the hour sequence repairs them.
    assert summary["repaired_dates"]["rows"] == 3
    alerts = read_jsonl(tmp_path / "alerts.jsonl")
    rules = {a["rule"] for a in alerts}
    assert {"count", "forecast", "sensor_silent", "seasonal", "unusual"} <= rules
    # Every alert that fired was resolved once, with the same fingerprint.
    settled = [a for a in alerts if a["rule"] in ("count", "forecast", "sensor_silent")]
    firing = [a["fingerprint"] for a in settled if a["state"] == "firing"]
    resolved = [a["fingerprint"] for a in settled if a["state"] == "resolved"]
    assert sorted(firing) == sorted(resolved)
    # 2020's lockdowns silence nothing (zero counts are readings); the 188 Quay Street
    # counters only appear in 2022: their sensor_silent alerts resolve then.
    quay = [a for a in alerts if a["rule"] == "sensor_silent"
            and a["labels"]["sensor"] == "188-quay-street-lower-albert-ew"]
    assert quay[0]["state"] == "firing" and quay[1]["state"] == "resolved"
    assert quay[1]["ends_at"].startswith("2022")
    assert "--speed" in cli("replay", "--help", cwd=tmp_path).stdout
    # The learning rules say when and against what: predicted time, the usual's slot.
    seasonal = next(a for a in alerts if a["rule"] == "seasonal" and a["state"] == "firing")
    assert seasonal["labels"]["predicted_at"] >= seasonal["starts_at"]
    unusual = next(a for a in alerts if a["rule"] == "unusual" and a["state"] == "firing")
    assert "× the usual" in unusual["summary"] and unusual["labels"]["slot"][:3] in (
        "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    # --learn kept both models, and a run with the config starts from them.
    assert summary["learned"]["models"] == 2
    saved = json.loads((tmp_path / "state.json").read_text())
    assert saved["site"] == "akl-cbd" and len(saved["states"]) == 2


def test_replay_at_speed_follows_the_recording_clock(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({
        "sensors": {"zones": [{"id": "z"}], "devices": [{"id": "s1", "zone": "z"}]},
        "rules": [{"kind": "count", "zone": "z", "warn": 10, "for": 0, "window": 1,
                   "statistic": "max", "clear_for": 0}],
        "alerts": {"console": False}, "metrics": {"port": 0},
        "deadletter": {"path": str(tmp_path / "dead.jsonl")}}))
    rows = ["ts,sensor_id,value"] + [f"{1764000000 + 10 * i},s1,{5 + i}" for i in range(11)]
    rows.insert(4, "1764000025,s1,lots")  # a broken row in the middle
    rows.insert(8, "1764000055,s1")  # and one with a field missing
    feed = tmp_path / "feed.csv"
    feed.write_text("\n".join(rows) + "\n")
    started = time.monotonic()
    done = cli("replay", "--config", str(config), "--input", str(feed), "--speed", "50",
               "--alerts-jsonl", str(tmp_path / "alerts.jsonl"), cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["events"] == {"sensor": 11} and summary["deadletter"] == 2
    assert 100 / 50 <= elapsed < 30  # 100 s of recording at 50x takes at least 2 s
    (fired,) = read_jsonl(tmp_path / "alerts.jsonl")
    assert fired["state"] == "firing" and fired["value"] == 10.0
    dead = read_jsonl(tmp_path / "dead.jsonl")
    assert [d["source"] for d in dead] == [f"{feed}:5", f"{feed}:9"]
    assert dead[0]["reason"] == "bad_field" and dead[1]["reason"] == "bad_row"


def test_tune_cli_sweeps_and_scores_against_real_peaks(shared_data, tmp_path):
    done = cli("tune", "--config", str(AKL_CONFIG), "--input",
               str(shared_data / "akl" / "hourly_counts.csv"), "--rule",
               "count:zone-45-queen-street", "--sweep", "warn=1200:1600:400", "--level", "1600",
               "--min-peak", "3600", "--lookahead", "7200", "--json", str(tmp_path / "t.json"),
               "--plot", str(tmp_path / "t.png"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "t.json").read_text())
    low, at_level = report["results"]
    assert (low["value"], at_level["value"]) == (1200, 1600)
    assert report["peaks"] > 100 and report["zone_days"] > 2500
    # At the truth level the rule fires exactly when a peak starts: every peak, no lead.
    assert at_level["caught"] == report["peaks"] and at_level["median_lead_s"] == 0
    # A lower level warns earlier and more often: the trade-off the plot shows.
    assert low["median_lead_s"] > 0 and low["false_per_day"] > at_level["false_per_day"]
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    assert "warn=1200" in done.stdout


def test_sweep_and_rule_errors_name_the_problem(tmp_path, shared_data):
    with pytest.raises(ValueError, match="STEP > 0"):
        Sweep.parse("horizon=10:1:1")
    done = cli("tune", "--config", str(AKL_CONFIG), "--input",
               str(shared_data / "akl" / "hourly_counts.csv"), "--rule", "forecast",
               "--sweep", "horizn=1:2:1", "--json", str(tmp_path / "t.json"), cwd=tmp_path)
    assert done.returncode == 2 and "no 'horizn'" in done.stderr and "horizon" in done.stderr


def test_scoring_counts_false_alerts_and_caps_lead():
    from crowdwatch.events import Alert

    def fired(at: float, ends: float) -> list[Alert]:
        return [Alert("f", "forecast", "z", "warning", "firing", at, 0, 0, ""),
                Alert("f", "forecast", "z", "warning", "resolved", at, 0, 0, "", ends)]

    series = [(t * 3600.0, v) for t, v in enumerate([1, 1, 9, 9, 1, 9, 1, 1, 9, 9, 9, 1])]
    peaks = find_peaks(series, "z", 5, min_peak=3600, merge=0)
    assert [(p.start / 3600, p.end / 3600) for p in peaks] == [(2, 3), (8, 10)]
    alerts = fired(0, 4 * 3600) + fired(5 * 3600, 5.5 * 3600) + fired(7 * 3600, 11 * 3600)
    result = score(alerts, peaks, days=1.0, lookahead=7200, value=0)
    # 0 h catches 2-3 (lead 2 h), 5 h catches nothing (a 1 h blip), 7 h catches 8-10 (1 h).
    assert (result.caught, result.false_alerts, result.median_lead_s) == (2, 1, 5400)
    assert isinstance(peaks[0], Peak)
