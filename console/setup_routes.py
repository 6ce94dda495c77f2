"""The admin-only setup page's routes: masked snapshots, zones, ground points, labels,
calibration and saving to site.yaml (each action audit-logged by ``Setup``)."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from crowdwatch.console.access import COOKIE
from crowdwatch.console.responses import STATIC, admin_json, cross_site, jpeg, json_change
from crowdwatch.console.setup import Setup


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
