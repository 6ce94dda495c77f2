"""Small helpers the end-to-end tests share."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
        return resp.read().decode()


def metric_value(port: int, name: str, **labels: str) -> float:
    """One sample from a /metrics endpoint (labels in any order); 0 when absent or not
    serving (yet)."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = scrape(port)
    except OSError:
        return 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.3) -> Any:
    """Poll until predicate() is truthy; fail naming what was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def die_with_parent() -> None:
    """preexec_fn for test children: the kernel kills them if the test process dies (a
    timed-out or killed test run leaves no crowdwatch process behind)."""
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def popen_child(*args: Any, **kwargs: Any) -> subprocess.Popen:
    """subprocess.Popen for a test's child process, tied to the test process's life."""
    return subprocess.Popen(*args, preexec_fn=die_with_parent, **kwargs)


def http_request(url: str, method: str = "GET", headers: dict | None = None,
            body: bytes | None = None) -> tuple[int, dict, bytes]:
    """(status, headers, body) of one request; redirects are returned, not followed."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def own_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment for a process under test with its own TMPDIR and HOME under
    ``tmp_path``: every place it can write is the test's to scan, and files other
    programs on the machine write elsewhere cannot fail the test."""
    for folder in ("tmp", "home"):
        (tmp_path / folder).mkdir(exist_ok=True)
    return {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "HOME": str(tmp_path / "home"),
            **extra}
