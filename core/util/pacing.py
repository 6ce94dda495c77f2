"""Real-time pacing for recorded sources (files, the simulated scene, replays)."""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    """Sleeps until ``offset`` seconds after the pacer started, on the monotonic clock.

    ``speed`` > 1 plays faster than real time; a pacer that is behind never sleeps.
    """

    def __init__(self, speed: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.speed = speed
        self.sleep = sleep
        self.start = time.monotonic()

    def wait_until(self, offset: float) -> None:
        ahead = offset / self.speed - (time.monotonic() - self.start)
        if ahead > 0:
            self.sleep(ahead)
