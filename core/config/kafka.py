"""Scale-out mode: the broker, topic layout, batching budget and failover timing."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from crowdwatch.config.fields import Seconds, Strict


class KafkaConfig(Strict):
    """Scale-out mode: where the broker is and how topics are laid out."""

    bootstrap: str = Field("127.0.0.1:9092", description="host:port[,host:port]; the "
                           "CROWDWATCH_KAFKA_BOOTSTRAP environment variable overrides it.")
    topic_prefix: str = Field("crowdwatch", pattern=r"^[A-Za-z0-9._-]+$",
                              description="Topics are <prefix>.counts, .health, .sensors, "
                              ".alerts, .deadletter.")
    partitions: int = Field(6, ge=1, le=1000, description="Partitions per topic (max workers).")
    replication: int = Field(1, ge=1, le=5, description="Replicas per partition (3 on a site).")
    retention: Seconds = Field(86400.0, gt=0, description="How long events are kept.")
    max_message_bytes: int = Field(65536, ge=1024, description="Larger messages are "
                                   "dead-lettered as oversized.")
    group: str = Field("crowdwatch-worker", description="Consumer group of the workers.")
    max_batch: int = Field(5000, ge=1, le=100000, description="Records a worker evaluates "
                           "per transaction (state and offsets are committed per batch).")
    max_latency: Seconds = Field(
        1.0, gt=0, le=60, description="Capture-to-alert budget of a worker: a batch commits "
        "when it is full (max_batch) or its oldest event has waited half of this, less the "
        "recent commit time; the other half covers delivery and the transaction in flight. "
        "Larger: fewer, cheaper transactions; smaller: alerts sooner, more per-batch cost.")
    wire: Literal["compact", "json"] = Field(
        "compact", description="How ingest writes counts, health and readings: `compact` "
        "(a versioned JSON array, epoch timestamps: a third of the bytes, a quarter of the "
        "worker's decoding time) or `json` (objects with ISO timestamps, for other "
        "consumers of those topics). Workers read both, whatever this says.")
    compression: Literal["zstd", "lz4", "gzip", "none"] = Field(
        "zstd", description="How a worker compresses what it commits (state, alerts, dead "
        "letters). A rule's state under a fast zone is kBs of numbers: zstd writes ~1/10 "
        "of it, which kept the broker from stalling (bench_streams: steady capacity 6 730 "
        "-> 11 084 events/s). Consumers of the alerts topic must read it (Kafka clients "
        "since 2.1 do); `none` for older ones.")
    max_past: Seconds = Field(7 * 86400.0, gt=0, description="Events captured longer ago "
                              "than this are dead-lettered (stale_ts) by the worker; long "
                              "enough to catch up after an outage.")
    max_future: Seconds = Field(300.0, ge=0, description="Events stamped further ahead of the "
                                "worker's clock are dead-lettered (future_ts).")
    session_timeout: Seconds = Field(
        10.0, ge=6, description="A worker silent this long is presumed dead and its zones "
        "move to the others (shorter: faster failover; too short: needless rebalances).")
    failover_after: Seconds = Field(
        2.0, ge=0, description="Workers announce themselves on <prefix>.members; one silent "
        "this long (killed, its machine gone) is presumed dead and the others rejoin the "
        "group at once, so the coordinator drops it after rebalance_timeout instead of the "
        "session timeout. 0: wait for the session timeout.")
    rebalance_timeout: Seconds = Field(
        3.0, gt=0, description="How long a rebalance waits for every worker to rejoin; one "
        "that does not is dropped and its zones move.")

    @model_validator(mode="after")
    def _failover_beats_the_session(self) -> KafkaConfig:
        if self.failover_after and (self.failover_after + self.rebalance_timeout
                                    >= self.session_timeout):
            raise ValueError("failover_after + rebalance_timeout must be under "
                             "session_timeout (or set failover_after: 0)")
        return self

    @property
    def transaction_timeout(self) -> float:
        """A worker's open transaction is aborted after this: no later than its zones can
        move, so a worker that was paused, not dead, cannot commit for them afterwards."""
        if self.failover_after:
            return self.failover_after + self.rebalance_timeout
        return self.session_timeout

