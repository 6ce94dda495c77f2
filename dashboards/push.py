"""Push built dashboards to a Grafana server with grafana-client.

The token comes from the environment (never from the command line or a file in the
repo), so it stays out of shell history and process listings.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError

log = logging.getLogger("crowdwatch.dashboards")

FOLDER_UID = "crowdwatch"


def push_dashboards(url: str, token: str, paths: list[Path], folder: str = "crowdwatch",
                    timeout: float = 10.0) -> list[dict]:
    """Create the folder if needed, then create or overwrite each dashboard."""
    api = GrafanaApi.from_url(url=url, credential=token, timeout=timeout)
    try:
        api.folder.get_folder(FOLDER_UID)
    except GrafanaClientError as exc:
        if getattr(exc, "status_code", None) != 404:
            raise
        api.folder.create_folder(folder, uid=FOLDER_UID)
    results = []
    for path in paths:
        model = json.loads(path.read_text(encoding="utf-8"))
        model.pop("id", None)
        result = api.dashboard.update_dashboard(
            {"dashboard": model, "folderUid": FOLDER_UID, "overwrite": True,
             "message": "crowdwatch dashboards push"})
        log.info("pushed dashboard %s", model.get("uid"), extra={"uid": model.get("uid")})
        results.append(result)
    return results
