"""The scale-out worker's Kafka clients: a transactional producer, and a group consumer
whose range assignment gives partition p of every input topic to one worker.

Only committed records are read (``read_committed``), offsets are committed inside the
worker's transactions (never automatically), and the assignor carries the worker's
failover count so a forced rejoin really rebalances (see :func:`range_assignor`).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata

from crowdwatch.config import KafkaConfig
from crowdwatch.streams.runtime.kafka_io import bootstrap
from crowdwatch.streams.runtime.metadata_pacing import paced

# A retry of a transactional request waits this long. A transaction begun right after
# the last one committed (the worker's pattern under load) often finds its markers still
# being written: the broker answers CONCURRENT_TRANSACTIONS and the request is retried.
# aiokafka waits 20 ms for the first AddPartitionsToTxn of a transaction (KAFKA-5477) but
# the retry backoff for the others: at 250 ms, commit p99 was 0.37 s, at 20 ms 0.07 s
# (bench/bench_commit.py, back-to-back transactions on a local broker).
RETRY_BACKOFF_MS = 20
PARTITION_FETCH_BYTES = 4 * 1024 * 1024
FETCH_BYTES = 64 * 1024 * 1024
FETCH_WAIT_MS = 50  # how long the broker holds a fetch for records: bounds added latency
# Bytes a producer batch (one partition's records in one request) may hold. A rule's
# state runs to ~14 kB: at aiokafka's 16 kB default every state write filled a batch and
# waited for its own produce round trip, ~50 of them per transaction (commit p50 0.17 s).
# A record batch must fit the topic's max.message.bytes (the state topic's is >= 1 MB).
PRODUCER_BATCH_BYTES = 512 * 1024


def range_assignor(failovers: Callable[[], int]) -> type[RangePartitionAssignor]:
    """Kafka's range assignor, with the worker's failover count in its metadata: a member
    rejoining with unchanged metadata gets the current assignment back (unless it leads
    the group), so to force the rebalance that drops a dead peer the metadata changes."""

    class RangeWithFailovers(RangePartitionAssignor):
        @classmethod
        def metadata(cls, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
            return ConsumerProtocolMemberMetadata(cls.version, list(topics),
                                                  str(failovers()).encode())

    return RangeWithFailovers


class Rebalance(ConsumerRebalanceListener):
    """Commits what is in hand before partitions move, then hands them over."""

    def __init__(self, flush: Callable[[], Awaitable[None]],
                 drop: Callable[[set[int]], None],
                 take: Callable[[set[int]], Awaitable[None]]) -> None:
        self._flush, self._drop, self._take = flush, drop, take

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._flush()
        self._drop({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self._take({tp.partition for tp in assigned})


def transactional_producer(kcfg: KafkaConfig) -> AIOKafkaProducer:
    """A fresh transactional id each time: a restarted worker never fences a live one."""
    return paced(AIOKafkaProducer(
        bootstrap_servers=bootstrap(kcfg), acks="all", enable_idempotence=True,
        transactional_id=f"{kcfg.group}-{uuid.uuid4().hex[:12]}",
        transaction_timeout_ms=int(kcfg.transaction_timeout * 1000), linger_ms=5,
        request_timeout_ms=30000, retry_backoff_ms=RETRY_BACKOFF_MS,
        max_batch_size=PRODUCER_BATCH_BYTES,
        compression_type=None if kcfg.compression == "none" else kcfg.compression))


async def fresh_producer(kcfg: KafkaConfig, old: AIOKafkaProducer | None,
                         close_timeout: float) -> AIOKafkaProducer:
    """A started transactional producer in place of ``old`` (closed first, bounded); if
    the new one cannot start (the broker is gone) it is closed and the error raised."""
    if old is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(old.stop(), close_timeout)
    producer = transactional_producer(kcfg)
    try:
        await producer.start()
    except BaseException:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), close_timeout)
        raise
    return producer


def group_consumer(kcfg: KafkaConfig, assignor: type[RangePartitionAssignor]
                   ) -> AIOKafkaConsumer:
    timeout_ms = int(kcfg.session_timeout * 1000)
    return paced(AIOKafkaConsumer(
        bootstrap_servers=bootstrap(kcfg), group_id=kcfg.group,
        enable_auto_commit=False, auto_offset_reset="earliest",
        isolation_level="read_committed", session_timeout_ms=timeout_ms,
        heartbeat_interval_ms=max(300, timeout_ms // 20),
        rebalance_timeout_ms=int(kcfg.rebalance_timeout * 1000),
        partition_assignment_strategy=(assignor,),
        max_partition_fetch_bytes=PARTITION_FETCH_BYTES, fetch_max_bytes=FETCH_BYTES,
        fetch_max_wait_ms=FETCH_WAIT_MS))
