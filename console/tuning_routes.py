"""The admin-only tuning page's routes: sweep a rule parameter on a recording, apply a value."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from crowdwatch.console.responses import STATIC, admin_json
from crowdwatch.console.tuning import Tuning


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


