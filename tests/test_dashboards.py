"""Dashboards as code, proven against a real Prometheus scraping a real crowdwatch run."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.dashboards.build import DATASOURCE_UID, build_all, panel_queries
from crowdwatch.dashboards.operations import WORKER_PANELS
from crowdwatch.events import CountEvent
from crowdwatch.streams.runtime.demo import DEMO_ZONE, demo_config, demo_config_dict
from crowdwatch.streams.runtime.state_file import StateFile
from crowdwatch.tools.replay import replay
from tests.helpers import free_port, scrape, wait_for
from tests.test_demo_e2e import start_run, wait_for_metric

ROOT = Path(__file__).resolve().parents[1]
PROM_SCRIPT = ROOT / "deploy" / "prometheus" / "local.sh"
SITE = "demo-school"
VARIABLES = {"$site": SITE, "$zone": DEMO_ZONE, "$camera": "school-gate-sim",
             "$__rate_interval": "30s"}


def substitute(expr: str) -> str:
    for name, value in sorted(VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(name, value)
    assert "$" not in expr, expr
    return expr


def test_build_writes_dashboards_and_provisioning(tmp_path):
    res = subprocess.run([sys.executable, "-m", "crowdwatch.cli", "dashboards", "build",
                          "--out", str(tmp_path), "--prometheus-url", "http://prom:9090"],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    models = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "dashboards").glob("*.json")}
    assert set(models) == {"overview", "zone", "operations"}
    ds = yaml.safe_load((tmp_path / "provisioning/datasources/crowdwatch.yaml").read_text())
    assert ds["datasources"][0]["uid"] == DATASOURCE_UID
    assert ds["datasources"][0]["url"] == "http://prom:9090"
    provider = yaml.safe_load((tmp_path / "provisioning/dashboards/crowdwatch.yaml").read_text())
    assert provider["providers"][0]["type"] == "file"
    for name, model in models.items():
        names = [v["name"] for v in model["templating"]["list"]]
        assert "site" in names, name
        for panel in model["panels"]:
            for target in panel.get("targets", []):
                assert target["datasource"]["uid"] == DATASOURCE_UID
    assert {"site", "zone", "camera"} <= {v["name"] for v in
                                          models["overview"]["templating"]["list"]}
    # Colours follow the config's density levels (demo: warn 0.45, critical 0.7).
    bar = next(p for p in models["overview"]["panels"] if "density" in p["title"])
    steps = [s["value"] for s in bar["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert steps == [None, 0.45, 0.7]
    assert any(p["type"] == "geomap" for p in models["overview"]["panels"])


def live_config(metrics_port: int, sensor_port: int, state_file: str | None = None) -> dict:
    """The demo plus a door counter that posts over HTTP, so sensor panels have data, and
    the learning rules on the demo zone (their models loaded from ``state_file``)."""
    config = demo_config_dict(metrics_port)
    config["sensors"] = {"zones": [{"id": "plaza"}],
                         "devices": [{"id": "door-1", "zone": "plaza"}],
                         "http": {"port": sensor_port, "token_env": "CW_TEST_SENSOR_TOKEN"}}
    config["rules"].append({"kind": "sensor_silent", "after": "60s"})
    config["rules"].append({"kind": "seasonal", "zone": DEMO_ZONE, "threshold": 40,
                            "horizon": "3h", "slot": "1h"})
    config["rules"].append({"kind": "unusual", "zone": DEMO_ZONE, "slot": "1h"})
    # A line across the middle of the demo zone, so the dynamics panels have data.
    zone = config["cameras"][0]["zones"][0]
    p = zone["polygon"]
    zone["lines"] = [{"id": "gate-middle", "points": [
        [(p[0][0] + p[3][0]) / 2, (p[0][1] + p[3][1]) / 2],
        [(p[1][0] + p[2][0]) / 2, (p[1][1] + p[2][1]) / 2]]}]
    if state_file:
        config["engine"] = {"state_file": state_file}
    return config


def learned_history(config: dict, path: Path) -> None:
    """Four past weeks of hourly counts for the demo zone, learned into a state file (what
    `replay --learn` does), so the usual band has values in a one-minute test."""
    now = time.time()
    start = now - 4 * 7 * 86400
    events = [CountEvent("school-gate-sim", DEMO_ZONE, start + i * 3600.0,
                         8.0 + 6.0 * ((i % 24) in range(14, 17)))
              for i in range(int((now - start) // 3600))]
    cfg = CrowdwatchConfig.model_validate(config)
    StateFile(path, cfg.site.name).save(replay(cfg, events).learned)


def post_readings(port: int, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        body = json.dumps({"sensor_id": "door-1", "value": 12}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/sensors", data=body, method="POST",
            headers={"Authorization": "Bearer dash-token", "Content-Type": "application/json"})
        with contextlib.suppress(OSError):  # not listening yet
            urllib.request.urlopen(request, timeout=2).read()


@pytest.fixture(scope="module")
def live_prometheus(tmp_path_factory):
    """crowdwatch run (demo + a sensor) scraped every second by a real Prometheus."""
    if shutil.which("prometheus") is None:
        pytest.fail("prometheus is not installed: run deploy/prometheus/local.sh install")
    workdir = tmp_path_factory.mktemp("live")
    cw_port, prom_port, sensor_port = free_port(), free_port(), free_port()
    config_path = workdir / "live.yaml"
    state_file = workdir / "state.json"
    learned_history(live_config(cw_port, sensor_port), state_file)
    config_path.write_text(json.dumps(live_config(cw_port, sensor_port, str(state_file))))
    os.environ["CW_TEST_SENSOR_TOKEN"] = "dash-token"
    run = start_run(workdir, "--config", str(config_path), "--duration", "120")
    stop_posting = threading.Event()
    poster = threading.Thread(target=post_readings, args=(sensor_port, stop_posting),
                              daemon=True)
    poster.start()
    env = {**os.environ, "CROWDWATCH_PROM_PORT": str(prom_port),
           "CROWDWATCH_PROM_TARGETS": f"127.0.0.1:{cw_port}", "CROWDWATCH_PROM_SITE": SITE,
           "CROWDWATCH_PROM_DIR": str(workdir / "prom")}
    started = subprocess.run(["bash", str(PROM_SCRIPT), "start"], env=env, capture_output=True,
                             text=True, check=False)
    assert started.returncode == 0, started.stderr + started.stdout
    try:
        wait_for_metric(run, cw_port, "crowdwatch_zone_people", timeout=20)
        yield {"prom": f"http://127.0.0.1:{prom_port}", "cw_port": cw_port, "run": run,
               "config": CrowdwatchConfig.model_validate(live_config(cw_port, sensor_port))}
    finally:
        stop_posting.set()
        os.environ.pop("CW_TEST_SENSOR_TOKEN", None)
        subprocess.run(["bash", str(PROM_SCRIPT), "stop"], env=env, check=False,
                       capture_output=True)
        run.terminate()
        run.communicate(timeout=20)


def prom_get(base: str, path: str, **params) -> dict:
    url = f"{base}{path}?{urllib.parse.urlencode(params, doseq=True)}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.loads(resp.read())
    assert body["status"] == "success", body
    return body["data"]



@pytest.mark.slow
def test_every_panel_query_returns_data(live_prometheus):
    base = live_prometheus["prom"]
    # Wait for an alert to have fired (the demo surges ~20 s in) and for rate windows.
    wait_for(lambda: prom_get(base, "/api/v1/query",
                                query=f'max(crowdwatch_alert_active{{site="{SITE}"}}) == 1')
               ["result"], 60, "a firing alert scraped by Prometheus")
    now = time.time()
    empty = []
    checked = 0
    models = build_all(live_prometheus["config"])
    titles = [p["title"] for p in models["overview"]["panels"]]
    zone_titles = [p["title"] for p in models["zone"]["panels"]]
    assert "Now vs usual for this hour, and the seasonal forecast" in zone_titles
    assert "Sensor readings" in titles and "Zones withheld (camera offline or untrustworthy)" in \
        titles
    for name, model in models.items():
        for title, expr in panel_queries(model):
            if title in WORKER_PANELS:
                continue  # a worker's metrics: test_kafka queries them on a real worker
            q = substitute(expr)
            data = prom_get(base, "/api/v1/query_range", query=q, start=now - 60, end=now,
                            step=2)
            checked += 1
            if not data["result"]:
                empty.append(f"{name} / {title}: {q}")
        for variable in model["templating"]["list"]:
            m = re.fullmatch(r"label_values\((.*), (\w+)\)", variable["query"])
            assert m, variable["query"]
            values = prom_get(base, f"/api/v1/label/{m.group(2)}/values",
                              **{"match[]": substitute(m.group(1))})
            assert values, f"{name}: variable {variable['name']} has no values"
        for annotation in model.get("annotations", {}).get("list", []):
            if annotation["datasource"]["type"] != "prometheus":
                continue  # Grafana's own annotations (checked in the build test)
            data = prom_get(base, "/api/v1/query_range", query=substitute(annotation["expr"]),
                            start=now - 90, end=now, step=2)
            assert data["result"], f"{name}: annotation {annotation['name']} found no alert"
    assert checked >= 20
    assert empty == []


@pytest.mark.slow
def test_metrics_follow_prometheus_conventions(live_prometheus):
    text = scrape(live_prometheus["cw_port"])
    res = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                         text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "crowdwatch_zone_people" in text


def test_prometheus_rules_check_and_unit_tests():
    if shutil.which("promtool") is None:
        pytest.fail("promtool is not installed: run deploy/prometheus/local.sh install")
    prom = ROOT / "deploy" / "prometheus"
    check = subprocess.run(["promtool", "check", "rules", "rules/crowdwatch.rules.yml"],
                           cwd=prom, capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run(["promtool", "test", "rules", "tests.yml"], cwd=prom,
                          capture_output=True, text=True, check=False)
    assert unit.returncode == 0, unit.stdout + unit.stderr
    config = subprocess.run(["promtool", "check", "config", "--syntax-only", "prometheus.yml"],
                            cwd=prom, capture_output=True, text=True, check=False)
    assert config.returncode == 0, config.stdout + config.stderr


class FakeGrafana(BaseHTTPRequestHandler):
    """Answers the few Grafana API calls `dashboards push` makes, and records them."""

    requests: ClassVar[list[dict]] = []
    folders: ClassVar[set[str]] = set()

    def _reply(self, code: int, body: dict) -> None:
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _record(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        entry = {"method": self.command, "path": self.path, "body": body,
                 "auth": self.headers.get("Authorization")}
        self.requests.append(entry)
        return entry

    def do_GET(self) -> None:
        entry = self._record()
        if entry["auth"] != "Bearer s3cret-token":
            return self._reply(401, {"message": "Unauthorized"})
        uid = self.path.rsplit("/", 1)[-1]
        if self.path.startswith("/api/folders/") and uid in self.folders:
            return self._reply(200, {"uid": uid, "title": "crowdwatch"})
        return self._reply(404, {"message": "folder not found"})

    def do_POST(self) -> None:
        entry = self._record()
        if entry["auth"] != "Bearer s3cret-token":
            return self._reply(401, {"message": "Unauthorized"})
        if self.path == "/api/folders":
            self.folders.add(entry["body"]["uid"])
            return self._reply(200, {"uid": entry["body"]["uid"], "title": entry["body"]["title"]})
        if self.path == "/api/dashboards/db":
            uid = entry["body"]["dashboard"]["uid"]
            return self._reply(200, {"status": "success", "uid": uid, "url": f"/d/{uid}"})
        return self._reply(404, {"message": "not found"})

    def log_message(self, *args) -> None:
        pass


def test_push_uses_grafana_api_with_token_from_env(tmp_path):
    FakeGrafana.requests = []
    FakeGrafana.folders = set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGrafana)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        env = {**os.environ, "CROWDWATCH_GRAFANA_TOKEN": "s3cret-token"}
        cmd = [sys.executable, "-m", "crowdwatch.cli", "dashboards", "push", "--url", url]
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        assert res.returncode == 0, res.stderr
        assert "s3cret-token" not in res.stdout + res.stderr
        posts = [r for r in FakeGrafana.requests if r["path"] == "/api/dashboards/db"]
        assert sorted(p["body"]["dashboard"]["uid"] for p in posts) == [
            "crowdwatch-operations", "crowdwatch-overview", "crowdwatch-zone"]
        assert all(p["body"]["overwrite"] and p["body"]["folderUid"] == "crowdwatch"
                   for p in posts)
        assert any(r["path"] == "/api/folders" for r in FakeGrafana.requests)
        # A second push finds the folder and only updates dashboards.
        FakeGrafana.requests = []
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        assert res.returncode == 0 and not any(r["path"] == "/api/folders"
                                               for r in FakeGrafana.requests)
        # No token: refused before any request.
        FakeGrafana.requests = []
        env.pop("CROWDWATCH_GRAFANA_TOKEN")
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        assert res.returncode == 2 and FakeGrafana.requests == []
        # Wrong token: a clear failure, not a traceback.
        env["CROWDWATCH_GRAFANA_TOKEN"] = "wrong"
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        assert res.returncode == 1 and "failed" in res.stderr and "Traceback" not in res.stderr
    finally:
        server.shutdown()


def test_optional_panels_follow_the_config():
    plain = build_all(demo_config())
    assert not [p for p in plain["overview"]["panels"] if "Sensor" in p["title"]]
    assert len(plain["zone"]["annotations"]["list"]) == 1
    data = demo_config_dict()
    data["alerts"] = {"grafana": {"url": "http://grafana:3000"}}
    data["sensors"] = {"zones": [{"id": "plaza"}], "devices": [{"id": "d1", "zone": "plaza"}]}
    data["rules"].append({"kind": "sensor_silent", "after": "10m"})
    models = build_all(CrowdwatchConfig.model_validate(data))
    (regions,) = [a for a in models["zone"]["annotations"]["list"]
                  if a["datasource"]["type"] == "grafana"]
    # The regions the Grafana annotation sink writes, selected by its tags.
    assert regions["target"] == {"limit": 500, "matchAny": False, "type": "tags",
                                 "tags": ["crowdwatch", "zone:$zone"]}
    silence = next(p for p in models["overview"]["panels"] if "last reading" in p["title"])
    steps = silence["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1]["value"] == 600
