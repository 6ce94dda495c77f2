"""One retry-delay policy for every reconnect and re-send loop.

Exponential growth with a cap and ±20 % jitter, so a fleet of cameras or sinks that lost
the same server does not come back in lock-step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial: float = 1.0
    maximum: float = 30.0
    jitter: float = 0.2
    _next: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self._next = self.initial

    def next_delay(self) -> float:
        """The wait before the next attempt; each call doubles the one after (capped)."""
        base = min(self.maximum, self._next)
        self._next = min(self.maximum, self._next * 2)
        if not self.jitter:
            return base
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)

    def reset(self) -> None:
        """After a success, the next failure starts from ``initial`` again."""
        self._next = self.initial
