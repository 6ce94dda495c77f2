"""The embedded engine's state file: what rules learned over weeks survives a restart.

Only the state of rules marked ``persistent`` (the time-of-week models of ``seasonal`` and
``unusual``) is kept; timers and firing alerts are not (a restarted process re-evaluates
them from live data within seconds, while a usual for Tuesday 15:00 takes weeks). The
worker keeps the same state in its changelog topic instead. The file is written whole or
not at all; a file that cannot be read is moved aside with the reason logged and the
rules relearn, so a bad file never stops the monitor.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from crowdwatch.events import EventError, load_json
from crowdwatch.streams.rules.base import RuleState, state_from_dict, state_to_dict
from crowdwatch.util.files import check_writable, write_atomic

log = logging.getLogger("crowdwatch.state")

FORMAT = 1
MAX_BYTES = 512 * 1024 * 1024  # 50 KB per model: room for ten thousand zones


class StateFileError(Exception):
    """The file exists but is not a state file this version can read."""


class StateFile:
    def __init__(self, path: str | Path, site: str) -> None:
        self.path = Path(path)
        self.site = site

    def check_writable(self) -> None:
        check_writable(self.path, "engine.state_file")

    def read(self) -> dict[str, RuleState]:
        """The saved states; raises :class:`StateFileError` naming what is wrong."""
        size = self.path.stat().st_size
        if size > MAX_BYTES:
            raise StateFileError(f"{self.path}: {size:,} bytes, over the {MAX_BYTES:,} limit")
        try:
            data = load_json(self.path.read_bytes())
        except EventError as exc:
            raise StateFileError(f"{self.path}: not JSON ({exc.detail})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise StateFileError(f"{self.path}: not a crowdwatch state file (format "
                                 f"{FORMAT} expected)")
        if data.get("site") != self.site:
            raise StateFileError(f"{self.path}: saved by site {data.get('site')!r}, this is "
                                 f"{self.site!r}")
        states = data.get("states")
        if not isinstance(states, dict):
            raise StateFileError(f"{self.path}: field 'states' is not an object")
        out: dict[str, RuleState] = {}
        for key, value in states.items():
            state = state_from_dict(value) if isinstance(value, dict) else None
            if state is None:
                log.warning("state file entry skipped: unknown type or older schema",
                            extra={"path": str(self.path), "key": key})
                continue
            out[key] = state
        return out

    def load(self) -> dict[str, RuleState]:
        """What was saved ({} when there is no file); an unreadable file is moved aside
        (``<name>.bad-<epoch>``) and logged, and the rules start learning afresh."""
        if not self.path.exists():
            return {}
        try:
            return self.read()
        except (StateFileError, OSError) as exc:
            aside = self.path.with_name(f"{self.path.name}.bad-{int(time.time())}")
            try:
                self.path.replace(aside)
            except OSError:
                aside = self.path
            log.error("state file unreadable; learned models start afresh",
                      extra={"path": str(self.path), "error": str(exc),
                             "kept_as": str(aside)})
            return {}

    def save(self, states: dict[str, RuleState]) -> None:
        body = {"format": FORMAT, "site": self.site, "saved_at": time.time(),
                "states": {key: state_to_dict(state) for key, state in states.items()}}
        write_atomic(self.path, json.dumps(body, separators=(",", ":")).encode("utf-8"))
