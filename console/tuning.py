"""Tuning from the console (admin): replay a recording with one rule parameter swept,
show the trade-off, write the chosen value into ``site.yaml`` and apply it.

The replay and scoring are ``crowdwatch tune``'s, handed in as ``run_tune`` so this layer
stays free of the tools. One job at a time; it runs on a worker thread with progress.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crowdwatch.config import ConfigFileError, CrowdwatchConfig
from crowdwatch.console.site_editor import (
    NO_SITE_FILE,
    SiteEditor,
    commit,
    problem,
    problems_of,
)

RunTune = Callable[[CrowdwatchConfig, Path, str, str, float | None, float,
                    Callable[[int, int], None]], dict[str, Any]]
SUFFIXES = (".csv", ".jsonl", ".ndjson")
SKIP = {"kind", "zone", "source", "id", "metric", "statistic", "severity", "sensor",
        "camera"}


@dataclass
class Job:
    id: str
    state: str = "running"
    done: int = 0
    total: int = 0
    report: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class Tuning:
    folder: Path
    editor: SiteEditor | None
    current: Callable[[], CrowdwatchConfig]
    apply: Callable[[CrowdwatchConfig], str | None]
    run_tune: RunTune
    tunable_kinds: set[str]
    jobs: dict[str, Job] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def recordings(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir()
                      if p.is_file() and p.suffix in SUFFIXES)

    def rules(self) -> list[dict[str, Any]]:
        out = []
        for index, rule in enumerate(self.current().rules):
            if rule.kind not in self.tunable_kinds:
                continue
            params = {k: v for k, v in rule.model_dump().items()
                      if k not in SKIP and isinstance(v, int | float)
                      and not isinstance(v, bool)}
            out.append({"index": index, "id": rule.rule_id(), "kind": rule.kind,
                        "zone": getattr(rule, "zone", ""), "params": params})
        return out

    def start(self, recording: str, rule: int, param: str, sweep: str,
              level: float | None, min_peak: float) -> Job:
        """Validate and start a sweep; raises ValueError naming the bad field."""
        if recording not in self.recordings():  # a name from the list, never a path
            raise ValueError(f"recording: {recording!r} is not in the recordings folder")
        if rule not in {r["index"] for r in self.rules()}:
            raise ValueError(f"rule: #{rule} is not a tunable rule")
        with self._lock:
            if any(j.state == "running" for j in self.jobs.values()):
                raise ValueError("a sweep is already running; wait for it")
            job = Job(uuid.uuid4().hex[:12])
            self.jobs = {job.id: job}

        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        def work() -> None:
            try:
                job.report = self.run_tune(self.current(), self.folder / recording, f"#{rule}",
                                           f"{param}={sweep}", level, min_peak, progress)
                job.state = "done"
            except Exception as exc:  # shown on the page; the process goes on
                job.error, job.state = str(exc), "failed"

        threading.Thread(target=work, name="console-tune", daemon=True).start()
        return job

    def choose(self, rule: int, param: str, value: float) -> tuple[int, dict[str, Any]]:
        """Write the chosen value into the site file and apply it (or say why not)."""
        if self.editor is None:
            return 409, {"ok": False, "problems": [problem(NO_SITE_FILE)]}
        try:
            text, config = self.editor.rule_edited(rule, param, value)
        except ConfigFileError as exc:
            return 422, {"ok": False, "problems": problems_of(exc)}
        return commit(self.editor, text, config, self.apply)
