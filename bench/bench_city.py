"""City-scale load through the real broker: 10,000 cameras, 1,000 sensors, 2 workers.

bench/loadgen.py (its own process) sends the `city` schedule when each event's capture
time comes: every camera's count at 1 Hz, a health heartbeat per camera every 10 s,
every sensor every 5 s, keyed as `crowdwatch ingest` keys them. Two `crowdwatch worker`
processes share the partitions. Half way through, one worker is killed with SIGKILL.
The bench samples the group's lag (end offsets minus committed offsets of the input
topics) every second, and the workers' capture-to-commit histograms.

Afterwards the alerts topic (read committed) is compared, fingerprint, state and start
time, with the alerts of the embedded engine fed the same schedule: alerts_lost are
expected ones missing, alerts_duplicated extra copies. recovery_s runs from the kill
until, after the takeover, the lag is back under its level before the kill and stays
there for HOLD_S; reassigned_s until the survivor
owns every partition (kafka.failover_after + rebalance_timeout bound it from below: the
survivor must notice the silence, then the coordinator waits for the dead member to
rejoin). p99_s is over the run outside that failover window; p99_with_failover_s
includes it (events of the dead worker's partitions wait for the takeover).
load_vs_steady_capacity is the load per worker over one worker's steady capacity (give
bench_streams' figure from this machine with --steady-capacity): docs/scale-out.md's sizing
rule keeps it at 0.5, so the survivor of a failover stays within its capacity.

Starts its own broker with deploy/kafka/local.sh on a free port. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.events import event_to_dict
from crowdwatch.progress import Progress
from crowdwatch.streams.rules.engine import RuleEngine
from crowdwatch.streams.runtime.kafka_io import Topics, ensure_topics

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kafkabench import buckets, free_port, local_broker, quantile, scrape
from loadgen import city_config, city_events

HOLD_S = 5.0  # seconds the lag must stay down to count as recovered

ROOT = Path(__file__).resolve().parents[1]
LATENCY = "crowdwatch_capture_to_event_seconds"


def median(values: list[int]) -> float | None:
    return statistics.median(values) if values else None


class Lag:
    """Input events not yet committed by the group: end offsets minus committed offsets."""

    def __init__(self, bootstrap: str, topics: Topics, group: str) -> None:
        self.bootstrap, self.topics, self.group = bootstrap, topics, group

    async def start(self) -> None:
        self.admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await self.admin.start()
        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
        await self.consumer.start()
        described = await self.admin.describe_topics(self.topics.inputs())
        self.parts = [TopicPartition(d["topic"], p["partition"]) for d in described
                      for p in d["partitions"]]

    async def now(self) -> int:
        ends = await self.consumer.end_offsets(self.parts)
        committed = await self.admin.list_consumer_group_offsets(self.group)
        return sum(ends[tp] - (committed[tp].offset if tp in committed and
                               committed[tp].offset >= 0 else 0) for tp in self.parts)

    async def stop(self) -> None:
        await self.consumer.stop()
        await self.admin.close()


async def read_alerts(bootstrap: str, topic: str, expected: int) -> list[dict]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                isolation_level="read_committed", enable_auto_commit=False)
    await consumer.start()
    out: list[dict] = []
    try:
        idle = 0
        while idle < 3:
            batch = await consumer.getmany(timeout_ms=2000, max_records=20000)
            records = [m for msgs in batch.values() for m in msgs]
            idle = 0 if records else idle + 1
            out += [json.loads(m.value) for m in records]
    finally:
        await consumer.stop()
    return out


def alert_key(alert: Any) -> tuple:
    """(fingerprint, state, start) as on the wire (ISO time to the millisecond)."""
    data = alert if isinstance(alert, dict) else event_to_dict(alert)
    return (data["fingerprint"], str(data["state"]), data["starts_at"])


def expected_alerts(config: CrowdwatchConfig, cameras: int, sensors: int, seconds: float,
                    t0: float) -> list[tuple]:
    engine = RuleEngine(config, start_ts=t0)
    return [alert_key(a) for e in city_events(cameras, sensors, seconds, t0)
            for a in engine.handle(e)]


class WorkerProc:
    def __init__(self, name: str, site: Path, tmp: Path) -> None:
        self.name = name
        self.port = free_port()
        self.log = (tmp / f"{name}.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "crowdwatch.cli", "worker", "--config", str(site),
             "--metrics-port", str(self.port)], stdout=self.log, stderr=subprocess.STDOUT)
        self.last: dict[str, float] = {}

    def sample(self) -> dict[str, float]:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.last = scrape(self.port, [LATENCY + "_bucket",
                                               "crowdwatch_worker_partitions"])
        return self.last

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


async def drive(args: argparse.Namespace, bootstrap: str, tmp: Path, bar: Progress) -> dict:
    prefix = f"city{int(time.time())}"
    data = city_config(bootstrap, prefix, args.cameras, args.sensors, args.partitions)
    site = tmp / "site.yaml"
    site.write_text(json.dumps(data))
    config = CrowdwatchConfig.model_validate(data)
    topics = await ensure_topics(config.kafka)
    workers = [WorkerProc(f"w{i}", site, tmp) for i in range(args.workers)]
    try:
        return await measure(args, bootstrap, config, topics, workers, bar)
    finally:
        for w in workers:
            if w.proc.poll() is None:
                w.proc.kill()


async def measure(args: argparse.Namespace, bootstrap: str, config: CrowdwatchConfig,
                  topics: Topics, workers: list[WorkerProc], bar: Progress) -> dict:
    prefix = config.kafka.topic_prefix
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:  # every partition owned before the load starts
        owned = [w.sample().get("crowdwatch_worker_partitions", 0) for w in workers]
        if sum(owned) == args.partitions and all(owned):
            break
        await asyncio.sleep(1)
    else:
        raise RuntimeError("workers did not take the partitions; see their logs")
    t0 = time.time() + 3
    gen = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bench" / "loadgen.py"), "city", "--bootstrap", bootstrap,
        "--prefix", prefix, "--seconds", str(args.seconds), "--t0", str(t0), "--cameras",
        str(args.cameras), "--sensors", str(args.sensors), "--partitions", str(args.partitions),
        stdout=asyncio.subprocess.PIPE)
    try:
        return await observe(args, bootstrap, config, topics, workers, gen, t0, bar)
    finally:
        if gen.returncode is None:
            gen.kill()


async def observe(args: argparse.Namespace, bootstrap: str, config: CrowdwatchConfig,
                  topics: Topics, workers: list[WorkerProc], gen: Any, t0: float,
                  bar: Progress) -> dict:
    lag = Lag(bootstrap, topics, config.kafka.group)
    await asyncio.sleep(4)
    await lag.start()
    samples: list[tuple[float, int, list[tuple[float, float]]]] = []  # (t, lag, histogram)
    victim, survivor = workers[0], workers[1:]
    kill_at = t0 + args.seconds / 2
    killed = None
    reassigned: list[float] = []
    last_hist: dict[str, list] = {}

    async def watch_takeover(since: float) -> None:
        """Time the survivors' takeover to 0.1 s (the sampling loop runs about once a s)."""
        while True:
            owned = 0.0
            for w in survivor:
                with contextlib.suppress(OSError):
                    owned += (await asyncio.to_thread(
                        scrape, w.port, ["crowdwatch_worker_partitions"])).get(
                            "crowdwatch_worker_partitions", 0.0)
            if owned == args.partitions:
                reassigned.append(time.time() - since)
                return
            await asyncio.sleep(0.1)

    while gen.returncode is None or (samples and samples[-1][1] > 0 and
                                     time.time() < t0 + args.seconds + 120):
        now = time.time()
        if killed is None and now >= kill_at:
            victim.proc.send_signal(signal.SIGKILL)
            victim.proc.wait()
            killed = now
            watcher = asyncio.create_task(watch_takeover(killed))
        total: collections.Counter = collections.Counter()
        for w in workers:
            hist = buckets(w.sample(), LATENCY) or last_hist.get(w.name, [])
            last_hist[w.name] = hist
            for le, c in hist:
                total[le] += c
        samples.append((now, await lag.now(), sorted(total.items())))
        bar.update(min(bar.total - 1, int(now - t0)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gen.wait(), 1.0)
    if killed is not None and not reassigned:
        watcher.cancel()
    out, _ = await gen.communicate()
    sent = json.loads(out.decode().strip().splitlines()[-1])
    await lag.stop()
    for w in survivor:
        w.stop()
    bar.update(bar.total - 1)
    got = [alert_key(a) for a in await read_alerts(bootstrap, topics.alerts, 0)]
    expected = expected_alerts(config, args.cameras, args.sensors, args.seconds, t0)
    got_c, exp_c = collections.Counter(got), collections.Counter(expected)
    lost = sum((exp_c - got_c).values())
    duplicated = sum((got_c - exp_c).values())

    steady = [s for s in samples if s[0] >= t0 + 10]  # after the first buckets fill
    before = [s[1] for s in steady if killed is None or s[0] < killed]
    floor = max(before) if before else 0
    # Recovered: once the survivor owns every partition, the first sample from which the
    # lag stays at or under its level before the kill for HOLD_S (right after the kill it
    # has not grown yet, so a single low sample proves nothing).
    moved = (killed or 0) + (reassigned[0] if reassigned else 1)
    recovered = next((s[0] for i, s in enumerate(steady) if killed and s[0] >= moved
                      and all(x[1] <= floor for x in steady[i:] if x[0] <= s[0] + HOLD_S)),
                     None)
    window_end = recovered or (killed or 0)

    def delta(a: list, b: list) -> list[tuple[float, float]]:
        bm = dict(b)
        return [(le, c - bm.get(le, 0)) for le, c in a]

    final = samples[-1][2]
    p99_all = quantile(final, 0.99)
    if killed is not None:
        at_kill = next(s[2] for s in samples if s[0] >= killed)
        at_end = next((s[2] for s in samples if s[0] >= window_end), final)
        outside = [(le, c + d) for (le, c), (_, d) in zip(
            delta(at_kill, samples[0][2]), delta(final, at_end), strict=False)]
        p99 = quantile(outside, 0.99)
    else:
        p99 = p99_all
    lags = [s[1] for s in steady]
    end_of_load = [s[1] for s in samples if s[0] <= t0 + args.seconds][-1]
    after = [s[1] for s in steady if recovered and recovered < s[0] <= t0 + args.seconds]
    ran = samples[-1][0] - samples[0][0]
    return {
        "cameras": args.cameras, "sensors": args.sensors, "workers": args.workers,
        "partitions": args.partitions, "seconds": args.seconds,
        "events_sent": sent["sent"], "events_per_s": round(sent["sent"] / args.seconds),
        "loadgen_late_max_s": sent["late_max_s"],
        "lag_start": lags[0] if lags else None, "lag_end": end_of_load,
        "lag_after_drain": samples[-1][1], "lag_max": max(lags) if lags else None,
        "lag_before_kill_max": floor,
        "lag_median_before_kill": median(before),
        "lag_median_after_recovery": median(after),
        "p99_s": None if p99 is None else round(p99, 3),
        "p99_with_failover_s": None if p99_all is None else round(p99_all, 3),
        "alerts_expected": len(expected), "alerts_received": len(got),
        "alerts_lost": lost, "alerts_duplicated": duplicated,
        "killed_at_s": None if killed is None else round(killed - t0, 1),
        "reassigned_s": round(reassigned[0], 1) if reassigned else None,
        "recovery_s": None if recovered is None or killed is None else round(recovered - killed, 1),
        "session_timeout_s": config.kafka.session_timeout,
        "failover_after_s": config.kafka.failover_after,
        "rebalance_timeout_s": config.kafka.rebalance_timeout,
        "recovered_within_session_timeout": None if recovered is None or killed is None
        else recovered - killed < config.kafka.session_timeout,
        "monitor_seconds": round(ran, 1),
        "lag_series": [[round(s[0] - t0, 1), s[1]] for s in samples],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cameras", type=int, default=10000)
    parser.add_argument("--sensors", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--plot", help="write the lag over time to this PNG")
    parser.add_argument("--steady-capacity", type=float,
                        help="one worker's steady_capacity_events_per_s from bench_streams "
                             "on this machine: reports the load per worker against it")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="crowdwatch-bench-city-"))
    bar = Progress(int(args.seconds) + 2, "bench_city")
    try:
        with local_broker("bench-city") as bootstrap:
            result = asyncio.run(drive(args, bootstrap, tmp, bar))
    finally:
        bar.close()
    result["goals"] = {"p99_s": 2.0, "alerts_lost": 0, "alerts_duplicated": 0,
                       "lag": "flat: lag_median_after_recovery near lag_median_before_kill"}
    result["logs"] = str(tmp)
    # Above 0.5 a worker runs past the sizing rule (half its steady capacity), and the
    # survivor of a failover past its whole capacity.
    result["steady_capacity_events_per_s"] = args.steady_capacity
    result["load_vs_steady_capacity"] = (
        round(result["events_per_s"] / args.workers / args.steady_capacity, 3)
        if args.steady_capacity else None)
    if args.plot:
        plot(result, args.plot)
    series = result.pop("lag_series")
    result["lag_series_every_10s"] = series[::10]
    json.dump(result, sys.stdout, indent=2)
    print()


def plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t, lag = zip(*result["lag_series"], strict=True)
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(t, lag, label="consumer lag (events)")
    if result["killed_at_s"] is not None:
        ax.axvline(result["killed_at_s"], color="red", linestyle="--", label="worker killed -9")
    ax.set_xlabel("seconds since load start")
    ax.set_ylabel("events not yet committed")
    ax.set_title(f"{result['cameras']} cameras, {result['sensors']} sensors, "
                 f"{result['workers']} workers: {result['events_per_s']} events/s")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
