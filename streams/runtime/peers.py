"""Failover faster than the session timeout: workers watch each other.

Kafka's group coordinator drops a member that stops heartbeating only a session timeout
after its last heartbeat, so a worker killed with -9 (or whose machine is gone) holds its
partitions that long. Here each worker announces itself on ``<prefix>.members`` every
quarter of ``kafka.failover_after`` and reads everyone's announcements. A peer that has
announced and then falls silent for ``failover_after`` is presumed dead: the watcher
reports it and the worker asks its consumer to rejoin the group. The coordinator then
waits at most ``kafka.rebalance_timeout`` for every member to rejoin and drops the one
that does not, so the dead worker's partitions move after about failover_after +
rebalance_timeout instead of the session timeout.

A worker judges others only while its own announcements come back to it (if it cannot
reach the broker, it is the one cut off). A worker stopping cleanly says so (it leaves
the group itself). The watch is an optimisation: whatever it misses, the session timeout
still catches, so its errors are logged and it keeps trying.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from crowdwatch.config import KafkaConfig
from crowdwatch.streams.runtime.kafka_io import Topics, bootstrap
from crowdwatch.streams.runtime.metadata_pacing import paced

log = logging.getLogger("crowdwatch.peers")
ALIVE, LEAVING = "alive", "leaving"


class PeerWatch:
    def __init__(self, kcfg: KafkaConfig, member: str,
                 on_dead: Callable[[str, float], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.kcfg = kcfg
        self.member = member
        self.on_dead = on_dead
        self.clock = clock
        self.after = kcfg.failover_after
        self.every = kcfg.failover_after / 4
        self.topic = Topics.of(kcfg).members
        self.seen: dict[str, float] = {}  # peer -> when its last announcement arrived
        self.own_seen: float | None = None
        self._producer: AIOKafkaProducer | None = None

    # -- what the announcements mean (no I/O) --------------------------------------

    def observe(self, member: str, state: str) -> None:
        now = self.clock()
        if member == self.member:
            self.own_seen = now
        elif state == LEAVING:
            self.seen.pop(member, None)
        else:
            self.seen[member] = now

    def presumed_dead(self) -> list[tuple[str, float]]:
        """Peers silent for ``failover_after`` (each reported once), with their silence;
        none while this worker's own announcements are not coming back."""
        now = self.clock()
        if self.own_seen is None or now - self.own_seen > self.after:
            return []
        dead = [(m, now - t) for m, t in self.seen.items() if now - t > self.after]
        for member, _ in dead:
            del self.seen[member]
        return dead

    # -- the loop ------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._watch(stop)
            except KafkaError as exc:
                log.warning("peer watch interrupted (%s); failover falls back on the session "
                            "timeout until it is back", type(exc).__name__)
                self.own_seen = None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)

    async def _watch(self, stop: asyncio.Event) -> None:
        producer = paced(AIOKafkaProducer(bootstrap_servers=bootstrap(self.kcfg), acks=1,
                                          linger_ms=0, request_timeout_ms=5000))
        consumer = paced(AIOKafkaConsumer(bootstrap_servers=bootstrap(self.kcfg),
                                          enable_auto_commit=False, fetch_max_wait_ms=100))
        try:
            await producer.start()
            self._producer = producer
            await consumer.start()
            part = TopicPartition(self.topic, 0)
            consumer.assign([part])
            await consumer.seek_to_end(part)
            next_beat = 0.0
            while not stop.is_set():
                if self.clock() >= next_beat:
                    await producer.send(self.topic, self._record(ALIVE))
                    next_beat = self.clock() + self.every
                batch = await consumer.getmany(part, timeout_ms=int(self.every * 500))
                for record in batch.get(part, []):
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        body = json.loads(record.value)
                        self.observe(str(body["m"]), str(body["s"]))
                for member, silent in self.presumed_dead():
                    self.on_dead(member, silent)
        finally:
            self._producer = None
            for client in (consumer, producer):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.stop(), 2.0)

    def _record(self, state: str) -> bytes:
        return json.dumps({"m": self.member, "s": state, "ts": time.time()}).encode()

    async def leave(self) -> None:
        """Say this worker is stopping on purpose (best effort, bounded)."""
        producer = self._producer
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.send_and_wait(self.topic,
                                                              self._record(LEAVING)), 1.0)


async def end_watch(peers: PeerWatch | None, watching: asyncio.Task[None] | None,
                    timeout: float) -> None:
    """Say this worker leaves on purpose (bounded), then stop its peer watch."""
    if peers is None or watching is None:
        return
    await peers.leave()
    watching.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(watching, timeout)
