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
    """Roles: ``viewer`` (the live page) and ``admin`` (also camera setup). With no token
    at all (loopback only) everyone is admin."""

    def __init__(self, token: str | None, attempts_per_minute: int,
                 admin_token: str | None = None) -> None:
        self.token = token or None
        self.admin_token = admin_token or None
        self.attempts = attempts_per_minute
        self._sessions: dict[str, tuple[float, str]] = {}
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    @property
    def open(self) -> bool:
        return self.token is None and self.admin_token is None

    def _role_of(self, supplied: str) -> str | None:
        raw = supplied.encode("utf-8")
        for role, token in (("admin", self.admin_token), ("viewer", self.token)):
            if token is not None and hmac.compare_digest(raw, token.encode("utf-8")):
                return role
        return None

    def role(self, authorization: str | None, session: str | None) -> str | None:
        """The caller's role, or None (not allowed in)."""
        if self.open:
            return "admin"
        if authorization and authorization.startswith("Bearer "):
            return self._role_of(authorization[len("Bearer "):])
        if session:
            with self._lock:
                found = self._sessions.get(session)
                if found is not None and found[0] > time.monotonic():
                    return found[1]
                self._sessions.pop(session, None)
        return None

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
            role = None if self.open else self._role_of(supplied)
            if role is None:
                failures.append(now)
                return None
            session = secrets.token_urlsafe(32)
            self._sessions = {k: v for k, v in self._sessions.items() if v[0] > now}
            self._sessions[session] = (now + SESSION_S, role)
            return session

    def logout(self, session: str | None) -> None:
        with self._lock:
            self._sessions.pop(session or "", None)
