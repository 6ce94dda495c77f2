"""Serve the console from the crowdwatch process, refusing unsafe exposure."""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Mapping

from crowdwatch.config import ConsoleConfig
from crowdwatch.console.access import Access
from crowdwatch.console.app import build_app
from crowdwatch.console.live import LiveView
from crowdwatch.console.setup import Setup
from crowdwatch.console.tuning import Tuning
from crowdwatch.errors import ConfigError, UsageError
from crowdwatch.util.http_server import HttpServer

log = logging.getLogger("crowdwatch.console")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ConsoleServer:
    def __init__(self, config: ConsoleConfig, live: LiveView,
                 env: Mapping[str, str] = os.environ, setup: Setup | None = None,
                 tuning: Tuning | None = None) -> None:
        token = env.get(config.token_env) or None
        admin = env.get(config.admin_token_env) or None
        if not is_loopback(config.host) and token is None and admin is None:
            raise ConfigError(f"console.host is {config.host!r}, beyond loopback: the console "
                              f"refuses to start without a token in ${config.token_env} "
                              "(or bind it to 127.0.0.1, or set console.port: 0)")
        self.config = config
        self.access = Access(token, config.login_attempts, admin)
        self.app = build_app(live, self.access, config.push_every, setup, tuning)
        self.server: HttpServer | None = None

    @property
    def url(self) -> str:
        port = self.server.port if self.server else self.config.port
        host = self.config.host if ":" not in self.config.host else f"[{self.config.host}]"
        return f"http://{host}:{port}/"

    def start(self) -> bool:
        """Serve; a port already taken is logged and the pipeline runs on without the
        console (counting and alerting matter more than the page)."""
        try:
            self.server = HttpServer(self.app, self.config.host, self.config.port,
                                     request_timeout=10.0, idle_timeout=5.0,
                                     max_connections=256, name="console")
        except UsageError as exc:
            log.error("console not started; the pipeline runs without it",
                      extra={"error": str(exc)})
            return False
        self.server.start()
        log.info("console at %s", self.url, extra={
            "url": self.url, "auth": "open on loopback" if self.access.open else "token"})
        return True

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
