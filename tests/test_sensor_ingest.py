"""Sensor ingest end to end: a real `crowdwatch run` fed over HTTP and a real Mosquitto."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tests.helpers import free_port, metric_value, popen_child, read_jsonl, wait_for

ROOT = Path(__file__).resolve().parents[1]
MOSQUITTO = ROOT / "deploy" / "mosquitto" / "local.sh"
TOKEN = "s3cret-sensor-token"
MQTT_USER, MQTT_PASSWORD = "crowdwatch", "mqtt-pass-123"


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory):
    port = free_port()
    env = {**os.environ, "CROWDWATCH_MQTT_PORT": str(port),
           "CROWDWATCH_MQTT_DIR": str(tmp_path_factory.mktemp("mosquitto")),
           "CROWDWATCH_MQTT_USER": MQTT_USER, "CROWDWATCH_MQTT_PASSWORD": MQTT_PASSWORD}
    started = subprocess.run(["bash", str(MOSQUITTO), "start"], env=env, capture_output=True,
                             text=True, check=False)
    assert started.returncode == 0, started.stdout + started.stderr
    yield port
    subprocess.run(["bash", str(MOSQUITTO), "stop"], env=env, capture_output=True, check=False)


def write_config(tmp: Path, mqtt_port: int, http_port: int, metrics_port: int) -> Path:
    config = {
        "site": {"name": "sensor-test"},
        "sensors": {
            "zones": [{"id": "square", "area_m2": 200}],
            "devices": [{"id": "door-a", "zone": "square"}, {"id": "door-b", "zone": "square"}],
            "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "topic": "crowdwatch/sensors/+",
                     "username_env": "TEST_MQTT_USER", "password_env": "TEST_MQTT_PASSWORD"},
            "http": {"host": "127.0.0.1", "port": http_port, "token_env": "TEST_SENSOR_TOKEN",
                     "max_body_bytes": 2048, "max_items": 10},
        },
        "rules": [{"kind": "count", "zone": "square", "warn": 50, "for": 0, "window": 1,
                   "statistic": "max", "clear_for": 0}],
        "alerts": {"console": True, "jsonl": {"path": str(tmp / "alerts.jsonl")}},
        "deadletter": {"path": str(tmp / "deadletter.jsonl")},
        "metrics": {"port": metrics_port},
    }
    path = tmp / "sensors.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def post(port: int, body: bytes, token: str | None = TOKEN,
         headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/sensors", data=body,
                                     method="POST", headers=headers or {})
    request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_http_and_mqtt_readings_reach_the_rules_and_bad_ones_the_dead_letter_file(
        tmp_path, mosquitto):
    http_port, metrics_port = free_port(), free_port()
    config = write_config(tmp_path, mosquitto, http_port, metrics_port)
    env = {**os.environ, "TEST_SENSOR_TOKEN": TOKEN, "TEST_MQTT_USER": MQTT_USER,
           "TEST_MQTT_PASSWORD": MQTT_PASSWORD}
    proc = popen_child([sys.executable, "-m", "crowdwatch.cli", "run", "--config",
                             str(config), "--duration", "90"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: metric_value(metrics_port, "crowdwatch_build_info", site="sensor-test",
                                      version=_version()) == 1, 20, "the metrics endpoint")
        wait_for(lambda: _port_open(http_port), 10, "the sensor endpoint")

        # HTTP: the endpoint never runs open, and limits come before parsing.
        assert post(http_port, b'{"sensor_id": "door-a", "value": 1}', token=None)[0] == 401
        assert post(http_port, b'{"sensor_id": "door-a", "value": 1}', token="wrong")[0] == 401
        assert post(http_port, b"x" * 4096)[0] == 413
        status, reply = post(http_port, b"{not json")
        assert status == 400 and reply["error"] == "bad_json"
        batch = [{"sensor_id": "door-a", "value": 30},
                 {"sensor_id": "door-a", "value": "many"},
                 {"sensor_id": "door-zz", "value": 3}]
        status, reply = post(http_port, json.dumps(batch).encode())
        assert status == 200 and reply["accepted"] == 1
        assert [(r["index"], r["reason"]) for r in reply["rejected"]] == [
            (1, "bad_field"), (2, "unknown_sensor")]

        # MQTT: the topic names the sensor; together the two doors pass the warn level.
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-publisher")
        client.username_pw_set(MQTT_USER, MQTT_PASSWORD)
        client.connect("127.0.0.1", mosquitto)
        client.loop_start()
        wait_for(lambda: metric_value(metrics_port, "crowdwatch_events_total", type="sensor")
                 >= 1, 10, "the HTTP reading")

        def publish(topic: str, payload: bytes) -> None:
            client.publish(topic, payload, qos=1).wait_for_publish(5)

        publish("crowdwatch/sensors/door-b", b"garbage{")
        publish("crowdwatch/sensors/door-x", b'{"value": 4}')
        # Retry until the listener's subscription is in place (it connects in the background).
        wait_for(lambda: publish("crowdwatch/sensors/door-b", b'{"value": 25}') or read_jsonl(
            tmp_path / "alerts.jsonl"), 20, "the count alert from HTTP + MQTT readings", 1.0)
        client.loop_stop()
        client.disconnect()

        (alert,) = [a for a in read_jsonl(tmp_path / "alerts.jsonl") if a["state"] == "firing"]
        assert alert["rule"] == "count" and alert["zone_id"] == "square"
        assert alert["value"] == 55.0  # 30 (door-a over HTTP) + 25 (door-b over MQTT)
        assert metric_value(metrics_port, "crowdwatch_sensor_value", sensor="door-b",
                            zone="square", kind="counter") == 25.0

        dead = read_jsonl(tmp_path / "deadletter.jsonl")
        reasons = sorted(d["reason"] for d in dead)
        assert reasons.count("unauthorised") == 2 and "oversized" in reasons
        assert reasons.count("bad_json") == 2  # one over HTTP, one over MQTT
        assert "bad_field" in reasons and reasons.count("unknown_sensor") == 2
        mqtt_bad = next(d for d in dead if d["source"] == "mqtt:crowdwatch/sensors/door-b")
        assert mqtt_bad["raw"] == "garbage{" and mqtt_bad["detail"]
        assert TOKEN not in json.dumps(dead)
        assert metric_value(metrics_port, "crowdwatch_deadletter_total", reason="bad_json") == 2
        assert proc.poll() is None  # bad input never stopped ingest
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert TOKEN not in err and MQTT_PASSWORD not in err


def test_http_endpoint_refuses_to_start_without_a_token(tmp_path, mosquitto):
    config = write_config(tmp_path, mosquitto, free_port(), 0)
    env = {k: v for k, v in os.environ.items() if k != "TEST_SENSOR_TOKEN"}
    env.update(TEST_MQTT_USER=MQTT_USER, TEST_MQTT_PASSWORD=MQTT_PASSWORD)
    done = subprocess.run([sys.executable, "-m", "crowdwatch.cli", "run", "--config",
                           str(config), "--duration", "5"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "TEST_SENSOR_TOKEN" in done.stderr


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _version() -> str:
    from crowdwatch import __version__

    return __version__
