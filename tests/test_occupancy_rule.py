"""The worked example of a plug-in kind: `occupancy` lives in one module and nothing else
names it, yet config validation, the engine, metrics series and tune see it."""

import pytest

from crowdwatch.config import ConfigError, CrowdwatchConfig, parse_config
from crowdwatch.events import CountEvent
from crowdwatch.streams.rules.engine import RuleEngine
from crowdwatch.streams.rules.registry import kinds, rule_series

T0 = 1_764_000_000.0


def site(rule: dict) -> CrowdwatchConfig:
    return CrowdwatchConfig.model_validate({
        "cameras": [{"id": "cam", "url": "sim://school-gate", "zones": [
            {"id": "a", "polygon": [[0, 0], [10, 0], [10, 10]]},
            {"id": "b", "polygon": [[0, 0], [20, 0], [20, 20]]}]}],
        "rules": [{"kind": "occupancy", "zones": ["a", "b"], "above": 10, "for": 5,
                   "clear_for": 3, **rule}]})


def test_the_kind_is_found_without_being_listed_anywhere():
    assert "occupancy" in kinds()
    series = rule_series(site({}))
    assert {(s.rule, s.zone, s.threshold) for s in series} == {("occupancy", "a", 10.0),
                                                                ("occupancy", "b", 10.0)}


def test_fires_when_any_zone_stays_occupied_and_resolves_once_all_clear():
    engine = RuleEngine(site({}), start_ts=T0)
    out = []
    for i in range(20):  # zone a stays quiet; zone b holds 12 people for 8 s, then empties
        out += engine.handle(CountEvent("cam", "a", T0 + i, 2.0))
        out += engine.handle(CountEvent("cam", "b", T0 + i + 0.5, 12.0 if i < 8 else 1.0))
    assert [(a.state, a.zone_id) for a in out] == [("firing", "b"), ("resolved", "b")]
    fired, resolved = out
    assert fired.starts_at == T0 + 5.5 and fired.value == 12.0
    assert resolved.fingerprint == fired.fingerprint and resolved.ends_at == T0 + 11.5


def test_a_short_crowd_does_not_fire():
    engine = RuleEngine(site({}), start_ts=T0)
    out = []
    for i in range(10):
        out += engine.handle(CountEvent("cam", "a", T0 + i, 15.0 if i < 3 else 0.0))
    assert out == []


def test_config_check_names_an_unknown_zone():
    text = """
cameras:
  - id: cam
    url: sim://school-gate
    zones: [{id: a, polygon: [[0, 0], [10, 0], [10, 10]]}]
rules:
  - {kind: occupancy, zones: [a, nowhere], above: 5}
"""
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert "rules[0].zones[1]: no zone with id 'nowhere'" in str(err.value)
