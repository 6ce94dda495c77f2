import json
import math

import pytest

from crowdwatch.events import (
    SCHEMA_VERSION,
    Alert,
    AlertState,
    CameraHealth,
    CountEvent,
    EventError,
    HealthState,
    SensorEvent,
    Severity,
    event_from_json,
    event_to_compact,
    event_to_json,
    fingerprint,
    load_json,
)


@pytest.mark.parametrize(
    "event",
    [
        CountEvent("cam", "z", 1764000000.25, 12.5, 0.8, 15.6, "background", 0.9, 42),
        CameraHealth("cam", 1764000000.0, "stale", 1.9, "frozen"),
        SensorEvent("door-3", 1764000000.0, "counter", 17.0, "z"),
        Alert("abc", "density", "z", "warning", "resolved", 1764000000.0, 0.3, 0.25, "ok",
              1764000100.5, {"site": "s"}),
    ],
)
def test_round_trip_keeps_every_field(event):
    wire = json.loads(event_to_json(event))
    assert wire["v"] == SCHEMA_VERSION
    assert wire["type"] == event.TYPE
    assert event_from_json(event_to_json(event)) == event


EVENTS = [
    CountEvent("cam", "z", 1764000000.2501, 12.5, 0.8, 15.6, "flow", 0.9, 42, 1.1, 0.3, 0.5,
               {"gate": {"in": 2.0, "out": 0.5, "length_m": 3.0}}),
    CameraHealth("cam", 1764000000.0, "stale", 1.9, "frozen", "keyframe"),
    SensorEvent("door-3", 1764000000.0, "counter", 17.0, "z"),
    Alert("abc", "density", "z", "warning", "resolved", 1764000000.0, 0.3, 0.25, "ok",
          1764000100.5, {"site": "s"}, "density:z", ["z"]),
]


@pytest.mark.parametrize("event", EVENTS)
def test_the_compact_form_reads_back_every_field_and_is_smaller(event):
    compact = event_to_compact(event)
    assert json.loads(compact)[:2] == [SCHEMA_VERSION, event.TYPE]
    assert event_from_json(compact) == event  # timestamps exact: epoch seconds
    assert event_from_json(compact, type(event)) == event
    assert len(compact) < 0.6 * len(event_to_json(event))


def test_the_compact_form_of_an_older_build_with_fewer_fields_still_reads():
    """Fields added later go last with a default: an array without them reads."""
    older = json.loads(event_to_compact(EVENTS[0]))[:11]  # before speed, interval, lines
    event = event_from_json(json.dumps(older))
    assert event.frame_seq == 42 and event.speed_mps is None and event.lines == {}


@pytest.mark.parametrize(("raw", "reason"), [
    (b'[1, 2]', "not_an_object"),
    (b'[1]', "not_an_object"),
    (b'[99, "count", "c", "z", 1.8e9, 1]', "bad_version"),
    (b'[1, "selfie", "c"]', "unknown_type"),
    (b'[1, "count", "c"]', "bad_fields"),
    (b'[1, "count", "c", "z", 1.8e9, 1, null, null, "d", 1, 0, null, null, null, {}, 5]',
     "bad_fields"),
    (b'[1, "count", "c", "z", 1.8e9, -3]', "bad_field"),
    (b'[1, "count", "c", "z", 1, 3]', "bad_ts"),
    (b'[1, "count", "c", "z", "yesterday", 3]', "bad_field"),
    (b'[1, "count", "c", "z", 1.8e9, 3, null, null, "d", 1, 0, null, null, null, [1]]',
     "bad_field"),
    (b'[1, "health", "c", 1.8e9, "sleepy"]', "bad_field"),
    (b'[1, "sensor", "s", 1.8e9, "counter", "many"]', "bad_field"),
])
def test_invalid_compact_messages_name_their_reason(raw, reason):
    with pytest.raises(EventError) as err:
        event_from_json(raw)
    assert err.value.reason == reason


def test_a_compact_message_of_another_type_is_refused_where_counts_belong():
    with pytest.raises(EventError) as err:
        event_from_json(event_to_compact(EVENTS[1]), CountEvent)
    assert err.value.reason == "unexpected_type"


def test_decoded_states_and_severities_are_enum_members_in_both_wire_forms():
    health = CameraHealth("cam", 1764000000.0, HealthState.TAMPERED, 1.0, "dark")
    alert = Alert("abc", "density", "z", Severity.CRITICAL, AlertState.FIRING, 1764000000.0,
                  0.9, 0.7, "dense")
    for encode in (event_to_json, event_to_compact):
        got = event_from_json(encode(health))
        assert type(got.state) is HealthState and got.state is HealthState.TAMPERED
        got = event_from_json(encode(alert))
        assert type(got.state) is AlertState and type(got.severity) is Severity
    raw = json.loads(event_to_json(alert)) | {"severity": "apocalyptic"}
    with pytest.raises(EventError) as err:
        event_from_json(json.dumps(raw))
    assert err.value.reason == "bad_field" and "severity" in str(err.value)


def test_timestamps_are_iso_utc_on_the_wire():
    wire = json.loads(event_to_json(CountEvent("c", "z", 0.5, 1.0)))
    assert wire["ts"] == "1970-01-01T00:00:00.500Z"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "bad_json"),
        (b"[1,2]", "not_an_object"),
        (b'{"v": 99, "type": "count"}', "bad_version"),
        (b'{"v": 1, "type": "selfie"}', "unknown_type"),
        (b'{"v": 1, "type": "count", "camera_id": "c"}', "bad_fields"),
        (b'{"v":1,"type":"count","camera_id":"c","zone_id":"z","ts":"yesterday","count":1}',
         "bad_field"),
        (b'{"v":1,"type":"count","camera_id":"c","zone_id":"z","ts":1.8e9,"count":-3}',
         "bad_field"),
        (b'{"v":1,"type":"count","camera_id":"c","zone_id":"z","ts":1.8e9,"count":NaN}',
         "bad_json"),
        (b'{"v":1,"type":"health","camera_id":"c","ts":1.8e9,"state":"sleepy"}', "bad_field"),
        # hostile input: clocks out of range, huge integers, deep nesting
        (b'{"v":1,"type":"count","camera_id":"c","zone_id":"z","ts":-1e300,"count":1}',
         "bad_ts"),
        (b'{"v":1,"type":"count","camera_id":"c","zone_id":"z","ts":1,"count":1}', "bad_ts"),
        (b'{"v":1,"type":"count","camera_id":"c","zone_id":"z","ts":1.8e9,"count":' + b"9" * 400
         + b"}", "bad_json"),
        (b"[" * 10000 + b"]" * 10000, "too_deep"),
        (b'{"a":' * 20 + b"1" + b"}" * 20, "too_deep"),
    ],
)
def test_invalid_messages_name_their_reason(raw, reason):
    with pytest.raises(EventError) as err:
        event_from_json(raw)
    assert err.value.reason == reason


def test_expected_type_is_enforced():
    raw = event_to_json(CameraHealth("c", 1.0, "up"))
    with pytest.raises(EventError) as err:
        event_from_json(raw, expected=CountEvent)
    assert err.value.reason == "unexpected_type"


def test_fingerprint_is_stable_and_distinct():
    a = fingerprint("site", "density", "zone-a", "warning")
    assert a == fingerprint("site", "density", "zone-a", "warning")
    assert a != fingerprint("site", "density", "zone-b", "warning")
    assert a != fingerprint("site", "density", "zone-a", "critical")
    assert len(a) == 16 and not math.isnan(int(a, 16))


@pytest.mark.parametrize("raw", [
    b'{"a": 1, "b": [1.5, -2e-7, null, true], "c": {"d": "\\u00e9"}}',
    b'{"a": 1, "a": 2}',  # the last of a repeated key, as the standard reader keeps
    b'{"n": 123456789012345678}',  # 18 digits: an integer either way
    b'{"n": 1.2345678901234567890}',  # a long mantissa: the same float either way
    b'{"s": "\\ud800"}',  # a lone surrogate orjson refuses: the standard reader takes it
    b'{"x": 1e999}',  # too large for a double: the standard reader's infinity
    '{"text": "caf\u00e9"}',
])
def test_the_fast_reader_reads_what_the_standard_reader_reads(raw):
    assert load_json(raw) == json.loads(raw)


def test_a_long_integer_is_refused_as_the_bounded_reader_refuses_it():
    # orjson would take 20 digits (or turn more into a float): the bounded reader decides.
    for digits in (19, 20, 25):
        with pytest.raises(EventError) as err:
            load_json(b'{"n": ' + b"9" * digits + b"}")
        assert err.value.reason == "bad_json"
        assert f"an integer of {digits} digits" in err.value.detail
