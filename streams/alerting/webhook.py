"""A generic webhook sink: signed JSON, retries with backoff, never blocking detection.

Each notification is POSTed as the Alert's JSON with
``X-Crowdwatch-Signature: sha256=<hex HMAC-SHA256 of timestamp + "." + body>`` (key from
an environment variable, never from the config file), ``X-Crowdwatch-Timestamp`` and an
``Idempotency-Key`` of fingerprint, state and start, so a receiver can drop the re-sends
that retries make. Delivery runs on its own thread from a bounded queue: a receiver that
is down or slow never holds up the rule engine or the other sinks.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
import urllib.error
import urllib.request

from crowdwatch.errors import ConfigError
from crowdwatch.events import Alert, event_to_bytes
from crowdwatch.metrics import Metrics
from crowdwatch.streams.alerting.sinks import QueuedSink
from crowdwatch.util.backoff import Backoff
from crowdwatch.util.redact import redact_url

log = logging.getLogger("crowdwatch.alerts")


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body,
                                hashlib.sha256).hexdigest()


def idempotency_key(alert: Alert) -> str:
    return f"{alert.fingerprint}:{alert.state}:{alert.starts_at:.3f}"


class WebhookSink(QueuedSink):
    name = "webhook"

    def __init__(self, url: str, secret_env: str | None, metrics: Metrics,
                 timeout: float = 5.0, retries: int = 5, backoff: float = 0.5,
                 backoff_max: float = 30.0, queue_size: int = 1000) -> None:
        self.url = url
        self.safe_url = redact_url(url)
        secret = os.environ.get(secret_env) if secret_env else None
        if secret_env and not secret:
            raise ConfigError(f"webhook: environment variable {secret_env} is not set")
        self.secret = secret.encode() if secret else None
        self.timeout, self.retries = timeout, retries
        self.backoff, self.backoff_max = backoff, backoff_max
        super().__init__(metrics, queue_size)

    def deliver(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            self._deliver(alert)

    def _deliver(self, alert: Alert) -> None:
        body = event_to_bytes(alert)
        delays = Backoff(self.backoff, self.backoff_max)
        for attempt in range(self.retries + 1):
            stamp = str(int(time.time()))
            headers = {"Content-Type": "application/json", "X-Crowdwatch-Timestamp": stamp,
                       "Idempotency-Key": idempotency_key(alert),
                       "User-Agent": "crowdwatch-webhook/1"}
            if self.secret:
                headers["X-Crowdwatch-Signature"] = signature(self.secret, stamp, body)
            request = urllib.request.Request(self.url, data=body, headers=headers,
                                             method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                    resp.read()
                self.metrics.alerts_sent.labels(sink=self.name, outcome="ok").inc()
                return
            except urllib.error.HTTPError as exc:
                retryable = exc.code >= 500 or exc.code == 429
                reason = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                retryable, reason = True, type(getattr(exc, "reason", exc)).__name__
            if not retryable or attempt == self.retries or self._stop.is_set():
                break
            self.metrics.alerts_sent.labels(sink=self.name, outcome="retry").inc()
            time.sleep(delays.next_delay())
        self.metrics.alerts_sent.labels(sink=self.name, outcome="error").inc()
        log.error("webhook %s did not take alert %s (%s %s): %s", self.safe_url,
                  alert.fingerprint, alert.rule, alert.state, reason,
                  extra={"sink": self.name, "fingerprint": alert.fingerprint})
