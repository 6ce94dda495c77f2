"""Reading a worker's rule-state changelog back: the latest committed value of each key.

The ``<prefix>.state`` topic is compacted and written only inside the workers'
transactions, so a read-committed consumer from the beginning to the end offset sees
exactly the state of the last commit. Values stay undecoded here: until compaction runs
a key has many records, and only the last one is decoded (by the store).
"""

from __future__ import annotations

from collections import defaultdict

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from crowdwatch.config import KafkaConfig
from crowdwatch.streams.runtime.kafka_io import bootstrap
from crowdwatch.streams.runtime.metadata_pacing import paced

FETCH_BYTES = 8 * 1024 * 1024  # per partition: a restore reads whole partitions
FETCH_RECORDS = 10_000


async def read_changelog(kcfg: KafkaConfig, topic: str,
                         partitions: list[int]) -> dict[int, dict[bytes, bytes | None]]:
    """{partition: {key: latest value}} of the changelog partitions, up to their end."""
    reader = paced(AIOKafkaConsumer(bootstrap_servers=bootstrap(kcfg), enable_auto_commit=False,
                                    isolation_level="read_committed",
                                    max_partition_fetch_bytes=FETCH_BYTES))
    await reader.start()
    out: dict[int, dict[bytes, bytes | None]] = defaultdict(dict)
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        ends = await reader.end_offsets(tps)
        left = {tp for tp in tps if ends[tp] > 0}
        while left:
            batch = await reader.getmany(*left, timeout_ms=500, max_records=FETCH_RECORDS)
            for tp, records in batch.items():
                latest = out[tp.partition]
                for r in records:
                    latest[r.key] = r.value
            for tp in list(left):
                if await reader.position(tp) >= ends[tp]:
                    left.discard(tp)
    finally:
        await reader.stop()
    return out
