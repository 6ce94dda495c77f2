"""Which Kafka key, and so which partition, each event gets in scale-out mode.

A rule may read several things at once: a camera zone's counts and its camera's health
(inhibition), the sensors of one zone (summed), a zone and a sensor (disagreement),
several zones (occupancy). A worker sees only its partitions, so everything one rule
reads must land in one partition number of every input topic. Entities (cameras, zones,
sensors, each in its own namespace) are joined into co-partition groups: a camera with
its zones, a sensor with its zone, and every entity one rule routes on. Each event is
keyed by its group's name, the producer's murmur2 partitioner (Kafka's default) maps
equal keys to equal partition numbers, and the range assignor gives partition p of every
input topic to one worker.
"""

from __future__ import annotations

from typing import Any

from aiokafka.partitioner import murmur2

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.events import CameraHealth, CountEvent, SensorEvent
from crowdwatch.streams.rules.base import Input, Rule
from crowdwatch.streams.rules.registry import build_rules

Entity = tuple[str, str]  # (namespace, id): ("camera", "c1"), ("zone", "a"), ("sensor", "s")

_ROUTE_NAMESPACE = {
    Input.CAMERA_ZONE: "zone", Input.SENSOR_ZONE: "zone", Input.SENSOR: "sensor",
    Input.SENSOR_SEEN: "sensor", Input.CAMERA_SEEN: "camera", Input.CAMERA_HEALTH: "camera",
}


def rule_entities(rule: Rule[Any]) -> list[Entity]:
    """What one rule instance reads, as namespaced entities."""
    return [(_ROUTE_NAMESPACE[route.input], route.key) for route in rule.routes]


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default (murmur2) partitioner gives ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class CoPartitioner:
    """Kafka keys for events, and the partition that owns each rule's state."""

    def __init__(self, config: CrowdwatchConfig, rules: list[Rule[Any]] | None = None) -> None:
        self.partitions = config.kafka.partitions
        self._parent: dict[Entity, Entity] = {}
        for cam in config.cameras:
            for zone in cam.zones:
                self._join(("camera", cam.id), ("zone", zone.id))
        for dev in config.sensors.devices:
            self._find(("sensor", dev.id))
            if dev.zone:
                self._join(("sensor", dev.id), ("zone", dev.zone))
        for rule in build_rules(config) if rules is None else rules:
            members = rule_entities(rule)
            for other in members[1:]:
                self._join(members[0], other)
        members_of: dict[Entity, list[Entity]] = {}
        for entity in list(self._parent):
            members_of.setdefault(self._find(entity), []).append(entity)
        # A group is named by its smallest member, so the name does not depend on the
        # order of the config.
        self._key: dict[Entity, bytes] = {}
        for members in members_of.values():
            name = min(f"{ns}:{ident}" for ns, ident in members).encode()
            for entity in members:
                self._key[entity] = name
        self.sensor_zone = {dev.id: dev.zone for dev in config.sensors.devices}

    def _find(self, entity: Entity) -> Entity:
        parent = self._parent.setdefault(entity, entity)
        while parent != entity:
            grand = self._parent[parent]
            self._parent[entity] = grand
            entity, parent = parent, grand
        return entity

    def _join(self, a: Entity, b: Entity) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra != rb:
            self._parent[max(ra, rb)] = min(ra, rb)

    def moved(self, other: CoPartitioner) -> list[Entity]:
        """Entities both configs know that ``other`` keys differently (workers running on
        this config must restart to read them right; entities only one config knows are
        read by no rule of the other)."""
        if self.partitions != other.partitions:
            return sorted(set(self._key) & set(other._key))
        return sorted(e for e, key in self._key.items() if other._key.get(e, key) != key)

    def key_of(self, entity: Entity) -> bytes:
        """The Kafka key of an entity's group (an entity the config does not know is
        its own group)."""
        key = self._key.get(entity)
        return key if key is not None else f"{entity[0]}:{entity[1]}".encode()

    def entity_of(self, event: CountEvent | CameraHealth | SensorEvent) -> Entity:
        """The entity whose group keys the event."""
        if isinstance(event, CountEvent):
            return ("zone", event.zone_id)
        if isinstance(event, CameraHealth):
            return ("camera", event.camera_id)
        if event.sensor_id in self.sensor_zone or not event.zone_id:
            return ("sensor", event.sensor_id)
        return ("zone", event.zone_id)

    def knows(self, event: CountEvent | CameraHealth | SensorEvent) -> bool:
        """Is the event about an entity of this config (one a rule may read)?"""
        return self.entity_of(event) in self._key

    def key_for(self, event: CountEvent | CameraHealth | SensorEvent) -> bytes:
        return self.key_of(self.entity_of(event))

    def rule_partition(self, rule: Rule[Any]) -> int:
        """The partition whose worker keeps this rule's state (and ticks it)."""
        entities = rule_entities(rule)
        return partition_of(self.key_of(entities[0]) if entities else rule.rule_id.encode(),
                            self.partitions)
