"""Property-based fuzzing of everything that reads untrusted input: the config loader, the
sensor message parser, event decoding and the HTTP endpoint. Each runs 2,000 generated
inputs per CI run (bounded in time); none may raise anything but the one error type the
caller handles, and every rejection says why (a reason, or a field and line)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crowdwatch.config import ConfigFileError, SensorsConfig, parse_config
from crowdwatch.events import EventError, SensorEvent, event_from_json
from crowdwatch.ingest.sensor_http import HttpSensorEndpoint
from crowdwatch.ingest.sensor_messages import SensorMessageParser

FUZZ = settings(max_examples=2000, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
           | st.text(max_size=20) | st.sampled_from([10**30, -1e300, 1e308, 1.0, 0, -5]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)
reading_keys = st.sampled_from(["sensor_id", "ts", "value", "kind", "v", "type", "zone_id",
                                "extra"])
readings = st.dictionaries(reading_keys, json_values | st.sampled_from(
    ["door-a", "2026-11-25T08:00:00Z", "counter", "sensor", 1_800_000_000]), max_size=6)

SENSORS = SensorsConfig.model_validate({
    "zones": [{"id": "square"}], "devices": [{"id": "door-a", "zone": "square"}]})


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


@FUZZ
@given(st.one_of(st.binary(max_size=300), readings.map(_json_bytes),
                 json_values.map(_json_bytes)))
def test_the_sensor_parser_accepts_or_names_a_reason(raw):
    parser = SensorMessageParser(SENSORS)
    try:
        event = parser.reading(parser.decode(raw), None, 1_800_000_000.0)
    except EventError as exc:
        assert exc.reason and exc.detail is not None
        return
    assert isinstance(event, SensorEvent) and event.sensor_id == "door-a"
    assert 946_684_800 <= event.ts <= 1_800_000_000.0


event_keys = st.sampled_from(["v", "type", "camera_id", "zone_id", "ts", "count",
                              "density_ppm2", "state", "sensor_id", "value", "kind"])
events = st.dictionaries(event_keys, json_values | st.sampled_from(
    [1, "count", "health", "sensor", "up", "cam", 1_800_000_000, 3.5]), max_size=9)


# The compact form: [v, type, fields...] with anything in each place.
compact_events = st.tuples(st.sampled_from([1, 1, 2, "1", None]),
                           st.sampled_from(["count", "health", "sensor", "alert", "x", 3]),
                           st.lists(json_values | st.sampled_from(
                               ["cam", "z", 1_800_000_000, 3.5, "up", {}]), max_size=16)
                           ).map(lambda t: [t[0], t[1], *t[2]])


@FUZZ
@given(st.one_of(st.binary(max_size=300), events.map(_json_bytes),
                 compact_events.map(_json_bytes)))
def test_event_decoding_builds_an_event_or_names_a_reason(raw):
    try:
        event = event_from_json(raw)
    except EventError as exc:
        assert exc.reason
        return
    assert event.TYPE in ("count", "health", "sensor", "alert")


config_keys = st.sampled_from(["site", "cameras", "sensors", "rules", "alerts", "metrics",
                               "engine", "kafka", "deadletter", "id", "url", "zones",
                               "polygon", "kind", "zone", "warn", "port", "name", "devices"])
config_trees = st.recursive(
    scalars | st.sampled_from(["sim://steady", "count", "a", [[0, 0], [9, 0], [9, 9]]]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(config_keys, inner, max_size=4),
    max_leaves=16)


def _yaml_text(tree: object) -> str:
    return yaml.safe_dump(tree, allow_unicode=True)


@FUZZ
@given(st.one_of(st.text(max_size=200), config_trees.map(_yaml_text)))
def test_the_config_loader_loads_or_reports_each_problem_with_a_place(text):
    try:
        parse_config(text, "fuzz.yaml")
    except ConfigFileError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.message
            assert problem.path or problem.line is not None  # a field, or a line at least
        return


def test_the_http_endpoint_answers_every_fuzzed_body(tmp_path):
    os.environ["FUZZ_SENSOR_TOKEN"] = "tok"
    cfg = SensorsConfig.model_validate({
        "zones": [{"id": "square"}], "devices": [{"id": "door-a", "zone": "square"}],
        "http": {"host": "127.0.0.1", "port": 0, "token_env": "FUZZ_SENSOR_TOKEN"}})
    rejected: list[str] = []
    accepted: list[SensorEvent] = []
    assert cfg.http is not None
    endpoint = HttpSensorEndpoint(cfg.http, SensorMessageParser(cfg), accepted.append,
                                  lambda source, reason, *rest: rejected.append(reason))
    endpoint.start()
    statuses: list[int] = []

    @FUZZ
    @given(st.one_of(st.binary(max_size=300), readings.map(_json_bytes),
                     st.lists(readings, max_size=5).map(_json_bytes)))
    def post(body: bytes) -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{endpoint.port}/v1/sensors", data=body, method="POST",
            headers={"Authorization": "Bearer tok", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                reply = json.loads(resp.read())
                status = resp.status
        except urllib.error.HTTPError as exc:
            status, reply = exc.code, json.loads(exc.read() or b"{}")
        statuses.append(status)
        assert status in (200, 400, 413), (status, reply)
        if status == 200:
            for item in reply["rejected"]:
                assert item["reason"] and "index" in item

    try:
        post()
    finally:
        endpoint.stop()
    assert len(statuses) >= 2000 and 500 not in statuses
    assert "internal_error" not in rejected
    # every body the endpoint refused, and every item in it, was dead-lettered
    assert len(rejected) >= statuses.count(400)
