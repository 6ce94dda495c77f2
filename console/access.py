"""Who may see the console: a token from the environment, sessions, a login rate limit.

On loopback with no token set the console is open (the machine's own users). With a
token, every page and API needs it, as ``Authorization: Bearer`` or a session cookie from
the login form; failed logins are limited per client. The token never appears in a page,
a log line or an error.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque

SESSION_S = 12 * 3600.0
COOKIE = "cw_session"
WINDOW_S = 60.0


class TooManyAttempts(Exception):
    """The client failed too often within the window; it must wait ``retry_after`` s."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after:.0f} s")
        self.retry_after = retry_after


class Access:
    def __init__(self, token: str | None, attempts_per_minute: int) -> None:
        self.token = token or None
        self.attempts = attempts_per_minute
        self._sessions: dict[str, float] = {}
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    @property
    def open(self) -> bool:
        return self.token is None

    def _matches(self, supplied: str) -> bool:
        assert self.token is not None
        return hmac.compare_digest(supplied.encode("utf-8"), self.token.encode("utf-8"))

    def allowed(self, authorization: str | None, session: str | None) -> bool:
        if self.token is None:
            return True
        if authorization and authorization.startswith("Bearer "):
            return self._matches(authorization[len("Bearer "):])
        if session:
            with self._lock:
                expiry = self._sessions.get(session)
                if expiry is not None and expiry > time.monotonic():
                    return True
                self._sessions.pop(session, None)
        return False

    def login(self, client: str, supplied: str) -> str | None:
        """A new session id for the right token; None for a wrong one. Raises
        :class:`TooManyAttempts` once ``client`` failed too often this minute."""
        now = time.monotonic()
        with self._lock:
            failures = self._failures.setdefault(client, deque())
            while failures and failures[0] <= now - WINDOW_S:
                failures.popleft()
            if len(failures) >= self.attempts:
                raise TooManyAttempts(failures[0] + WINDOW_S - now)
            if self.token is None or not self._matches(supplied):
                failures.append(now)
                return None
            session = secrets.token_urlsafe(32)
            self._sessions = {k: v for k, v in self._sessions.items() if v > now}
            self._sessions[session] = now + SESSION_S
            return session

    def logout(self, session: str | None) -> None:
        with self._lock:
            self._sessions.pop(session or "", None)
