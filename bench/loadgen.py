"""A paced load generator for the scale-out benches: scheduled events onto Kafka.

Scenarios are deterministic schedules: every event's content and capture time follow
from the scenario's arguments and a start time ``t0``, so a bench can replay the very
same stream through the embedded engine and compare alerts fingerprint for fingerprint.
Events are produced when their capture time comes (a late producer shows as latency,
not hidden), keyed as `crowdwatch ingest` keys them. Runs as its own process (pinned
away from the worker under test) and prints one JSON line: what it sent, how late.

- ``streams``: ``zones`` camera zones round-robin at ``rate`` events/s; densities swing
  so the density rules fire and resolve.
- ``city``: ``cameras`` cameras at 1 Hz (one zone each; every tenth camera takes its
  turn at a crowd burst that crosses the count rule), a health heartbeat per camera
  every 10 s, ``sensors`` sensors (one sensor zone each) every 5 s, some of which burst.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import sys
import time
from collections.abc import Iterator

from aiokafka import AIOKafkaProducer

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.events import CameraHealth, CountEvent, HealthState, SensorEvent, event_to_compact
from crowdwatch.streams.runtime.kafka_io import Topics
from crowdwatch.streams.runtime.partitioning import CoPartitioner

SQUARE = [[0, 0], [100, 0], [100, 100], [0, 100]]
GROUND = {"image": SQUARE, "world_m": [[0, 0], [10, 0], [10, 10], [0, 10]]}
Event = CountEvent | CameraHealth | SensorEvent


def kafka_section(bootstrap: str, prefix: str, partitions: int) -> dict:
    return {"bootstrap": bootstrap, "topic_prefix": prefix, "partitions": partitions,
            "group": f"{prefix}-w", "session_timeout": 10}


def streams_config(bootstrap: str, prefix: str, zones: int) -> dict:
    cams = [{"id": f"cam{i}", "url": "sim://steady",
             "zones": [{"id": f"z{i}", "polygon": SQUARE, "ground": GROUND}]}
            for i in range(zones)]
    rules = [{"kind": "density", "zone": f"z{i}", "warn": 2.0, "critical": 4.0, "for": "5s",
              "clear_below": 1.0, "clear_for": "10s", "window": "5s"} for i in range(zones)]
    return {"site": {"name": "bench"}, "cameras": cams, "rules": rules,
            "alerts": {"console": False}, "metrics": {"port": 0},
            "kafka": kafka_section(bootstrap, prefix, 6)}


def streams_events(zones: int, rate: float, seconds: float, t0: float) -> Iterator[Event]:
    for k in range(int(rate * seconds)):
        i, step = k % zones, k // zones
        density = 3.0 if (step // 200) % 2 else 0.5
        yield CountEvent(f"cam{i}", f"z{i}", t0 + k / rate, density * 100, density, 100.0,
                         "bench", 1.0, step)


def city_config(bootstrap: str, prefix: str, cameras: int, sensors: int,
                partitions: int) -> dict:
    cams = [{"id": f"cam{c}", "url": "sim://steady", "zones": [{"id": f"z{c}", "polygon": SQUARE}]}
            for c in range(cameras)]
    rules: list[dict] = [{"kind": "count", "zone": f"z{c}", "warn": 50, "for": "4s",
                          "clear_for": "4s", "window": "3s"} for c in range(cameras)]
    rules += [{"kind": "count", "zone": f"sz{s}", "warn": 80, "for": "0s", "clear_for": "10s",
               "window": "1s", "statistic": "max"} for s in range(sensors)]
    return {"site": {"name": "city"}, "cameras": cams, "rules": rules,
            "sensors": {"zones": [{"id": f"sz{s}"} for s in range(sensors)],
                        "devices": [{"id": f"s{s}", "zone": f"sz{s}"} for s in range(sensors)]},
            "alerts": {"console": False}, "metrics": {"port": 0},
            "kafka": kafka_section(bootstrap, prefix, partitions)}


def city_events(cameras: int, sensors: int, seconds: float, t0: float) -> Iterator[Event]:
    """The city's schedule in capture-time order (a merge of per-source streams)."""

    def camera(c: int) -> Iterator[tuple[float, int, Event]]:
        phase = c / cameras
        for s in range(int(seconds)):
            ts = t0 + s + phase
            burst = (c % 10) == (s // 30) % 10 and (s % 30) < 15
            count = 70.0 if burst else 20.0 + (c % 7)
            yield ts, 0, CountEvent(f"cam{c}", f"z{c}", ts, count, None, None, "bench", 1.0, s)
            if s % 10 == 0:
                yield ts, 1, CameraHealth(f"cam{c}", ts, HealthState.UP, 1.0)

    def sensor(k: int) -> Iterator[tuple[float, int, Event]]:
        phase = 5 * k / max(1, sensors)
        for s in range(0, int(seconds), 5):
            ts = t0 + s + phase
            burst = (k % 20) == (s // 60) % 20 and (s % 60) < 20
            yield ts, 2, SensorEvent(f"s{k}", ts, "counter", 95.0 if burst else 30.0, f"sz{k}")

    streams = [camera(c) for c in range(cameras)] + [sensor(k) for k in range(sensors)]
    for _ts, _order, event in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
        yield event


async def produce_paced(bootstrap: str, config: CrowdwatchConfig, events: Iterator[Event],
                        wall0: float, t0: float) -> dict:
    """Send each event when its capture time comes (``wall0`` is the wall time of ``t0``)."""
    keys = CoPartitioner(config)
    topics = Topics.of(config.kafka)
    topic_of = {CountEvent: topics.counts, CameraHealth: topics.health,
                SensorEvent: topics.sensors}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True,
                                acks="all", linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    sent, late_max, pending = 0, 0.0, []
    try:
        for event in events:
            due = wall0 + (event.ts - t0)
            delay = due - time.time()
            if delay > 0.002:
                if pending:
                    await asyncio.gather(*pending)
                    pending = []
                await asyncio.sleep(delay)
            else:
                late_max = max(late_max, -delay)
            pending.append(await producer.send(topic_of[type(event)], event_to_compact(event),
                                               key=keys.key_for(event)))
            sent += 1
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return {"sent": sent, "late_max_s": round(late_max, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", choices=("streams", "city"))
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--t0", type=float, required=True, help="capture time of the start")
    parser.add_argument("--wall0", type=float, help="wall time of t0 (default: t0)")
    parser.add_argument("--rate", type=float, default=1000.0, help="streams: events/s")
    parser.add_argument("--zones", type=int, default=60)
    parser.add_argument("--cameras", type=int, default=10000)
    parser.add_argument("--sensors", type=int, default=1000)
    parser.add_argument("--partitions", type=int, default=12)
    args = parser.parse_args()
    if args.scenario == "streams":
        data = streams_config(args.bootstrap, args.prefix, args.zones)
        events = streams_events(args.zones, args.rate, args.seconds, args.t0)
    else:
        data = city_config(args.bootstrap, args.prefix, args.cameras, args.sensors,
                           args.partitions)
        events = city_events(args.cameras, args.sensors, args.seconds, args.t0)
    config = CrowdwatchConfig.model_validate(data)
    wall0 = args.t0 if args.wall0 is None else args.wall0
    result = asyncio.run(produce_paced(args.bootstrap, config, events, wall0, args.t0))
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
