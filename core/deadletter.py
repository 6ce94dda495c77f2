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

from crowdwatch.config import DeadLetterConfig
from crowdwatch.events import iso
from crowdwatch.metrics import Metrics

log = logging.getLogger("crowdwatch.deadletter")


def note_rejection(metrics: Metrics, source: str, reason: str, detail: str,
                   raw: bytes | str | None, max_bytes: int, kept_in: str) -> str | None:
    """Count and log one rejected message; return its raw text cut to ``max_bytes``.

    Shared by the dead-letter file (embedded) and the ingest publisher (Kafka topic)."""
    metrics.deadletter_total.labels(reason=reason).inc()
    log.warning("rejected a message from %s (%s: %s); kept in %s", source, reason, detail,
                kept_in, extra={"source": source, "reason": reason})
    if isinstance(raw, bytes):
        return raw[:max_bytes].decode("utf-8", errors="replace")
    return None if raw is None else raw[:max_bytes]


class DeadLetterFile:
    def __init__(self, path: str | Path, metrics: Metrics, max_raw_bytes: int = 4096) -> None:
        self.path = Path(path)
        self.metrics = metrics
        self.max_raw_bytes = max_raw_bytes
        self._file: TextIO | None = None
        self._lock = threading.Lock()
        self.count = 0

    @classmethod
    def of(cls, config: DeadLetterConfig, metrics: Metrics,
           path: str | None = None) -> DeadLetterFile:
        """From the ``deadletter`` config section; ``path`` overrides its file."""
        return cls(path or config.path, metrics, config.max_raw_bytes)

    def reject(self, source: str, reason: str, detail: str, raw: bytes | str | None) -> None:
        """Record one rejected message; ``source`` says where it came from (topic, URL, line)."""
        raw = note_rejection(self.metrics, source, reason, detail, raw, self.max_raw_bytes,
                             str(self.path))
        entry = {"ts": iso(time.time()), "source": source, "reason": reason, "detail": detail,
                 "raw": raw}
        with self._lock:
            self.count += 1
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
