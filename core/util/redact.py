"""Credential redaction for anything that reaches a log, a metric or an alert."""

from __future__ import annotations

from urllib.parse import urlparse


def redact_url(url: str) -> str:
    """Drop credentials from a URL before it reaches a log, metric or error."""
    parsed = urlparse(url)
    if parsed.password is None and parsed.username is None:
        return url
    host = parsed.hostname or ""
    if parsed.port:
        host += f":{parsed.port}"
    return parsed._replace(netloc=f"***@{host}").geturl()
