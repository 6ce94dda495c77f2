"""Rule state of the partitions one worker owns, with its changelog written per batch.

The engine reads and writes plain keys; this store files them under the partition being
processed (``current``), remembers which keys a batch changed, and hands each changed
key's latest value to the changelog once per batch instead of once per event (Faust's
table writes a changelog message per assignment, which capped the worker at a few
thousand events/s). A partition's state is rebuilt from its changelog partition when
the worker is given it, and dropped when it is taken away.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, MutableMapping
from typing import Any

from crowdwatch.streams.rules.base import RuleState, state_from_dict, state_to_dict


def encode_value(value: Any) -> bytes:
    """Changelog form: JSON of the state with its type and schema version ("sv")."""
    if isinstance(value, bool):
        return b"true" if value else b"false"
    return json.dumps(state_to_dict(value), separators=(",", ":")).encode()


def decode_value(raw: bytes) -> Any:
    """A stored value, or None for one this build cannot read (it starts fresh)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if isinstance(data, bool):
        return data
    return state_from_dict(data) if isinstance(data, dict) else None


class PartitionedStore(MutableMapping[str, Any]):
    """A key→state store per partition; ``current`` picks the partition in use."""

    def __init__(self) -> None:
        self.parts: dict[int, dict[str, Any]] = {}
        self.dirty: dict[int, set[str]] = {}
        self.parked: dict[int, tuple[dict[str, Any], set[str]]] = {}
        self.current = -1
        self._data: dict[str, Any] = {}
        self._dirty: set[str] = set()

    def use(self, partition: int) -> None:
        """Point reads and writes at ``partition`` (which must be owned)."""
        self.current = partition
        self._data = self.parts[partition]
        self._dirty = self.dirty[partition]

    def owned(self) -> list[int]:
        return sorted(self.parts)

    def assign(self, partition: int, records: Iterable[tuple[bytes, bytes | None]]) -> int:
        """Take a partition with the state its changelog holds; returns keys restored."""
        data: dict[str, Any] = {}
        for raw_key, raw_value in records:
            key = raw_key.decode("utf-8", "replace")
            value = None if raw_value is None else decode_value(raw_value)
            if value is None:
                data.pop(key, None)  # a tombstone, or a layout this build cannot read
            else:
                data[key] = value
        self.parts[partition] = data
        self.dirty[partition] = set()
        return len(data)

    def revoke(self, partition: int) -> None:
        self._release(partition)
        self.parked.pop(partition, None)

    def park(self, partition: int) -> None:
        """Set a revoked partition's state aside: a rebalance that hands it straight back
        (every rebalance revokes everything first) need not re-read the changelog."""
        if partition in self.parts:
            self.parked[partition] = (self.parts[partition], self.dirty[partition])
        self._release(partition)

    def _release(self, partition: int) -> None:
        self.parts.pop(partition, None)
        self.dirty.pop(partition, None)
        if self.current == partition:
            self.current, self._data, self._dirty = -1, {}, set()

    def unpark(self, partition: int) -> bool:
        """Take a parked partition back; False if it was not parked."""
        kept = self.parked.pop(partition, None)
        if kept is None:
            return False
        self.parts[partition], self.dirty[partition] = kept
        return True

    def forget_parked(self) -> None:
        """Parked partitions that went to another worker: their state is theirs now."""
        self.parked.clear()

    def changes(self, partition: int) -> list[tuple[bytes, bytes | None]]:
        """The partition's changed keys since the last call: (key, value or None to delete)."""
        keys = self.dirty.get(partition)
        if not keys:
            return []
        data = self.parts[partition]
        out = [(key.encode(), encode_value(data[key]) if key in data else None)
               for key in sorted(keys)]
        keys.clear()
        return out

    def pending(self) -> bool:
        return any(self.dirty.values())

    # -- MutableMapping over the current partition ------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(value, bool | RuleState):
            raise TypeError(f"a rule store keeps states and flags, not {type(value).__name__}")
        self._data[key] = value
        self._dirty.add(key)

    def __delitem__(self, key: str) -> None:
        del self._data[key]
        self._dirty.add(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)
