"""Structured logs: logfmt by default (readable and greppable), JSON on request."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime

_STD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _extras(record: logging.LogRecord) -> dict:
    return {k: v for k, v in vars(record).items() if k not in _STD}


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        parts = [f"ts={ts}", f"level={record.levelname.lower()}", f"logger={record.name}",
                 f"msg={json.dumps(record.getMessage(), ensure_ascii=False)}"]
        parts += [f"{k}={json.dumps(v, default=str)}" for k, v in _extras(record).items()]
        if record.exc_info:
            parts.append(f"exc={json.dumps(self.formatException(record.exc_info))}")
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {"ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
                "level": record.levelname.lower(), "logger": record.name,
                "msg": record.getMessage(), **_extras(record)}
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class RepeatLimit(logging.Filter):
    """At most one record per (logger, message template) per ``window_s``; the next one
    let through carries ``repeats_suppressed``. A client library retrying a broker that
    is gone can log the same line thousands of times a second (aiokafka's metadata
    retries: 6.5 MB in 12 s, measured), which fills disks and any pipe nobody reads."""

    def __init__(self, window_s: float) -> None:
        super().__init__()
        self.window_s = window_s
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}  # -> (last shown, hidden)

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = time.monotonic()
        shown, hidden = self._seen.get(key, (-float("inf"), 0))
        if now - shown < self.window_s:
            self._seen[key] = (shown, hidden + 1)
            return False
        if hidden:
            record.repeats_suppressed = hidden
        self._seen[key] = (now, 0)
        return True


# Client libraries whose warnings reach our logs, in our format, repeats limited (faust
# configures its own logging in the workers, so it is left alone).
LIBRARY_LOGGERS = ("aiokafka",)


def setup_logging(level: str = "info", fmt: str = "logfmt",
                  library_repeat_s: float = 10.0) -> None:
    formatter = JsonFormatter() if fmt == "json" else LogfmtFormatter()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger("crowdwatch")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    library_handler = logging.StreamHandler(sys.stderr)
    library_handler.setFormatter(formatter)
    library_handler.addFilter(RepeatLimit(library_repeat_s))
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        library.handlers[:] = [library_handler]
        library.setLevel(logging.WARNING)
        library.propagate = False
