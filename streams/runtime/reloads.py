"""Config changes asked for by the console's thread, applied by the pipeline's own loop.

The page's request thread must not rewire cameras or rules under the pipeline's feet:
it hands the new config over and waits; the pipeline applies it between two events and
hands back an error, or None once the change is live.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from crowdwatch.config import CrowdwatchConfig

log = logging.getLogger("crowdwatch.reload")


class Reloads:
    def __init__(self) -> None:
        self._asked: queue.Queue[tuple[CrowdwatchConfig, threading.Event, list[str]]] = (
            queue.Queue())

    def ask(self, config: CrowdwatchConfig, timeout: float = 15.0) -> str | None:
        """Hand ``config`` over and wait: an error, or None once applied."""
        done, errors = threading.Event(), list[str]()
        self._asked.put((config, done, errors))
        if not done.wait(timeout):
            return "the pipeline did not take the change in time"
        return errors[0] if errors else None

    def pending(self) -> bool:
        return not self._asked.empty()

    def apply(self, reconfigure: Callable[[CrowdwatchConfig], None]) -> None:
        """Run ``reconfigure`` on each waiting config (on the caller's thread); a failure is
        reported to the asker and the old setup keeps running."""
        while True:
            try:
                config, done, errors = self._asked.get_nowait()
            except queue.Empty:
                return
            try:
                reconfigure(config)
            except Exception as exc:
                log.exception("reload failed; the previous setup keeps running")
                errors.append(f"{type(exc).__name__}: {exc}")
            done.set()
