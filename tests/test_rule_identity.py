"""Rule identity: ids that survive reordering, state keyed by them, config edits that
resolve what they orphan, namespaces that keep cameras and sensors apart, co-partition
keys for scale-out, and the one dead-letter record."""

from __future__ import annotations

import json

import pytest

from crowdwatch.config import CrowdwatchConfig, parse_config
from crowdwatch.deadletter import DeadLetterFile
from crowdwatch.errors import ConfigError
from crowdwatch.events import CameraHealth, CountEvent, SensorEvent
from crowdwatch.metrics import Metrics
from crowdwatch.streams.rules.base import state_from_dict, state_to_dict
from crowdwatch.streams.rules.engine import RuleEngine
from crowdwatch.streams.rules.kinds._threshold import ThresholdState
from crowdwatch.streams.runtime.partitioning import CoPartitioner
from crowdwatch.streams.runtime.state_store import PartitionedStore

T0 = 1_764_000_000.0
SQUARE = [[0, 0], [100, 0], [100, 100], [0, 100]]


def site(rules: list[dict], cameras: int = 1, sensors: list[dict] | None = None,
         zones_per_camera: int = 1) -> CrowdwatchConfig:
    cams = [{"id": f"cam{c}", "url": "sim://steady",
             "zones": [{"id": f"z{c}{chr(97 + z)}", "polygon": SQUARE}
                       for z in range(zones_per_camera)]} for c in range(cameras)]
    return CrowdwatchConfig.model_validate({
        "cameras": cams, "rules": rules, "alerts": {"console": False},
        "sensors": {"devices": sensors or []}})


def counts(zone: str, values: list[float], t: float = T0, camera: str = "cam0"):
    return [CountEvent(camera, zone, t + i, v) for i, v in enumerate(values)]


def run(engine: RuleEngine, events) -> list:
    return [a for e in events for a in engine.handle(e)]


WARN10 = {"kind": "count", "zone": "z0a", "warn": 10, "for": 2, "clear_for": 2, "window": 1}
WARN50 = {"kind": "count", "zone": "z0a", "warn": 50, "for": 2, "clear_for": 2, "window": 1}
SURGE = {"kind": "surge", "zone": "z0a", "rise_per_min": 1000, "window": 10}


def test_two_rules_of_one_kind_on_one_zone_are_two_alerts():
    engine = RuleEngine(site([WARN10, WARN50]), start_ts=T0)
    alerts = run(engine, counts("z0a", [60] * 5 + [20] * 5 + [0] * 5))
    fired = [(a.rule_id, a.state) for a in alerts]
    ids = {a.rule_id for a in alerts}
    assert len(ids) == 2 and len({a.fingerprint for a in alerts}) == 2
    # warn 50 fires and resolves while the count is still above 10: warn 10 stays firing
    # until the count drops under 10, and each resolution names its own rule.
    (id10,) = {a.rule_id for a in alerts if a.threshold == 10 and a.state == "firing"}
    (id50,) = ids - {id10}
    assert fired == [(id10, "firing"), (id50, "firing"), (id50, "resolved"),
                     (id10, "resolved")]
    resolved50 = next(a for a in alerts if a.rule_id == id50 and a.state == "resolved")
    resolved10 = next(a for a in alerts if a.rule_id == id10 and a.state == "resolved")
    assert resolved50.ends_at < resolved10.ends_at


def test_reordering_rules_keeps_ids_and_state():
    forward, backward = site([WARN10, SURGE, WARN50]), site([WARN50, SURGE, WARN10])
    ids = sorted(r.rule_id() for r in forward.rules)
    assert ids == sorted(r.rule_id() for r in backward.rules)
    values = [60] * 3 + [60] * 3 + [0] * 6
    whole = RuleEngine(forward, start_ts=T0)
    expected = run(whole, counts("z0a", values))
    # Half the stream, then a "restart" with the rules reordered, on the same store.
    store: dict = {}
    first = RuleEngine(forward, start_ts=T0, store=store)
    got = run(first, counts("z0a", values)[:4])
    second = RuleEngine(backward, start_ts=T0, store=store)
    assert second.reconcile(T0 + 4) == []  # nothing changed: nothing resolved
    got += run(second, counts("z0a", values)[4:])
    key = sorted((a.fingerprint, a.state, a.starts_at, a.ends_at) for a in expected)
    assert len(key) == 4  # both rules fired and resolved
    assert sorted((a.fingerprint, a.state, a.starts_at, a.ends_at) for a in got) == key


def test_a_changed_rule_starts_fresh_and_a_removed_rule_resolves_with_a_reason():
    store: dict = {}
    before = RuleEngine(site([WARN10, WARN50]), start_ts=T0, store=store)
    fired = run(before, counts("z0a", [60] * 5))
    assert {a.state for a in fired} == {"firing"} and len(fired) == 2
    # Edit: warn 10 gets a longer `for` (same id, new settings), warn 50 is removed.
    changed = {**WARN10, "for": 30}
    after = RuleEngine(site([changed]), start_ts=T0, store=store)
    resolved = after.reconcile(T0 + 6)
    reasons = {a.rule_id: a.labels["resolved_by"] for a in resolved}
    id10 = site([WARN10]).rules[0].rule_id()
    id50 = site([WARN50]).rules[0].rule_id()
    assert reasons == {id10: "rule_changed", id50: "rule_removed"}
    assert all(a.state == "resolved" and a.ends_at == T0 + 6 for a in resolved)
    assert after.firing == {}
    # Old states are gone; the changed rule re-fires only after its new `for` holds.
    assert not any(k.startswith(f"rule/{id50}") for k in store)
    refired = run(after, counts("z0a", [60] * 40, t=T0 + 7))
    assert [(a.rule_id, a.state, a.starts_at) for a in refired] == [(id10, "firing", T0 + 37)]
    assert after.reconcile(T0 + 50) == []  # idempotent


def test_stored_state_carries_a_schema_version():
    stored = state_to_dict(ThresholdState(times=[1.0], values=[2.0], last_ts=1.0))
    assert stored["sv"] >= 2 and state_from_dict(stored) is not None
    assert state_from_dict({**stored, "sv": stored["sv"] - 1}) is None  # older: start fresh
    assert state_from_dict({**stored, "t": "NoSuchState"}) is None


def test_config_check_rejects_colliding_ids():
    text = """
cameras: [{id: gate-x, url: 'sim://steady', zones: [{id: a, polygon: [[0,0],[9,0],[9,9]]}]}]
sensors: {devices: [{id: gate-x}]}
rules:
  - {kind: count, zone: a, warn: 10}
  - {kind: count, zone: a, warn: 10, for: 5s}
  - {kind: count, zone: a, warn: 10, for: 9s, id: door-slow}
"""
    with pytest.raises(ConfigError) as err:
        parse_config(text, "site.yaml")
    message = str(err.value)
    assert "line 3: sensors.devices[0].id: sensor id 'gate-x' is also a camera's id" in message
    assert "line 6: rules[1]: rule id 'count:a:" in message and "rules[0]" in message
    assert "door-slow" not in message and message.count("problem") == 1


def test_a_sensor_never_speaks_for_a_camera_of_the_same_id():
    config = CrowdwatchConfig.model_validate({
        "cameras": [{"id": "gate-x", "url": "sim://steady",
                     "zones": [{"id": "za", "polygon": SQUARE}, {"id": "zb", "polygon": SQUARE}]}],
        "sensors": {"devices": [{"id": "gate-x"}]},
        "rules": [{"kind": "camera_offline", "after": 10},
                  {"kind": "sensor_silent", "after": 1000}]})
    engine = RuleEngine(config, start_ts=T0)
    engine.handle(CameraHealth("gate-x", T0, "up"))
    (fired,) = engine.tick(T0 + 11)
    assert fired.rule == "camera_offline" and fired.labels["camera"] == "gate-x"
    # A camera alert names the camera and lists its zones; it is keyed by the camera.
    assert fired.zone_id == "" and fired.zones == ["za", "zb"] and fired.key == "gate-x"
    assert not any("," in value for value in fired.labels.values())
    assert engine.handle(SensorEvent("gate-x", T0 + 12, "counter", 5.0)) == []
    assert engine.tick(T0 + 13) == [] and len(engine.firing) == 1  # still offline
    (resolved,) = engine.handle(CameraHealth("gate-x", T0 + 14, "up"))
    assert resolved.state == "resolved" and resolved.fingerprint == fired.fingerprint


def test_co_partition_keys_group_what_one_rule_reads():
    config = site([{"kind": "occupancy", "zones": ["z1a", "z2a"], "above": 5},
                   {"kind": "disagreement", "zone": "z3a", "sensor": "door"}],
                  cameras=5, zones_per_camera=2,
                  sensors=[{"id": "door"}, {"id": "gate", "zone": "z4b"}, {"id": "lone"}])
    keys = CoPartitioner(config)
    key = keys.key_of
    assert key(("zone", "z0a")) == key(("zone", "z0b")) == key(("camera", "cam0"))
    # occupancy over two cameras' zones joins both cameras
    assert key(("camera", "cam1")) == key(("camera", "cam2")) != key(("camera", "cam0"))
    # disagreement joins the sensor with the zone's camera; a zoned sensor joins its zone
    assert key(("sensor", "door")) == key(("camera", "cam3"))
    assert key(("sensor", "gate")) == key(("camera", "cam4"))
    assert key(("sensor", "lone")) == b"sensor:lone"
    assert keys.key_for(CountEvent("cam4", "z4a", T0, 1)) == keys.key_for(
        SensorEvent("gate", T0, "counter", 1.0, "z4b")) == b"camera:cam4"
    # Names do not depend on config order.
    shuffled = CrowdwatchConfig.model_validate(
        {**config.model_dump(by_alias=True), "cameras": config.model_dump()["cameras"][::-1]})
    assert CoPartitioner(shuffled).key_of(("sensor", "door")) == key(("sensor", "door"))


def test_a_zone_added_by_setup_moves_nothing_a_new_rule_joining_groups_does():
    """What a console edit in scale-out mode asks of running workers: a new zone is read
    by no rule they know (no restart); a rule joining two cameras moves one of them."""
    config = site([{"kind": "count", "zone": "z0a", "warn": 5}], cameras=2, zones_per_camera=1)
    before = CoPartitioner(config)
    data = config.model_dump(by_alias=True)
    data["cameras"][0]["zones"].append({**data["cameras"][0]["zones"][0], "id": "z0new"})
    added = CoPartitioner(CrowdwatchConfig.model_validate(data))
    assert before.moved(added) == []
    new_zone = CountEvent("cam0", "z0new", T0, 1)
    assert not before.knows(new_zone) and added.knows(new_zone)
    assert added.key_for(new_zone) == added.key_of(("camera", "cam0"))
    data["rules"].append({"kind": "occupancy", "zones": ["z0a", "z1a"], "above": 9})
    joined = CoPartitioner(CrowdwatchConfig.model_validate(data))
    assert ("camera", "cam1") in before.moved(joined)


def test_partitioned_store_writes_each_changed_key_once_per_batch():
    store = PartitionedStore()
    store.assign(0, [])
    store.assign(1, [(b"rule/x@1/zone:a", b'{"t":"NoSuchState","sv":2}'), (b"flag", b"true")])
    assert dict(store.parts[1]) == {"flag": True}  # unreadable layouts start fresh
    store.use(0)
    for i in range(100):
        store["unhealthy/cam"] = bool(i % 2)
    store.use(1)
    del store["flag"]
    assert store.changes(0) == [(b"unhealthy/cam", b"true")]
    assert store.changes(1) == [(b"flag", None)] and not store.pending()
    store.revoke(0)
    assert store.owned() == [1]


def test_the_dead_letter_file_writes_the_one_record_layout(tmp_path):
    dead = DeadLetterFile(tmp_path / "dead.jsonl", Metrics(), max_raw_bytes=8)
    dead.reject("mqtt:sensors/door", "bad_json", "Expecting value", b"{not json at all",
                position="message 3")
    (record,) = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert set(record) == {"v", "type", "reason", "detail", "source", "position", "time",
                           "size", "raw"}
    assert record["type"] == "deadletter" and record["raw"] == "{not jso"
    assert record["size"] == 16 and record["position"] == "message 3"


def test_a_partition_handed_straight_back_keeps_its_state_and_others_are_forgotten():
    store = PartitionedStore()
    store.assign(0, [])
    store.assign(1, [])
    store.use(0)
    store["sensor/s"] = True
    store.park(0)
    store.park(1)
    assert store.owned() == [] and store.unpark(0) and not store.unpark(2)
    store.forget_parked()
    assert store.owned() == [0] and store.parts[0] == {"sensor/s": True}
    assert not store.unpark(1)  # went to another worker: re-read from the changelog


def test_peer_watch_presumes_a_silent_peer_dead_only_while_it_hears_itself():
    from crowdwatch.config import KafkaConfig
    from crowdwatch.streams.runtime.peers import ALIVE, LEAVING, PeerWatch

    now = [0.0]
    watch = PeerWatch(KafkaConfig(failover_after=2.0), "me", lambda *a: None,
                      clock=lambda: now[0])
    watch.observe("me", ALIVE)
    watch.observe("w2", ALIVE)
    watch.observe("w3", ALIVE)
    now[0] = 1.5
    watch.observe("me", ALIVE)
    watch.observe("w3", ALIVE)
    assert watch.presumed_dead() == []
    now[0] = 2.5
    watch.observe("me", ALIVE)
    watch.observe("w3", LEAVING)  # stopping on purpose: it leaves the group itself
    assert watch.presumed_dead() == [("w2", 2.5)]
    assert watch.presumed_dead() == []  # reported once
    watch.observe("w4", ALIVE)
    now[0] = 10.0  # our own announcements stopped coming back: we are the one cut off
    assert watch.presumed_dead() == []


def test_failover_must_beat_the_session_timeout():
    from crowdwatch.config import KafkaConfig

    with pytest.raises(ValueError, match="session_timeout"):
        KafkaConfig(session_timeout=6, failover_after=4, rebalance_timeout=3)
    assert KafkaConfig(failover_after=0, session_timeout=6).transaction_timeout == 6
    assert KafkaConfig().transaction_timeout == 5.0
