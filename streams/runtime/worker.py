"""The scale-out worker: a thin Faust (faust-streaming) adapter around the rule core.

Counts (keyed by zone) and camera health (keyed by camera) come from Kafka; rule
state and which alerts are firing live in a Faust Table backed by a changelog topic,
so a crashed worker's zones move to another worker with their state. The rules are
the same :class:`RuleEngine` the embedded mode runs; this module only moves bytes.
Malformed or oversized messages go to the dead-letter topic with a reason.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, MutableMapping
from typing import Any

import faust

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.events import (
    CameraHealth,
    CountEvent,
    EventError,
    SensorEvent,
    event_from_json,
    event_to_json,
)
from crowdwatch.metrics import Metrics
from crowdwatch.streams.alerting.sinks import Dispatcher
from crowdwatch.streams.rules.base import state_from_dict, state_to_dict
from crowdwatch.streams.rules.engine import RuleEngine
from crowdwatch.streams.rules.registry import rule_series
from crowdwatch.streams.runtime.kafka_io import Topics, bootstrap, ensure_topics

log = logging.getLogger("crowdwatch.worker")


class TableStore(MutableMapping):
    """The engine's key→state store over a Faust table (JSON values in the changelog)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def __getitem__(self, key: str) -> Any:
        value = self.table[key]
        if value is None:
            raise KeyError(key)
        return state_from_dict(value) if isinstance(value, dict) else value

    def get(self, key: str, default: Any = None) -> Any:
        value = self.table.get(key)
        if value is None:
            return default
        return state_from_dict(value) if isinstance(value, dict) else value

    def __setitem__(self, key: str, value: Any) -> None:
        self.table[key] = value if isinstance(value, bool) else state_to_dict(value)

    def __delitem__(self, key: str) -> None:
        del self.table[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.table.keys()))

    def __len__(self) -> int:
        return len(self.table)


def build_app(config: CrowdwatchConfig, dispatcher: Dispatcher, metrics: Metrics) -> faust.App:
    kcfg = config.kafka
    topics = Topics.of(kcfg)
    app = faust.App(
        kcfg.group,
        broker=f"kafka://{bootstrap(kcfg)}",
        store="memory://",  # the changelog topic is the durable copy
        topic_partitions=kcfg.partitions,
        topic_replication_factor=kcfg.replication,
        topic_allow_declare=True,
        web_enabled=False,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        broker_commit_every=100,
        broker_commit_interval=1.0,
        broker_session_timeout=kcfg.session_timeout,
        broker_heartbeat_interval=max(1.0, kcfg.session_timeout / 5),
        stream_wait_empty=False,
        table_standby_replicas=0,
    )
    raw: dict[str, Any] = {"value_type": bytes, "value_serializer": "raw",
                           "key_serializer": "raw"}
    counts_topic = app.topic(topics.counts, **raw)
    health_topic = app.topic(topics.health, **raw)
    sensors_topic = app.topic(topics.sensors, **raw)
    alerts_topic = app.topic(topics.alerts, **raw)
    dead_topic = app.topic(topics.deadletter, **raw)
    # Keys and values go through the app's default (JSON) serializers.
    table = app.Table("rule-state", default=None, partitions=kcfg.partitions)
    engine = RuleEngine(config, start_ts=time.time(), store=TableStore(table),
                        offline_from_counts=False, tick_known_only=True)
    progress: dict[tuple[str, int], int] = {}

    async def publish(alerts: list) -> None:
        for alert in alerts:
            await alerts_topic.send(key=alert.zone_id.encode(), value=event_to_json(alert).encode())
            dispatcher.send(alert)

    async def dead_letter(message: Any, value: bytes | None, reason: str, detail: str) -> None:
        metrics.deadletter_total.labels(reason=reason).inc()
        body = {"reason": reason, "detail": detail[:500], "topic": message.topic,
                "partition": message.partition, "offset": message.offset, "ts": time.time(),
                "size": len(value or b""),
                "value": (value or b"")[:1024].decode("utf-8", "replace")}
        log.warning("dead-lettered message %s[%d]@%d: %s: %s", message.topic, message.partition,
                    message.offset, reason, detail[:200],
                    extra={"reason": reason, "topic": message.topic})
        await dead_topic.send(key=message.key, value=json.dumps(body).encode())

    async def handle(stream: Any, expected: type) -> Any:
        async for event in stream.events():
            message = event.message
            value = event.value
            progress[(message.topic, message.partition)] = message.offset
            metrics.last_event.set(time.time())
            if value is None or len(value) > kcfg.max_message_bytes:
                await dead_letter(message, value, "oversized" if value else "empty",
                                  f"{len(value or b'')} bytes, limit {kcfg.max_message_bytes}")
                yield None
                continue
            try:
                parsed = event_from_json(value, expected)
            except EventError as exc:
                await dead_letter(message, value, exc.reason, exc.detail)
                yield None
                continue
            metrics.events_total.labels(type=parsed.TYPE).inc()
            if isinstance(parsed, CountEvent):
                metrics.capture_to_event.observe(max(0.0, time.time() - parsed.ts))
            elif isinstance(parsed, SensorEvent):
                metrics.observe_sensor(parsed)
            await publish(engine.handle(parsed))
            yield parsed

    @app.agent(counts_topic)
    async def counts(stream: Any) -> Any:
        async for item in handle(stream, CountEvent):
            yield item

    @app.agent(health_topic)
    async def health(stream: Any) -> Any:
        async for item in handle(stream, CameraHealth):
            yield item

    @app.agent(sensors_topic)
    async def sensors(stream: Any) -> Any:
        async for item in handle(stream, SensorEvent):
            yield item

    @app.timer(interval=config.engine.tick)
    async def tick() -> None:
        await publish(engine.tick(time.time()))

    @app.timer(interval=2.0)
    async def report_lag() -> None:
        """Consumer lag per partition from the highwater marks; stalls show as growth."""
        total = 0
        try:
            for tp in app.consumer.assignment():
                if tp.topic not in (topics.counts, topics.health, topics.sensors):
                    continue
                high = app.consumer.highwater(tp)
                if high is None:
                    continue
                done = progress.get((tp.topic, tp.partition), -1)
                total += max(0, high - 1 - done)
        except Exception:
            return
        metrics.consumer_lag.labels(stage="worker").set(total)

    @app.task
    async def declare() -> None:
        await ensure_topics(kcfg)

    return app


def run_worker(config: CrowdwatchConfig, dispatcher: Dispatcher, metrics: Metrics,
               loglevel: str = "warning") -> None:
    """Run until SIGTERM/SIGINT (Faust's worker handles the signals)."""
    import asyncio

    from faust.worker import Worker

    asyncio.run(ensure_topics(config.kafka))
    asyncio.set_event_loop(asyncio.new_event_loop())
    app = build_app(config, dispatcher, metrics)
    metrics.describe_config(config, rule_series(config))
    metrics.consumer_lag.labels(stage="worker").set(0)
    worker = Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
