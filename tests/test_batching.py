"""When a worker's batch closes: full, or its oldest content near the latency budget."""

from __future__ import annotations

from crowdwatch.streams.runtime.batching import (
    HOLD_SHARE,
    MIN_WAIT,
    ClosePolicy,
    OpenBatch,
)


def test_an_empty_batch_never_closes_and_the_fetch_waits_the_idle_time():
    policy = ClosePolicy(max_batch=100, max_latency=1.0)
    batch = OpenBatch()
    assert batch.empty and not policy.due(batch, now=1e9)
    assert policy.wait(batch, now=1e9, idle=0.5) == 0.5


def test_a_batch_closes_when_full_whatever_its_age():
    policy = ClosePolicy(max_batch=100, max_latency=1.0)
    batch = OpenBatch(records=99)
    batch.note(1000.0)
    assert not policy.due(batch, now=1000.0)
    batch.records = 100
    assert policy.due(batch, now=1000.0)
    assert policy.room(batch) == 1  # a fetch always asks for something


def test_the_oldest_content_sets_the_deadline_and_the_fetch_waits_only_until_it():
    policy = ClosePolicy(max_batch=10_000, max_latency=2.0)
    batch = OpenBatch(records=5)
    batch.note(1000.4)  # arrived
    batch.note(1000.0)  # captured earlier: the capture counts
    batch.note(1000.9)
    assert batch.oldest == 1000.0
    assert not policy.due(batch, now=1000.0 + 2.0 * HOLD_SHARE - 0.01)
    assert policy.due(batch, now=1000.0 + 2.0 * HOLD_SHARE)
    assert policy.wait(batch, now=1000.5, idle=0.5) == 0.5
    assert abs(policy.wait(batch, now=1000.0 + 2.0 * HOLD_SHARE - 0.2, idle=0.5) - 0.2) < 1e-9
    assert policy.wait(batch, now=1005.0, idle=0.5) == MIN_WAIT  # no busy loop


def test_a_slow_commit_closes_batches_sooner_at_once_and_is_forgotten_slowly():
    policy = ClosePolicy(max_batch=10_000, max_latency=1.0)
    batch = OpenBatch(records=1)
    batch.note(0.0)
    before = policy.deadline(batch)
    policy.observe_commit(0.2)  # one slow commit: the next batch waits for one like it
    after = policy.deadline(batch)
    assert before is not None and after is not None
    assert abs((before - after) - 2 * 0.2) < 1e-9
    policy.observe_commit(0.05)
    assert 0.05 < policy.commit_estimate < 0.2
    for _ in range(100):
        policy.observe_commit(0.05)
    assert abs(policy.commit_estimate - 0.05) < 0.001
