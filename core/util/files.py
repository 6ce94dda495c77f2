"""Files the process writes: can it, and writing one whole or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from crowdwatch.errors import ConfigError


def missing_file(path: str) -> str | None:
    """The problem with a path that must name an existing file, or None."""
    return None if Path(path).is_file() else f"file not found: {path}"


def check_writable(path: Path, setting: str) -> None:
    """At start-up: a path that can never be written is a clear error naming the setting
    now, not a surprise later (the file itself may be made only then)."""
    probe = path.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    writable = probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)
    if path.exists():
        writable = path.is_file() and os.access(path, os.W_OK)
    if not writable:
        raise ConfigError(f"{setting}: cannot write {path} (check the folder exists or can "
                          "be made, and its permissions)")


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so a crash leaves the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
