"""A dependency-free progress line for long jobs (calibrate, eval, bench) on stderr."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, label: str, stream=None, every_s: float = 0.5) -> None:
        self.total = max(1, total)
        self.label = label
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self.started = time.monotonic()
        self._last = 0.0
        self.done = 0

    def restart(self, total: int, label: str) -> None:
        """A new phase on the same line: its own total, count and rate."""
        self.total, self.label = max(1, total), label
        self.started, self._last, self.done = time.monotonic(), 0.0, 0

    def update(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if now - self._last < self.every_s and done < self.total:
            return
        self._last = now
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else float("nan")
        self.stream.write(f"\r{self.label}: {done}/{self.total} ({100 * done / self.total:.0f}%)"
                          f" {rate:.1f}/s eta {eta:.0f}s ")
        self.stream.flush()

    def close(self) -> None:
        self.update(self.done)
        self.stream.write("\n")
        self.stream.flush()
