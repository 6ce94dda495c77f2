"""The contract: `crowdwatch run` on the built-in demo, as a newcomer runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import free_port, own_env, popen_child, scrape

MEDIA = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp", ".mp4",
         ".avi", ".mkv", ".mov", ".h264", ".mjpeg", ".webm", ".ts", ".npy"}




def new_media_files(roots: list[Path], since: float) -> list[str]:
    found = set()
    for root in roots:
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in {".git", ".venv", "proc"}]
            for name in filenames:
                path = Path(dirpath, name)
                if path.suffix.lower() in MEDIA:
                    try:
                        if path.stat().st_mtime >= since:
                            found.add(str(path))
                    except OSError:
                        pass
    return sorted(found)


def start_run(tmp_path: Path, *args: str) -> subprocess.Popen:
    """The demo with its own working folder, TMPDIR and HOME under ``tmp_path``: every
    place it could write is ours to scan, and no other program's files land there."""
    return popen_child(
        [sys.executable, "-m", "crowdwatch.cli", "run", *args],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=own_env(tmp_path),
    )


def wait_for_metric(proc: subprocess.Popen, port: int, name: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            text = scrape(port)
            if any(line.startswith(name + "{") for line in text.splitlines()):
                return text
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{name} never appeared on :{port}")


@pytest.mark.slow
def test_demo_fires_and_resolves_within_60s(tmp_path, repo_root):
    started = time.time() - 1
    port = free_port()
    alerts_path = tmp_path / "a.jsonl"
    proc = start_run(tmp_path, "--duration", "60", "--alerts-jsonl", str(alerts_path),
                     "--metrics-port", str(port))
    text = wait_for_metric(proc, port, "crowdwatch_zone_people", timeout=20)
    assert 'zone="gate-pavement"' in text
    assert "crowdwatch_camera_up{camera=\"school-gate-sim\"} 1.0" in text
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    alerts = [json.loads(line) for line in alerts_path.read_text().splitlines()]
    for a in alerts:
        assert {"fingerprint", "rule", "zone_id", "severity", "state", "starts_at",
                "value"} <= set(a)
    firing = [a for a in alerts if a["state"] == "firing" and a["zone_id"] == "gate-pavement"]
    resolved = {a["fingerprint"] for a in alerts if a["state"] == "resolved"}
    assert firing, alerts
    assert any(a["fingerprint"] in resolved for a in firing), alerts
    # Fire once, resolve once per fingerprint.
    pairs = [(a["fingerprint"], a["state"]) for a in alerts]
    assert len(pairs) == len(set(pairs))
    # Console lines are readable.
    assert "FIRING" in out and "RESOLVED" in out
    # No image or video file written anywhere the process writes: its working folder,
    # its TMPDIR and HOME (all under tmp_path), and the repository.
    roots = [tmp_path, repo_root]
    assert new_media_files(roots, started) == []


@pytest.mark.slow
def test_ctrl_c_stops_cleanly(tmp_path):
    port = free_port()
    proc = start_run(tmp_path, "--metrics-port", str(port))
    wait_for_metric(proc, port, "crowdwatch_frames_total", timeout=20)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "stopping cleanly" in err
