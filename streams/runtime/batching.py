"""What a worker's next transaction carries, and when it closes.

A transaction has fixed costs (begin, the partitions it writes, the offsets, the commit:
several broker round trips) that a small batch pays per few events. Paced at a steady
rate, records arrive a few hundred at a time, so committing per fetch spent most of the
worker on those costs at half the load a drained backlog suggested. A batch therefore
stays open across fetches until it is full (``kafka.max_batch``) or its oldest content
nears the latency budget (``kafka.max_latency``): it is due at

    oldest + max_latency × HOLD_SHARE − 2 × (recent slow commit time)

where *oldest* is the earlier of the oldest record's capture time and when it arrived
here (a camera clock ahead of ours cannot hold a batch past its budget). Twice the
commit time: records that arrive during a commit wait for it, then for their own; the
rest of the budget is delivery from ingest. A due batch first takes in every record
already fetched, then closes, so under load, when the deadline reaches zero, the worker
commits back to back: group commit, each batch what arrived during the last
transaction, which is as large as the latency allows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crowdwatch.deadletter import DeadLetter
from crowdwatch.events import Alert

# Share of the latency budget a batch may stay open for (see the module docstring).
HOLD_SHARE = 0.6
# The commit-time estimate takes a slower commit at once and forgets it by this share
# per commit (measured here: commit p50 0.09-0.17 s, p99 0.25-0.49 s on a shared core).
COMMIT_DECAY = 0.1
# Records processed between two turns of the event loop (~25 ms of rule work).
FETCH_CHUNK = 500
# The shortest wait of a fetch for a batch near its deadline (no busy loop).
MIN_WAIT = 0.02


@dataclass
class OpenBatch:
    """Everything since the last transaction: it commits together or not at all."""

    alerts: list[Alert] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    captured: list[float] = field(default_factory=list)  # capture times of its counts
    offsets: dict[Any, int] = field(default_factory=dict)  # next offset, per partition
    records: int = 0
    oldest: float | None = None  # wall clock: the oldest content's capture or arrival

    def note(self, ts: float) -> None:
        """Something of the batch dates from ``ts`` (a capture or an arrival time)."""
        if self.oldest is None or ts < self.oldest:
            self.oldest = ts

    @property
    def empty(self) -> bool:
        return not (self.alerts or self.letters or self.offsets or self.records)


class ClosePolicy:
    """When a batch must close: full, or its oldest content near the latency budget."""

    def __init__(self, max_batch: int, max_latency: float) -> None:
        self.max_batch = max_batch
        self.max_latency = max_latency
        self.commit_estimate = 0.0

    def deadline(self, batch: OpenBatch) -> float | None:
        """Wall-clock time the batch must close by (None: it holds nothing yet)."""
        if batch.oldest is None:
            return None
        return batch.oldest + self.max_latency * HOLD_SHARE - 2 * self.commit_estimate

    def due(self, batch: OpenBatch, now: float) -> bool:
        if self.full(batch):
            return True
        deadline = self.deadline(batch)
        return deadline is not None and now >= deadline

    def room(self, batch: OpenBatch) -> int:
        """Records the next fetch may add: a chunk at a time, so ticks and the batch's
        deadline are looked at between chunks."""
        return max(1, min(FETCH_CHUNK, self.max_batch - batch.records))

    def full(self, batch: OpenBatch) -> bool:
        return batch.records >= self.max_batch

    def wait(self, batch: OpenBatch, now: float, idle: float) -> float:
        """Seconds the next fetch may wait for records: until the deadline, or ``idle``;
        briefly, when the batch is due and waits for the transaction in flight."""
        deadline = self.deadline(batch)
        if deadline is None:
            return idle
        return max(MIN_WAIT, min(idle, deadline - now))

    def observe_commit(self, seconds: float) -> None:
        if seconds > self.commit_estimate:
            self.commit_estimate = seconds
        else:
            self.commit_estimate += COMMIT_DECAY * (seconds - self.commit_estimate)
