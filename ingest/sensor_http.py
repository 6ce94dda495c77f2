"""HTTP sensor ingest: POST readings with a bearer token; size-limited, validated per item.

``POST {path}`` with ``Authorization: Bearer <token>`` and a JSON object or list of
readings. Answers: 200 ``{"accepted": n, "rejected": [{"index", "reason", "detail"}]}``
(bad items are dead-lettered, good ones kept), 400 for a body that is not JSON, 401
without the right token, 404/405 elsewhere, 411 without Content-Length, 413 for a body
over the limit or too many items, 503 beyond ``max_connections``. It runs on
:class:`HttpServer` (uvicorn with a request deadline, an idle timeout and a connection
cap); validation runs on a bounded pool of ``workers`` threads, so a flood queues
instead of spawning threads, and a slow client never holds up the cameras or the rules.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import time
from collections.abc import Callable

import anyio
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from crowdwatch.config import HttpSensorConfig
from crowdwatch.errors import ConfigError
from crowdwatch.events import EventError, SensorEvent
from crowdwatch.ingest.sensor_messages import SensorMessageParser
from crowdwatch.ingest.sensor_mqtt import Reject
from crowdwatch.util.http_server import HttpServer

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
        self._limiter: anyio.CapacityLimiter | None = None
        self.name = "http"
        self.app = Starlette(routes=[Route(cfg.path, self._post, methods=["POST"]),
                                     Route("/healthz", self._healthz, methods=["GET"])])
        self.http = self._server(cfg.port)
        self.port = self.http.port

    def _server(self, port: int) -> HttpServer:
        cfg = self.cfg
        return HttpServer(self.app, cfg.host, port, request_timeout=cfg.request_timeout,
                          idle_timeout=cfg.idle_timeout, max_connections=cfg.max_connections,
                          name="sensor-http")

    def start(self) -> None:
        if self.http.started_once:  # a restart: the old server's socket is gone
            self.http.stop()
            self.http = self._server(self.port)
        self.http.start()
        log.info("sensor endpoint on http://%s:%d%s", self.cfg.host, self.port, self.cfg.path)

    def alive(self) -> bool:
        return self.http.alive()

    def up(self) -> bool:
        return self.alive()

    def stop(self) -> None:
        self.http.stop()

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

    async def _healthz(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def _post(self, request: Request) -> JSONResponse:
        source = f"http:{request.client.host if request.client else 'unknown'}"
        if not self.authorised(request.headers.get("authorization")):
            self.reject(source, "unauthorised", "missing or wrong bearer token", None)
            return JSONResponse({"error": "unauthorised"}, 401,
                                {"WWW-Authenticate": 'Bearer realm="crowdwatch"'})
        length = request.headers.get("content-length")
        if length is None or not length.isdigit():
            return JSONResponse({"error": "Content-Length required"}, 411)
        limit = self.cfg.max_body_bytes
        if int(length) > limit:
            self.reject(source, "oversized", f"{length} bytes > {limit}", None)
            return JSONResponse({"error": "oversized", "max_body_bytes": limit}, 413,
                                {"Connection": "close"})  # the body is never read
        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    self.reject(source, "oversized", f"more than {limit} bytes", None)
                    return JSONResponse({"error": "oversized", "max_body_bytes": limit}, 413,
                                        {"Connection": "close"})
        except ClientDisconnect:
            log.info("%s went away before sending its body", source, extra={"source": source})
            return JSONResponse({"error": "client disconnected"}, 400)
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.cfg.workers)
        status, reply = await anyio.to_thread.run_sync(self.accept, bytes(body), source,
                                                       limiter=self._limiter)
        return JSONResponse(reply, status)
