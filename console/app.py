"""The console's web app (Starlette): the live page, its data as JSON and as a push
stream (server-sent events), and login. Served by :class:`~.server.ConsoleServer`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crowdwatch.console.access import COOKIE, SESSION_S, Access, TooManyAttempts
from crowdwatch.console.live import LiveView
from crowdwatch.console.off_pages import off_routes
from crowdwatch.console.responses import STATIC, cross_site
from crowdwatch.console.setup import Setup
from crowdwatch.console.setup_routes import setup_routes
from crowdwatch.console.tuning import Tuning
from crowdwatch.console.tuning_routes import tuning_routes

MAX_FORM_BYTES = 4096
# No image, media, object or frame source at all: the page cannot show a pixel even by
# mistake. Sparklines are inline SVG (document elements, not images).
CSP = ("default-src 'self'; img-src 'none'; media-src 'none'; object-src 'none'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
# Setup (admin) shows one masked snapshot, fetched into memory and shown from a blob: URL.
SETUP_CSP = CSP.replace("img-src 'none'", "img-src 'self' blob:")
HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
           (b"x-frame-options", b"DENY")]


class SecurityHeaders:
    """Adds the headers above to every response (pure ASGI, so streams pass untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        path = scope.get("path", "")
        csp = SETUP_CSP if path.startswith(("/setup", "/api/setup")) else CSP

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS,
                                      (b"content-security-policy", csp.encode())]
            await send(message)

        await self.app(scope, receive, with_headers)


def build_app(live: LiveView, access: Access, push_every: float,
              setup: Setup | None = None, tuning: Tuning | None = None) -> ASGIApp:
    def role(request: Request) -> str | None:
        return access.role(request.headers.get("authorization"), request.cookies.get(COOKIE))

    def authorised(request: Request) -> bool:
        return role(request) is not None

    def denied(request: Request) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "unauthorised: send the console token"},
                                status_code=401, headers={"www-authenticate": "Bearer"})
        return RedirectResponse("/login", status_code=303)

    def same_origin(request: Request) -> bool:
        """CSRF guard for changes: a browser's Origin (or Referer) must be this host."""
        origin = request.headers.get("origin") or request.headers.get("referer")
        if not origin:
            return True  # not a browser form (curl, a script with the token)
        return urlsplit(origin).netloc == request.headers.get("host")

    async def page(request: Request) -> Response:
        if not authorised(request):
            return denied(request)
        return FileResponse(STATIC / "live.html", headers={"cache-control": "no-store"})

    async def login_page(request: Request) -> Response:
        if access.open:
            return RedirectResponse("/", status_code=303)
        return FileResponse(STATIC / "login.html", headers={"cache-control": "no-store"})

    async def login(request: Request) -> Response:
        if not same_origin(request):
            return cross_site()
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return PlainTextResponse("form too large", status_code=413)
        # A urlencoded form has one field; parsed here (no multipart library needed).
        supplied = parse_qs(body.decode("utf-8", "replace")).get("token", [""])[0]
        client = request.client.host if request.client else "?"
        try:
            session = access.login(client, supplied)
        except TooManyAttempts as exc:
            return PlainTextResponse("too many failed logins; wait a minute", status_code=429,
                                     headers={"retry-after": str(round(exc.retry_after) + 1)})
        if session is None:
            return RedirectResponse("/login?failed=1", status_code=303)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, session, max_age=round(SESSION_S), httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")
        return response

    async def logout(request: Request) -> Response:
        if not same_origin(request):
            return cross_site()
        access.logout(request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    async def snapshot(request: Request) -> Response:
        if not authorised(request):
            return denied(request)
        return JSONResponse(live.snapshot(), headers={"cache-control": "no-store"})

    async def stream(request: Request) -> Response:
        if not authorised(request):
            return denied(request)

        async def events() -> Any:
            # retry: the browser reconnects a second after the process restarts.
            yield f"retry: 1000\nevent: snapshot\ndata: {json.dumps(live.snapshot())}\n\n"
            while not await request.is_disconnected():
                await asyncio.sleep(push_every)
                yield f"event: update\ndata: {json.dumps(live.snapshot(history=False))}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"cache-control": "no-store"})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    def admin(request: Request) -> Response | None:
        """None for an admin; else the answer (401/redirect, or 403 for a viewer)."""
        found = role(request)
        if found is None:
            return denied(request)
        if found != "admin":
            return JSONResponse({"error": "setup needs the admin role"}, status_code=403)
        return None

    routes = setup_routes(setup, admin, same_origin) if setup is not None else []
    if tuning is not None:
        routes += tuning_routes(tuning, admin, same_origin)
    offered = {"setup": setup is not None, "tune": tuning is not None}

    async def pages(request: Request) -> Response:
        """Which pages this console offers (the live page shows links to those only)."""
        return (JSONResponse(offered) if authorised(request) else denied(request))

    routes += [Route("/api/pages", pages), *off_routes(offered)]
    app = Starlette(routes=[*routes,
        Route("/", page), Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]), Route("/logout", logout, methods=["POST"]),
        Route("/api/live", snapshot), Route("/api/live/stream", stream),
        Route("/healthz", healthz),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static")])
    return SecurityHeaders(app)
