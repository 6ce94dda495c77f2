"""Surge and forecast rules: pure state machines on event time."""

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.events import CountEvent
from crowdwatch.streams.rules.base import state_from_dict, state_to_dict
from crowdwatch.streams.rules.engine import RuleEngine
from crowdwatch.streams.rules.kinds.forecast import ForecastRule, ForecastRuleConfig
from crowdwatch.streams.rules.kinds.surge import SurgeRule, SurgeRuleConfig

T0 = 1_764_000_000.0


def series(values, dt=1.0):
    return [(T0 + i * dt, v) for i, v in enumerate(values)]


def run(rule, points):
    state = rule.new_state()
    out = []
    for ts, v in points:
        out += [(ts, a) for a in rule.observe(state, ts, v)]
    return out, state


def surge(**kw) -> SurgeRule:
    cfg = SurgeRuleConfig.model_validate({"kind": "surge", "zone": "z", "rise_per_min": 30,
                                          "window": 20, "smooth": 4, "clear_for": 10, **kw})
    return SurgeRule(cfg, "site", "cam")


def test_surge_fires_on_a_fast_rise_only():
    flat = [10.0] * 40
    ramp = [10.0 + 1.0 * i for i in range(30)]  # +60 people/min
    slow = [40.0 + 0.2 * i for i in range(60)]  # +12 people/min
    events, _ = run(surge(), series(flat + ramp + slow + [52.0] * 30))
    states = [(a.state, a.rule) for _, a in events]
    assert states == [("firing", "surge"), ("resolved", "surge")]
    fired_at = events[0][0] - T0
    assert 40 < fired_at < 60  # during the ramp, not before it
    assert events[0][1].value >= 30 and "surge in z" in events[0][1].summary


def test_surge_ignores_one_noisy_sample():
    noisy = [10.0] * 30
    noisy[25] = 90.0
    assert run(surge(), series(noisy + [10.0] * 30))[0] == []


def forecast(**kw) -> ForecastRule:
    cfg = ForecastRuleConfig.model_validate({"kind": "forecast", "zone": "z", "metric": "count",
                                             "threshold": 100, "horizon": 60, "for": 3,
                                             "clear_for": 10, **kw})
    return ForecastRule(cfg, "site", "cam")


def test_forecast_warns_before_the_level_is_crossed():
    rising = [20.0 + 1.0 * i for i in range(120)]  # reaches 100 at t=80 s
    events, _state = run(forecast(), series(rising))
    (ts, alert), *_ = events
    crossed_at = T0 + 80
    assert alert.state == "firing" and alert.rule == "forecast"
    lead = crossed_at - ts
    assert 20 <= lead <= 65, lead  # warned ahead, within the horizon
    assert "predicted_at" in alert.labels and "forecast to reach 100" in alert.summary


def test_forecast_quiet_on_a_flat_or_falling_series_and_resolves():
    assert run(forecast(), series([50.0] * 100))[0] == []
    up_then_down = [20.0 + 1.0 * i for i in range(50)] + [70.0 - 1.0 * i for i in range(60)]
    events, _ = run(forecast(), series(up_then_down))
    assert [a.state for _, a in events] == ["firing", "resolved"]


def test_trend_state_survives_a_table_round_trip():
    rule = forecast()
    _, state = run(rule, series([20.0 + i for i in range(30)]))
    copy = state_from_dict(state_to_dict(state))
    assert copy == state
    _, s2 = run(surge(), series([10.0 + i for i in range(30)]))
    assert state_from_dict(state_to_dict(s2)) == s2


def test_engine_runs_trend_rules_on_counts():
    square = [[0, 0], [10, 0], [10, 10], [0, 10]]
    config = CrowdwatchConfig.model_validate({
        "cameras": [{"id": "cam", "url": "sim://school-gate",
                     "zones": [{"id": "z", "polygon": square}]}],
        "rules": [{"kind": "surge", "zone": "z", "rise_per_min": 30, "window": "20s",
                   "smooth": "4s"},
                  {"kind": "forecast", "zone": "z", "metric": "count", "threshold": 100,
                   "horizon": "60s", "for": "3s"}]})
    engine = RuleEngine(config, start_ts=T0)
    alerts = []
    for i in range(120):
        alerts += engine.handle(CountEvent("cam", "z", T0 + i, 20.0 + i))
    assert {a.rule for a in alerts} == {"surge", "forecast"}
