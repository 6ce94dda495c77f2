"""What `config check` (and every start) asks of a site beyond its schema: that each
camera's source can be opened as written and every file it names exists.

A camera whose simulated scene has impossible parameters, or whose video, mask or model
file is missing, would otherwise crash-loop after a clean start.
"""

from __future__ import annotations

from crowdwatch.config import CrowdwatchConfig, Loc
from crowdwatch.ingest.source_plugin import url_problem
from crowdwatch.util.files import missing_file


def source_problems(config: CrowdwatchConfig) -> list[tuple[Loc, str]]:
    found: list[tuple[Loc, str]] = []
    for ci, cam in enumerate(config.cameras):
        where: Loc = ("cameras", ci)
        if problem := url_problem(cam.url):
            found.append(((*where, "url"), problem))
        model = getattr(cam.detector, "model", None)
        if model and (problem := missing_file(model)):
            found.append(((*where, "detector", "model"), problem))
        for zi, zone in enumerate(cam.zones):
            for name in ("mask", "perspective"):
                path = getattr(zone, name)
                if path and (problem := missing_file(path)):
                    found.append(((*where, "zones", zi, name), problem))
    return found
