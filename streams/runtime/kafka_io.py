"""Kafka plumbing shared by ingest and workers: topic names, creation, the producer.

Producers are idempotent with acks=all, so a retried send after a broker hiccup never
duplicates an event. Topics are created up front with the configured partitions and
retention (auto-creation would give them broker defaults).
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from crowdwatch.config import KafkaConfig
from crowdwatch.errors import ConfigError
from crowdwatch.streams.runtime.metadata_pacing import paced

log = logging.getLogger("crowdwatch.kafka")


@dataclass(frozen=True)
class Topics:
    counts: str
    health: str
    sensors: str
    alerts: str
    deadletter: str
    state: str  # the workers' rule-state changelog (compacted)
    members: str  # workers' liveness announcements (see peers.py); one partition

    @classmethod
    def of(cls, cfg: KafkaConfig) -> Topics:
        p = cfg.topic_prefix
        return cls(f"{p}.counts", f"{p}.health", f"{p}.sensors", f"{p}.alerts",
                   f"{p}.deadletter", f"{p}.state", f"{p}.members")

    def inputs(self) -> list[str]:
        """The topics a worker consumes; co-partitioned, so equal in partition count."""
        return [self.counts, self.health, self.sensors]

    def all(self) -> list[str]:
        return [*self.inputs(), self.alerts, self.deadletter, self.state, self.members]


def bootstrap(cfg: KafkaConfig) -> str:
    return os.environ.get("CROWDWATCH_KAFKA_BOOTSTRAP", cfg.bootstrap)


async def ensure_topics(cfg: KafkaConfig) -> Topics:
    """Create the topics if missing (idempotent; safe from every process)."""
    topics = Topics.of(cfg)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap(cfg), request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        retention = str(int(cfg.retention * 1000))
        size = str(max(cfg.max_message_bytes * 4, 1048576))
        events = {"retention.ms": retention, "max.message.bytes": size}
        # State is kept by key for as long as the rule needs it, not for `retention`.
        # Segments roll every minute so compaction keeps a takeover's restore short.
        state = {"cleanup.policy": "compact", "max.message.bytes": size, "segment.ms": "60000",
                 "min.cleanable.dirty.ratio": "0.1"}
        # Announcements matter for seconds: one partition, kept a minute.
        members = {"retention.ms": "60000", "segment.ms": "60000"}
        new = [NewTopic(name, 1 if name == topics.members else cfg.partitions, cfg.replication,
                        topic_configs=(state if name == topics.state else
                                       members if name == topics.members else events))
               for name in topics.all() if name not in existing]
        if new:
            try:
                await admin.create_topics(new)
                log.info("created topics %s", [t.name for t in new])
            except TopicAlreadyExistsError:
                pass
        await _check_partitions(admin, topics, cfg.partitions)
    finally:
        await admin.close()
    return topics


async def _check_partitions(admin: AIOKafkaAdminClient, topics: Topics, partitions: int) -> None:
    """Co-partitioning needs every input topic and the changelog to have the configured
    partition count; a topic made earlier with another count would split state."""
    for _ in range(50):  # a topic made a moment ago may not show its partitions yet
        described = await admin.describe_topics([*topics.inputs(), topics.state])
        if all(d["partitions"] for d in described):
            break
        await asyncio.sleep(0.1)
    wrong = {d["topic"]: len(d["partitions"]) for d in described
             if d["partitions"] and len(d["partitions"]) != partitions}
    if wrong:
        raise ConfigError(f"kafka.partitions is {partitions} but topics {wrong} have other "
                          "partition counts; every input topic and the state topic need the "
                          "same count (use a new topic_prefix, or recreate the topics)")


def make_producer(cfg: KafkaConfig) -> AIOKafkaProducer:
    # A long request timeout lets the producer ride out a broker restart with its own
    # retries, which keep idempotent sequence numbers (an app-level re-send would not).
    return paced(AIOKafkaProducer(
        bootstrap_servers=bootstrap(cfg), enable_idempotence=True, acks="all",
        linger_ms=5, request_timeout_ms=120000, retry_backoff_ms=250))
