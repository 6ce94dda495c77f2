"""Sensor rules and inhibition, through the engine with explicit timestamps."""

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.events import CameraHealth, CountEvent, SensorEvent
from crowdwatch.streams.rules.engine import RuleEngine

T0 = 1_764_000_000.0
SQUARE = [[0, 0], [100, 0], [100, 100], [0, 100]]


def config(rules: list[dict], sensors: dict | None = None) -> CrowdwatchConfig:
    return CrowdwatchConfig.model_validate({
        "site": {"name": "s"},
        "cameras": [{"id": "cam", "url": "sim://x", "zones": [
            {"id": "gate", "polygon": SQUARE,
             "ground": {"image": SQUARE, "world_m": [[0, 0], [10, 0], [10, 10], [0, 10]]}}]}],
        "sensors": sensors or {
            "zones": [{"id": "square", "area_m2": 100}],
            "devices": [{"id": "door-a", "zone": "square"}, {"id": "door-b", "zone": "square"},
                        {"id": "gate-counter", "zone": "gate", "kind": "occupancy"}]},
        "rules": rules})


def drive(engine: RuleEngine, events: list, tick_every: float = 1.0) -> list:
    """Feed events in order, ticking time rules between them; return the alerts."""
    out = []
    last = None
    for event in events:
        if last is not None:
            t = last + tick_every
            while t < event.ts:
                out += engine.tick(t)
                t += tick_every
        out += engine.handle(event)
        last = event.ts
    return out


def test_sensor_silent_fires_after_silence_and_resolves_on_next_reading():
    engine = RuleEngine(config([{"kind": "sensor_silent", "sensor": "door-a", "after": 60}]),
                        start_ts=T0)
    alerts = drive(engine, [SensorEvent("door-a", T0 + i * 10, "counter", 5, "square")
                            for i in range(6)])
    assert alerts == []  # readings every 10 s: never silent
    alerts = engine.tick(T0 + 50 + 59)
    assert alerts == []
    (fired,) = engine.tick(T0 + 50 + 61)
    assert fired.rule == "sensor_silent" and fired.state == "firing"
    assert fired.labels["sensor"] == "door-a" and fired.zones == ["square"] and not fired.zone_id
    assert engine.tick(T0 + 500) == []  # no duplicate while still silent
    (resolved,) = engine.handle(SensorEvent("door-a", T0 + 600, "counter", 3, "square"))
    assert resolved.state == "resolved" and resolved.fingerprint == fired.fingerprint


def test_sensor_zone_rules_use_the_sum_of_the_zone_sensors():
    rules = [{"kind": "count", "zone": "square", "warn": 50, "for": 0, "window": 1,
              "statistic": "max", "clear_for": 0}]
    engine = RuleEngine(config(rules), start_ts=T0)
    # Each door alone stays under 50; together they pass it.
    events = [SensorEvent("door-a", T0 + 1, "counter", 30, "square"),
              SensorEvent("door-b", T0 + 2, "counter", 25, "square")]
    (alert,) = drive(engine, events)
    assert alert.state == "firing" and alert.value == 55 and alert.rule == "count"
    # A reading older than combine_within no longer counts towards the zone.
    later = SensorEvent("door-a", T0 + 2 + 301 + 1, "counter", 10, "square")
    (resolved,) = engine.handle(later)
    assert resolved.state == "resolved" and resolved.value == 10


def test_density_on_a_sensor_zone_divides_by_its_area():
    rules = [{"kind": "density", "zone": "square", "warn": 0.5, "for": 0, "window": 1,
              "statistic": "max", "clear_for": 0}]
    engine = RuleEngine(config(rules), start_ts=T0)
    assert engine.handle(SensorEvent("door-a", T0 + 1, "counter", 40, "square")) == []
    (alert,) = engine.handle(SensorEvent("door-a", T0 + 2, "counter", 60, "square"))
    assert alert.value == 0.6


def test_disagreement_between_camera_and_sensor():
    rules = [{"kind": "disagreement", "zone": "gate", "sensor": "gate-counter",
              "tolerance": 0.3, "min_level": 5, "window": 10, "for": 20, "clear_for": 20}]
    engine = RuleEngine(config(rules), start_ts=T0)
    events = []
    for i in range(100):
        t = T0 + i
        camera = 20.0
        sensor = 21.0 if i < 30 else 40.0 if i < 70 else 19.0  # drift for 40 s, then agree
        events.append(CountEvent("cam", "gate", t, camera))
        if i % 5 == 0:
            events.append(SensorEvent("gate-counter", t + 0.5, "occupancy", sensor, "gate"))
    alerts = drive(engine, events)
    assert [a.state for a in alerts] == ["firing", "resolved"]
    fired, resolved = alerts
    assert T0 + 30 + 20 <= fired.starts_at <= T0 + 30 + 26  # held `for` 20 s
    assert fired.labels["sensor"] == "gate-counter" and fired.value > 0.3
    assert resolved.ends_at >= T0 + 70 + 20


def test_small_numbers_never_disagree_by_a_large_share():
    def run(min_level: float) -> list:
        rules = [{"kind": "disagreement", "zone": "gate", "sensor": "gate-counter",
                  "tolerance": 0.5, "min_level": min_level, "for": 0, "clear_for": 0}]
        engine = RuleEngine(config(rules), start_ts=T0)
        events = [CountEvent("cam", "gate", T0 + i, 1.0) for i in range(10)]
        events.append(SensorEvent("gate-counter", T0 + 10, "occupancy", 3.0, "gate"))
        return drive(engine, events)

    assert run(min_level=5) == []  # 1 vs 3 people: 2 / 5 = 40 %, under 50 %
    assert [a.state for a in run(min_level=1)] == ["firing"]  # without the floor: 67 %


def test_offline_camera_inhibits_its_zone_alerts_instead_of_a_false_all_clear():
    rules = [{"kind": "count", "zone": "gate", "warn": 30, "for": 2, "clear_below": 20,
              "clear_for": 10, "window": 3},
             {"kind": "camera_offline", "after": 15}]
    engine = RuleEngine(config(rules), start_ts=T0)
    busy = [CountEvent("cam", "gate", T0 + i, 40.0) for i in range(10)]
    alerts = drive(engine, busy)
    assert [(a.rule, a.state) for a in alerts] == [("count", "firing")]
    # The lens is covered: a few dark frames count 0 before tampering is detected...
    dark = [CountEvent("cam", "gate", T0 + 10 + i, 0.0) for i in range(5)]
    alerts = drive(engine, dark)
    alerts += engine.handle(CameraHealth("cam", T0 + 15, "tampered", reason="dark"))
    # ...then nothing arrives for a long time: offline fires, the count alert stays firing.
    for t in range(16, 200):
        alerts += engine.tick(T0 + t)
    assert [(a.rule, a.state) for a in alerts] == [("camera_offline", "firing")]
    assert engine.inhibited_zones() == {"gate"}
    # Counts that arrive while the camera is untrustworthy are ignored.
    assert engine.handle(CountEvent("cam", "gate", T0 + 200, 0.0)) == []
    # Back up and still busy: no duplicate count alert, the offline alert resolves.
    alerts = engine.handle(CameraHealth("cam", T0 + 201, "up"))
    alerts += drive(engine, [CountEvent("cam", "gate", T0 + 202 + i, 40.0) for i in range(5)])
    assert [(a.rule, a.state) for a in alerts] == [("camera_offline", "resolved")]
    assert engine.inhibited_zones() == set()
    # Real low counts for clear_for: now the all-clear is true, and sent once.
    alerts = drive(engine, [CountEvent("cam", "gate", T0 + 210 + i, 5.0) for i in range(20)])
    assert [(a.rule, a.state) for a in alerts] == [("count", "resolved")]


def test_without_inhibition_the_dark_frames_would_have_cleared_it():
    """Guard for the test above: the same dark frames alone do clear the alert."""
    rules = [{"kind": "count", "zone": "gate", "warn": 30, "for": 2, "clear_below": 20,
              "clear_for": 10, "window": 3}]
    engine = RuleEngine(config(rules), start_ts=T0)
    events = [CountEvent("cam", "gate", T0 + i, 40.0) for i in range(10)]
    events += [CountEvent("cam", "gate", T0 + 10 + i, 0.0) for i in range(20)]
    assert [a.state for a in drive(engine, events)] == ["firing", "resolved"]


def test_sensor_rule_state_survives_a_table_round_trip():
    from crowdwatch.streams.rules.base import state_from_dict, state_to_dict

    rules = [{"kind": "disagreement", "zone": "gate", "sensor": "gate-counter"},
             {"kind": "count", "zone": "square", "warn": 5},
             {"kind": "sensor_silent", "after": 60}]
    engine = RuleEngine(config(rules), start_ts=T0)
    engine.handle(CountEvent("cam", "gate", T0, 10.0))
    engine.handle(SensorEvent("gate-counter", T0 + 1, "occupancy", 30.0, "gate"))
    engine.handle(SensorEvent("door-a", T0 + 1, "counter", 3.0, "square"))
    kinds = {type(v).__name__ for v in engine.store.values()}
    assert {"DisagreementState", "SensorReading", "ThresholdState", "OfflineState"} <= kinds
    for key, value in list(engine.store.items()):
        if not isinstance(value, bool):
            assert state_from_dict(state_to_dict(value)) == value, key
