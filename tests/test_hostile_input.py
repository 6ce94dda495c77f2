"""Hostile and unlucky input: every listener survives every message, timestamps are
bounded, config check refuses what would crash later, and the process stops on SIGINT
even when started with it ignored."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from crowdwatch.config import CrowdwatchConfig, SensorsConfig
from crowdwatch.deadletter import DeadLetterFile
from crowdwatch.events import EventError, SensorEvent
from crowdwatch.ingest.sensor_http import HttpSensorEndpoint
from crowdwatch.ingest.sensor_messages import SensorMessageParser
from crowdwatch.ingest.sensor_mqtt import MqttSensorListener
from crowdwatch.ingest.sensors import ListenerSupervisor
from crowdwatch.metrics import Metrics
from crowdwatch.streams.alerting.sinks import Dispatcher, JsonlSink
from crowdwatch.streams.rules.engine import RuleEngine
from tests.helpers import popen_child, read_jsonl, wait_for
from tests.test_sensor_ingest import MQTT_PASSWORD, MQTT_USER, mosquitto  # noqa: F401

HUGE_INT = b'{"sensor_id": "door-a", "value": ' + b"9" * 400 + b"}"
DEEP = b"[" * 10000 + b"]" * 10000


def sensors(**extra) -> SensorsConfig:
    return SensorsConfig.model_validate({
        "zones": [{"id": "square"}],
        "devices": [{"id": "door-a", "zone": "square"}], **extra})


def http_endpoint(got: list, dead: DeadLetterFile, **http_cfg) -> HttpSensorEndpoint:
    """A started sensor endpoint on a free port with token "tok"."""
    os.environ["HOSTILE_HTTP_TOKEN"] = "tok"
    cfg = sensors(http={"host": "127.0.0.1", "port": 0, "token_env": "HOSTILE_HTTP_TOKEN",
                        **http_cfg})
    assert cfg.http is not None
    endpoint = HttpSensorEndpoint(cfg.http, SensorMessageParser(cfg), got.append, dead.reject)
    endpoint.start()
    return endpoint


def mqtt_pair(port: int, topic: str, emit, reject, metrics: Metrics | None = None,
              inflight: int = 20, **mqtt_cfg) -> tuple[MqttSensorListener, mqtt.Client]:
    """A listener on ``topic/+`` (not started) and a connected publisher, both logged in."""
    os.environ["HOSTILE_MQTT_USER"], os.environ["HOSTILE_MQTT_PASSWORD"] = MQTT_USER, MQTT_PASSWORD
    cfg = sensors(accept_unknown=True, mqtt={
        "host": "127.0.0.1", "port": port, "topic": f"{topic}/+",
        "username_env": "HOSTILE_MQTT_USER", "password_env": "HOSTILE_MQTT_PASSWORD",
        **mqtt_cfg})
    assert cfg.mqtt is not None
    listener = MqttSensorListener(cfg.mqtt, SensorMessageParser(cfg), emit, reject, "test",
                                  metrics=metrics)
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{topic}-publisher")
    publisher.username_pw_set(MQTT_USER, MQTT_PASSWORD)
    publisher.max_inflight_messages_set(inflight)
    publisher.connect("127.0.0.1", port)
    publisher.loop_start()
    return listener, publisher


def test_mqtt_listener_survives_hostile_messages(tmp_path, mosquitto):  # noqa: F811
    got: list[SensorEvent] = []
    metrics = Metrics()
    dead = DeadLetterFile(tmp_path / "dead.jsonl", metrics)
    listener, publisher = mqtt_pair(mosquitto, "hostile", got.append, dead.reject)
    listener.start()
    try:
        wait_for(lambda: listener.connected, 10, "the listener to connect")
        time.sleep(0.5)
        for payload in (HUGE_INT, DEEP, b'{"value": 1e999}', b'{"value": 5, "ts": -1e300}',
                        b'{"value": 5, "ts": 1}'):
            publisher.publish("hostile/door-a", payload, qos=1).wait_for_publish(5)
        publisher.publish("hostile/door-a", b'{"value": 7}', qos=1).wait_for_publish(5)
        wait_for(lambda: got, 10, "the good reading after the hostile ones")
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        listener.stop()
        dead.close()
    assert [e.value for e in got] == [7.0]
    reasons = [d["reason"] for d in read_jsonl(tmp_path / "dead.jsonl")]
    assert reasons == ["bad_json", "too_deep", "bad_field", "bad_ts", "bad_ts"]


def _post(port: int, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/sensors", data=body,
                                     method="POST", headers={"Authorization": "Bearer tok"})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_http_answers_every_hostile_body_even_with_a_read_only_dead_letter_file(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")  # a file where the dead-letter directory should be: unwritable
    metrics = Metrics()
    dead = DeadLetterFile(blocker / "dead.jsonl", metrics)
    got: list[SensorEvent] = []
    endpoint = http_endpoint(got, dead, max_body_bytes=65536)
    try:
        assert _post(endpoint.port, HUGE_INT) == (400, {"error": "bad_json", "detail": (
            "an integer of 400 digits (at most 18)")})
        status, reply = _post(endpoint.port, DEEP)
        assert status == 400 and reply["error"] == "too_deep"
        status, reply = _post(endpoint.port, b'[{"sensor_id": "door-a", "value": 3}]')
        assert status == 200 and reply["accepted"] == 1
    finally:
        endpoint.stop()
    assert metrics.value("crowdwatch_deadletter_write_errors_total") == 2
    assert metrics.value("crowdwatch_deadletter_total", {"reason": "too_deep"}) == 1
    assert [e.value for e in got] == [3.0]


def test_a_reading_stamped_ahead_never_suppresses_the_true_ones_after_it():
    parser = SensorMessageParser(sensors(max_future=300, max_past=600))
    now = 1_800_000_000.0
    ahead = parser.reading({"sensor_id": "door-a", "value": 2, "ts": now + 290}, now=now)
    assert ahead.ts == now  # tolerated skew, never trusted ahead of the receive clock
    with pytest.raises(EventError) as err:
        parser.reading({"sensor_id": "door-a", "value": 2, "ts": now + 301}, now=now)
    assert err.value.reason == "future_ts"
    with pytest.raises(EventError) as err:
        parser.reading({"sensor_id": "door-a", "value": 2, "ts": now - 601}, now=now)
    assert err.value.reason == "stale_ts"
    config = CrowdwatchConfig.model_validate({
        "sensors": {"zones": [{"id": "square"}],
                    "devices": [{"id": "door-a", "zone": "square"}]},
        "rules": [{"kind": "count", "zone": "square", "warn": 100, "for": 0, "window": 1,
                   "statistic": "max"}]})
    engine = RuleEngine(config, start_ts=now)
    engine.handle(ahead)
    fired = [a for i in range(1, 60) for a in engine.handle(
        parser.reading({"sensor_id": "door-a", "value": 500}, now=now + i))]
    assert [a.state for a in fired] == ["firing"] and fired[0].starts_at == now + 1


def _check(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    path = tmp_path / "site.yaml"
    path.write_text(text)
    return subprocess.run([sys.executable, "-m", "crowdwatch.cli", "config", "check",
                           str(path)], capture_output=True, text=True, cwd=tmp_path,
                          timeout=60)


CAMERA = "  - {id: c1, url: 'sim://steady', zones: [{id: a, polygon: [[0,0],[90,0],[90,90]]}]}\n"


@pytest.mark.parametrize(("text", "line", "message"), [
    ("cameras:\n  - {id: c1, url: 'sim://steady', zones: [{id: a, polygon: "
     "[[0,0],[90,90],[90,0],[0,90]]}]}\n", 2, "edges 0-1 and 2-3 cross"),
    ("cameras:\n  - {id: c1, url: 'sim://steady', zones: [{id: a, polygon: [[0,0],[90,0],"
     "[90,90]], ground: {image: [[0,0],[5,5],[9,9],[0,9]], world_m: [[0,0],[1,0],[1,1],[0,1]]}}"
     "]}\n", 2, "three of the four points lie on a line"),
    ("cameras:\n  - {id: c1, url: 'sim://steady', zones: [{id: a, mask: nowhere.png}]}\n", 2,
     "file not found: nowhere.png"),
    ("cameras:\n  - {id: c1, url: missing.mp4, zones: [{id: a, polygon: [[0,0],[9,0],[9,9]]}]}\n",
     2, "file not found: missing.mp4"),
    ("cameras:\n  - {id: c1, url: 'sim://school-gate?people=-4', zones: [{id: a, polygon: "
     "[[0,0],[9,0],[9,9]]}]}\n", 2, "sim scene out of range"),
    ("cameras:\n" + CAMERA + "rules: [{kind: count, zone: a, warn: 5}]\nrules: []\n", 4,
     "key given twice (also on line 3)"),
    ("cameras:\n" + CAMERA + "metrics: {port: true}\n", 3, "metrics.port: Input should be a "
     "valid integer"),
    ("cameras:\n" + CAMERA + "metrics: {port: 9300}\nsensors: {http: {port: 9300}}\n", 4,
     "port 9300 is also metrics.port"),
    ("cameras:\n" + CAMERA + "x0: &a0 [1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"x{i + 1}: &a{i + 1} [" + ", ".join([f"*a{i}"] * 8) + "]\n" for i in range(8)),
     8, "aliases expand it by more than 100000 values"),
])
def test_config_check_refuses_what_would_fail_later(tmp_path, text, line, message):
    done = _check(tmp_path, text)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"line {line}:" in done.stderr and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_a_read_only_alert_file_is_a_clear_error_and_a_failing_sink_closes_the_rest(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    site = tmp_path / "site.yaml"
    alerts = f"alerts: {{jsonl: {{path: '{blocker}/alerts.jsonl'}}}}\n"
    site.write_text("cameras:\n" + CAMERA + alerts + "metrics: {port: 0}\n")
    done = subprocess.run([sys.executable, "-m", "crowdwatch.cli", "run", "--config",
                           str(site), "--duration", "1"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "alerts.jsonl: cannot write" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr

    class Broken:
        name = "broken"

        def send(self, alert: object) -> None:
            pass

        def close(self) -> None:
            raise OSError(28, "No space left on device")

    good = JsonlSink(tmp_path / "alerts.jsonl")
    Dispatcher([Broken(), good], Metrics()).close()  # type: ignore[list-item]
    assert good._file.closed


def test_run_stops_on_sigint_even_when_started_with_it_ignored(tmp_path):
    proc = popen_child([sys.executable, "-c", (
        "import signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "from crowdwatch.cli.main import main; sys.exit(main(['run', '--metrics-port', '0', "
        "'--duration', '120']))")], cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(6)
        assert proc.poll() is None
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        assert proc.returncode == 0 and time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "SIGINT received; stopping cleanly" in proc.stderr.read()


def test_slow_clients_are_cut_off_and_hold_no_threads(tmp_path):
    got: list[SensorEvent] = []
    endpoint = http_endpoint(got, DeadLetterFile(tmp_path / "dead.jsonl", Metrics()),
                             request_timeout=2, max_connections=40, workers=2)
    threads_before = threading.active_count()
    slow = []
    try:
        for _ in range(30):  # a byte now and then: the deadline runs from the first one
            s = socket.create_connection(("127.0.0.1", endpoint.port), timeout=5)
            s.sendall(b"POST /v1/sensors HTTP/1.1\r\nHost: x\r\n")
            slow.append(s)
        assert threading.active_count() <= threads_before + 2  # no thread per client
        # Over the connection limit a request is turned away at once, not queued forever.
        over = [socket.create_connection(("127.0.0.1", endpoint.port), timeout=5)
                for _ in range(15)]
        for s in over:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        replies = [s.recv(64) for s in over]
        assert any(b" 503 " in r for r in replies), replies
        for s in over:
            s.close()
        time.sleep(1.0)
        for s in slow:
            s.sendall(b"X")  # still trickling
        time.sleep(2.0)
        closed = 0
        for s in slow:
            try:
                s.sendall(b"Y")
                closed += s.recv(1) == b""
            except OSError:
                closed += 1
        assert closed == len(slow)  # every slow client was cut off at the deadline
        status, reply = _post(endpoint.port, b'{"sensor_id": "door-a", "value": 4}')
        assert status == 200 and reply["accepted"] == 1  # and the endpoint still serves
    finally:
        for s in slow:
            s.close()
        endpoint.stop()
    assert [e.value for e in got] == [4.0]


def test_a_dead_mqtt_loop_is_restarted_and_broker_drops_are_visible(tmp_path, mosquitto):  # noqa: F811
    got: list[SensorEvent] = []
    metrics = Metrics()
    dead = DeadLetterFile(tmp_path / "dead.jsonl", metrics)
    listener, publisher = mqtt_pair(mosquitto, "revive", got.append, dead.reject, metrics)
    supervisor = ListenerSupervisor([listener], metrics)
    original = listener.client.loop_forever
    crashes = []

    def crash_once(*args, **kwargs):
        if not crashes:
            crashes.append(1)
            raise RuntimeError("injected: the network loop dies")
        return original(*args, **kwargs)

    listener.client.loop_forever = crash_once  # type: ignore[method-assign]
    listener.start()
    try:
        wait_for(lambda: not listener.alive(), 5, "the injected crash")
        supervisor.check()
        assert metrics.value("crowdwatch_listener_up", {"listener": "mqtt"}) == 0

        def revived() -> bool:
            supervisor.check()
            return listener.up()

        wait_for(revived, 15, "the supervisor to restart the loop")
        assert metrics.value("crowdwatch_listener_restarts_total", {"listener": "mqtt"}) == 1
        publisher.publish("revive/door-a", b"9", qos=1).wait_for_publish(5)
        wait_for(lambda: got, 10, "a reading through the restarted loop")
        # Mosquitto reports what it dropped every sys_interval (10 s) on $SYS.
        wait_for(lambda: metrics.value("crowdwatch_mqtt_broker_dropped_messages") is not None
                 and metrics.value("crowdwatch_mqtt_broker_dropped_messages") >= 0, 25,
                 "the broker's dropped-message count")
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        listener.stop()
        dead.close()
    assert [e.value for e in got] == [9.0]


def test_an_mqtt_burst_gap_shows_as_broker_drops(tmp_path, mosquitto):  # noqa: F811
    got: list[SensorEvent] = []
    metrics = Metrics()
    dead = DeadLetterFile(tmp_path / "dead.jsonl", metrics)
    def slow_emit(event: SensorEvent) -> None:  # a busy consumer: the broker's queue fills
        got.append(event)
        time.sleep(0.0005)

    listener, publisher = mqtt_pair(mosquitto, "burst", slow_emit, dead.reject, metrics,
                                    inflight=1000, qos=1)
    listener.start()
    sent = 20000
    try:
        wait_for(lambda: listener.connected, 10, "the listener to connect")
        wait_for(lambda: metrics.value("crowdwatch_mqtt_broker_dropped_messages") is not None,
                 15, "the broker's first dropped-message count")
        before = metrics.value("crowdwatch_mqtt_broker_dropped_messages") or 0.0
        infos = [publisher.publish(f"burst/s{i % 50}", b"1", qos=1) for i in range(sent)]
        for info in infos[-100:]:
            info.wait_for_publish(30)
        time.sleep(3)
        wait_for(lambda: len(got) + (metrics.value("crowdwatch_mqtt_broker_dropped_messages")
                                     - before) >= sent, 30,
                 "received plus broker-dropped to account for every message sent")
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        listener.stop()
        dead.close()
    dropped = metrics.value("crowdwatch_mqtt_broker_dropped_messages") - before
    assert dropped > 0  # the burst did overflow the broker's queue for the listener
    assert len(got) + dropped == sent, (len(got), dropped)  # and the metric shows the gap


def test_an_unwritable_dead_letter_path_stops_the_start_with_its_name(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    site = tmp_path / "site.yaml"
    site.write_text("cameras:\n" + CAMERA + f"deadletter: {{path: '{blocker}/dead.jsonl'}}\n"
                    "metrics: {port: 0}\n")
    done = subprocess.run([sys.executable, "-m", "crowdwatch.cli", "run", "--config",
                           str(site), "--duration", "1"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2, done.stderr
    assert f"deadletter.path: cannot write {blocker}/dead.jsonl" in done.stderr
    assert "Traceback" not in done.stderr


def test_200_slow_clients_hold_few_threads_and_good_readings_still_get_in(tmp_path):
    got: list[SensorEvent] = []
    endpoint = http_endpoint(got, DeadLetterFile(tmp_path / "dead.jsonl", Metrics()))
    slow = []
    try:
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", endpoint.port), timeout=5)
            s.sendall(b"POST /v1/sensors HTTP/1.1\r\nHost: x\r\nContent-Le")
            slow.append(s)
        time.sleep(0.5)
        assert threading.active_count() <= 64
        started = time.monotonic()
        status, reply = _post(endpoint.port, b'{"sensor_id": "door-a", "value": 6}')
        assert status == 200 and reply["accepted"] == 1
        assert time.monotonic() - started < 1.0
    finally:
        for s in slow:
            s.close()
        endpoint.stop()


def test_clients_that_hang_up_early_are_log_lines_not_tracebacks(tmp_path, capfd, caplog):
    got: list[SensorEvent] = []
    endpoint = http_endpoint(got, DeadLetterFile(tmp_path / "dead.jsonl", Metrics()))
    body = b'{"sensor_id": "door-a", "value": 1}'
    try:
        for i in range(100):
            s = socket.create_connection(("127.0.0.1", endpoint.port), timeout=5)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            head = (b"POST /v1/sensors HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(body))
            s.sendall(head + (body if i % 2 else body[:10]))  # half hang up mid-body
            s.close()  # a reset, before reading the answer
        time.sleep(1.0)
        status, reply = _post(endpoint.port, body)
        assert status == 200 and reply["accepted"] == 1
    finally:
        endpoint.stop()
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err and "BrokenPipe" not in out + err
    assert not any(r.exc_info for r in caplog.records)
