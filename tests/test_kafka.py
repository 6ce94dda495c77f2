"""Scale-out on a real Apache Kafka broker (KRaft, one node on 127.0.0.1) with crowdwatch workers.

The broker is started by deploy/kafka/local.sh from Maven Central jars; each test uses
its own topic prefix and consumer group, so they do not see each other's events.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.dashboards.build import build_all, panel_queries
from crowdwatch.dashboards.operations import WORKER_PANELS
from crowdwatch.events import CountEvent, event_from_json, event_to_json, parse_ts
from crowdwatch.ingest.camera import CameraPipeline
from crowdwatch.ingest.sim import SimParams, gate_zone_config
from crowdwatch.ingest.sources import SimSource
from crowdwatch.streams.rules.engine import RuleEngine
from crowdwatch.streams.runtime.partitioning import CoPartitioner, partition_of
from tests.helpers import free_port, http_request, metric_value, popen_child, read_jsonl, wait_for

ROOT = Path(__file__).resolve().parents[1]
KAFKA = ROOT / "deploy" / "kafka" / "local.sh"
PROM_SCRIPT = ROOT / "deploy" / "prometheus" / "local.sh"
RECORDED_AT = float(int(time.time()) // 3600 * 3600 - 3600)
ZONES = ["gate-a", "gate-b", "gate-c", "gate-d", "gate-e", "gate-f"]


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    port = free_port()
    env = {**os.environ, "CROWDWATCH_KAFKA_PORT": str(port),
           "CROWDWATCH_KAFKA_CONTROLLER_PORT": str(free_port()),
           "CROWDWATCH_KAFKA_DIR": str(tmp_path_factory.mktemp("kafka"))}
    started = subprocess.run(["bash", str(KAFKA), "start"], env=env, capture_output=True,
                             text=True, check=False)
    assert started.returncode == 0, started.stdout + started.stderr
    yield {"bootstrap": f"127.0.0.1:{port}", "env": env}
    subprocess.run(["bash", str(KAFKA), "stop"], env=env, capture_output=True, check=False)


def site_config(bootstrap: str, zones: list[str], prefix: str, partitions: int = 3,
                offline: bool = False) -> dict:
    params = SimParams.from_url("sim://school-gate?people=80&period=45&seed=7")
    zone = gate_zone_config(params)
    cams = [{"id": f"cam-{z}", "url": f"sim://school-gate?people=80&period=45&seed={i + 11}",
             "sample_hz": 2, "zones": [{"id": z, **zone}]} for i, z in enumerate(zones)]
    rules = [{"kind": "density", "zone": z, "warn": 0.45, "critical": 0.7, "for": "3s",
              "clear_below": 0.25, "clear_for": "4s", "window": "3s"} for z in zones]
    if offline:
        rules.append({"kind": "camera_offline", "after": "6s"})
    return {"site": {"name": "kafka-test"}, "cameras": cams, "rules": rules,
            "alerts": {"console": False}, "engine": {"tick": "0.5s"}, "console": {"port": 0},
            "kafka": {"bootstrap": bootstrap, "topic_prefix": prefix, "partitions": partitions,
                      "group": f"{prefix}-workers", "max_message_bytes": 8192}}


def record(config: CrowdwatchConfig, samples: int) -> list[CountEvent]:
    """A recorded event stream: each sim camera through its real pipeline, interleaved."""
    per_cam = []
    for cam in config.cameras:
        # Recent capture times: the worker dead-letters events older than kafka.max_past.
        source = SimSource(cam.url, cam.sample_hz, realtime=False, start_ts=RECORDED_AT)
        pipeline = CameraPipeline(cam)
        per_cam.append([e for _ in range(samples) for e in pipeline.process(source.read())])
    return sorted((e for evs in per_cam for e in evs), key=lambda e: (e.ts, e.zone_id))


def embedded_alerts(config: CrowdwatchConfig, events: list[CountEvent]) -> list[tuple]:
    engine = RuleEngine(config, start_ts=0.0)
    return [key(a) for e in events for a in engine.handle(e)]


def key(alert) -> tuple:
    if isinstance(alert, dict):
        return (alert["fingerprint"], alert["rule"], alert["state"],
                parse_ts(alert["starts_at"], "s"),
                None if alert["ends_at"] is None else parse_ts(alert["ends_at"], "e"))
    return (alert.fingerprint, alert.rule, alert.state, alert.starts_at, alert.ends_at)


async def produce(bootstrap: str, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True,
                                acks="all")
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=k) for k, value in items]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def keyed(config: CrowdwatchConfig, events: list[CountEvent]) -> list[tuple[bytes, bytes]]:
    """Events with the keys `crowdwatch ingest` gives them (their co-partition group)."""
    keys = CoPartitioner(config)
    return [(keys.key_for(e), event_to_json(e).encode()) for e in events]


def produce_events(bootstrap: str, prefix: str, events: list[CountEvent],
                   config: CrowdwatchConfig) -> None:
    asyncio.run(produce(bootstrap, f"{prefix}.counts", keyed(config, events)))


class Worker:
    def __init__(self, config_path: Path, workdir: Path, name: str) -> None:
        self.port = free_port()
        self.jsonl = workdir / f"{name}.jsonl"
        self.log = (workdir / f"{name}.log").open("a")
        self.proc = popen_child(
            [sys.executable, "-m", "crowdwatch.cli", "worker", "--config", str(config_path),
             "--alerts-jsonl", str(self.jsonl), "--metrics-port", str(self.port)],
            cwd=workdir, stdout=self.log, stderr=subprocess.STDOUT)

    def metric(self, name: str, **labels: str) -> float:
        return metric_value(self.port, name, **labels)

    def alerts(self) -> list[dict]:
        return read_jsonl(self.jsonl)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()



def setup(tmp_path: Path, broker: dict, zones: list[str], partitions: int = 3,
          samples: int = 150):
    prefix = f"t{uuid.uuid4().hex[:8]}"
    data = site_config(broker["bootstrap"], zones, prefix, partitions)
    path = tmp_path / "site.yaml"
    path.write_text(json.dumps(data))
    config = CrowdwatchConfig.model_validate(data)
    events = record(config, samples)
    return prefix, path, config, events


def broker_ctl(broker: dict, action: str) -> None:
    """Stop or start the module's broker (deploy/kafka/local.sh), failing loudly."""
    done = subprocess.run(["bash", str(KAFKA), action], env=broker["env"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def start_and_wait(path: Path, tmp_path: Path, name: str) -> Worker:
    worker = Worker(path, tmp_path, name)
    wait_for(lambda: worker.metric("crowdwatch_build_info", site="kafka-test",
                                   version="0.1.0") == 1, 30, f"{name} metrics")
    time.sleep(4)  # joining the group and getting partitions
    return worker


@pytest.mark.slow
def test_parity_with_the_embedded_engine(broker, tmp_path):
    prefix, path, config, events = setup(tmp_path, broker, ZONES[:3])
    expected = embedded_alerts(config, events)
    assert any(k[2] == "firing" for k in expected) and any(k[2] == "resolved" for k in expected)
    worker = start_and_wait(path, tmp_path, "w1")
    try:
        produce_events(broker["bootstrap"], prefix, events, config)
        wait_for(lambda: worker.metric("crowdwatch_events_total", type="count") >= len(events),
                 60, "the worker to consume every event")
        wait_for(lambda: len(worker.alerts()) >= len(expected), 10, "all alerts")
        time.sleep(1)
        got = [key(a) for a in worker.alerts()]
    finally:
        worker.stop()
    assert sorted(got) == sorted(expected)


@pytest.mark.slow
def test_kill_9_restores_state_without_loss_or_duplicates(broker, tmp_path):
    prefix, path, config, events = setup(tmp_path, broker, ZONES[:3])
    expected = embedded_alerts(config, events)
    # Cut where a warning has fired but not yet resolved for at least one zone.
    engine = RuleEngine(config, start_ts=0.0)
    cut = None
    for i, e in enumerate(events):
        if any(a.state == "firing" for a in engine.handle(e)) and cut is None:
            cut = i + 20
    first, second = events[:cut], events[cut:]
    w1 = start_and_wait(path, tmp_path, "w1")
    try:
        produce_events(broker["bootstrap"], prefix, first, config)
        wait_for(lambda: w1.metric("crowdwatch_events_total", type="count") >= len(first), 60,
                 "first half consumed")
    except BaseException:
        w1.stop(signal.SIGKILL)
        raise
    # Alerts reach the sinks once their batch's transaction has committed.
    wait_for(lambda: [a for a in w1.alerts() if a["state"] == "firing"], 10,
             "an alert firing before the crash")
    time.sleep(3)  # let the changelog and offsets settle, as in normal running
    w1.stop(signal.SIGKILL)
    w2 = start_and_wait(path, tmp_path, "w2")
    try:
        produce_events(broker["bootstrap"], prefix, second, config)
        # The dead worker's partitions are free once its session times out (10 s).
        wait_for(lambda: len(w1.alerts() + w2.alerts()) >= len(expected), 120,
                 f"every alert ({len(expected)})")
        time.sleep(3)  # anything sent twice would show up by now
        consumed_after_restart = w2.metric("crowdwatch_events_total", type="count")
    finally:
        w2.stop()
    got = [key(a) for a in w1.alerts() + w2.alerts()]
    assert consumed_after_restart > 0
    # Every notification exactly once: nothing lost, nothing sent twice.
    transitions = sorted(k[:3] for k in got)
    assert transitions == sorted(k[:3] for k in expected)
    # Times match the uninterrupted run within one sample: samples a zone received between
    # its last changelog write and the crash may be missing from its restored window.
    for g, e in zip(sorted(got), sorted(expected), strict=True):
        assert g[:3] == e[:3] and abs(g[3] - e[3]) <= 1.0, (g, e)
    # The resolutions after the crash came from restored state.
    assert any(a["state"] == "resolved" for a in w2.alerts())


def spread_zones(partitions: int) -> list[str]:
    """Zone names whose cameras' groups land one per partition (so every worker has work)."""
    names: dict[int, str] = {}
    for k in range(1000):
        name = f"gate-{k}"
        names.setdefault(partition_of(f"camera:cam-{name}".encode(), partitions), name)
        if len(names) == partitions:
            return [names[p] for p in range(partitions)]
    raise AssertionError("no spread found")


@pytest.mark.slow
def test_two_workers_split_partitions_and_take_over_with_state(broker, tmp_path):
    prefix, path, config, events = setup(tmp_path, broker, spread_zones(6), partitions=6,
                                         samples=120)
    expected = embedded_alerts(config, events)
    engine = RuleEngine(config, start_ts=0.0)
    fired_at = [i for i, e in enumerate(events)
                if any(a.state == "firing" for a in engine.handle(e))]
    cut = fired_at[-1] + 10  # every zone has fired, none resolved yet
    a = start_and_wait(path, tmp_path, "wa")
    b = start_and_wait(path, tmp_path, "wb")
    try:
        time.sleep(4)  # the second join rebalances
        produce_events(broker["bootstrap"], prefix, events[:cut], config)
        wait_for(lambda: a.metric("crowdwatch_events_total", type="count")
                 + b.metric("crowdwatch_events_total", type="count") >= cut, 60,
                 "first part consumed")
        count_a = a.metric("crowdwatch_events_total", type="count")
        count_b = b.metric("crowdwatch_events_total", type="count")
        assert count_a > 0 and count_b > 0, (count_a, count_b)  # both did work
        zones_a = {x["zone_id"] for x in wait_for(a.alerts, 10, "a's alerts")}
        time.sleep(3)
        a.stop()  # graceful: its partitions move to b with their table state
        produce_events(broker["bootstrap"], prefix, events[cut:], config)
        wait_for(lambda: b.metric("crowdwatch_events_total", type="count")
                 >= count_b + len(events) - cut, 120, "b to take over a's zones")
        wait_for(lambda: len({key(x) for x in a.alerts() + b.alerts()}) >= len(expected), 30,
                 "every alert")
        time.sleep(2)
    finally:
        a.stop()
        b.stop()
    got = [key(x) for x in a.alerts() + b.alerts()]
    assert len(got) == len(set(got))
    assert sorted(got) == sorted(expected)
    resolved_by_b = {x["zone_id"] for x in b.alerts() if x["state"] == "resolved"}
    assert zones_a and zones_a <= resolved_by_b  # a's alerts resolved from moved state


@pytest.mark.slow
def test_malformed_and_oversized_go_to_deadletter(broker, tmp_path):
    prefix, path, _config, events = setup(tmp_path, broker, ZONES[:1], samples=20)
    worker = start_and_wait(path, tmp_path, "w1")
    bad = [(b"gate-a", b"{not json"), (b"gate-a", json.dumps({"v": 9, "type": "count"}).encode()),
           (b"gate-a", (b'{"v":1,"type":"count","camera_id":"c","zone_id":"gate-a","ts":%d,'
                       b'"count":-5}' % int(RECORDED_AT))),
           (b"gate-a", (b'{"v":1,"type":"count","camera_id":"c","zone_id":"gate-a","ts":%d,'
                       b'"count":5}' % int(RECORDED_AT - 30 * 86400))),
           (b"gate-a", b"x" * 20000)]
    good = keyed(_config, events[:5])
    try:
        asyncio.run(produce(broker["bootstrap"], f"{prefix}.counts", bad + good))
        wait_for(lambda: worker.metric("crowdwatch_events_total", type="count") >= 5, 60,
                 "the good events after the bad ones")
        reasons = {r: worker.metric("crowdwatch_deadletter_total", reason=r)
                   for r in ("bad_json", "bad_version", "bad_field", "stale_ts", "oversized")}
        # The worker's lag gauge returns to 0 once the bad and good messages are all done.
        wait_for(lambda: worker.metric("crowdwatch_consumer_lag_events", stage="worker") == 0,
                 10, "lag back to 0")
    finally:
        worker.stop()
    assert reasons == {"bad_json": 1, "bad_version": 1, "bad_field": 1, "stale_ts": 1,
                       "oversized": 1}

    async def read_deadletters() -> list[dict]:
        consumer = AIOKafkaConsumer(f"{prefix}.deadletter", bootstrap_servers=broker["bootstrap"],
                                    auto_offset_reset="earliest", group_id=f"{prefix}-check")
        await consumer.start()
        out = []
        try:
            while len(out) < 5:
                batch = await consumer.getmany(timeout_ms=5000)
                if not batch:
                    break
                out += [json.loads(m.value) for msgs in batch.values() for m in msgs]
        finally:
            await consumer.stop()
        return out

    dead = asyncio.run(read_deadletters())
    assert sorted(d["reason"] for d in dead) == ["bad_field", "bad_json", "bad_version",
                                                 "oversized", "stale_ts"]
    assert all(d["source"] == f"{prefix}.counts" and f"{prefix}.counts[" in d["position"]
               and d["type"] == "deadletter" and d["size"] > 0 for d in dead)


@pytest.mark.slow
def test_broker_restart_mid_stream_loses_nothing(broker, tmp_path):
    prefix, path, _config, _ = setup(tmp_path, broker, ZONES[:3], samples=1)
    worker = start_and_wait(path, tmp_path, "w1")
    ingest_log = (tmp_path / "ingest.log").open("a")
    ingest = popen_child(
        [sys.executable, "-m", "crowdwatch.cli", "ingest", "--config", str(path),
         "--duration", "24", "--metrics-port", "0"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=ingest_log, text=True)
    try:
        wait_for(lambda: worker.metric("crowdwatch_events_total", type="count") > 20, 30,
                 "events flowing")
        broker_ctl(broker, "stop")
        time.sleep(5)
        broker_ctl(broker, "start")
        out, _ = ingest.communicate(timeout=90)
        published = json.loads(out.strip().splitlines()[-1])["published"]
        wait_for(lambda: worker.metric("crowdwatch_events_total", type="count")
                 >= published["count"], 90, "the worker to catch up after the restart")
        consumed = worker.metric("crowdwatch_events_total", type="count")
    finally:
        if ingest.poll() is None:
            ingest.kill()
        worker.stop()
    assert published["count"] > 100  # 3 cameras x 2 Hz x 24 s
    assert consumed == published["count"]  # every event produced was consumed, once

    async def distinct_in_topic() -> int:
        consumer = AIOKafkaConsumer(f"{prefix}.counts", bootstrap_servers=broker["bootstrap"],
                                    auto_offset_reset="earliest", group_id=f"{prefix}-count")
        await consumer.start()
        seen = set()
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=3000)
                if not batch:
                    break
                for msgs in batch.values():
                    for m in msgs:
                        e = event_from_json(m.value, CountEvent)
                        seen.add((e.camera_id, e.zone_id, e.frame_seq))
        finally:
            await consumer.stop()
        return len(seen)

    assert asyncio.run(distinct_in_topic()) == published["count"]


def sensor_site(broker: dict, tmp_path: Path, devices: list[str]) -> tuple[str, int, Path]:
    """A site of door counters only (no cameras) posting over HTTP to ingest, with a count
    rule on their zone: (topic prefix, HTTP port, config path)."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    http_port = free_port()
    data = {"site": {"name": "kafka-test"},
            "sensors": {"zones": [{"id": "concourse"}],
                        "devices": [{"id": d, "zone": "concourse"} for d in devices],
                        "http": {"port": http_port, "token_env": "TEST_SENSOR_TOKEN"}},
            "rules": [{"kind": "count", "zone": "concourse", "warn": 100, "for": 0,
                       "window": 1, "statistic": "max", "clear_for": 0}],
            "alerts": {"console": False}, "engine": {"tick": "0.5s"}, "metrics": {"port": 0},
            "kafka": {"bootstrap": broker["bootstrap"], "topic_prefix": prefix,
                      "partitions": 2, "group": f"{prefix}-workers"}}
    path = tmp_path / "sensors.yaml"
    path.write_text(json.dumps(data))
    return prefix, http_port, path


@pytest.mark.slow
def test_sensor_readings_flow_from_ingest_through_kafka_to_the_worker(broker, tmp_path):
    """`crowdwatch ingest` takes HTTP readings and publishes them; the worker's rules fire."""
    prefix, http_port, path = sensor_site(broker, tmp_path, ["gate-1", "gate-2"])
    worker = start_and_wait(path, tmp_path, "w1")
    env = {**os.environ, "TEST_SENSOR_TOKEN": "tok"}
    ingest = popen_child([sys.executable, "-m", "crowdwatch.cli", "ingest", "--config",
                               str(path), "--duration", "60"], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def post(body: list) -> int:
        import urllib.request

        req = urllib.request.Request(f"http://127.0.0.1:{http_port}/v1/sensors",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": "Bearer tok",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status
        except OSError:
            return 0

    try:
        now = time.time()
        wait_for(lambda: post([{"sensor_id": "gate-1", "value": 60, "ts": now}]) == 200, 30,
                 "the ingest sensor endpoint")
        assert post([{"sensor_id": "gate-2", "value": 70, "ts": now + 1},
                     {"sensor_id": "gate-2", "value": None}]) == 200
        (alert,) = wait_for(lambda: worker.alerts(), 60, "the worker's alert")
        assert alert["rule"] == "count" and alert["value"] == 130.0  # 60 + 70, summed per zone
        assert worker.metric("crowdwatch_events_total", type="sensor") == 2
    finally:
        ingest.send_signal(signal.SIGTERM)
        ingest.communicate(timeout=30)
        worker.stop()

    async def read_deadletters() -> list[dict]:
        consumer = AIOKafkaConsumer(f"{prefix}.deadletter", bootstrap_servers=broker["bootstrap"],
                                    auto_offset_reset="earliest", group_id=f"{prefix}-check")
        await consumer.start()
        try:
            batch = await consumer.getmany(timeout_ms=10000)
            return [json.loads(m.value) for msgs in batch.values() for m in msgs]
        finally:
            await consumer.stop()

    (dead,) = asyncio.run(read_deadletters())
    assert dead["reason"] == "bad_field" and dead["source"].startswith("http:")
    assert '"value": null' in dead["raw"] and dead["type"] == "deadletter"


@pytest.mark.slow
def test_config_edits_across_worker_restarts(broker, tmp_path):
    """Insert rules above the others, change a threshold, remove a rule, restarting the
    worker after each: no crash, unchanged rules keep their state, what an edit orphans
    resolves once with the reason, and every alert matches the engine fed the same edits."""
    zones = ZONES[:2]
    prefix = f"t{uuid.uuid4().hex[:8]}"
    v1 = site_config(broker["bootstrap"], zones, prefix)
    for rule in v1["rules"]:
        rule["id"] = f"crowd-{rule['zone']}"
    v2 = json.loads(json.dumps(v1))
    v2["rules"][:0] = [{"kind": "forecast", "zone": zones[0], "metric": "density",
                        "threshold": 0.6, "horizon": "20s"},
                       {"kind": "count", "zone": zones[1], "warn": 1000}]
    v3 = json.loads(json.dumps(v2))
    v3["rules"][2]["warn"] = 0.5  # crowd-gate-a: same id, another threshold
    v4 = json.loads(json.dumps(v3))
    del v4["rules"][3]  # crowd-gate-b removed
    configs = [CrowdwatchConfig.model_validate(v) for v in (v1, v2, v3, v4)]
    events = record(configs[0], 300)

    def key_of(alert) -> tuple:
        data = alert if isinstance(alert, dict) else json.loads(event_to_json(alert))
        return (data["fingerprint"], data["state"], data["starts_at"],
                data["labels"].get("resolved_by"))

    def firing_rules(store: dict) -> set[str]:
        return {v.rule_id for k, v in store.items() if k.startswith("firing/")}

    # Each edit is made while the rule it touches is firing (v2 inserts, v3 changes
    # crowd-gate-a, v4 removes crowd-gate-b); the engine fed the same edits is the oracle.
    store: dict = {}
    expected: list[list[tuple]] = []
    chunks: list[list[CountEvent]] = []
    start = 0
    # the rule that must be firing when phase i starts
    wait_for_firing = [None, None, f"crowd-{zones[0]}", f"crowd-{zones[1]}"]
    for phase, config in enumerate(configs):
        engine = RuleEngine(config, start_ts=0.0, store=store)
        out = engine.reconcile(0.0) if phase else []
        end = start + len(events) // 6 if phase < 3 else len(events)
        out += [a for e in events[start:end] for a in engine.handle(e)]
        needed = wait_for_firing[phase + 1] if phase < 3 else None
        while needed and end < len(events) and needed not in firing_rules(store):
            out += engine.handle(events[end])
            end += 1
        chunks.append(events[start:end])
        start = end
        expected.append([key_of(a) for a in out])
    assert all(chunks), [len(c) for c in chunks]
    reasons = [k[3] for phase in expected for k in phase if k[3]]
    assert "rule_changed" in reasons and "rule_removed" in reasons  # the edits orphan alerts
    assert not [k for k in expected[1] if k[3]]  # inserting rules orphans nothing

    got: list[list[tuple]] = []
    for phase, (data, config, chunk) in enumerate(zip((v1, v2, v3, v4), configs, chunks,
                                                       strict=True)):
        path = tmp_path / f"v{phase + 1}.yaml"
        path.write_text(json.dumps(data))
        worker = start_and_wait(path, tmp_path, f"w{phase + 1}")
        try:
            produce_events(broker["bootstrap"], prefix, chunk, config)
            consumed, alerts = len(chunk), len(expected[phase])
            wait_for(lambda w=worker, n=consumed: w.metric(
                "crowdwatch_events_total", type="count") >= n, 60, f"phase {phase + 1} consumed")
            wait_for(lambda w=worker, n=alerts: len(w.alerts()) >= n, 20,
                     f"phase {phase + 1} alerts")
            time.sleep(1)
            assert worker.proc.poll() is None, f"worker of phase {phase + 1} died"
        finally:
            worker.stop()
        got.append([key_of(a) for a in worker.alerts()])
    for phase in range(4):
        assert sorted(got[phase]) == sorted(expected[phase]), f"phase {phase + 1}"


@pytest.mark.slow
def test_worker_and_ingest_stop_within_seconds_when_the_broker_is_gone(broker, tmp_path):
    _prefix, path, _config, _ = setup(tmp_path, broker, ZONES[:2], samples=1)
    worker = start_and_wait(path, tmp_path, "w1")
    # Files, not pipes: nobody reads a pipe while the broker is gone, and the warnings
    # ingest logs meanwhile can fill one, blocking it in a write past the deadline.
    err = tmp_path / "ingest.err"
    with open(tmp_path / "ingest.out", "w") as out_file, open(err, "w") as err_file:
        ingest = popen_child([sys.executable, "-m", "crowdwatch.cli", "ingest", "--config",
                              str(path), "--metrics-port", "0"], cwd=tmp_path,
                             stdout=out_file, stderr=err_file)
    try:
        wait_for(lambda: worker.metric("crowdwatch_events_total", type="count") > 5, 30,
                 "events flowing")
        broker_ctl(broker, "stop")
        time.sleep(3)  # ingest's events now pile up; the worker's fetches fail
        started = time.monotonic()
        worker.proc.send_signal(signal.SIGTERM)
        ingest.send_signal(signal.SIGTERM)
        worker.proc.wait(timeout=30)
        ingest.wait(timeout=30)
        took = time.monotonic() - started
    finally:
        for proc in (worker.proc, ingest):
            if proc.poll() is None:
                proc.kill()
        broker_ctl(broker, "start")
    assert took < 12, took
    assert worker.proc.returncode == 0 and ingest.returncode == 0
    assert "Traceback" not in err.read_text()


@pytest.mark.slow
def test_a_worker_starts_from_the_models_replay_learned(broker, tmp_path):
    """`replay --learn` output seeds a worker's partitions: the seasonal rule warns from
    its first reading, where a fresh model would still be learning."""
    from crowdwatch.streams.runtime.state_file import StateFile
    from crowdwatch.tools.replay import replay

    prefix = f"t{uuid.uuid4().hex[:8]}"
    data = site_config(broker["bootstrap"], ["gate"], prefix, partitions=2)
    data["rules"] = [{"kind": "seasonal", "zone": "gate", "metric": "count", "threshold": 80,
                      "horizon": "3h", "slot": "1h"}]
    data["engine"]["state_file"] = str(tmp_path / "learned.json")
    config = CrowdwatchConfig.model_validate(data)
    now = time.time()
    hour = 3600.0
    busy_slot = int((now + 2 * hour) // hour) % 24  # two hours from now: a usual crowd of 100
    history = [CountEvent("cam-gate", "gate", ts, 100.0 if int(ts // hour) % 24 == busy_slot
                          else 10.0)
               for ts in (now - 4 * 7 * 24 * hour + i * hour for i in range(4 * 7 * 24 - 1))]
    learned = replay(config, history).learned
    assert len(learned) == 1
    StateFile(tmp_path / "learned.json", "kafka-test").save(learned)
    path = tmp_path / "site.yaml"
    path.write_text(json.dumps(data))
    worker = start_and_wait(path, tmp_path, "seeded")
    try:
        produce_events(broker["bootstrap"], prefix,
                       [CountEvent("cam-gate", "gate", now, 10.0)], config)
        wait_for(lambda: [a for a in worker.alerts() if a["rule"] == "seasonal"
                          and a["state"] == "firing"], 30, "the seeded seasonal warning")
        (alert,) = [a for a in worker.alerts() if a["rule"] == "seasonal"]
        assert float(alert["labels"]["predicted_value"]) >= 80
    finally:
        worker.stop()


def zones_published_since(bootstrap: str, topic: str, partitions: int, since: float
                          ) -> set[str]:
    """Zone ids of the count events in ``topic`` captured at or after ``since``."""

    async def read() -> set[str]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            parts = [TopicPartition(topic, p) for p in range(partitions)]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            ends = await consumer.end_offsets(parts)
            zones = set()
            # Up to the end as of now (ingest keeps publishing while this reads).
            while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                batches = await consumer.getmany(*parts, timeout_ms=2000)
                for records in batches.values():
                    for r in records:
                        event = event_from_json(r.value, CountEvent)
                        if event.ts >= since:
                            zones.add(event.zone_id)
        finally:
            await consumer.stop()
        return zones

    return asyncio.run(read())


@pytest.mark.slow
def test_camera_setup_from_the_console_of_scale_out_ingest(broker, tmp_path):
    """`crowdwatch ingest` serves the console's setup: a masked snapshot, a zone drawn and
    saved to site.yaml (comments kept), published from then on without a restart; a bad
    edit saves nothing; the live page shows counts and says the workers raise alerts."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    data = site_config(broker["bootstrap"], ["gate-a"], prefix)
    port = free_port()
    data["console"] = {"port": port, "audit_log": str(tmp_path / "audit.jsonl")}
    site = tmp_path / "site.yaml"
    site.write_text("# the school gate, installed by the test\n" + json.dumps(data, indent=1))
    worker = start_and_wait(site, tmp_path, "w1")  # started on the file before the edit
    ingest_log = (tmp_path / "ingest.log").open("a")
    ingest = popen_child([sys.executable, "-m", "crowdwatch.cli", "ingest", "--config",
                          str(site), "--metrics-port", "0"], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=ingest_log, text=True)
    base = f"http://127.0.0.1:{port}"
    camera = base + "/api/setup/cameras/cam-gate-a"
    post = {"Content-Type": "application/json"}
    try:
        def live() -> dict:
            try:
                return json.loads(http_request(base + "/api/live")[2])
            except OSError:  # not serving yet
                return {"zones": []}

        wait_for(lambda: any(z["id"] == "gate-a" and z["count"] is not None
                             for z in live()["zones"]), 40, "counts on the live page")
        assert live()["alerts_here"] is False
        status, headers, picture = http_request(camera + "/snapshot")
        assert status == 200 and headers["content-type"] == "image/jpeg"
        assert picture[:2] == b"\xff\xd8"
        gate = data["cameras"][0]["zones"][0]
        inner = [[60, 60], [200, 60], [200, 160], [60, 160]]
        bad = {"zones": [gate,
                         {"id": "inner", "polygon": [[0, 0], [5, 0]]}]}
        before = site.read_text()
        status, _, body = http_request(camera, "POST", post, json.dumps(bad).encode())
        assert status == 422 and "polygon" in body.decode() and site.read_text() == before
        saved_at = time.time()
        good = {"zones": [gate, {"id": "inner", "polygon": inner}]}
        status, _, body = http_request(camera, "POST", post, json.dumps(good).encode())
        assert status == 200, body
        text = site.read_text()
        assert text.startswith("# the school gate") and "inner" in text
        wait_for(lambda: "inner" in zones_published_since(
            broker["bootstrap"], f"{prefix}.counts", 3, saved_at), 40,
            "the new zone's counts on Kafka")
        assert any(z["id"] == "inner" for z in live()["zones"])
        assert ingest.poll() is None  # the change needed no restart
        audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
        assert [a["action"] for a in audit] == ["snapshot", "save"]
        ingest.send_signal(signal.SIGTERM)
        out, _ = ingest.communicate(timeout=15)
        published = json.loads(out.strip().splitlines()[-1])["published"]["count"]
        # The worker, still on the old file, takes the new zone's events too (no rule of
        # its reads them, so their new key misleads none): nothing is dead-lettered.
        wait_for(lambda: worker.metric("crowdwatch_events_total", type="count") >= published,
                 60, "the worker to consume every count, the new zone's included")
        assert worker.metric("crowdwatch_deadletter_total", reason="wrong_key") == 0
    finally:
        if ingest.poll() is None:
            ingest.kill()
        worker.stop()
    assert ingest.returncode == 0
    assert f"crowdwatch console: {base}/" in out
    assert "restart the rule workers" not in (tmp_path / "ingest.log").read_text()


@pytest.mark.slow
def test_a_killed_worker_is_replaced_before_its_session_times_out(broker, tmp_path):
    """With a 30 s session timeout, a worker killed with -9 would hold its partitions for
    30 s; the survivor hears its announcements stop (failover_after 2 s), rejoins, and
    the coordinator drops the dead member after the 3 s rebalance timeout."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    data = site_config(broker["bootstrap"], spread_zones(4), prefix, partitions=4)
    data["kafka"].update({"session_timeout": "30s", "failover_after": "2s",
                          "rebalance_timeout": "3s"})
    path = tmp_path / "site.yaml"
    path.write_text(json.dumps(data))
    a = start_and_wait(path, tmp_path, "wa")
    b = start_and_wait(path, tmp_path, "wb")
    try:
        wait_for(lambda: a.metric("crowdwatch_worker_partitions") == 2 ==
                 b.metric("crowdwatch_worker_partitions"), 40, "the partitions split")
        time.sleep(3)  # both have heard each other
        a.stop(signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: b.metric("crowdwatch_worker_partitions") == 4, 25,
                 "the survivor to own every partition")
        took = time.monotonic() - killed
        assert b.metric("crowdwatch_worker_failovers_total") == 1
    finally:
        a.stop(signal.SIGKILL)
        b.stop()
    assert took < 15, took  # the session timeout (30 s) would be the floor without it
    assert "presumed dead" in (tmp_path / "wb.log").read_text()


def prom_query_range(port: int, query: str, seconds: float) -> list:
    now = time.time()
    url = (f"http://127.0.0.1:{port}/api/v1/query_range?" + urllib.parse.urlencode(
        {"query": query, "start": now - seconds, "end": now, "step": 2}))
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.loads(resp.read())
    assert body["status"] == "success", body
    return [s for s in body["data"]["result"]
            if any(math.isfinite(float(v)) for _, v in s["values"])]


@pytest.mark.slow
def test_worker_panels_have_data_on_a_real_prometheus_scraping_a_worker(broker, tmp_path):
    """The operations dashboard's worker panels (latency vs budget, batch sizes, commit
    time), queried on a real Prometheus while a real worker commits batches."""
    prefix, path, config, events = setup(tmp_path, broker, ZONES[:2], samples=80)
    worker = start_and_wait(path, tmp_path, "w1")
    prom_port = free_port()
    env = {**os.environ, "CROWDWATCH_PROM_PORT": str(prom_port),
           "CROWDWATCH_PROM_TARGETS": f"127.0.0.1:{worker.port}",
           "CROWDWATCH_PROM_SITE": "kafka-test", "CROWDWATCH_PROM_DIR": str(tmp_path / "prom")}
    started = subprocess.run(["bash", str(PROM_SCRIPT), "start"], env=env, capture_output=True,
                             text=True, check=False)
    assert started.returncode == 0, started.stdout + started.stderr
    queries = [(title, expr) for title, expr in panel_queries(build_all(config)["operations"])
               if title in WORKER_PANELS]
    variables = {"$site": "kafka-test", "$camera": ".*", "$__rate_interval": "30s"}
    try:
        chunk = max(1, len(events) // 6)
        for i in range(0, len(events), chunk):  # batches over time, so rates have data
            produce_events(broker["bootstrap"], prefix, events[i:i + chunk], config)
            time.sleep(2)
        wait_for(lambda: worker.metric("crowdwatch_events_total", type="count")
                 >= len(events), 30, "the worker to process every event")
        assert {title for title, _ in queries} == WORKER_PANELS

        def empty() -> list[str]:
            out = []
            for title, expr in queries:
                for name, value in variables.items():
                    expr = expr.replace(name, value)
                if not prom_query_range(prom_port, expr, 60):
                    out.append(f"{title}: {expr}")
            return out

        wait_for(lambda: not empty(), 30, "every worker panel to have data")
        budget = prom_query_range(prom_port, "crowdwatch_worker_latency_budget_seconds", 30)
        assert float(budget[0]["values"][-1][1]) == config.kafka.max_latency
    finally:
        subprocess.run(["bash", str(PROM_SCRIPT), "stop"], env=env, capture_output=True,
                       check=False)
        worker.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.slow
def test_the_broker_gone_costs_worker_and_ingest_almost_no_cpu(broker, tmp_path):
    """With the broker gone, the worker and ingest wait with backoff (at most 5 % of a
    core each, measured over 30 s), and a reading posted meanwhile arrives once it is back."""
    _prefix, http_port, path = sensor_site(broker, tmp_path, ["gate-1"])
    worker = start_and_wait(path, tmp_path, "w1")
    env = {**os.environ, "TEST_SENSOR_TOKEN": "tok"}
    err = tmp_path / "ingest.err"
    with open(tmp_path / "ingest.out", "w") as out_file, open(err, "w") as err_file:
        ingest = popen_child([sys.executable, "-m", "crowdwatch.cli", "ingest", "--config",
                              str(path), "--metrics-port", "0"], env=env, cwd=tmp_path,
                             stdout=out_file, stderr=err_file)

    def post(value: float) -> int:
        req = urllib.request.Request(
            f"http://127.0.0.1:{http_port}/v1/sensors", method="POST",
            data=json.dumps([{"sensor_id": "gate-1", "value": value}]).encode(),
            headers={"Authorization": "Bearer tok", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status
        except OSError:
            return 0

    used: dict[str, float] = {}
    try:
        wait_for(lambda: post(10) == 200, 30, "the ingest sensor endpoint")
        wait_for(lambda: worker.metric("crowdwatch_events_total", type="sensor") >= 1, 30,
                 "the reading to reach the worker")
        broker_ctl(broker, "stop")
        try:
            assert post(20) == 200  # buffered by ingest while the broker is gone
            time.sleep(5)  # the clients notice and start retrying
            before = {"worker": cpu_seconds(worker.proc.pid), "ingest": cpu_seconds(ingest.pid)}
            time.sleep(30)
            used = {name: (cpu_seconds(proc.pid) - before[name]) / 30
                    for name, proc in (("worker", worker.proc), ("ingest", ingest))}
        finally:
            broker_ctl(broker, "start")
        wait_for(lambda: worker.metric("crowdwatch_events_total", type="sensor") >= 2, 90,
                 "the reading posted while the broker was gone, once it is back")
    finally:
        if ingest.poll() is None:
            ingest.send_signal(signal.SIGTERM)
            ingest.wait(timeout=30)
        worker.stop()
    print(f"broker gone: share of a core {used}")
    assert used["worker"] <= 0.05 and used["ingest"] <= 0.05, used
    assert "Traceback" not in err.read_text()
