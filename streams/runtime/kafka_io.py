"""Kafka plumbing shared by ingest and workers: topic names, creation, the producer.

Producers are idempotent with acks=all, so a retried send after a broker hiccup never
duplicates an event. Topics are created up front with the configured partitions and
retention (auto-creation would give them broker defaults).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from crowdwatch.config import KafkaConfig

log = logging.getLogger("crowdwatch.kafka")


@dataclass(frozen=True)
class Topics:
    counts: str
    health: str
    sensors: str
    alerts: str
    deadletter: str

    @classmethod
    def of(cls, cfg: KafkaConfig) -> Topics:
        p = cfg.topic_prefix
        return cls(f"{p}.counts", f"{p}.health", f"{p}.sensors", f"{p}.alerts",
                   f"{p}.deadletter")

    def all(self) -> list[str]:
        return [self.counts, self.health, self.sensors, self.alerts, self.deadletter]


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
        new = [NewTopic(name, cfg.partitions, cfg.replication,
                        topic_configs={"retention.ms": retention,
                                       "max.message.bytes": str(max(cfg.max_message_bytes * 4,
                                                                    1048576))})
               for name in topics.all() if name not in existing]
        if new:
            try:
                await admin.create_topics(new)
                log.info("created topics %s", [t.name for t in new])
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()
    return topics


def make_producer(cfg: KafkaConfig) -> AIOKafkaProducer:
    # A long request timeout lets the producer ride out a broker restart with its own
    # retries, which keep idempotent sequence numbers (an app-level re-send would not).
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap(cfg), enable_idempotence=True, acks="all",
        linger_ms=5, request_timeout_ms=120000, retry_backoff_ms=250)
