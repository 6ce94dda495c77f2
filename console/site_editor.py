"""Edits to a camera's setup written back into ``site.yaml``, comments and key order kept.

ruamel.yaml round-trips the file; only the camera's ``zones`` (polygon, ground,
height_ref; any other key of a zone, like ``lat``/``lon``, stays) and ``privacy_masks``
change. The new text is validated as a whole (the same check as ``config check``) before
anything is written, and written whole or not at all.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.util import load_yaml_guess_indent

from crowdwatch.config import ConfigFileError, CrowdwatchConfig, Problem
from crowdwatch.util.files import write_atomic

Validate = Callable[[str, str], CrowdwatchConfig]  # (text, source name) -> config or raise
ZONE_KEYS = ("polygon", "ground", "height_ref")


def _flow(value: Any) -> Any:
    """Coordinates as compact flow lists ([[x, y], ...]) like a person would write them."""
    if isinstance(value, list):
        seq = CommentedSeq([_flow(v) for v in value])
        seq.fa.set_flow_style()
        return seq
    if isinstance(value, dict):
        out = CommentedMap()
        for k, v in value.items():
            out[k] = _flow(v)
        return out
    return value


class SiteEditor:
    def __init__(self, path: str | Path, validate: Validate) -> None:
        self.path = Path(path)
        self.validate = validate
        self.yaml = YAML()
        self.yaml.preserve_quotes = True
        self.yaml.width = 120

    def _camera(self, doc: Any, camera_id: str) -> Any:
        for cam in doc.get("cameras") or []:
            if cam.get("id") == camera_id:
                return cam
        raise ConfigFileError(str(self.path), [Problem("cameras", None,
                                                       f"no camera {camera_id!r} in the file")])

    def _edit(self, change: Callable[[Any], None]) -> tuple[str, CrowdwatchConfig]:
        """The file's text after ``change`` (applied to its round-trip document) and the
        config it validates to; raises ConfigFileError with every problem."""
        text = self.path.read_text(encoding="utf-8")
        self._match_indent(text)
        doc = self.yaml.load(text)
        change(doc)
        buffer = io.StringIO()
        self.yaml.dump(doc, buffer)
        new = buffer.getvalue()
        return new, self.validate(new, str(self.path))

    def edited(self, camera_id: str, zones: list[dict[str, Any]],
               masks: list[list[list[float]]]) -> tuple[str, CrowdwatchConfig]:
        """The file with the camera's zones and privacy masks replaced (and changing
        nothing on disk)."""

        def change(doc: Any) -> None:
            cam = self._camera(doc, camera_id)
            old = {z.get("id"): z for z in cam.get("zones") or []}
            new_zones = CommentedSeq()
            for zone in zones:
                entry = old.get(zone.get("id")) or CommentedMap([("id", zone.get("id"))])
                for key in ZONE_KEYS:
                    if zone.get(key) is None:
                        entry.pop(key, None)
                    else:
                        entry[key] = _flow(zone[key])
                new_zones.append(entry)
            cam["zones"] = new_zones
            if masks:
                cam["privacy_masks"] = _flow(masks)
            else:
                cam.pop("privacy_masks", None)

        return self._edit(change)

    def camera_added(self, camera_id: str, url: str) -> tuple[str, CrowdwatchConfig]:
        """The file with a new camera (no zones yet: it is being set up) at the end of
        ``cameras``."""

        def change(doc: Any) -> None:
            cameras = doc.get("cameras")
            if cameras is None:
                cameras = doc["cameras"] = CommentedSeq()
            if any(cam.get("id") == camera_id for cam in cameras):
                raise ConfigFileError(str(self.path), [Problem(
                    "cameras", None, f"a camera {camera_id!r} is already in the file")])
            cameras.append(CommentedMap([("id", camera_id), ("url", url),
                                         ("zones", _flow([]))]))

        return self._edit(change)

    def detector_edited(self, camera_id: str, detector: dict[str, Any]
                        ) -> tuple[str, CrowdwatchConfig]:
        """The file with the camera's ``detector`` replaced (a calibration)."""

        def change(doc: Any) -> None:
            cam = self._camera(doc, camera_id)
            cam["detector"] = _flow(detector)
            cam["detector"].fa.set_flow_style()

        return self._edit(change)

    def rule_edited(self, index: int, param: str, value: float
                    ) -> tuple[str, CrowdwatchConfig]:
        """The file with ``rules[index].param = value`` (a tuned value)."""

        def change(doc: Any) -> None:
            rules = doc.get("rules") or []
            if not 0 <= index < len(rules):
                raise ConfigFileError(str(self.path), [Problem("rules", None,
                                                               f"no rule #{index} in the file")])
            key = "for" if param == "for_" else param
            rules[index][key] = int(value) if float(value).is_integer() else float(value)

        return self._edit(change)

    def _match_indent(self, text: str) -> None:
        _, indent, block_seq_indent = load_yaml_guess_indent(text)
        if indent is not None:  # keep the file's own indentation style ("  - id: x")
            offset = block_seq_indent or 0
            self.yaml.indent(mapping=max(2, indent - offset), sequence=indent, offset=offset)

    def save(self, text: str) -> None:
        write_atomic(self.path, text.encode("utf-8"))


NO_SITE_FILE = ("this process runs without a site file (the built-in demo): start it with "
                "--config site.yaml to save changes")


def problem(message: str) -> dict[str, Any]:
    """One problem as the pages show it (no file position)."""
    return {"where": "", "line": None, "message": message}


def problems_of(exc: ConfigFileError) -> list[dict[str, Any]]:
    """A config check's problems as the pages show them (path and line)."""
    return [{"where": p.path, "line": p.line, "message": p.message} for p in exc.problems]


def commit(editor: SiteEditor, text: str, config: CrowdwatchConfig,
           apply: Callable[[CrowdwatchConfig], str | None]) -> tuple[int, dict[str, Any]]:
    """Write a checked edit and switch the running pipeline to it."""
    try:
        editor.save(text)
    except OSError as exc:  # a read-only mount (a ConfigMap), a full disk: nothing changed
        return 500, {"ok": False, "problems": [problem(
            f"{editor.path} could not be written ({exc.strerror or exc}); nothing was "
            "changed (is the file mounted read-only?)")]}
    error = apply(config)
    if error:
        return 500, {"ok": False, "saved": str(editor.path), "problems": [
            problem(f"saved, but the running pipeline did not take it: {error}")]}
    return 200, {"ok": True, "saved": str(editor.path)}
