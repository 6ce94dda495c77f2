"""Which fetched records a worker's rules may see; the others become dead letters.

A record is refused when it is empty or over ``kafka.max_message_bytes``, does not
decode as the topic's event type, was captured too long ago or too far ahead
(``kafka.max_past``/``max_future``), or carries a key other than its co-partition group
(its rules' state lives on another partition, so they would never see it). Each refusal
names the record's topic, partition and offset, and is counted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.deadletter import DeadLetter, note_rejection
from crowdwatch.events import CameraHealth, CountEvent, EventError, SensorEvent, event_from_json
from crowdwatch.metrics import Metrics
from crowdwatch.streams.runtime.kafka_io import Topics
from crowdwatch.streams.runtime.partitioning import CoPartitioner

Event = CountEvent | CameraHealth | SensorEvent


class RecordCheck:
    def __init__(self, config: CrowdwatchConfig, keys: CoPartitioner, metrics: Metrics,
                 topics: Topics, now: Callable[[], float]) -> None:
        self.config, self.kcfg, self.keys = config, config.kafka, keys
        self.metrics, self.topics, self.now = metrics, topics, now
        self.expected: dict[str, type[Event]] = {
            topics.counts: CountEvent, topics.health: CameraHealth, topics.sensors: SensorEvent}

    def event(self, topic: str, partition: int, record: Any,
              letters: list[DeadLetter]) -> Event | None:
        """The record's event, or None with its dead letter appended to ``letters``."""
        value = record.value
        position = f"{topic}[{partition}]@{record.offset}"
        limit = self.kcfg.max_message_bytes
        if value is None or len(value) > limit:
            letters.append(self.letter(topic, "oversized" if value else "empty",
                                       f"{len(value or b'')} bytes, limit {limit}", value,
                                       position))
            return None
        expected = self.expected[topic]
        try:
            event = event_from_json(value, expected)
        except EventError as exc:
            letters.append(self.letter(topic, exc.reason, exc.detail, value, position))
            return None
        age = self.now() - event.ts
        if age > self.kcfg.max_past or -age > self.kcfg.max_future:
            reason = "stale_ts" if age > 0 else "future_ts"
            letters.append(self.letter(topic, reason, f"captured {age:+.0f}s from now; "
                                       f"kafka.max_past {self.kcfg.max_past:g}s, max_future "
                                       f"{self.kcfg.max_future:g}s", value, position))
            return None
        # An entity this config does not know (a zone added by the console's setup since
        # this worker started) feeds no rule here, so its key cannot mislead one.
        if self.keys.knows(event) and self.keys.key_for(event) != record.key:
            letters.append(self.letter(
                topic, "wrong_key", f"key {record.key!r}; events of this "
                f"{expected.TYPE} must be keyed {self.keys.key_for(event)!r} (the co-partition "
                "group) so its rules see them", value, position))
            return None
        return event

    def letter(self, topic: str, reason: str, detail: str, value: bytes | None,
               position: str) -> DeadLetter:
        letter = DeadLetter.of(topic, reason, detail, value,
                               self.config.deadletter.max_raw_bytes, position)
        note_rejection(self.metrics, letter, self.topics.deadletter)
        return letter
