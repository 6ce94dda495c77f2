"""Stream engine throughput and latency: embedded vs the scale-out worker on real Kafka.

One run, side by side:
- embedded_events_per_s: CountEvents through the rule core (RuleEngine) on one core;
  embedded_runner_events_per_s adds what the embedded runner does per event (metrics).
- embedded_p99_s: capture timestamp to handled (where an alert would be emitted) with
  events arriving through the runner's queue at a steady rate.
- faust_events_per_s (the key kept from when the worker was a Faust agent): a backlog of
  events consumed end to end by one worker process (one transaction per batch);
  worker_to_embedded_ratio puts it beside the embedded core measured in the same run.
- steady_capacity_events_per_s: the highest rate, paced by bench/loadgen.py (events
  produced when their capture time comes, on the other core), at which the worker keeps
  up (drains within DRAIN_S of the generator stopping) with p99 within BUDGET_S, found by
  bisection; each trial is in steady_trials. A backlog's batches are as large as they get,
  a paced stream's are not: this, not the backlog rate, is what to size workers by.
- kafka_p99_s: capture timestamp to the worker's commit of the batch (when its alerts
  leave), at half the steady capacity (from the worker's capture_to_event histogram,
  earlier runs' share subtracted).
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
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.events import CountEvent, event_to_compact
from crowdwatch.metrics import Metrics
from crowdwatch.progress import Progress
from crowdwatch.streams.alerting.sinks import Dispatcher
from crowdwatch.streams.rules.engine import RuleEngine
from crowdwatch.streams.runtime.embedded import EmbeddedRunner
from crowdwatch.streams.runtime.partitioning import CoPartitioner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kafkabench import buckets, free_port, local_broker, quantile, scrape
from loadgen import streams_config, streams_events

ROOT = Path(__file__).resolve().parents[1]
ZONES = 60
LATENCY = "crowdwatch_capture_to_event_seconds"
EVENTS = "crowdwatch_events_total"
COMMIT = "crowdwatch_worker_commit_seconds"
BATCH = "crowdwatch_worker_batch_records"
BUDGET_S = 1.0  # kafka.max_latency (the default) and the p99 goal
DRAIN_S = 2.0  # seconds the worker may take to catch up once the generator stops
STEADY_STEPS = 5  # bisection steps between 0 and 1.2 x the backlog rate
OTHER_CORE = "1"


def config_dict(bootstrap: str, prefix: str) -> dict:
    return streams_config(bootstrap, prefix, ZONES)


def events(n: int, t0: float) -> list[CountEvent]:
    """Round-robin over zones, two samples a second per zone; density swings so rules
    fire and resolve (the load generator's `streams` schedule)."""
    return list(streams_events(ZONES, 2.0 * ZONES, n / (2.0 * ZONES), t0))


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


async def produce(bootstrap: str, topic: str, evs: list[CountEvent],
                  keys: CoPartitioner) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True,
                                acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, event_to_compact(e), key=keys.key_for(e))
                   for e in evs]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def wait_consumed(port: int, n: float, timeout: float) -> tuple[float, float, float]:
    """Poll the worker's event counter until it reaches ``n``: (first seen, its count, end)."""
    first = None
    deadline = time.monotonic() + timeout
    done = 0.0
    while time.monotonic() < deadline:
        try:
            # Only the series needed: rendering every series five times a second took
            # 7 % of the worker's core (Prometheus scrapes every 15 s).
            done = scrape(port, [EVENTS]).get(EVENTS + '{type="count"}', 0.0)
        except OSError:
            done = 0.0
        if done > 0 and first is None:
            first = (time.monotonic(), done)
        if done >= n:
            break
        time.sleep(0.2)
    if first is None:
        raise RuntimeError("the worker consumed nothing; see its log")
    return first[0], first[1], time.monotonic()


def bench_worker(bootstrap: str, n: int, seconds: float, bar: Progress) -> dict:
    prefix = f"bench{int(time.time())}"
    data = config_dict(bootstrap, prefix)
    tmp = Path(tempfile.mkdtemp(prefix="crowdwatch-bench-streams-"))
    (tmp / "site.yaml").write_text(json.dumps(data))
    keys = CoPartitioner(CrowdwatchConfig.model_validate(data))
    # A backlog captured over the last minutes, as a worker finds after an outage (stamped
    # from now on, most would be further ahead than kafka.max_future and dead-lettered).
    span = n / (2.0 * ZONES)
    asyncio.run(produce(bootstrap, f"{prefix}.counts", events(n, time.time() - span), keys))
    bar.update(bar.done + 1)
    port = free_port()
    log = (tmp / "worker.log").open("w")
    worker = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, "-m", "crowdwatch.cli", "worker", "--config",
         str(tmp / "site.yaml"), "--metrics-port", str(port)],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        start, first, end = wait_consumed(port, n, 600)
        capacity = (n - first) / (end - start) if end > start else 0.0
        bar.update(bar.done + 1)
        # Latencies are observed after each commit, a moment after the events are counted:
        # wait until the backlog's are all in, so none of them leaks into the live window.
        deadline = time.monotonic() + 30
        while (scrape(port, [f"{LATENCY}_count"]).get(f"{LATENCY}_count", 0.0) < n
               and time.monotonic() < deadline):
            time.sleep(0.2)
        trial = PacedTrial(bootstrap, prefix, port, n, seconds)
        # Steady capacity: the highest paced rate the worker keeps up with (the backlog's
        # lag drains within DRAIN_S of the generator stopping) with p99 within budget.
        low, high = 0.0, 1.2 * capacity
        trials = []
        for _ in range(STEADY_STEPS):
            rate = (low + high) / 2
            result = trial.run(rate)
            trials.append(result)
            if result["kept_up"]:
                low = rate
            else:
                high = rate
            bar.update(bar.done + 1)
        steady = low
        # Latency at half the steady capacity, as a user sizing workers by it meets it.
        half = trial.run(0.5 * steady) if steady > 0 else {"p99_s": None, "sent": 0,
                                                         "late_max_s": None}
        bar.update(bar.done + 1)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
    return {"faust_events_per_s": round(capacity), "faust_backlog_events": n,
            "steady_capacity_events_per_s": round(steady),
            "steady_vs_backlog_capacity": round(steady / capacity, 3) if capacity else None,
            "steady_trials": trials,
            "kafka_p99_s": half["p99_s"],
            "kafka_latency_rate_events_per_s": round(0.5 * steady),
            "kafka_latency_events": half["sent"], "loadgen_late_max_s": half["late_max_s"]}


class PacedTrial:
    """One paced run of the load generator against the running worker: its p99 and
    whether the worker kept up."""

    def __init__(self, bootstrap: str, prefix: str, port: int, consumed: int,
                 seconds: float) -> None:
        self.bootstrap, self.prefix, self.port = bootstrap, prefix, port
        self.consumed, self.seconds = consumed, seconds

    def run(self, rate: float) -> dict:
        watched = [f"{LATENCY}_bucket", f"{COMMIT}_bucket", f"{BATCH}_sum", f"{BATCH}_count"]
        first = scrape(self.port, watched)
        before = buckets(first, LATENCY)
        t0 = time.time() + 1.0
        gen = subprocess.run(
            ["taskset", "-c", OTHER_CORE, sys.executable, str(ROOT / "bench" / "loadgen.py"),
             "streams", "--bootstrap", self.bootstrap, "--prefix", self.prefix, "--rate",
             str(rate), "--seconds", str(self.seconds), "--t0", str(t0), "--zones",
             str(ZONES)], capture_output=True, text=True, check=True)
        sent = json.loads(gen.stdout.strip().splitlines()[-1])
        stopped = time.monotonic()
        self.consumed += sent["sent"]
        _, _, done = wait_consumed(self.port, self.consumed, 120)
        drain = done - stopped
        time.sleep(1.0)  # the last commit's latencies
        last = scrape(self.port, watched)
        after = buckets(last, LATENCY)
        live = [(le, c - b) for (le, c), (_, b) in zip(after, before, strict=True)]
        p99 = quantile(live, 0.99)
        commits = [(le, c - b) for (le, c), (_, b) in
                   zip(buckets(last, COMMIT), buckets(first, COMMIT), strict=True)]
        batches = last.get(f"{BATCH}_count", 0) - first.get(f"{BATCH}_count", 0)
        records = last.get(f"{BATCH}_sum", 0) - first.get(f"{BATCH}_sum", 0)
        commit_p50, commit_p99 = quantile(commits, 0.5), quantile(commits, 0.99)
        kept_up = drain <= DRAIN_S and p99 is not None and p99 <= BUDGET_S
        return {"rate": round(rate), "sent": sent["sent"], "late_max_s": sent["late_max_s"],
                "p99_s": None if p99 is None else round(p99, 3), "drain_s": round(drain, 2),
                "commit_p50_s": None if commit_p50 is None else round(commit_p50, 3),
                "commit_p99_s": None if commit_p99 is None else round(commit_p99, 3),
                "batches": int(batches),
                "mean_batch_records": round(records / batches) if batches else None,
                "kept_up": kept_up}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=400_000, help="embedded events")
    parser.add_argument("--faust-events", type=int, default=200_000,
                        help="backlog the worker consumes (its throughput)")
    parser.add_argument("--latency-rate", type=float, default=2000.0,
                        help="embedded latency: events/s through the runner's queue")
    parser.add_argument("--latency-seconds", type=float, default=15.0)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    bar = Progress(5 + STEADY_STEPS, "bench_streams")
    config = CrowdwatchConfig.model_validate(config_dict("127.0.0.1:1", "x"))
    result = bench_embedded(config, args.events)
    bar.update(1)
    result["embedded_p99_s"] = round(bench_embedded_latency(config, args.latency_rate,
                                                            args.latency_seconds), 4)
    bar.update(2)
    with local_broker("bench-streams") as bootstrap:
        result |= bench_worker(bootstrap, args.faust_events, args.latency_seconds, bar)
    bar.close()
    result["worker_to_embedded_ratio"] = round(
        result["faust_events_per_s"] / result["embedded_events_per_s"], 4)
    result["steady_worker_to_embedded_ratio"] = round(
        result["steady_capacity_events_per_s"] / result["embedded_events_per_s"], 4)
    result |= {"zones": ZONES, "cpu_affinity": "the embedded core and the worker each on "
               "core 0; the load generator of the latency run on core 1 beside the broker",
               "goals": {"embedded_events_per_s": 200000, "faust_events_per_s": 20000,
                         "steady_capacity_events_per_s": 20000,
                         "embedded_p99_s": 0.5, "kafka_p99_s": 1.0}}
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
