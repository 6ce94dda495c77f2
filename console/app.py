"""The console's web app (Starlette): the live page, its data as JSON and as a push
stream (server-sent events), and login. Served by :class:`~.server.ConsoleServer`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
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
from crowdwatch.console.setup import Setup
from crowdwatch.console.tuning import Tuning

STATIC = Path(__file__).parent / "static"
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
    app = Starlette(routes=[*routes,
        Route("/", page), Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]), Route("/logout", logout, methods=["POST"]),
        Route("/api/live", snapshot), Route("/api/live/stream", stream),
        Route("/healthz", healthz),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static")])
    return SecurityHeaders(app)


MAX_EDIT_BYTES = 2 * 1024 * 1024


async def json_change(request: Request, same_origin: Any) -> Response | None:
    """CSRF and size guard for changes: JSON, from this origin, not too big."""
    if not same_origin(request) or not request.headers.get(
            "content-type", "").startswith("application/json"):
        return PlainTextResponse("cross-site or non-JSON request refused", status_code=403)
    if len(await request.body()) > MAX_EDIT_BYTES:
        return PlainTextResponse("request too large", status_code=413)
    return None


async def admin_json(request: Request, admin: Any, same_origin: Any,
                     read: Callable[[Any], Any]) -> Any:
    """An admin's JSON change read by ``read`` (field names and types), or the Response
    refusing it: 401/403 (role), 403 (cross-site or not JSON), 413, or 400 naming what
    is wrong with the body."""
    refused = admin(request) or await json_change(request, same_origin)
    if refused:
        return refused
    try:
        return read(json.loads(await request.body()))
    except (ValueError, KeyError, TypeError) as exc:
        return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)


def jpeg(data: bytes) -> Response:
    """A picture for the setup page: held in memory only, never cached by the browser."""
    return Response(data, media_type="image/jpeg",
                    headers={"cache-control": "no-store, max-age=0"})


def cross_site() -> Response:
    return PlainTextResponse("cross-site request refused", status_code=403)


def tuning_routes(tuning: Tuning, admin: Any, same_origin: Any) -> list[Route]:
    """The admin-only tuning page: sweep a rule parameter on a recording, apply a value."""

    async def page(request: Request) -> Response:
        return admin(request) or FileResponse(STATIC / "tune.html",
                                              headers={"cache-control": "no-store"})

    async def options(request: Request) -> Response:
        return admin(request) or JSONResponse(
            {"recordings": tuning.recordings(), "rules": tuning.rules(),
             "editable": tuning.editor is not None})

    async def run(request: Request) -> Response:
        def read(data: Any) -> tuple[str, int, str, str, float | None, float]:
            level = data.get("level")
            return (str(data["recording"]), int(data["rule"]), str(data["param"]),
                    str(data["sweep"]), None if level in (None, "") else float(level),
                    float(data.get("min_peak") or 0.0))

        sweep = await admin_json(request, admin, same_origin, read)
        if isinstance(sweep, Response):
            return sweep
        try:
            job = tuning.start(*sweep)
        except ValueError as exc:  # a recording or rule not on offer, a sweep running
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)
        return JSONResponse({"job": job.id}, status_code=202)

    async def job(request: Request) -> Response:
        refused = admin(request)
        if refused:
            return refused
        found = tuning.jobs.get(request.path_params["job"])
        if found is None:
            return JSONResponse({"error": "no such job"}, status_code=404)
        return JSONResponse({"state": found.state, "done": found.done, "total": found.total,
                             "report": found.report, "error": found.error})

    async def choose(request: Request) -> Response:
        chosen = await admin_json(request, admin, same_origin, lambda d: (
            int(d["rule"]), str(d["param"]), float(d["value"])))
        if isinstance(chosen, Response):
            return chosen
        status, result = await asyncio.to_thread(tuning.choose, *chosen)
        return JSONResponse(result, status_code=status)

    return [Route("/tune", page), Route("/api/tune/options", options),
            Route("/api/tune/run", run, methods=["POST"]), Route("/api/tune/jobs/{job}", job),
            Route("/api/tune/apply", choose, methods=["POST"])]


def setup_routes(setup: Setup, admin: Any, same_origin: Any) -> list[Route]:
    """The admin-only setup page and its API."""

    def who(request: Request) -> tuple[str, str]:
        how = "bearer" if request.headers.get("authorization") else (
            "session" if request.cookies.get(COOKIE) else "loopback")
        return how, request.client.host if request.client else "?"

    async def page(request: Request) -> Response:
        return admin(request) or FileResponse(STATIC / "setup.html",
                                              headers={"cache-control": "no-store"})

    async def site(request: Request) -> Response:
        return admin(request) or JSONResponse(setup.site(), headers={"cache-control":
                                                                     "no-store"})

    def unknown_camera(request: Request) -> Response | None:
        """404 naming the camera when the site has none of that id."""
        camera = request.path_params["camera"]
        if setup.camera(camera) is None:
            return JSONResponse({"error": f"no camera {camera!r}"}, status_code=404)
        return None

    async def snapshot(request: Request) -> Response:
        refused = admin(request) or unknown_camera(request)
        if refused:
            return refused
        camera = request.path_params["camera"]
        how, client = who(request)
        setup.audit("snapshot", camera, how, client)
        picture = await asyncio.to_thread(setup.snapshot, camera)
        if picture is None:
            return JSONResponse({"error": f"camera {camera!r} sent no frame in time"},
                                status_code=503)
        return jpeg(picture)

    async def edit(request: Request, save: bool) -> Response:
        refused = admin(request) or await json_change(request, same_origin)
        if refused:
            return refused
        body = await request.body()
        camera = request.path_params["camera"]
        if save:
            how, client = who(request)
            status, result = await asyncio.to_thread(setup.save, camera, body, how, client)
        else:
            status, result = await asyncio.to_thread(setup.check, camera, body)
        return JSONResponse(result, status_code=status)

    async def check(request: Request) -> Response:
        return await edit(request, save=False)

    async def save(request: Request) -> Response:
        return await edit(request, save=True)

    async def capture(request: Request) -> Response:
        refused = (admin(request) or await json_change(request, same_origin)
                   or unknown_camera(request))
        if refused:
            return refused
        camera = request.path_params["camera"]
        how, client = who(request)
        frame = await asyncio.to_thread(setup.capture, camera, how, client)
        if frame is None:
            return JSONResponse({"error": f"camera {camera!r} counted no frame in time (down "
                                 "or warming up)"}, status_code=503)
        return JSONResponse({"id": frame.id, "taken": frame.taken, "counts": frame.counts,
                             "suggested": frame.suggested})

    async def frame_list(request: Request) -> Response:
        refused = admin(request)
        if refused:
            return refused
        camera = request.path_params["camera"]
        return JSONResponse([{"id": f.id, "taken": f.taken, "counts": f.counts,
                              "suggested": f.suggested} for f in setup.kept_frames(camera)])

    async def frame_image(request: Request) -> Response:
        refused = admin(request)
        if refused:
            return refused
        camera, frame_id = request.path_params["camera"], request.path_params["frame"]
        frame = setup.frame(camera, frame_id)
        if frame is None:
            return JSONResponse({"error": "no such frame (frames are kept 30 min)"},
                                status_code=404)
        how, client = who(request)
        setup.audit("label_view", camera, how, client, frame=frame_id)
        return jpeg(frame.jpeg)

    async def discard(request: Request) -> Response:
        refused = admin(request) or (None if same_origin(request) else cross_site())
        if refused:
            return refused
        return JSONResponse({"discarded": setup.discard(request.path_params["camera"])})

    def read_labels(data: Any) -> dict[str, Any]:
        labels = data["labels"]
        if not isinstance(labels, dict):
            raise TypeError("labels must map frame ids to head points")
        return labels

    async def calibrate(request: Request) -> Response:
        labels = await admin_json(request, admin, same_origin, read_labels)
        if isinstance(labels, Response):
            return labels
        status, result = await asyncio.to_thread(setup.calibrate,
                                                 request.path_params["camera"], labels)
        return JSONResponse(result, status_code=status)

    async def detector(request: Request) -> Response:
        fit = await admin_json(request, admin, same_origin, lambda d: (
            float(d["slope"]), float(d["offset"]), float(d.get("edge_weight", 0.0))))
        if isinstance(fit, Response):
            return fit
        slope, offset, edge_weight = fit
        how, client = who(request)
        status, result = await asyncio.to_thread(
            setup.apply_calibration, request.path_params["camera"], slope, offset, how, client,
            edge_weight)
        return JSONResponse(result, status_code=status)

    async def add_camera(request: Request) -> Response:
        new = await admin_json(request, admin, same_origin, lambda d: (
            str(d["id"]).strip(), str(d["url"])))
        if isinstance(new, Response):
            return new
        camera_id, url = new
        how, client = who(request)
        status, result = await asyncio.to_thread(setup.add_camera, camera_id, url, how, client)
        return JSONResponse(result, status_code=status)

    return [Route("/setup", page), Route("/api/setup/site", site),
            Route("/api/setup/cameras", add_camera, methods=["POST"]),
            Route("/api/setup/cameras/{camera}/frames", capture, methods=["POST"]),
            Route("/api/setup/cameras/{camera}/frames", frame_list, methods=["GET"]),
            Route("/api/setup/cameras/{camera}/frames", discard, methods=["DELETE"]),
            Route("/api/setup/cameras/{camera}/frames/{frame}", frame_image),
            Route("/api/setup/cameras/{camera}/calibrate", calibrate, methods=["POST"]),
            Route("/api/setup/cameras/{camera}/detector", detector, methods=["POST"]),
            Route("/api/setup/cameras/{camera}/snapshot", snapshot),
            Route("/api/setup/cameras/{camera}/check", check, methods=["POST"]),
            Route("/api/setup/cameras/{camera}", save, methods=["POST"])]
