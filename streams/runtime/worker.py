"""The scale-out worker: the rule core on Kafka, one transaction per batch.

Counts, camera health and sensor readings come from Kafka, keyed by co-partition group
(:mod:`partitioning`), so partition p of every input topic holds everything the rules of
p's entities read; a range assignment gives p of every topic to one worker. The worker
runs the same :class:`RuleEngine` as the embedded mode over each partition's events as
they arrive; a batch (:mod:`batching`: until full or near ``kafka.max_latency``) then
goes in one Kafka transaction: the alerts, each changed state key once (to the
compacted ``<prefix>.state`` changelog, partition p), the dead letters, and the consumed
offsets. Either all of it is committed or none: a worker killed at any point leaves
offsets and state in step, and whoever takes its partitions re-reads the changelog and
carries on where the last commit left off. Alerts reach the sinks after their
transaction commits. The transaction runs alone on the event loop (records arriving
meanwhile wait in the fetcher and join the next batch): behind rule work its dozen
hops through the loop took four times as long.

Not Faust agents (the design's first choice): its per-event machinery alone ran at
~14,000 events/s on one core, a table write per event held it at ~2,000. This keeps
Faust's model (changelog-backed state moving with its partition), per batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections import defaultdict
from functools import partial
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.deadletter import DeadLetter
from crowdwatch.events import Alert, CountEvent, SensorEvent, event_to_bytes
from crowdwatch.metrics import Metrics
from crowdwatch.streams.alerting.sinks import Dispatcher
from crowdwatch.streams.rules.engine import RuleEngine
from crowdwatch.streams.runtime.batching import ClosePolicy, OpenBatch
from crowdwatch.streams.runtime.changelog import read_changelog
from crowdwatch.streams.runtime.kafka_io import Topics, ensure_topics
from crowdwatch.streams.runtime.partitioning import CoPartitioner
from crowdwatch.streams.runtime.peers import PeerWatch, end_watch
from crowdwatch.streams.runtime.records import RecordCheck
from crowdwatch.streams.runtime.state_file import StateFile
from crowdwatch.streams.runtime.state_store import PartitionedStore
from crowdwatch.streams.runtime.worker_clients import (
    Rebalance,
    fresh_producer,
    group_consumer,
    range_assignor,
    transactional_producer,
)
from crowdwatch.util.backoff import Backoff

log = logging.getLogger("crowdwatch.worker")

CLOSE_TIMEOUT = 3.0  # seconds each Kafka client may take to close


class BatchWorker:
    def __init__(self, config: CrowdwatchConfig, dispatcher: Dispatcher, metrics: Metrics,
                 now: Any = time.time) -> None:
        self.config = config
        self.kcfg = config.kafka
        self.topics = Topics.of(self.kcfg)
        self.dispatcher = dispatcher
        self.metrics = metrics
        self.now = now
        self.store = PartitionedStore()
        self.engine = RuleEngine(config, start_ts=now(), store=self.store,
                                 offline_from_counts=False)
        self.keys = CoPartitioner(config, self.engine.rules)
        self.partition_of_rule = {id(rule): self.keys.rule_partition(rule)
                                  for rule in self.engine.rules}
        self.tickers: dict[int, list[Any]] = defaultdict(list)
        for rule in self.engine.tickers:
            self.tickers[self.partition_of_rule[id(rule)]].append(rule)
        self.check = RecordCheck(config, self.keys, metrics, self.topics, now)
        self.stop_event = asyncio.Event()
        self.batch = OpenBatch()
        self.policy = ClosePolicy(self.kcfg.max_batch, self.kcfg.max_latency)
        self.committing: asyncio.Task[None] | None = None  # the transaction in flight
        self.failed = False  # a transaction failed: state ran ahead of the changelog
        self.done: dict[TopicPartition, int] = {}  # next offset to read, per input partition
        self._seen: dict[type, int] = dict.fromkeys(self.check.expected.values(), 0)
        self._counted = {cls: metrics.events_total.labels(type=cls.TYPE)
                         for cls in self.check.expected.values()}
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.failovers = 0  # peers presumed dead so far
        # Learned models from `replay --learn`: a partition whose changelog has none for a
        # rule starts from these instead of from nothing (the changelog wins once it has).
        self.seed_states = (StateFile(config.engine.state_file, config.site.name).load()
                            if config.engine.state_file else {})

    # -- partitions -----------------------------------------------------------------

    def drop(self, partitions: set[int]) -> None:
        for p in partitions:
            self.store.park(p)
        self.metrics.worker_partitions.set(len(self.store.parts))
        if partitions:
            log.info("partitions %s revoked", sorted(partitions))

    async def take(self, partitions: set[int]) -> None:
        """Rebuild the state of newly assigned partitions from the changelog, then resolve
        what rules removed or changed since it was written left firing."""
        kept = {p for p in partitions if self.store.unpark(p)}
        self.store.forget_parked()
        self.done = {tp: off for tp, off in self.done.items() if tp.partition in kept}
        new = sorted(p for p in partitions if p not in self.store.parts)
        if not new:
            self.metrics.worker_partitions.set(len(self.store.parts))
            return
        started = time.monotonic()
        restored = await read_changelog(self.kcfg, self.topics.state, new)
        for p in new:
            keys = self.store.assign(p, restored.get(p, {}).items())
            self.store.use(p)
            if self.seed_states:
                keys += self.engine.seed(self.seed_states, owns=partial(self._owns, p))
            self._add_alerts(self.engine.reconcile(self.now(), owns=partial(self._owns, p)))
            log.info("partition %d taken with %d state keys", p, keys,
                     extra={"partition": p})
        self.metrics.worker_partitions.set(len(self.store.parts))
        log.info("restored partitions %s in %.2fs", new, time.monotonic() - started)

    def _owns(self, partition: int, rule: Any) -> bool:
        return self.partition_of_rule[id(rule)] == partition

    # -- one batch --------------------------------------------------------------------

    def _handle(self, topic: str, partition: int, record: Any,
                letters: list[DeadLetter]) -> None:
        event = self.check.event(topic, partition, record, letters)
        if event is None:
            return
        self._seen[type(event)] += 1
        if isinstance(event, CountEvent):
            self.batch.captured.append(event.ts)
            self.batch.note(event.ts)
        elif isinstance(event, SensorEvent):
            self.metrics.observe_sensor(event)
        alerts = self.engine.handle(event)
        if alerts:
            self.batch.alerts += alerts

    def _add_alerts(self, alerts: list[Alert]) -> None:
        if alerts:
            self.batch.alerts += alerts
            self.batch.note(self.now())

    def process(self, fetched: dict[TopicPartition, list]) -> None:
        """Run the rules over fetched records; their effects join the open batch."""
        batch = self.batch
        letters = batch.letters
        if fetched:
            batch.note(self.now())  # arrival: bounds a batch whose capture times run ahead
        for tp, records in fetched.items():
            if tp.partition not in self.store.parts:
                # Fetched before its state was restored: read it again later (if it was
                # revoked instead, its new owner reads it from the committed offset).
                assert self.consumer is not None
                if tp in self.consumer.assignment():
                    self.consumer.seek(tp, records[0].offset)
                continue
            self.store.use(tp.partition)
            for record in records:
                self._handle(tp.topic, tp.partition, record, letters)
            batch.records += len(records)
            self.done[tp] = records[-1].offset + 1
            batch.offsets[tp] = self.done[tp]
        if fetched:
            self.metrics.last_event.set(self.now())
            for cls, n in self._seen.items():  # once per fetch: a counter takes a lock
                if n:
                    self._counted[cls].inc(n)
                    self._seen[cls] = 0

    def tick(self) -> None:
        now = self.now()
        for p in self.store.owned():
            rules = self.tickers.get(p)
            if rules:
                self.store.use(p)
                self._add_alerts(self.engine.tick(now, rules))
        if self.store.pending():
            self.batch.note(now)  # a changed state is committed within the budget too

    def close_batch(self) -> None:
        """Hand the open batch to a transaction (the one before must have settled)."""
        if self.producer is None:
            return  # between clients (starting or recovering): it commits with the next
        batch, self.batch = self.batch, OpenBatch()
        changes = [(p, change) for p in self.store.owned() for change in self.store.changes(p)]
        if batch.empty and not changes:
            return
        assert self.committing is None
        self.metrics.worker.batch_records.observe(batch.records)
        self.committing = asyncio.create_task(self._commit(batch, changes))

    async def settle(self) -> bool:
        """Wait until no transaction is in flight; False (and ``failed`` set) if one failed.

        The main loop and the rebalance listener (``flush``) may both wait here: each
        returns only once none is in flight, with no await before it may close a batch,
        so two transactions never overlap on the producer."""
        while (task := self.committing) is not None:
            try:
                await task
            except KafkaError as exc:
                if not self.failed:
                    log.warning("commit failed (%s: %s); re-reading from the last commit",
                                type(exc).__name__, exc)
                self.failed = True
            finally:
                if self.committing is task:
                    self.committing = None
        return not self.failed

    async def flush(self) -> None:
        """Commit everything in hand now (partitions about to move, or stopping)."""
        if await self.settle():
            self.close_batch()
            await self.settle()

    async def _commit(self, batch: OpenBatch,
                      changes: list[tuple[int, tuple[bytes, bytes | None]]]) -> None:
        """Alerts, changed state, dead letters and offsets: one transaction."""
        assert self.producer is not None
        started = time.monotonic()
        producer = self.producer
        async with producer.transaction():
            for alert in batch.alerts:
                await producer.send(self.topics.alerts, event_to_bytes(alert),
                                    key=alert.key.encode())
            for p, (key, value) in changes:
                await producer.send(self.topics.state, value, key=key, partition=p)
            for letter in batch.letters:
                await producer.send(self.topics.deadletter, letter.to_json().encode(),
                                    key=letter.source.encode())
            if batch.offsets:
                await producer.send_offsets_to_transaction(batch.offsets, self.kcfg.group)
        took = time.monotonic() - started
        self.policy.observe_commit(took)
        self.metrics.worker.commit_seconds.observe(took)
        for alert in batch.alerts:
            self.dispatcher.send(alert)
        # Capture to committed: when the batch's alerts leave, so capture to alert.
        now = self.now()
        observe = self.metrics.capture_to_event.observe
        for ts in batch.captured:
            observe(max(0.0, now - ts))

    # -- lifecycle --------------------------------------------------------------------

    async def _recover(self) -> None:
        """After a failed transaction: in-memory state ran ahead of what was committed.
        Start over from the committed offsets and the changelog. ``failed`` stays set
        until every step succeeded (the broker may still be gone: the loop retries)."""
        assert self.consumer is not None
        task, self.committing = self.committing, None
        if task is not None:
            with contextlib.suppress(Exception):
                await task
        self.batch, self.done = OpenBatch(), {}
        for p in self.store.owned():
            self.store.revoke(p)
        self.store.forget_parked()
        old, self.producer = self.producer, None
        self.producer = await fresh_producer(self.kcfg, old, CLOSE_TIMEOUT)
        for tp in self.consumer.assignment():
            committed = await self.consumer.committed(tp)
            if committed is None:
                await self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, committed)
        await self.take({tp.partition for tp in self.consumer.assignment()})
        self.failed = False

    async def _start(self) -> None:
        delays = Backoff(1.0, 30.0)
        while not self.stop_event.is_set():
            try:
                await ensure_topics(self.kcfg)
                self.producer = transactional_producer(self.kcfg)
                await self.producer.start()
                assignor = range_assignor(lambda: self.failovers)
                self.consumer = group_consumer(self.kcfg, assignor)
                self.consumer.subscribe(list(self.check.expected),
                                        listener=Rebalance(self.flush, self.drop, self.take))
                await self.consumer.start()
                return
            except (KafkaError, OSError) as exc:
                delay = delays.next_delay()
                log.warning("kafka not reachable (%s); retrying in %.0fs", type(exc).__name__,
                            delay)
                await self._close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop_event.wait(), delay)

    def _peer_dead(self, member: str, silent: float) -> None:
        """A peer stopped announcing itself: rejoin now, so the coordinator drops it after
        the rebalance timeout rather than the session timeout (see peers.py)."""
        log.warning("worker %s silent for %.1fs: presumed dead; rejoining the group so its "
                    "partitions move now", member, silent, extra={"peer": member})
        self.metrics.worker_failovers.inc()
        self.failovers += 1  # changes this member's metadata: see _range_assignor
        coordinator = getattr(self.consumer, "_coordinator", None)
        if coordinator is not None:  # aiokafka has no public call for this
            coordinator.request_rejoin()

    async def run(self) -> None:
        """Consume, evaluate and commit until :meth:`stop`."""
        await self._start()
        peers: PeerWatch | None = None
        watching: asyncio.Task[None] | None = None
        if self.kcfg.failover_after and not self.stop_event.is_set():
            peers = PeerWatch(self.kcfg, f"{socket.gethostname()}-{os.getpid()}-"
                              f"{uuid.uuid4().hex[:6]}", self._peer_dead)
            watching = asyncio.create_task(peers.run(self.stop_event))
        tick = self.config.engine.tick
        next_tick = time.monotonic() + tick
        next_lag = time.monotonic()
        idle = min(tick, 0.5)
        delays = Backoff(0.5, 10.0)
        try:
            while not self.stop_event.is_set():
                assert self.consumer is not None
                # The transaction runs alone: its round trips (about a dozen hops through
                # the event loop) took four times as long behind rule work.
                if not await self.settle():
                    await asyncio.sleep(delays.next_delay())
                    with contextlib.suppress(KafkaError, OSError):
                        await self._recover()
                    continue
                due = self.policy.due(self.batch, self.now())
                wait = 0.0 if due else self.policy.wait(self.batch, self.now(), idle)
                fetched = await self.consumer.getmany(timeout_ms=int(wait * 1000),
                                                      max_records=self.policy.room(self.batch))
                self.process(fetched)
                if time.monotonic() >= next_tick:
                    self.tick()
                    next_tick = max(next_tick + tick, time.monotonic())
                # A due batch first takes in what is waiting (what arrived during the last
                # commit: group commit), then closes.
                if self.policy.due(self.batch, self.now()) and (
                        not fetched or self.policy.full(self.batch)):
                    self.close_batch()
                    delays = Backoff(0.5, 10.0)
                if fetched or time.monotonic() >= next_lag:  # fresh after every fetch
                    self._report_lag()
                    next_lag = time.monotonic() + 2.0
            with contextlib.suppress(KafkaError):
                await self.flush()  # the batch in hand, before leaving the group
        finally:
            # The watch winds down beside the clients' close, not before it: with the
            # broker gone each waits out its own timeout, and in a row they would add up.
            await asyncio.gather(end_watch(peers, watching, CLOSE_TIMEOUT), self._close())

    def _report_lag(self) -> None:
        """Events waiting in owned partitions (highwater minus what was processed)."""
        assert self.consumer is not None
        total = 0
        for tp in self.consumer.assignment():
            high = self.consumer.highwater(tp)
            if high is not None:
                total += max(0, high - self.done.get(tp, high))
        self.metrics.consumer_lag.labels(stage="worker").set(total)

    async def _close(self) -> None:
        """Leave the group and close; bounded, so a worker whose broker is gone still
        exits within seconds of SIGTERM (its uncommitted batch is re-read by the next
        owner, as after a crash)."""
        consumer, producer = self.consumer, self.producer
        self.consumer = self.producer = None
        for client in (consumer, producer):  # the consumer first: the others rebalance
            if client is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.stop(), CLOSE_TIMEOUT)

    def stop(self) -> None:
        self.stop_event.set()
