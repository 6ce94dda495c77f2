"""Hostile input goals, measured: config refusals, slow clients, recovery after a bad message.

- Every config of the failure list goes through `crowdwatch config check` as a fresh
  process: exit code, wall time and peak memory (RSS) of that process; the baseline is
  the same command on a good config.
- 200 slow HTTP clients (a partial request each) against the real sensor endpoint: the
  process's threads, and how long a good reading takes meanwhile.
- After one bad message (deeply nested JSON, a 400-digit number), how long until the next
  good reading is handled, over HTTP and over MQTT (a real Mosquitto from
  deploy/mosquitto/local.sh).
Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt

from crowdwatch.config import SensorsConfig
from crowdwatch.deadletter import DeadLetterFile
from crowdwatch.events import SensorEvent
from crowdwatch.ingest.sensor_http import HttpSensorEndpoint
from crowdwatch.ingest.sensor_messages import SensorMessageParser
from crowdwatch.ingest.sensor_mqtt import MqttSensorListener
from crowdwatch.metrics import Metrics

ROOT = Path(__file__).resolve().parents[1]
CAMERA = "  - {id: c1, url: 'sim://steady', zones: [{id: a, polygon: [[0,0],[90,0],[90,90]]}]}\n"
ALIASES = "x0: &a0 [1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
    f"x{i + 1}: &a{i + 1} [" + ", ".join([f"*a{i}"] * 8) + "]\n" for i in range(12))
FAILURES = {
    "self_intersecting_zone": "cameras:\n  - {id: c1, url: 'sim://steady', zones: [{id: a, "
                              "polygon: [[0,0],[90,90],[90,0],[0,90]]}]}\n",
    "zero_area_zone": "cameras:\n  - {id: c1, url: 'sim://steady', zones: [{id: a, polygon: "
                      "[[0,0],[5,5],[9,9]]}]}\n",
    "collinear_ground": "cameras:\n  - {id: c1, url: 'sim://steady', zones: [{id: a, polygon: "
                        "[[0,0],[90,0],[90,90]], ground: {image: [[0,0],[5,5],[9,9],[0,9]], "
                        "world_m: [[0,0],[1,0],[1,1],[0,1]]}}]}\n",
    "repeated_ground_point": "cameras:\n  - {id: c1, url: 'sim://steady', zones: [{id: a, "
                             "polygon: [[0,0],[90,0],[90,90]], ground: {image: [[0,0],[0,0],"
                             "[9,9],[0,9]], world_m: [[0,0],[1,0],[1,1],[0,1]]}}]}\n",
    "missing_mask": "cameras:\n  - {id: c1, url: 'sim://steady', zones: [{id: a, mask: "
                    "nowhere.png}]}\n",
    "missing_model": "cameras:\n  - {id: c1, url: 'sim://steady', detector: {kind: background, "
                     "model: nowhere.json}, zones: [{id: a, polygon: [[0,0],[9,0],[9,9]]}]}\n",
    "bad_sim": "cameras:\n  - {id: c1, url: 'sim://school-gate?people=-4', zones: [{id: a, "
               "polygon: [[0,0],[9,0],[9,9]]}]}\n",
    "duplicate_key": "cameras:\n" + CAMERA + "rules: [{kind: count, zone: a, warn: 5}]\n"
                     "rules: []\n",
    "alias_bomb": "cameras:\n" + CAMERA + ALIASES,
    "boolean_port": "cameras:\n" + CAMERA + "metrics: {port: true}\n",
    "clashing_ports": "cameras:\n" + CAMERA + "metrics: {port: 9300}\n"
                      "sensors: {http: {port: 9300}}\n",
}
GOOD = "cameras:\n" + CAMERA


def config_check(tmp: Path, name: str, text: str | bytes | int) -> dict:
    path = tmp / f"{name}.yaml"
    if isinstance(text, int):  # a file of that many bytes, written without holding it
        with path.open("wb") as out:
            out.write(b"#")
            for _ in range(text // (1 << 20)):
                out.write(b" " * (1 << 20))
    else:
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    # The check's own peak memory, reported by the process itself as it exits.
    # VmHWM, not ru_maxrss: the latter starts from the forking parent's size.
    probe = ("import atexit, sys; atexit.register(lambda: print('PEAK_RSS_KB', "
             "[ln.split()[1] for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0], "
             "file=sys.stderr)); from crowdwatch.cli.main import main; "
             "sys.exit(main(sys.argv[1:]))")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", probe, "config", "check", str(path)],
                          capture_output=True, text=True, cwd=tmp, timeout=120)
    wall = time.perf_counter() - started
    peak_kb = next((int(line.split()[1]) for line in done.stderr.splitlines()
                    if line.startswith("PEAK_RSS_KB")), -1)
    where = str(path) in done.stderr and any(
        key in done.stderr for key in ("line ", "offset ", "-byte limit"))
    return {"exit": done.returncode, "wall_s": round(wall, 3),
            "peak_rss_mb": round(peak_kb / 1024, 1),
            "says_where": where, "traceback": "Traceback" in done.stderr}


def post(port: int, body: bytes) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/sensors", data=body,
                                     method="POST", headers={"Authorization": "Bearer tok"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def http_measures(tmp: Path) -> dict:
    os.environ["BENCH_HTTP_TOKEN"] = "tok"
    cfg = SensorsConfig.model_validate({
        "zones": [{"id": "square"}], "devices": [{"id": "door-a", "zone": "square"}],
        "http": {"host": "127.0.0.1", "port": 0, "token_env": "BENCH_HTTP_TOKEN"}})
    got: list[SensorEvent] = []
    assert cfg.http is not None
    endpoint = HttpSensorEndpoint(cfg.http, SensorMessageParser(cfg), got.append,
                                  DeadLetterFile(tmp / "dead.jsonl", Metrics()).reject)
    endpoint.start()
    slow = []
    try:
        baseline_threads = threading.active_count()
        started = time.perf_counter()
        post(endpoint.port, b'{"sensor_id": "door-a", "value": 1}')
        baseline_s = time.perf_counter() - started
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", endpoint.port), timeout=5)
            s.sendall(b"POST /v1/sensors HTTP/1.1\r\nHost: x\r\nContent-Le")
            slow.append(s)
        time.sleep(0.5)
        threads = threading.active_count()
        started = time.perf_counter()
        status = post(endpoint.port, b'{"sensor_id": "door-a", "value": 2}')
        under_attack_s = time.perf_counter() - started
        after_bad = []
        for bad in (b"[" * 10000 + b"]" * 10000, b'{"sensor_id": "door-a", "value": '
                    + b"9" * 400 + b"}"):
            post(endpoint.port, bad)
            started = time.perf_counter()
            post(endpoint.port, b'{"sensor_id": "door-a", "value": 3}')
            after_bad.append(time.perf_counter() - started)
    finally:
        for s in slow:
            s.close()
        endpoint.stop()
    return {"slow_clients": 200, "threads_baseline": baseline_threads,
            "threads_with_slow_clients": threads, "good_reading_status": status,
            "good_reading_s_baseline": round(baseline_s, 4),
            "good_reading_s_with_slow_clients": round(under_attack_s, 4),
            "http_next_good_after_bad_s_max": round(max(after_bad), 4)}


def mqtt_measures(tmp: Path) -> dict:
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    mqtt_port = port.getsockname()[1]
    port.close()
    env = {**os.environ, "CROWDWATCH_MQTT_PORT": str(mqtt_port),
           "CROWDWATCH_MQTT_DIR": str(tmp / "mosquitto")}
    script = ROOT / "deploy" / "mosquitto" / "local.sh"
    subprocess.run(["bash", str(script), "start"], env=env, check=True, capture_output=True)
    got: list[tuple[float, SensorEvent]] = []
    cfg = SensorsConfig.model_validate({
        "zones": [{"id": "square"}], "devices": [{"id": "door-a", "zone": "square"}],
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "topic": "bench/+"}})
    assert cfg.mqtt is not None
    listener = MqttSensorListener(cfg.mqtt, SensorMessageParser(cfg),
                                  lambda e: got.append((time.perf_counter(), e)),
                                  DeadLetterFile(tmp / "mdead.jsonl", Metrics()).reject, "bench")
    listener.start()
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-publisher")
    publisher.connect("127.0.0.1", mqtt_port)
    publisher.loop_start()
    delays = []
    try:
        deadline = time.monotonic() + 10
        while not listener.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        for bad in (b"[" * 10000 + b"]" * 10000, b'{"value": ' + b"9" * 400 + b"}",
                    b'{"value": 5, "ts": -1e300}'):
            publisher.publish("bench/door-a", bad, qos=1).wait_for_publish(5)
            n = len(got)
            sent = time.perf_counter()
            publisher.publish("bench/door-a", b"7", qos=1).wait_for_publish(5)
            deadline = time.monotonic() + 10
            while len(got) == n and time.monotonic() < deadline:
                time.sleep(0.001)
            delays.append(got[-1][0] - sent if len(got) > n else float("inf"))
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        listener.stop()
        subprocess.run(["bash", str(script), "stop"], env=env, check=False, capture_output=True)
    return {"mqtt_next_good_after_bad_s_max": round(max(delays), 4)}


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="crowdwatch-bench-hostile-"))
    result: dict = {"config_check_baseline_good": config_check(tmp, "good", GOOD)}
    checks = {name: config_check(tmp, name, text) for name, text in FAILURES.items()}
    checks["binary_file"] = config_check(tmp, "binary", b"cameras:\x00\x01\x02")
    checks["oversized_file"] = config_check(tmp, "big", 33 * 1024 * 1024)
    result["config_checks"] = checks
    result["config_all_exit_2"] = all(c["exit"] == 2 for c in checks.values())
    result["config_all_say_where"] = all(c["says_where"] for c in checks.values())
    result["config_max_wall_s"] = max(c["wall_s"] for c in checks.values())
    result["config_max_over_baseline_s"] = round(
        result["config_max_wall_s"] - result["config_check_baseline_good"]["wall_s"], 3)
    result["config_peak_rss_mb"] = max(c["peak_rss_mb"] for c in checks.values())
    result |= http_measures(tmp)
    result |= mqtt_measures(tmp)
    result["goals"] = {"config_all_exit_2": True, "config_max_over_baseline_s": 1.0,
                       "config_peak_rss_mb": 100,
                       "threads_with_slow_clients": 64, "good_reading_s_with_slow_clients": 1,
                       "http_next_good_after_bad_s_max": 1, "mqtt_next_good_after_bad_s_max": 1}
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
