"""What one worker transaction costs, request by request, on a real broker.

A worker commits one transaction per batch: AddPartitionsToTxn for the partitions it
writes (alerts, state, dead letters), the produce requests, AddOffsetsToTxn and
TxnOffsetCommit for the consumed offsets, and EndTxn. This bench runs transactions of
that shape back to back (the worker's pattern under load: the next one starts as soon as
the last commits) and times each request type the producer sends, with the settings
the worker uses beside alternatives (aiokafka's 16 kB producer batch, a 250 ms retry
backoff), in one run:

- commit_p50_s / commit_p99_s: begin to commit of a whole transaction;
- requests: per request type, how many per transaction (more than one AddPartitionsToTxn
  or AddOffsetsToTxn means the broker answered CONCURRENT_TRANSACTIONS and the client
  waited its retry backoff) and their mean time.

Baseline: the same messages produced idempotently without a transaction. Starts its own
broker (deploy/kafka/local.sh); prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import TopicPartition

from crowdwatch.progress import Progress
from crowdwatch.streams.runtime.worker_clients import PRODUCER_BATCH_BYTES, RETRY_BACKOFF_MS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kafkabench import local_broker

PARTITIONS = 6
WORKER = {"retry_backoff_ms": RETRY_BACKOFF_MS, "linger_ms": 5,
          "max_batch_size": PRODUCER_BATCH_BYTES}
SETTINGS = {  # name: producer keyword arguments
    "worker": WORKER,
    "batch_16kB_aiokafka_default": {**WORKER, "max_batch_size": 16384},
    "retry_backoff_250ms": {**WORKER, "retry_backoff_ms": 250},
}


def timed_client(producer: AIOKafkaProducer, times: dict[str, list[float]]) -> None:
    """Record each request the producer's client sends: its type and round trip."""
    client = producer.client
    send = client.send

    async def timed(node_id: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await send(node_id, request, *args, **kwargs)
        finally:
            times[type(request).__name__.split("_")[0]].append(time.perf_counter() - started)

    client.send = timed  # type: ignore[method-assign]


async def make_topics(bootstrap: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(f"{prefix}.{name}", PARTITIONS, 1)
                                   for name in ("alerts", "state", "counts")])
    finally:
        await admin.close()


async def trial(bootstrap: str, prefix: str, kwargs: dict, transactions: int,
                per_txn: int, transactional: bool, value_bytes: int) -> dict:
    times: dict[str, list[float]] = defaultdict(list)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
        transactional_id=f"{prefix}-{time.monotonic_ns()}" if transactional else None,
        **kwargs)
    await producer.start()
    timed_client(producer, times)
    value = b'{"k":"' + b"x" * value_bytes + b'"}'
    took = []
    offsets = {TopicPartition(f"{prefix}.counts", p): 0 for p in range(PARTITIONS)}
    progress = Progress(transactions, "transactions")
    try:
        for i in range(transactions):
            started = time.perf_counter()
            if transactional:
                async with producer.transaction():
                    await send_batch(producer, prefix, value, per_txn, i)
                    offsets = {tp: o + per_txn for tp, o in offsets.items()}
                    await producer.send_offsets_to_transaction(offsets, f"{prefix}-group")
            else:
                await asyncio.gather(*await send_batch(producer, prefix, value, per_txn, i))
            took.append(time.perf_counter() - started)
            progress.update(i + 1)
    finally:
        progress.close()
        await producer.stop()
    took.sort()
    return {"commit_p50_s": round(took[len(took) // 2], 4),
            "commit_p99_s": round(took[int(len(took) * 0.99)], 4),
            "requests": {name: {"per_txn": round(len(v) / transactions, 2),
                                "mean_s": round(sum(v) / len(v), 4)}
                         for name, v in sorted(times.items()) if name != "Metadata"}}


async def send_batch(producer: AIOKafkaProducer, prefix: str, value: bytes, n: int,
                     i: int) -> list:
    """An alert or two and state changes spread over the partitions, as a batch has."""
    futures = [await producer.send(f"{prefix}.alerts", value, key=b"a", partition=i % PARTITIONS)]
    for j in range(n):
        futures.append(await producer.send(f"{prefix}.state", value, key=str(j).encode(),
                                           partition=j % PARTITIONS))
    return futures


async def main_async(bootstrap: str, transactions: int, per_txn: int,
                     value_bytes: int) -> dict:
    out: dict[str, Any] = {"transactions": transactions, "messages_per_txn": per_txn + 1,
                           "value_bytes": value_bytes}
    for n, (name, kwargs) in enumerate(SETTINGS.items()):
        prefix = f"commit{n}"
        await make_topics(bootstrap, prefix)
        out[name] = {"settings": kwargs, **await trial(bootstrap, prefix, kwargs,
                                                        transactions, per_txn, True,
                                                        value_bytes)}
    await make_topics(bootstrap, "plain")
    out["baseline_no_transaction"] = await trial(bootstrap, "plain", WORKER, transactions,
                                                 per_txn, False, value_bytes)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transactions", type=int, default=200)
    parser.add_argument("--messages", type=int, default=60, help="state messages per batch")
    parser.add_argument("--value-bytes", type=int, default=14000,
                        help="bytes per state message (a rule's state runs to ~14 kB)")
    args = parser.parse_args()
    with local_broker("commit") as bootstrap:
        result = asyncio.run(main_async(bootstrap, args.transactions, args.messages,
                                        args.value_bytes))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
