"""HTTP sensor ingest: POST readings with a bearer token; size-limited, validated per item.

``POST {path}`` with ``Authorization: Bearer <token>`` and a JSON object or list of
readings. Answers: 200 ``{"accepted": n, "rejected": [{"index", "reason", "detail"}]}``
(bad items are dead-lettered, good ones kept), 400 for a body that is not JSON, 401
without the right token, 404/405 elsewhere, 411 without Content-Length, 413 for a body
over the limit or too many items. The server runs on its own threads: a slow client
never holds up the cameras or the rules.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from crowdwatch.config import HttpSensorConfig
from crowdwatch.errors import ConfigError
from crowdwatch.events import EventError, SensorEvent
from crowdwatch.ingest.sensor_messages import SensorMessageParser
from crowdwatch.ingest.sensor_mqtt import Reject

log = logging.getLogger("crowdwatch.sensors.http")


class HttpSensorEndpoint:
    def __init__(self, cfg: HttpSensorConfig, parser: SensorMessageParser,
                 emit: Callable[[SensorEvent], None], reject: Reject) -> None:
        token = os.environ.get(cfg.token_env)
        if not token:
            raise ConfigError(f"sensors.http: set {cfg.token_env} to the bearer token sensors "
                             "must send (the endpoint never runs open)")
        self.cfg = cfg
        self.parser = parser
        self.emit = emit
        self.reject = reject
        self._expected = f"Bearer {token}".encode()
        self.server = ThreadingHTTPServer((cfg.host, cfg.port), self._handler_class())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="sensor-http",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("sensor endpoint on http://%s:%d%s", self.cfg.host, self.port, self.cfg.path)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def authorised(self, header: str | None) -> bool:
        return header is not None and hmac.compare_digest(header.encode(), self._expected)

    def accept(self, body: bytes, source: str) -> tuple[int, dict]:
        """Validate a body; returns (status, response) after emitting the good readings.
        Never raises: an unexpected error is a 500 with its reason, and is dead-lettered."""
        try:
            return self._accept(body, source)
        except Exception as exc:
            log.exception("unexpected error on a request from %s", source)
            self.reject(source, "internal_error", f"{type(exc).__name__}: {exc}", body)
            return 500, {"error": "internal_error"}

    def _accept(self, body: bytes, source: str) -> tuple[int, dict]:
        try:
            data = self.parser.decode(body)
        except EventError as exc:
            self.reject(source, exc.reason, exc.detail, body)
            return 400, {"error": exc.reason, "detail": exc.detail}
        items = data if isinstance(data, list) else [data]
        if len(items) > self.cfg.max_items:
            self.reject(source, "too_many_items", f"{len(items)} > {self.cfg.max_items}", body)
            return 413, {"error": "too_many_items", "max_items": self.cfg.max_items}
        now = time.time()
        accepted, rejected = 0, []
        for index, item in enumerate(items):
            try:
                event = self.parser.reading(item, None, now)
            except EventError as exc:
                rejected.append({"index": index, "reason": exc.reason, "detail": exc.detail})
                self.reject(f"{source}[{index}]", exc.reason, exc.detail, json.dumps(item))
                continue
            self.emit(event)
            accepted += 1
        return 200, {"accepted": accepted, "rejected": rejected}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "crowdwatch-sensors/1"

            def _reply(self, status: int, body: dict, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/healthz":
                    self._reply(200, {"status": "ok"})
                else:
                    self._reply(405 if self.path == endpoint.cfg.path else 404,
                                {"error": "POST readings to " + endpoint.cfg.path})

            def do_POST(self) -> None:
                if self.path != endpoint.cfg.path:
                    self._reply(404, {"error": "not found"})
                    return
                if not endpoint.authorised(self.headers.get("Authorization")):
                    endpoint.reject(f"http:{self.client_address[0]}", "unauthorised",
                                    "missing or wrong bearer token", None)
                    self._reply(401, {"error": "unauthorised"},
                                {"WWW-Authenticate": 'Bearer realm="crowdwatch"'})
                    return
                length = self.headers.get("Content-Length")
                if length is None or not length.isdigit():
                    self._reply(411, {"error": "Content-Length required"})
                    return
                if int(length) > endpoint.cfg.max_body_bytes:
                    endpoint.reject(f"http:{self.client_address[0]}", "oversized",
                                    f"{length} bytes > {endpoint.cfg.max_body_bytes}", None)
                    self.close_connection = True  # the body is never read
                    self._reply(413, {"error": "oversized",
                                      "max_body_bytes": endpoint.cfg.max_body_bytes})
                    return
                body = self.rfile.read(int(length))
                status, reply = endpoint.accept(body, f"http:{self.client_address[0]}")
                self._reply(status, reply)

            def log_message(self, fmt: str, *args: object) -> None:
                log.debug("sensor endpoint: " + fmt, *args)

        return Handler
