"""Reading untrusted JSON with bounds, and the error every reader of events raises.

Deep nesting and huge integers are how a single message crashed a parser thread before:
depth, integer size and NaN/Infinity are bounded, and every failure is an
:class:`EventError` with a short machine-readable reason and a detail for people.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import orjson

MAX_JSON_DEPTH = 16
MAX_INT_DIGITS = 18


class EventError(ValueError):
    """A message that is not a valid crowdwatch event; ``reason`` is a short metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {digits} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


# A run of 19 digits is a number orjson would read differently from the bounded reader
# (an integer past 18 digits is refused there; orjson takes up to 20, or turns it into a
# float): such a message takes the bounded path, so every input is read one way.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19


def _has_long_number(raw: bytes) -> bool:
    return _LONG_NUMBER in raw.translate(_DIGITS_AS_ZERO)


def load_json(raw: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON from untrusted bytes with bounds: nesting depth, integer size, no NaN or
    Infinity. Every failure is an :class:`EventError` (a reason and a detail).

    The common case is read by orjson (about ten times faster than the standard library,
    which the worker's throughput depends on); anything orjson refuses or might read
    differently is read again by the bounded standard reader, so results and error
    messages are the same either way."""
    data: Any = None
    fast = False
    encoded = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if not _has_long_number(encoded):
        with contextlib.suppress(orjson.JSONDecodeError):
            data, fast = orjson.loads(raw), True
    if not fast:
        data = _load_bounded(raw, max_depth)
    # No deeper than it has brackets: most messages need no walk.
    if (isinstance(data, dict | list) and encoded.count(b"{") + encoded.count(b"[") > max_depth
            and _depth(data, 1, max_depth) > max_depth):
        raise EventError("too_deep", f"JSON nested deeper than {max_depth} levels")
    return data


def _load_bounded(raw: str | bytes, max_depth: int) -> Any:
    try:
        return json.loads(raw, parse_int=_bounded_int, parse_constant=_no_constant)
    except RecursionError:
        raise EventError("too_deep", f"JSON nested deeper than {max_depth} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise EventError("bad_json", str(exc)[:200]) from None


def _depth(node: dict[str, Any] | list[Any], depth: int, limit: int) -> int:
    """Nesting depth of ``node`` (at ``depth``), stopping once past ``limit``."""
    if depth > limit:
        return depth
    children = node.values() if isinstance(node, dict) else node
    deepest = depth
    for child in children:
        if isinstance(child, dict | list):
            deepest = max(deepest, _depth(child, depth + 1, limit))
            if deepest > limit:
                break
    return deepest
