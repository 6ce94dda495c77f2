"""Kafka clients that wait with backoff for a broker that is gone, instead of spinning.

aiokafka 0.14 refreshes cluster metadata whenever a send or fetch finds no leader, and
retries at once when the refresh fails: with the broker down (connection refused in
microseconds) a producer with records in hand, or a consumer, loops on it, ~125 connect
attempts a second, burning most of a core and flooding the log. :func:`paced` wraps one
client's metadata refresh so that a failed refresh waits (0.1 s doubling to 5 s, with
jitter) before it reports failure; everything waiting on it waits too, and the first
success resets the delay. The wrap is per client instance (no global patch) and checks
that the private method it relies on exists, so a newer aiokafka that renames it fails
loudly in the tests (tests/test_kafka.py measures CPU with the broker gone).
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from crowdwatch.util.backoff import Backoff

FIRST_WAIT = 0.1  # seconds after the first failed refresh
LONGEST_WAIT = 5.0  # the cap: a broker that comes back is noticed within this

Client = TypeVar("Client")


def paced(client: Client) -> Client:
    """The same producer, consumer or admin client, its metadata refresh paced."""
    inner: Any = getattr(client, "client", None) or getattr(client, "_client", None)
    update = getattr(inner, "_metadata_update", None)
    if update is None:
        raise RuntimeError(f"{type(client).__name__} has no metadata refresh to pace: this "
                           "aiokafka version differs from the one pinned in pyproject.toml")
    delays = Backoff(FIRST_WAIT, LONGEST_WAIT)

    async def refresh(cluster_metadata: Any, topics: Any) -> bool:
        ok = bool(await update(cluster_metadata, topics))
        if ok:
            delays.reset()
        else:
            await asyncio.sleep(delays.next_delay())
        return ok

    inner._metadata_update = refresh
    return client
