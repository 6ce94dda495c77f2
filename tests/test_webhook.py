"""The webhook sink against a real local HTTP receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from crowdwatch.events import Alert
from crowdwatch.metrics import Metrics
from crowdwatch.streams.alerting.sinks import Dispatcher
from crowdwatch.streams.alerting.webhook import WebhookSink
from tests.helpers import free_port, wait_for

SECRET = "hook-key-123"


class Receiver(BaseHTTPRequestHandler):
    """Fails the first ``fail_first`` requests with 503, then accepts; checks signatures."""

    received: ClassVar[list[dict]] = []
    fail_first: ClassVar[int] = 0
    calls: ClassVar[int] = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.calls += 1
        stamp = self.headers["X-Crowdwatch-Timestamp"]
        expected = "sha256=" + hmac.new(SECRET.encode(), stamp.encode() + b"." + body,
                                        hashlib.sha256).hexdigest()
        ok_sig = hmac.compare_digest(expected, self.headers.get("X-Crowdwatch-Signature", ""))
        if Receiver.calls <= Receiver.fail_first:
            self.send_response(503)
            self.end_headers()
            return
        Receiver.received.append({"body": json.loads(body), "sig_ok": ok_sig,
                                  "key": self.headers["Idempotency-Key"]})
        self.send_response(204 if ok_sig else 401)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def alert(state: str = "firing") -> Alert:
    return Alert("fp1", "density", "gate", "critical", state, 1_764_000_000.0, 4.2, 4.0,
                 "density in gate is 4.20", None if state == "firing" else 1_764_000_060.0,
                 {"site": "s"})


@pytest.fixture
def receiver():
    Receiver.received, Receiver.calls, Receiver.fail_first = [], 0, 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def test_signed_and_retried_until_delivered_once(receiver, monkeypatch):
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    Receiver.fail_first = 2
    metrics = Metrics()
    sink = WebhookSink(receiver, "HOOK_SECRET", metrics, backoff=0.05)
    Dispatcher([sink], metrics).send(alert())
    wait_for(lambda: Receiver.received, 10, "delivery")
    sink.close()
    (got,) = Receiver.received
    assert got["sig_ok"] and got["body"]["fingerprint"] == "fp1"
    assert got["key"] == "fp1:firing:1764000000.000"
    assert metrics.value("crowdwatch_alerts_sent_total",
                         {"sink": "webhook", "outcome": "retry"}) == 2
    assert metrics.value("crowdwatch_alerts_sent_total", {"sink": "webhook", "outcome": "ok"}) == 1


def test_a_receiver_that_is_down_never_blocks(monkeypatch):
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    metrics = Metrics()
    sink = WebhookSink(f"http://127.0.0.1:{free_port()}/hook", "HOOK_SECRET", metrics,
                       retries=2, backoff=0.05, timeout=1)
    dispatcher = Dispatcher([sink], metrics)
    started = time.perf_counter()
    for state in ("firing", "resolved"):
        dispatcher.send(alert(state))
    assert time.perf_counter() - started < 0.05  # queued, not delivered inline
    wait_for(lambda: metrics.value("crowdwatch_alerts_sent_total",
                                   {"sink": "webhook", "outcome": "error"}) == 2, 10,
             "both counted as undelivered")
    sink.close()


def test_missing_secret_is_a_clear_error():
    with pytest.raises(ValueError, match="NOT_SET_ANYWHERE"):
        WebhookSink("http://127.0.0.1:9/hook", "NOT_SET_ANYWHERE", Metrics())
