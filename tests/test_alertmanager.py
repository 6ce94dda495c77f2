"""The Alertmanager sink against a real Alertmanager (Debian package) on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from crowdwatch.events import Alert
from crowdwatch.metrics import Metrics
from crowdwatch.streams.alerting.alertmanager import AlertmanagerSink
from crowdwatch.streams.alerting.sinks import Dispatcher
from tests.helpers import free_port, wait_for

SCRIPT = Path(__file__).resolve().parents[1] / "deploy" / "alertmanager" / "local.sh"


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory):
    port = free_port()
    env = {**os.environ, "CROWDWATCH_AM_PORT": str(port),
           "CROWDWATCH_AM_DIR": str(tmp_path_factory.mktemp("am"))}
    started = subprocess.run(["bash", str(SCRIPT), "start"], env=env, capture_output=True,
                             text=True, check=False)
    assert started.returncode == 0, started.stdout + started.stderr
    yield f"http://127.0.0.1:{port}"
    subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, check=False)


def active(base: str, zone: str) -> list[dict]:
    query = urllib.parse.urlencode({"filter": f'zone="{zone}"', "active": "true"})
    with urllib.request.urlopen(f"{base}/api/v2/alerts?{query}", timeout=5) as resp:
        return json.loads(resp.read())


def alert(state: str, zone: str) -> Alert:
    labels = {"site": "north", "zone": zone, "camera": "gate-cam", "rule": "density",
              "severity": "critical"}
    return Alert(f"fp-{zone}", "density", zone, "critical", state, 1_764_000_000.0, 4.3, 4.0,
                 f"density in {zone} is 4.30 persons/m²",
                 None if state == "firing" else 1_764_000_300.0, labels)


def test_fire_refresh_resolve(alertmanager):
    metrics = Metrics()
    sink = AlertmanagerSink(alertmanager, metrics, resend=0.5,
                            dashboard_url="http://grafana/d/crowdwatch-zone?var-zone={zone}")
    dispatcher = Dispatcher([sink], metrics)
    dispatcher.send(alert("firing", "gate-1"))
    (got,) = wait_for(lambda: active(alertmanager, "gate-1"), 15, "the firing alert")
    assert got["labels"] == {"alertname": "crowdwatch_density", "site": "north",
                             "zone": "gate-1", "camera": "gate-cam", "rule": "density",
                             "severity": "critical"}
    assert got["annotations"]["summary"].startswith("density in gate-1")
    assert got["annotations"]["value"] == "4.3" and got["annotations"]["threshold"] == "4"
    assert got["annotations"]["dashboard"].endswith("var-zone=gate-1")
    assert got["startsAt"].startswith("2025-11-24T16:00:00")
    # Refreshes keep it alive as one alert, not copies.
    wait_for(lambda: (metrics.value("crowdwatch_alerts_sent_total",
                                    {"sink": "alertmanager", "outcome": "refresh"}) or 0) >= 2,
             10, "refreshes")
    assert len(active(alertmanager, "gate-1")) == 1
    dispatcher.send(alert("resolved", "gate-1"))
    wait_for(lambda: active(alertmanager, "gate-1") == [], 15, "the resolution")
    sink.close()
    assert metrics.value("crowdwatch_alerts_sent_total",
                         {"sink": "alertmanager", "outcome": "error"}) in (None, 0.0)


def test_down_alertmanager_is_counted_not_blocking():
    metrics = Metrics()
    sink = AlertmanagerSink(f"http://127.0.0.1:{free_port()}", metrics, resend=60, timeout=1)
    Dispatcher([sink], metrics).send(alert("firing", "gate-2"))
    wait_for(lambda: metrics.value("crowdwatch_alerts_sent_total",
                                   {"sink": "alertmanager", "outcome": "error"}) == 1, 10,
             "the failed delivery counted")
    sink.close()
