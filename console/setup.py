"""Camera setup for engineers (admin role): a masked snapshot held in memory, zones, masks,
ground points and height pairs drawn on it, checked and saved to ``site.yaml``, and the
running pipeline switched to them without a restart.

The pipeline side is handed in as callables (``snapshot``, ``apply``, ``current``,
``areas``), so this layer knows no camera or detector code. Every snapshot and save is
audit-logged (who, when, which camera); no pixel is ever logged or written.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crowdwatch.config import CameraConfig, ConfigFileError, CrowdwatchConfig
from crowdwatch.console.site_editor import (
    NO_SITE_FILE,
    SiteEditor,
    commit,
    problem,
    problems_of,
)

audit_log = logging.getLogger("crowdwatch.audit")
MAX_ZONES = 200
CAMERA_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_POINTS = 1000


class BadEdit(ValueError):
    """The request body is not an edit this page could have sent."""


@dataclass
class LabelFrame:
    """A frame kept in memory for labelling, with what the detector counted on it."""

    id: str
    taken: float
    jpeg: bytes
    counts: dict[str, float]
    edges: dict[str, float]  # new-edge length per zone (geometry counter), else empty
    # Heads the person detector suggests (native pixels): the page pre-fills them.
    suggested: list[list[float]] = field(default_factory=list)


# (raw counts, labelled truth, new-edge lengths or None) -> the fitted correction
Fit = Callable[[list[float], list[float], list[float] | None], dict[str, Any]]
MAX_LABEL_FRAMES = 60  # per camera, in memory
LABEL_FRAMES_KEPT_S = 1800.0  # frames older than this are dropped


def inside(point: list[float], polygon: list[list[float]]) -> bool:
    """Ray casting: is an image point inside a polygon."""
    x, y = point
    hit = False
    for i in range(len(polygon)):
        x1, y1 = polygon[i - 1]
        x2, y2 = polygon[i]
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            hit = not hit
    return hit


@dataclass
class Setup:
    editor: SiteEditor | None  # None: the process runs a built-in config; nothing to save
    current: Callable[[], CrowdwatchConfig]
    snapshot: Callable[[str], bytes | None]
    apply: Callable[[CrowdwatchConfig], str | None]
    areas: Callable[[CameraConfig], dict[str, float | None]]
    audit_path: str | None = None
    # (masked JPEG, counts, edge lengths[, suggested heads]) of a camera's next frame
    label_frame: Callable[[str], tuple[Any, ...] | None] | None = None
    fit: Fit | None = None
    # The camera's current geometry correction (slope, offset, edge_weight), or None when
    # it does not count with the geometry counter (only that counter takes a few-shot
    # correction).
    geometry_of: Callable[[CameraConfig], tuple[float, float, float] | None] | None = None
    frames: dict[str, list[LabelFrame]] = field(default_factory=dict)

    # -- labelling (frames in memory only, dropped after LABEL_FRAMES_KEPT_S) -----------

    def capture(self, camera_id: str, who: str, client: str) -> LabelFrame | None:
        if self.label_frame is None:
            return None
        got = self.label_frame(camera_id)
        if got is None:
            return None
        frame = LabelFrame(uuid.uuid4().hex[:10], time.time(), got[0], got[1], got[2],
                           list(got[3]) if len(got) > 3 else [])
        self.frames[camera_id] = [*self.kept_frames(camera_id), frame][-MAX_LABEL_FRAMES:]
        self.audit("label_frame", camera_id, who, client, frame=frame.id)
        return frame

    def kept_frames(self, camera_id: str) -> list[LabelFrame]:
        """The camera's label frames, first dropping those held longer than
        LABEL_FRAMES_KEPT_S (every read expires them, not only the next capture)."""
        now = time.time()
        kept = [f for f in self.frames.get(camera_id, []) if now - f.taken < LABEL_FRAMES_KEPT_S]
        if kept:
            self.frames[camera_id] = kept
        else:
            self.frames.pop(camera_id, None)
        return kept

    def frame(self, camera_id: str, frame_id: str) -> LabelFrame | None:
        return next((f for f in self.kept_frames(camera_id) if f.id == frame_id), None)

    def discard(self, camera_id: str) -> int:
        return len(self.frames.pop(camera_id, []))

    def calibrate(self, camera_id: str, labels: dict[str, list[list[float]]]
                  ) -> tuple[int, dict[str, Any]]:
        """Truth per labelled frame and zone = heads inside the zone; the detector's count
        on the same frame is the raw value; fit the few-shot correction on all pairs."""
        cam = self.camera(camera_id)
        if cam is None or self.fit is None:
            return 404, {"ok": False, "error": f"no camera {camera_id!r}"}
        raw: list[float] = []
        edges: list[float | None] = []
        truth: list[float] = []
        points = []
        for frame_id, heads in labels.items():
            frame = self.frame(camera_id, frame_id)
            if frame is None or not isinstance(heads, list):
                continue
            for zone in cam.zones:
                if zone.id not in frame.counts or not zone.polygon:
                    continue
                n = sum(1 for h in heads if isinstance(h, list) and len(h) == 2
                        and inside([float(h[0]), float(h[1])], zone.polygon))
                raw.append(frame.counts[zone.id])
                edges.append(frame.edges.get(zone.id))
                truth.append(float(n))
                points.append({"frame": frame_id, "zone": zone.id,
                               "raw": frame.counts[zone.id], "truth": n})
        if len(raw) < 3:
            return 400, {"ok": False, "error": "label at least 3 frames (heads inside a zone)"}
        # The edge length is offered to the fit only if every labelled frame has it.
        offered = all(e is not None for e in edges)
        result = self.fit(raw, truth, [float(e) for e in edges if e is not None]
                          if offered else None)
        result["edges_offered"] = offered
        for point, corrected in zip(points, result.pop("corrected"), strict=True):
            point["counted"] = corrected
        current = self.geometry_of(cam) if self.geometry_of else None
        result["applicable"] = current is not None and (
            result["slope"] > 0 or result.get("edge_weight", 0.0) > 0)
        if current is None:
            result["note"] = ("this camera does not count with the geometry counter, so the "
                              "fit is an evaluation only: give its zones ground points or "
                              "height pairs and detector kind geometry to apply it")
        return 200, {"ok": True, **result, "points": points}

    def apply_calibration(self, camera_id: str, slope: float, offset: float, who: str,
                          client: str, edge_weight: float = 0.0) -> tuple[int, dict[str, Any]]:
        cam = self.camera(camera_id)
        current = self.geometry_of(cam) if cam is not None and self.geometry_of else None
        if self.editor is None or current is None:
            why = (NO_SITE_FILE if self.editor is None else
                   "the camera does not count with the geometry counter")
            return 409, {"ok": False, "problems": [problem(why)]}
        # The fit was on counts already corrected by (s0, o0, e0): compose the two.
        s0, o0, e0 = current
        detector = {"kind": "geometry", "slope": round(slope * s0, 4),
                    "offset": round(slope * o0 + offset, 3)}
        if e0 or edge_weight:
            detector["edge_weight"] = round(slope * e0 + edge_weight, 5)
        try:
            text, config = self.editor.detector_edited(camera_id, detector)
        except ConfigFileError as exc:
            return 422, {"ok": False, "problems": problems_of(exc)}
        self.audit("calibrate", camera_id, who, client, slope=slope, offset=offset,
                   edge_weight=edge_weight)
        return commit(self.editor, text, config, self.apply)

    def add_camera(self, camera_id: str, url: str, who: str, client: str
                   ) -> tuple[int, dict[str, Any]]:
        """A new camera in the site file, started at once with no zones (the page then
        takes its snapshot to draw them). The URL may hold credentials: it is written to
        the file only, never logged, audited or sent back."""
        if self.editor is None:
            return 409, {"ok": False, "problems": [problem(NO_SITE_FILE)]}
        if not CAMERA_ID.fullmatch(camera_id):
            return 400, {"ok": False, "problems": [problem(
                "a camera id is 1-64 letters, digits, '-', '_' or '.'")]}
        if not url.strip() or len(url) > 2048:
            return 400, {"ok": False, "problems": [problem("give the camera's stream URL")]}
        try:
            text, config = self.editor.camera_added(camera_id, url.strip())
        except ConfigFileError as exc:
            return 422, {"ok": False, "problems": [
                {**p, "message": p["message"].replace(url.strip(), "<url>")}
                for p in problems_of(exc)]}
        self.audit("add_camera", camera_id, who, client)
        return commit(self.editor, text, config, self.apply)

    def audit(self, action: str, camera: str, who: str, client: str, **extra: Any) -> None:
        record = {"time": time.time(), "action": action, "camera": camera, "who": who,
                  "client": client, **extra}
        audit_log.info("setup %s", action, extra=record)
        if self.audit_path:
            try:
                with Path(self.audit_path).open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(record) + "\n")
            except OSError as exc:
                audit_log.error("audit file not written", extra={"path": self.audit_path,
                                                                 "error": str(exc)})

    def camera(self, camera_id: str) -> CameraConfig | None:
        return next((c for c in self.current().cameras if c.id == camera_id), None)

    def site(self) -> dict[str, Any]:
        """What the page edits; never a camera URL (it may hold credentials)."""
        config = self.current()
        return {"site": config.site.name, "editable": self.editor is not None,
                "file": str(self.editor.path) if self.editor else None,
                "cameras": [{"id": cam.id, "privacy_masks": cam.privacy_masks,
                             "zones": [{"id": z.id, "polygon": z.polygon,
                                        "ground": z.ground.model_dump() if z.ground else None,
                                        "height_ref": z.height_ref} for z in cam.zones],
                             "areas_m2": self.areas(cam)}
                            for cam in config.cameras]}

    @staticmethod
    def parse(body: bytes) -> tuple[list[dict[str, Any]], list[list[list[float]]]]:
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise BadEdit(f"not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise BadEdit("expected an object with 'zones' and 'privacy_masks'")
        zones, masks = data.get("zones", []), data.get("privacy_masks", [])
        if not isinstance(zones, list) or not isinstance(masks, list):
            raise BadEdit("'zones' and 'privacy_masks' must be lists")
        if len(zones) > MAX_ZONES or any(not isinstance(z, dict) for z in zones):
            raise BadEdit(f"'zones' must be up to {MAX_ZONES} objects")
        if sum(len(json.dumps(z)) for z in zones) > 50 * MAX_POINTS * MAX_ZONES:
            raise BadEdit("edit too large")
        return zones, masks

    def _checked(self, camera_id: str, body: bytes
                 ) -> tuple[int, dict[str, Any], tuple[str, CrowdwatchConfig, list[Any],
                                                       list[Any]] | None]:
        """(status, answer, (text, config, zones, masks) when the edit passed the check)."""
        if self.editor is None:
            return 409, {"ok": False, "problems": [problem(NO_SITE_FILE)]}, None
        try:
            zones, masks = self.parse(body)
            text, config = self.editor.edited(camera_id, zones, masks)
        except BadEdit as exc:
            return 400, {"ok": False, "problems": [problem(str(exc))]}, None
        except ConfigFileError as exc:
            return 422, {"ok": False, "problems": problems_of(exc)}, None
        cam = next(c for c in config.cameras if c.id == camera_id)
        return 200, {"ok": True, "areas_m2": self.areas(cam)}, (text, config, zones, masks)

    def check(self, camera_id: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """Validate an edit without saving: problems, or each zone's area."""
        status, answer, _ = self._checked(camera_id, body)
        return status, answer

    def save(self, camera_id: str, body: bytes, who: str, client: str
             ) -> tuple[int, dict[str, Any]]:
        """Check the edit once, then write it and apply it."""
        status, answer, edit = self._checked(camera_id, body)
        if edit is None or self.editor is None:
            return status, answer
        text, config, zones, masks = edit
        self.audit("save", camera_id, who, client, zones=[z.get("id") for z in zones],
                   masks=len(masks))
        status, result = commit(self.editor, text, config, self.apply)
        return status, {**answer, **result} if status == 200 else result
