"""The embedded dead-letter sink: rejected messages with their reason, never dropped silently.

Each rejection is counted (``crowdwatch_deadletter_total{reason}``), logged with what a
person needs to fix the sender, and kept as one :class:`DeadLetter` record: appended to
a JSONL file (opened on the first rejection, so a healthy run writes nothing), or in
scale-out mode sent to the dead-letter topic with the same layout.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TextIO

from crowdwatch.config import DeadLetterConfig
from crowdwatch.events import SCHEMA_VERSION, iso
from crowdwatch.metrics import Metrics
from crowdwatch.util.files import check_writable

log = logging.getLogger("crowdwatch.deadletter")
MAX_DETAIL = 500


@dataclass(slots=True)
class DeadLetter:
    """One rejected message: the one record layout of the dead-letter file and topic.

    ``source`` says who sent it (a topic, an MQTT topic, an HTTP client, a file),
    ``position`` where it was (``topic[partition]@offset``, ``file:line``, an item
    index; '' if nothing more precise), ``size`` its length in bytes, and ``raw`` its
    text cut to the configured bound.
    """

    TYPE: ClassVar[str] = "deadletter"
    reason: str
    detail: str
    source: str
    position: str
    ts: float
    size: int
    raw: str | None

    @classmethod
    def of(cls, source: str, reason: str, detail: str, raw: bytes | str | None,
           max_bytes: int, position: str = "") -> DeadLetter:
        data = raw.encode("utf-8", "replace") if isinstance(raw, str) else raw
        text = None if data is None else data[:max_bytes].decode("utf-8", errors="replace")
        return cls(reason, detail[:MAX_DETAIL], source, position, time.time(),
                   len(data or b""), text)

    def to_dict(self) -> dict[str, Any]:
        return {"v": SCHEMA_VERSION, "type": self.TYPE, "reason": self.reason,
                "detail": self.detail, "source": self.source, "position": self.position,
                "time": iso(self.ts), "size": self.size, "raw": self.raw}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


def note_rejection(metrics: Metrics, letter: DeadLetter, kept_in: str) -> None:
    """Count and log one rejected message (the file and the topics share this)."""
    metrics.deadletter_total.labels(reason=letter.reason).inc()
    where = f" at {letter.position}" if letter.position else ""
    log.warning("rejected a message from %s%s (%s: %s); kept in %s", letter.source, where,
                letter.reason, letter.detail[:200], kept_in,
                extra={"source": letter.source, "reason": letter.reason})


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

    def check_writable(self) -> None:
        """At start-up: a path that can never be written is a clear error now, not a
        surprise at the first bad message (the file itself is made only then)."""
        check_writable(self.path, "deadletter.path")

    def reject(self, source: str, reason: str, detail: str, raw: bytes | str | None,
               position: str = "") -> None:
        """Record one rejected message; ``source`` says where it came from (topic, URL, line)."""
        letter = DeadLetter.of(source, reason, detail, raw, self.max_raw_bytes, position)
        note_rejection(self.metrics, letter, str(self.path))
        with self._lock:
            self.count += 1
            try:
                if self._file is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._file = self.path.open("a", encoding="utf-8")
                self._file.write(letter.to_json() + "\n")
                self._file.flush()
            except OSError as exc:
                # Counted and logged above; a read-only or full disk must not turn a bad
                # message into a dropped connection or a dead listener.
                self.metrics.deadletter_write_errors.inc()
                log.error("cannot write the dead-letter file %s (%s); the rejection is "
                          "counted and logged only", self.path, exc.strerror or exc,
                          extra={"path": str(self.path)})

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                try:
                    self._file.close()
                except OSError as exc:
                    log.error("closing the dead-letter file %s failed: %s", self.path, exc)
                self._file = None
