"""Deployment files checked structurally: they parse, and their references hold together."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
# Paths a site creates before `docker compose up` (docs/operations.md: dashboards, secrets, config).
GENERATED = ("./grafana/", "./secrets", "./site.yaml")
SECRET_KEYS = re.compile(r"PASSWORD|SECRET|TOKEN|KEY", re.IGNORECASE)


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def k8s_docs() -> list[dict]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_compose_references_hold():
    c = compose()
    services = c["services"]
    assert {"kafka", "crowdwatch-ingest", "crowdwatch-worker", "prometheus", "alertmanager",
            "grafana", "mosquitto"} <= set(services)
    for name, svc in services.items():
        deps = svc.get("depends_on", [])
        for dep in deps if isinstance(deps, list) else deps.keys():
            assert dep in services, f"{name} depends on unknown {dep}"
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                if source.startswith(GENERATED):
                    continue
                assert (COMPOSE.parent / source).exists(), f"{name}: {source} missing"
            else:
                assert source in c["volumes"], f"{name}: named volume {source} not declared"
        for key, value in (svc.get("environment") or {}).items():
            if SECRET_KEYS.search(key):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", str(value)), (
                    f"{name}: {key} must come from the environment, not be written here")
    hosts = [p.rsplit(":", 1)[0] + ":" + p.split(":")[-2] for s in services.values()
             for p in s.get("ports", [])]
    assert len(hosts) == len(set(hosts)), "two services publish the same host port"
    for name, svc in services.items():
        for port in svc.get("ports", []):
            if name != "grafana":
                assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_kafka_runs_in_kraft_mode():
    env = compose()["services"]["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    sts = next(d for d in k8s_docs() if d["kind"] == "StatefulSet" and d["metadata"]["name"]
               == "kafka")
    assert sts["spec"]["replicas"] == 3
    env_k8s = {e["name"]: e.get("value") for e in
               sts["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env_k8s["KAFKA_CONTROLLER_QUORUM_VOTERS"].count("@") == 3
    assert env_k8s["KAFKA_MIN_INSYNC_REPLICAS"] == "2"


def test_grafana_mounts_match_dashboards_build(tmp_path):
    res = subprocess.run([sys.executable, "-m", "crowdwatch.cli", "dashboards", "build", "--out",
                          str(tmp_path)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    mounts = {v.split(":")[0]: v.split(":")[1] for v in compose()["services"]["grafana"]["volumes"]}
    assert (tmp_path / "provisioning").is_dir() and (tmp_path / "dashboards").is_dir()
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load((tmp_path / "provisioning/dashboards/crowdwatch.yaml").read_text())
    assert mounts["./grafana/dashboards"] == provider["providers"][0]["options"]["path"]


def test_prometheus_scrapes_the_services_that_exist():
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    job = prom["scrape_configs"][0]
    names = job["dns_sd_configs"][0]["names"]
    port = job["dns_sd_configs"][0]["port"]
    services = compose()["services"]
    k8s_services = {d["metadata"]["name"]: d for d in k8s_docs() if d["kind"] == "Service"}
    for name in names:
        assert str(port) in services[name]["expose"]
        assert any(p["port"] == port for p in k8s_services[name]["spec"]["ports"])
        assert k8s_services[name]["spec"].get("clusterIP") == "None"  # all replicas resolve
    am = prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0]
    assert am.split(":")[0] in services and am.split(":")[0] in k8s_services


def test_k8s_services_select_pods_and_ports_match():
    docs = k8s_docs()
    workloads = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    for svc in (d for d in docs if d["kind"] == "Service"):
        selector = svc["spec"]["selector"]
        matches = [w for w in workloads
                   if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()]
        assert matches, f"service {svc['metadata']['name']} selects no pods"
        ports = {p["containerPort"] for w in matches
                 for c in w["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
        for p in svc["spec"]["ports"]:
            assert p["targetPort"] in ports, f"{svc['metadata']['name']}: {p} has no container"
    for w in workloads:
        assert w["spec"]["selector"]["matchLabels"].items() <= (
            w["spec"]["template"]["metadata"]["labels"].items())


def test_k8s_config_and_secrets_are_referenced_not_baked_in():
    docs = k8s_docs()
    text = "\n".join(p.read_text() for p in (DEPLOY / "k8s").glob("*.yaml"))
    text += "\n".join(p.read_text() for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
    made = set(re.findall(r"create configmap ([a-z0-9-]+)", text))
    made_secrets = set(re.findall(r"create secret generic ([a-z0-9-]+)", text))
    defined = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    assert not [d for d in docs if d["kind"] == "Secret"], "no Secret values in the repository"
    for w in (d for d in docs if d["kind"] in ("Deployment", "StatefulSet")):
        spec = w["spec"]["template"]["spec"]
        for vol in spec.get("volumes", []):
            if "configMap" in vol:
                assert vol["configMap"]["name"] in made | defined, vol
            if "secret" in vol:
                assert vol["secret"]["secretName"] in made_secrets, vol
        for c in spec["containers"]:
            for e in c.get("env", []):
                ref = e.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    assert ref["secretKeyRef"]["name"] in made_secrets, e
                if "configMapKeyRef" in ref:
                    assert ref["configMapKeyRef"]["name"] in made | defined, e
                if SECRET_KEYS.search(e["name"]):
                    assert "value" not in e, f"{e['name']} is written in the manifest"


def test_alertmanager_routes_reach_defined_receivers():
    am = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    receivers = {r["name"] for r in am["receivers"]}
    routes = [am["route"], *am["route"].get("routes", [])]
    assert all(r["receiver"] in receivers for r in routes)
    for r in am["receivers"]:
        for hook in r.get("webhook_configs", []):
            assert "url_file" in hook and "url" not in hook  # URLs are secrets


def test_one_ingest_per_site_file_in_kubernetes():
    """Ingest runs every camera of its site file: a second replica (or a rolling update's
    overlap) would count each camera twice."""
    ingest = next(d for d in k8s_docs() if d["kind"] == "Deployment"
                  and d["metadata"]["name"] == "crowdwatch-ingest")
    assert ingest["spec"]["replicas"] == 1
    assert ingest["spec"]["strategy"]["type"] == "Recreate"
