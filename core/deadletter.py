"""The embedded dead-letter sink: rejected messages with their reason, never dropped silently.

Each rejection is counted (``crowdwatch_deadletter_total{reason}``), logged with what a
person needs to fix the sender, and appended to a JSONL file (opened on the first
rejection, so a healthy run writes nothing). Scale-out mode uses the dead-letter topic.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import TextIO

from crowdwatch.events import iso
from crowdwatch.metrics import Metrics

log = logging.getLogger("crowdwatch.deadletter")


class DeadLetterFile:
    def __init__(self, path: str | Path, metrics: Metrics, max_raw_bytes: int = 4096) -> None:
        self.path = Path(path)
        self.metrics = metrics
        self.max_raw_bytes = max_raw_bytes
        self._file: TextIO | None = None
        self._lock = threading.Lock()
        self.count = 0

    def reject(self, source: str, reason: str, detail: str, raw: bytes | str | None) -> None:
        """Record one rejected message; ``source`` says where it came from (topic, URL, line)."""
        if isinstance(raw, bytes):
            raw = raw[: self.max_raw_bytes].decode("utf-8", errors="replace")
        elif raw is not None:
            raw = raw[: self.max_raw_bytes]
        entry = {"ts": iso(time.time()), "source": source, "reason": reason, "detail": detail,
                 "raw": raw}
        self.metrics.deadletter_total.labels(reason=reason).inc()
        with self._lock:
            self.count += 1
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")
            self._file.flush()
        log.warning("rejected a message from %s (%s: %s); kept in %s", source, reason, detail,
                    self.path, extra={"source": source, "reason": reason})

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
