"""Stream engine throughput and latency: embedded vs a Faust worker on real Kafka.

One run, side by side:
- embedded_events_per_s: CountEvents through the rule core (RuleEngine) on one core;
  embedded_runner_events_per_s adds what the embedded runner does per event (metrics).
- embedded_p99_s: capture timestamp to handled (where an alert would be emitted) with
  events arriving through the runner's queue at a steady rate.
- faust_events_per_s: a backlog of events consumed end to end by one worker process.
- kafka_p99_s: capture timestamp to handled by the worker, events produced at a steady
  rate (from the worker's capture_to_event histogram).
Starts its own broker with deploy/kafka/local.sh on a free port. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from aiokafka import AIOKafkaProducer

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.events import CountEvent, event_to_json
from crowdwatch.metrics import Metrics
from crowdwatch.progress import Progress
from crowdwatch.streams.alerting.sinks import Dispatcher
from crowdwatch.streams.rules.engine import RuleEngine
from crowdwatch.streams.runtime.embedded import EmbeddedRunner

ROOT = Path(__file__).resolve().parents[1]
ZONES = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_dict(bootstrap: str, prefix: str) -> dict:
    square = [[0, 0], [100, 0], [100, 100], [0, 100]]
    ground = {"image": square, "world_m": [[0, 0], [10, 0], [10, 10], [0, 10]]}
    cams = [{"id": f"cam{i}", "url": "sim://steady",
             "zones": [{"id": f"z{i}", "polygon": square, "ground": ground}]}
            for i in range(ZONES)]
    rules = [{"kind": "density", "zone": f"z{i}", "warn": 2.0, "critical": 4.0, "for": "5s",
              "clear_below": 1.0, "clear_for": "10s", "window": "5s"} for i in range(ZONES)]
    return {"site": {"name": "bench"}, "cameras": cams, "rules": rules,
            "alerts": {"console": False}, "metrics": {"port": 0},
            "kafka": {"bootstrap": bootstrap, "topic_prefix": prefix, "partitions": 6,
                      "group": f"{prefix}-w"}}


def events(n: int, t0: float, rate: float | None = None) -> list[CountEvent]:
    """Round-robin over zones; density swings so rules fire and resolve."""
    out = []
    for k in range(n):
        i = k % ZONES
        step = k // ZONES
        density = 3.0 if (step // 200) % 2 else 0.5
        ts = t0 + (k / rate if rate else step * 0.5)
        out.append(CountEvent(f"cam{i}", f"z{i}", ts, density * 100, density, 100.0, "bench",
                              1.0, step))
    return out


def bench_embedded(config: CrowdwatchConfig, n: int) -> dict:
    evs = events(n, 1_764_000_000.0)
    engine = RuleEngine(config, start_ts=0.0)
    started = time.perf_counter()
    alerts = 0
    for e in evs:
        alerts += len(engine.handle(e))
    core_rate = n / (time.perf_counter() - started)
    metrics = Metrics()
    runner = EmbeddedRunner(config, Dispatcher([], metrics), metrics, realtime=False)
    started = time.perf_counter()
    for e in evs[: n // 4]:
        runner._handle(e)
    runner_rate = (n // 4) / (time.perf_counter() - started)
    return {"embedded_events_per_s": round(core_rate), "embedded_alerts": alerts,
            "embedded_runner_events_per_s": round(runner_rate)}


def bench_embedded_latency(config: CrowdwatchConfig, rate: float, seconds: float) -> float:
    """Events put on the runner's queue at ``rate`` with ts=now; p99 of now - ts at handling."""
    metrics = Metrics()
    runner = EmbeddedRunner(config, Dispatcher([], metrics), metrics, realtime=False)
    lat: list[float] = []
    original = runner._handle

    def handle(event: object) -> None:
        original(event)
        lat.append(time.time() - event.ts)

    runner._handle = handle
    stop = threading.Event()

    def feed() -> None:
        k = 0
        start = time.monotonic()
        while not stop.is_set():
            due = start + k / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            i = k % ZONES
            runner.events.put(CountEvent(f"cam{i}", f"z{i}", time.time(), 50.0, 0.5, 100.0))
            k += 1

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with contextlib.suppress(queue.Empty):
            runner._handle(runner.events.get(timeout=0.1))
    stop.set()
    lat.sort()
    return lat[int(0.99 * (len(lat) - 1))]


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def quantile_from_buckets(m: dict[str, float], name: str, q: float) -> float | None:
    buckets = sorted((float(k.split('le="')[1].split('"')[0]), v) for k, v in m.items()
                     if k.startswith(name + "_bucket"))
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    target = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= target:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (target - prev_c) / max(1e-9, c - prev_c)
        prev_le, prev_c = le, c
    return prev_le


async def produce(bootstrap: str, topic: str, evs: list[CountEvent], rate: float | None,
                  restamp: bool = False) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True,
                                acks="all", linger_ms=5)
    await producer.start()
    try:
        start = time.monotonic()
        futures = []
        for k, e in enumerate(evs):
            if rate:
                delay = start + k / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            if restamp:
                e.ts = time.time()
            futures.append(await producer.send(topic, event_to_json(e).encode(),
                                               key=e.zone_id.encode()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def bench_faust(bootstrap: str, n: int, rate: float, seconds: float, bar: Progress) -> dict:
    prefix = f"bench{int(time.time())}"
    data = config_dict(bootstrap, prefix)
    tmp = Path(tempfile.mkdtemp(prefix="crowdwatch-bench-streams-"))
    (tmp / "site.yaml").write_text(json.dumps(data))
    evs = events(n, time.time())
    asyncio.run(produce(bootstrap, f"{prefix}.counts", evs, None))  # the backlog
    bar.update(bar.done + 1)
    port = free_port()
    log = (tmp / "worker.log").open("w")
    worker = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, "-m", "crowdwatch.cli", "worker", "--config",
         str(tmp / "site.yaml"), "--metrics-port", str(port)],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        first = None
        deadline = time.monotonic() + 600
        done = 0.0
        while time.monotonic() < deadline:
            try:
                done = scrape(port).get('crowdwatch_events_total{type="count"}', 0.0)
            except OSError:
                done = 0.0
            if done > 0 and first is None:
                first = (time.monotonic(), done)
            if done >= n:
                break
            time.sleep(0.2)
        last = time.monotonic()
        rate_backlog = (done - first[1]) / (last - first[0]) if first and last > first[0] else 0
        bar.update(bar.done + 1)
        # Latency is measured below capacity (a backlog would only measure queueing).
        rate = min(rate, max(50.0, 0.5 * rate_backlog))
        live = events(int(rate * seconds), time.time(), rate)
        asyncio.run(produce(bootstrap, f"{prefix}.counts", live, rate, restamp=True))
        time.sleep(2)
        m = scrape(port)
        p99 = quantile_from_buckets(m, "crowdwatch_capture_to_event_seconds", 0.99)
        bar.update(bar.done + 1)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
    return {"faust_events_per_s": round(rate_backlog), "faust_backlog_events": int(done),
            "kafka_p99_s": None if p99 is None else round(p99, 3),
            "kafka_latency_rate_events_per_s": round(rate)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=400_000, help="embedded events")
    parser.add_argument("--faust-events", type=int, default=100_000)
    parser.add_argument("--latency-rate", type=float, default=2000.0)
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    bar = Progress(5, "bench_streams")
    config = CrowdwatchConfig.model_validate(config_dict("127.0.0.1:1", "x"))
    result = bench_embedded(config, args.events)
    bar.update(1)
    result["embedded_p99_s"] = round(bench_embedded_latency(config, args.latency_rate,
                                                            args.latency_seconds), 4)
    bar.update(2)
    port = free_port()
    env = {**os.environ, "CROWDWATCH_KAFKA_PORT": str(port),
           "CROWDWATCH_KAFKA_CONTROLLER_PORT": str(free_port()),
           "CROWDWATCH_KAFKA_DIR": tempfile.mkdtemp(prefix="crowdwatch-bench-kafka-"),
           "CROWDWATCH_KAFKA_HEAP": "1g"}
    script = ROOT / "deploy" / "kafka" / "local.sh"
    subprocess.run(["bash", str(script), "start"], env=env, check=True, capture_output=True)
    try:
        result |= bench_faust(f"127.0.0.1:{port}", args.faust_events, args.latency_rate,
                              args.latency_seconds, bar)
    finally:
        subprocess.run(["bash", str(script), "clean"], env=env, check=False,
                       capture_output=True)
    bar.close()
    result |= {"zones": ZONES, "cpu_affinity": "one core (bench and worker each pinned to "
               "core 0; the broker runs unpinned)",
               "goals": {"embedded_events_per_s": 200000, "faust_events_per_s": 20000,
                         "embedded_p99_s": 0.5, "kafka_p99_s": 1.5}}
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
