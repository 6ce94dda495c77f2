"""An HTTP server for the process's endpoints (sensor ingest, console): uvicorn, with limits.

uvicorn (asyncio, h11) holds no thread per client, caps connections
(``limit_concurrency``: beyond it a request gets 503) and closes idle kept-alive
connections. What it lacks is a deadline on *receiving* a request: its keep-alive timer
restarts on every byte, so a client sending a byte a second is served forever. The
protocol here adds that deadline (first byte of a request, or the connection, to the
end of its body); a cut-off or vanished client is one log line, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from crowdwatch.errors import UsageError

log = logging.getLogger("crowdwatch.http")


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on receiving each whole request."""

    request_timeout = 10.0  # set per server by :func:`deadline_protocol`

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
            self._arm()  # the first byte of the next request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
            self._disarm()  # the whole request is in

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._expire)

    def _disarm(self) -> None:
        if getattr(self, "_deadline", None) is not None:
            assert self._deadline is not None
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
            return
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        log.info("closed %s: no whole request within %.0fs", client, self.request_timeout,
                 extra={"client": client})
        self.transport.close()


def deadline_protocol(request_timeout: float) -> type[H11Protocol]:
    return type("DeadlineH11Protocol", (DeadlineH11Protocol,),
                {"request_timeout": request_timeout})


class HttpServer:
    """An ASGI app served on its own thread and event loop, bound at construction (so a
    taken port is a clear error at start-up, and port 0 is known at once)."""

    def __init__(self, app: Any, host: str, port: int, *, request_timeout: float,
                 idle_timeout: float, max_connections: int, name: str) -> None:
        self.name = name
        try:
            self.socket = socket.create_server((host, port), reuse_port=False)
        except OSError as exc:
            raise UsageError(f"{name}: cannot listen on {host}:{port}: {exc.strerror}") from None
        self.port = self.socket.getsockname()[1]
        self.host = host
        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off", http=deadline_protocol(
                request_timeout), timeout_keep_alive=max(1, round(idle_timeout)),
            limit_concurrency=max_connections, timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self.socket])
        except Exception:
            log.exception("%s stopped unexpectedly", self.name)

    @property
    def started_once(self) -> bool:
        return self._thread.ident is not None

    def start(self, wait: float = 5.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + wait
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.01)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=5.0)
        self.socket.close()
