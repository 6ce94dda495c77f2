"""The Grafana annotation sink against a local HTTP server that checks each request."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crowdwatch.events import Alert
from crowdwatch.metrics import Metrics
from crowdwatch.streams.alerting.grafana_annotations import GrafanaAnnotationSink
from crowdwatch.streams.alerting.sinks import Dispatcher
from tests.helpers import free_port, wait_for

TOKEN = "glsa_test_token"
T0 = 1_764_000_000.0


class FakeGrafana:
    """Just enough of Grafana's annotations API; records what it was sent."""

    def __init__(self, fail_first: int = 0) -> None:
        self.requests: list[tuple[str, str, dict]] = []
        self.fail_first = fail_first
        self.next_id = 41
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _body(self) -> dict:
                return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._reply(401, {"message": "Unauthorized"})
                    return
                body = self._body()
                if fake.fail_first > 0:
                    fake.fail_first -= 1
                    self._reply(503, {"message": "try later"})
                    return
                fake.requests.append((self.command, self.path, body))
                if self.command == "POST" and self.path == "/api/annotations":
                    fake.next_id += 1
                    self._reply(200, {"message": "Annotation added", "id": fake.next_id})
                elif self.command == "PATCH" and self.path.startswith("/api/annotations/"):
                    self._reply(200, {"message": "Annotation patched"})
                else:
                    self._reply(404, {"message": "not found"})

            do_POST = do_PATCH = _handle

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def alert(state: str) -> Alert:
    return Alert("fp-gate", "density", "gate-1", "critical", state, T0, 4.2, 4.0,
                 "density in gate-1 is 4.20 persons/m²", None if state == "firing" else T0 + 90,
                 {"site": "north", "zone": "gate-1", "camera": "cam-1", "rule": "density",
                  "severity": "critical"})


@pytest.fixture
def token(monkeypatch):
    monkeypatch.setenv("TEST_GRAFANA_TOKEN", TOKEN)


def test_start_creates_an_annotation_and_end_turns_it_into_a_region(token):
    grafana = FakeGrafana()
    metrics = Metrics()
    sink = GrafanaAnnotationSink(grafana.url, "TEST_GRAFANA_TOKEN", metrics,
                                 dashboard_uid="crowdwatch-zone")
    dispatcher = Dispatcher([sink], metrics)
    dispatcher.send(alert("firing"))
    dispatcher.send(alert("resolved"))
    wait_for(lambda: len(grafana.requests) == 2, 10, "two annotation requests")
    sink.close()
    (m1, p1, created), (m2, p2, patched) = grafana.requests
    assert (m1, p1) == ("POST", "/api/annotations")
    assert created["time"] == int(T0 * 1000) and created["timeEnd"] is None
    assert created["dashboardUID"] == "crowdwatch-zone"
    assert set(created["tags"]) == {"crowdwatch", "rule:density", "severity:critical",
                                    "zone:gate-1", "camera:cam-1"}
    assert created["text"].startswith("FIRING: density in gate-1")
    assert (m2, p2) == ("PATCH", "/api/annotations/42")  # the id Grafana gave the start
    assert patched["time"] == int(T0 * 1000) and patched["timeEnd"] == int((T0 + 90) * 1000)
    assert patched["tags"] == created["tags"] and patched["text"].startswith("RESOLVED")
    assert metrics.value("crowdwatch_alerts_sent_total",
                         {"sink": "grafana", "outcome": "ok"}) == 2


def test_grafana_errors_are_retried_and_a_dead_grafana_never_blocks(token):
    grafana = FakeGrafana(fail_first=2)
    metrics = Metrics()
    sink = GrafanaAnnotationSink(grafana.url, "TEST_GRAFANA_TOKEN", metrics, backoff=0.05)
    Dispatcher([sink], metrics).send(alert("firing"))
    wait_for(lambda: len(grafana.requests) == 1, 10, "the annotation after two 503s")
    assert metrics.value("crowdwatch_alerts_sent_total",
                         {"sink": "grafana", "outcome": "retry"}) == 2
    sink.close()

    dead = GrafanaAnnotationSink(f"http://127.0.0.1:{free_port()}", "TEST_GRAFANA_TOKEN",
                                 Metrics(), retries=1, backoff=0.05)
    started = time.monotonic()
    dead.send(alert("firing"))
    assert time.monotonic() - started < 0.1  # queued, never delivered inline
    wait_for(lambda: dead.metrics.value("crowdwatch_alerts_sent_total",
                                        {"sink": "grafana", "outcome": "error"}) == 1, 15,
             "the counted failure")
    dead.close()


def test_missing_token_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("TEST_GRAFANA_TOKEN", raising=False)
    with pytest.raises(ValueError, match="TEST_GRAFANA_TOKEN"):
        GrafanaAnnotationSink("http://127.0.0.1:3000", "TEST_GRAFANA_TOKEN", Metrics())
