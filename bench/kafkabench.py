"""What the Kafka benches share: a broker of their own, a free port, a scrape of a
process's /metrics, and a quantile from a Prometheus histogram's cumulative buckets."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

KAFKA = Path(__file__).resolve().parents[1] / "deploy" / "kafka" / "local.sh"


@contextlib.contextmanager
def local_broker(name: str) -> Iterator[str]:
    """A real broker (deploy/kafka/local.sh) on a free port; yields its bootstrap address
    and removes it with its data afterwards."""
    port = free_port()
    env = {**os.environ, "CROWDWATCH_KAFKA_PORT": str(port),
           "CROWDWATCH_KAFKA_CONTROLLER_PORT": str(free_port()),
           "CROWDWATCH_KAFKA_DIR": tempfile.mkdtemp(prefix=f"crowdwatch-{name}-kafka-"),
           "CROWDWATCH_KAFKA_HEAP": "1g"}
    subprocess.run(["bash", str(KAFKA), "start"], env=env, check=True, capture_output=True)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run(["bash", str(KAFKA), "clean"], env=env, check=False,
                       capture_output=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int, names: list[str] | None = None) -> dict[str, float]:
    """Every sample as {'name{labels}': value} (only ``names`` when given)."""
    query = "?" + "&".join(f"name[]={n}" for n in names) if names else ""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics{query}", timeout=5) as resp:
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def buckets(sample: dict[str, float], name: str) -> list[tuple[float, float]]:
    """A histogram's cumulative (le, count) pairs, in order."""
    return sorted((float(k.split('le="')[1].split('"')[0]), v) for k, v in sample.items()
                  if k.startswith(name + "_bucket"))


def quantile(counts: list[tuple[float, float]], q: float) -> float | None:
    """Quantile by linear interpolation within cumulative histogram buckets."""
    if not counts or counts[-1][1] <= 0:
        return None
    target = q * counts[-1][1]
    prev_le, prev_c = 0.0, 0.0
    for le, c in counts:
        if c >= target:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (target - prev_c) / max(1e-9, c - prev_c)
        prev_le, prev_c = le, c
    return prev_le
