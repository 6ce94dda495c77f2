"""Pages this console does not offer answer with what would turn them on, instead of a
bare "Not Found" (the live page shows links only to the pages that are on)."""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

TURN_ON = {
    "tune": ("The tuning page is off: it replays recorded feeds, and this console has "
             "none. Set console.recordings in site.yaml to a folder of recordings (CSV or "
             "JSONL, as `crowdwatch replay` reads) and restart `crowdwatch run`. In "
             "scale-out mode rules run in the workers: tune with `crowdwatch tune` on a "
             "recording."),
    "setup": ("Camera setup is off in this process: it needs a console started by "
              "`crowdwatch run` or `crowdwatch ingest` on a site with cameras."),
}


def off_routes(offered: dict[str, bool]) -> list[Route]:
    """404s that explain, for each page in ``offered`` that is off (its API too)."""
    routes: list[Route] = []
    for name, on in offered.items():
        if on:
            continue
        why = TURN_ON[name]

        async def page(request: Request, why: str = why) -> Response:
            body = (f"<!doctype html><meta charset=utf-8><title>crowdwatch: page off</title>"
                    f"<p>{html.escape(why)}</p><p><a href=\"/\">back to the live page</a></p>")
            return HTMLResponse(body, status_code=404, headers={"cache-control": "no-store"})

        async def api(request: Request, why: str = why) -> Response:
            return JSONResponse({"error": why}, status_code=404)

        routes += [Route(f"/{name}", page), Route(f"/api/{name}/{{rest:path}}", api,
                                                   methods=["GET", "POST"])]
    return routes
