"""Seasonal forecast and "unusual for this hour": learned rhythm, warnings, persistence."""

from __future__ import annotations

import json
import math
import random
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.events import SensorEvent
from crowdwatch.metrics import Metrics
from crowdwatch.streams.alerting.sinks import Dispatcher
from crowdwatch.streams.rules.base import state_from_dict, state_to_dict
from crowdwatch.streams.rules.engine import RuleEngine
from crowdwatch.streams.rules.kinds._seasonal import MAX_STATE_BYTES, SeasonalState
from crowdwatch.streams.runtime.embedded import EmbeddedRunner
from crowdwatch.streams.runtime.state_file import StateFile
from crowdwatch.streams.runtime.state_store import decode_value, encode_value
from crowdwatch.tools.replay import replay
from crowdwatch.tools.tune import Sweep, tune

TZ = "Europe/Berlin"  # a zone with daylight saving: slots follow the wall clock
START = datetime(2026, 2, 2, 0, 0, tzinfo=ZoneInfo(TZ)).timestamp()  # a Monday
HOUR = 3600.0


def school_gate(ts: float, rng: random.Random, day_factor: float = 1.0) -> float:
    """Hourly people at a school gate: quiet, a morning drop-off, a big dismissal peak at
    15:00 on weekdays, a small Saturday market at 11:00; 5 % noise."""
    local = datetime.fromtimestamp(ts, ZoneInfo(TZ))
    hour, weekday = local.hour, local.weekday()
    level = 20.0
    if weekday < 5:
        level += {8: 50, 14: 40, 15: 80, 16: 30}.get(hour, 0)
    elif weekday == 5:
        level += {10: 20, 11: 40, 12: 20}.get(hour, 0)
    return level * day_factor * (1 + rng.gauss(0, 0.05))


def config(*rules: dict) -> CrowdwatchConfig:
    return CrowdwatchConfig.model_validate({
        "site": {"name": "gate-test", "timezone": TZ},
        "sensors": {"zones": [{"id": "gate"}],
                    "devices": [{"id": "gate-counter", "zone": "gate"}]},
        "rules": list(rules), "alerts": {"console": False}, "metrics": {"port": 0},
        "engine": {"tick": 900}})


SEASONAL = {"id": "early", "kind": "seasonal", "zone": "gate", "metric": "count",
            "threshold": 120, "horizon": "3h", "slot": "1h", "clear_for": "1h"}
HOLT = {"id": "holt", "kind": "forecast", "zone": "gate", "metric": "count", "threshold": 120,
        "horizon": "3h", "alpha": 0.5, "beta": 0.3, "for": 0, "clear_for": "1h"}
UNUSUAL = {"id": "odd", "kind": "unusual", "zone": "gate", "metric": "count", "slot": "1h",
           "ratio": 1.5, "z": 3, "clear_for": 0}


def readings(weeks: float, rng: random.Random, busy_day: int | None = None,
             bump_at: float | None = None, start: float = START) -> list[SensorEvent]:
    """Hourly readings; ``busy_day`` (day index) runs 1.5x its usual all day; ``bump_at``
    doubles one hour."""
    out = []
    for i in range(int(weeks * 7 * 24)):
        ts = start + i * HOUR
        factor = 1.5 if busy_day is not None and i // 24 == busy_day else 1.0
        value = school_gate(ts, rng, factor)
        if bump_at is not None and ts == bump_at:
            value *= 2
        out.append(SensorEvent(sensor_id="gate-counter", ts=ts, kind="counter",
                               value=round(value, 1), zone_id="gate"))
    return out


def firings(alerts, rule_id):
    return [a for a in alerts if a.rule_id == rule_id and a.state == "firing"]


def test_seasonal_warns_hours_before_a_busy_dismissal_and_before_holt():
    rng = random.Random(1)
    busy = 5 * 7 + 2  # the Wednesday of week 6 runs 1.5x: dismissal 100 -> 150 > 120
    result = replay(config(SEASONAL, HOLT), readings(6, rng, busy_day=busy))
    crossing = START + busy * 24 * HOUR + 15 * HOUR - HOUR  # first hour >= 120: 14:00 (90x1.5)
    early = firings(result.alerts, "early")
    assert len(early) == 1, [a.summary for a in early]  # 5 ordinary weeks: never a warning
    warned = early[0].starts_at
    assert crossing - warned >= 2 * HOUR
    assert "usual for Wednesday" in early[0].summary
    assert float(early[0].labels["predicted_value"]) >= 120
    holt = [a.starts_at for a in firings(result.alerts, "holt")
            if a.starts_at > crossing - 6 * HOUR]
    assert holt and min(holt) > warned  # the trend line only sees the rise once it starts


def test_a_closed_day_is_an_outlier_not_the_usual():
    rng = random.Random(8)
    events = readings(6, rng)
    closed = START + (4 * 7 + 2) * 24 * HOUR  # the Wednesday of week 5: nobody comes
    events = [e if not closed <= e.ts < closed + 24 * HOUR else
              SensorEvent(sensor_id=e.sensor_id, ts=e.ts, kind=e.kind, value=0.0,
                          zone_id=e.zone_id) for e in events]
    result = replay(config(UNUSUAL), events)
    (state,) = result.learned.values()
    rule = RuleEngine(config(UNUSUAL), start_ts=START).rules[0]
    wednesday_15 = rule.model.clock.slot_of(START + 2 * 24 * HOUR + 15 * HOUR)
    assert rule.model.usual(state, wednesday_15) == pytest.approx(100, rel=0.08)


def test_seasonal_is_quiet_while_learning():
    rng = random.Random(2)
    # A busy day in the second week: fewer than min_weeks (3) of history, no warning yet.
    result = replay(config(SEASONAL), readings(2, rng, busy_day=9))
    assert firings(result.alerts, "early") == []


def test_unusual_fires_on_a_doubled_hour_with_the_slot_named_and_resolves():
    rng = random.Random(3)
    bump = START + (5 * 7 + 3) * 24 * HOUR + 11 * HOUR  # Thursday 11:00, week 6
    result = replay(config(UNUSUAL), readings(6, rng, bump_at=bump))
    odd = [a for a in result.alerts if a.rule_id == "odd"]
    assert [(a.state, a.starts_at) for a in odd] == [("firing", bump), ("resolved", bump)]
    assert re.search(r"is \d\.\d× the usual Thursday 11:00", odd[0].summary)
    assert 1.7 <= odd[0].value <= 2.4  # doubled, with 5 % noise on both hours
    assert odd[0].labels["slot"] == "Thursday 11:00"
    # The same bump while the model is learning says nothing.
    learning = replay(config(UNUSUAL), readings(2, random.Random(3),
                                                bump_at=START + 3 * 24 * HOUR + 11 * HOUR))
    assert [a for a in learning.alerts if a.rule_id == "odd"] == []


def test_unusual_is_quiet_on_ordinary_weeks_and_a_busy_day_is_one_alert():
    rng = random.Random(4)
    result = replay(config(UNUSUAL), readings(8, rng, busy_day=7 * 7 + 1))
    odd = firings(result.alerts, "odd")
    # 1.5x all day: the first hour is unusual; after that the day explains itself.
    assert len(odd) <= 2 and all(a.starts_at >= START + (7 * 7 + 1) * 24 * HOUR for a in odd)


def test_model_state_is_small_survives_the_changelog_and_a_state_file(tmp_path):
    rng = random.Random(5)
    cfg = config(SEASONAL, UNUSUAL)
    first = replay(cfg, readings(4, rng))
    assert len(first.learned) == 2
    for state in first.learned.values():
        assert isinstance(state, SeasonalState) and state.nbytes() <= MAX_STATE_BYTES
        back = decode_value(encode_value(state))  # the worker's changelog round trip
        assert isinstance(back, SeasonalState) and back.to_dict() == state.to_dict()
        assert len(json.dumps(state_to_dict(state))) <= MAX_STATE_BYTES
    path = tmp_path / "state" / "learned.json"
    StateFile(path, "gate-test").save(first.learned)
    loaded = StateFile(path, "gate-test").load()
    assert {k: v.to_dict() for k, v in loaded.items()} == {
        k: v.to_dict() for k, v in first.learned.items()}
    # Continuing from the file equals never having stopped.
    later = readings(2, rng, start=START + 4 * 7 * 24 * HOUR)
    resumed = replay(cfg, later, seed=loaded)
    whole = replay(cfg, readings(4, random.Random(5)) + later)
    assert {k: v.to_dict() for k, v in resumed.learned.items()} == {
        k: v.to_dict() for k, v in whole.learned.items()}


def test_a_bad_state_file_is_set_aside_and_the_rules_relearn(tmp_path, caplog):
    path = tmp_path / "learned.json"
    path.write_text('{"format": 1, "site": "gate-test", "states": [1, 2')
    assert StateFile(path, "gate-test").load() == {}
    aside = list(tmp_path.glob("learned.json.bad-*"))
    assert len(aside) == 1 and not path.exists()
    record = caplog.records[-1]
    assert record.getMessage().startswith("state file unreadable")
    assert "not JSON" in record.error and record.kept_as == str(aside[0])
    path.write_text(json.dumps({"format": 1, "site": "elsewhere", "states": {}}))
    assert StateFile(path, "gate-test").load() == {}
    assert "saved by site 'elsewhere'" in caplog.records[-1].error


def test_embedded_runner_saves_at_exit_and_loads_at_start(tmp_path):
    path = tmp_path / "state.json"
    cfg = config(SEASONAL, UNUSUAL).model_copy(deep=True)
    cfg.engine.state_file = str(path)
    metrics = Metrics("gate-test")
    runner = EmbeddedRunner(cfg, Dispatcher([], metrics), metrics, realtime=False)
    now = datetime.now(ZoneInfo(TZ)).timestamp()
    for event in readings(4, random.Random(6), start=now - 4 * 7 * 24 * HOUR):
        runner._handle(event)
    runner._show_outlook(now)
    assert metrics.value("crowdwatch_zone_expected", {"zone": "gate", "what": "usual"}) > 0
    high = metrics.value("crowdwatch_zone_expected", {"zone": "gate", "what": "usual_high"})
    low = metrics.value("crowdwatch_zone_expected", {"zone": "gate", "what": "usual_low"})
    assert low < metrics.value("crowdwatch_zone_expected",
                               {"zone": "gate", "what": "usual"}) < high
    assert metrics.value("crowdwatch_zone_expected", {"zone": "gate", "what": "forecast"}) > 0
    learned = {k: v.to_dict() for k, v in runner.engine.learned_state().items()}
    runner.stop()
    assert metrics.value("crowdwatch_state_saves_total", {"result": "ok"}) == 1
    again = EmbeddedRunner(cfg, Dispatcher([], metrics), metrics, realtime=False)
    assert {k: v.to_dict() for k, v in again.engine.learned_state().items()} == learned
    again.stop()


def test_an_unwritable_state_file_stops_the_start_with_its_setting(tmp_path):
    from crowdwatch.errors import ConfigError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    cfg = config(SEASONAL).model_copy(deep=True)
    cfg.engine.state_file = str(blocker / "state.json")
    metrics = Metrics("gate-test")
    with pytest.raises(ConfigError, match="engine.state_file"):
        EmbeddedRunner(cfg, Dispatcher([], metrics), metrics, realtime=False)


@pytest.mark.parametrize(("change", "message"), [
    ({"slot": "7m"}, "must divide a day"),
    ({"slot": "5m", "weeks": 8}, "bytes per zone"),
    ({"weeks": 2, "min_weeks": 3}, "min_weeks"),
])
def test_model_settings_are_checked(change, message):
    with pytest.raises(ValidationError, match=message):
        config({**SEASONAL, **change})


def test_tune_sweeps_the_unusual_ratio():
    rng = random.Random(7)
    events = readings(6, rng, bump_at=START + (5 * 7 + 1) * 24 * HOUR + 10 * HOUR)
    report = tune(config(UNUSUAL), lambda: events, "unusual:gate",
                  Sweep.parse("ratio=1.5,3"), level=30.0)
    low, high = report["results"]
    assert low["alerts"] >= 1 and high["alerts"] == 0  # 2x bump: 1.5 sees it, 3 does not


def test_a_stored_state_of_other_settings_starts_afresh():
    cfg = config(SEASONAL)
    engine = RuleEngine(cfg, start_ts=START)
    rule = engine.rules[0]
    odd = SeasonalState()  # empty arrays: another slot width's shape
    engine.store[rule.state_key] = state_from_dict(state_to_dict(odd))
    engine.handle(SensorEvent(sensor_id="gate-counter", ts=START, kind="counter", value=5.0,
                              zone_id="gate"))
    state = engine.store[rule.state_key]
    assert len(state.history) == 24 * 7 * 9 and not math.isnan(state.mean_level)
