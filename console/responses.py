"""Answers the console's admin pages share: the guard on changes (same origin, JSON, size),
admin JSON bodies read into typed values, and pictures that are never cached."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

STATIC = Path(__file__).parent / "static"

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
