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
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crowdwatch.config import CameraConfig, ConfigFileError, CrowdwatchConfig
from crowdwatch.console.site_editor import SiteEditor

audit_log = logging.getLogger("crowdwatch.audit")
MAX_ZONES = 200
MAX_POINTS = 1000


class BadEdit(ValueError):
    """The request body is not an edit this page could have sent."""


@dataclass
class Setup:
    editor: SiteEditor | None  # None: the process runs a built-in config; nothing to save
    current: Callable[[], CrowdwatchConfig]
    snapshot: Callable[[str], bytes | None]
    apply: Callable[[CrowdwatchConfig], str | None]
    areas: Callable[[CameraConfig], dict[str, float | None]]
    audit_path: str | None = None

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

    def check(self, camera_id: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """Validate an edit without saving: problems, or each zone's area."""
        if self.editor is None:
            return 409, {"ok": False, "problems": [{"where": "", "line": None, "message":
                         "this process runs the built-in demo config: start it with "
                         "--config site.yaml to save setup"}]}
        try:
            zones, masks = self.parse(body)
            _text, config = self.editor.edited(camera_id, zones, masks)
        except BadEdit as exc:
            return 400, {"ok": False, "problems": [{"where": "", "line": None,
                                                    "message": str(exc)}]}
        except ConfigFileError as exc:
            return 422, {"ok": False, "problems": [
                {"where": p.path, "line": p.line, "message": p.message} for p in exc.problems]}
        cam = next(c for c in config.cameras if c.id == camera_id)
        return 200, {"ok": True, "areas_m2": self.areas(cam)}

    def save(self, camera_id: str, body: bytes, who: str, client: str
             ) -> tuple[int, dict[str, Any]]:
        status, result = self.check(camera_id, body)
        if status != 200 or self.editor is None:
            return status, result
        zones, masks = self.parse(body)
        text, config = self.editor.edited(camera_id, zones, masks)
        self.editor.save(text)
        self.audit("save", camera_id, who, client, zones=[z.get("id") for z in zones],
                   masks=len(masks))
        error = self.apply(config)
        if error:
            return 500, {"ok": False, "saved": str(self.editor.path), "problems": [
                {"where": "", "line": None, "message": f"saved, but the running pipeline "
                 f"did not take it: {error}"}]}
        return 200, {"ok": True, "saved": str(self.editor.path), **result}
