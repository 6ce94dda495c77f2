"""The rule core as a pure state machine, driven by explicit timestamps."""

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.events import CameraHealth, CountEvent
from crowdwatch.streams.rules.base import window_statistic
from crowdwatch.streams.rules.engine import RuleEngine
from crowdwatch.streams.rules.kinds._threshold import ThresholdRule
from crowdwatch.streams.rules.kinds.camera_offline import CameraOfflineRule, CameraOfflineRuleConfig
from crowdwatch.streams.rules.kinds.count import CountRuleConfig
from crowdwatch.streams.rules.kinds.density import DensityRuleConfig

T0 = 1_764_000_000.0


def density(**kw) -> DensityRuleConfig:
    base = {"kind": "density", "zone": "z", "warn": 2.0, "critical": 4.0, "for": 10,
            "clear_below": 1.0, "clear_for": 20, "window": 4}
    return DensityRuleConfig.model_validate({**base, **kw})


def feed(rule, state, samples, dt=1.0, t=T0):
    """Feed values one per dt seconds; return [(time, alert)]."""
    out = []
    for value in samples:
        out += [(t, a) for a in rule.observe(state, t, value)]
        t += dt
    return out


def test_statistics():
    assert window_statistic([1, 9, 3], "median") == 3
    assert window_statistic([1, 2, 3, 4], "median") == 2.5
    assert window_statistic(list(range(1, 11)), "p90") == 9
    assert window_statistic([2, 4], "mean") == 3 and window_statistic([2, 4], "max") == 4


def test_fires_only_after_holding_for():
    rule = ThresholdRule(density(critical=None), "site")
    state = rule.new_state()
    # 12 s above warn after the window fills: the alert must wait the full 10 s of `for`.
    events = feed(rule, state, [0.5] * 5 + [3.0] * 20)
    (first,) = [(t, a) for t, a in events if a.state == "firing"]
    t, alert = first
    became_high = T0 + 5 + 2  # median of a 4 s window flips after 3 of 4 samples are high
    assert t - became_high >= 10 - 1e-9 and t - became_high < 11
    assert alert.severity == "warning" and alert.zone_id == "z" and alert.value >= 2.0


def test_short_spike_never_pages():
    rule = ThresholdRule(density(**{"for": 3}), "site")
    state = rule.new_state()
    # One absurd frame among normal ones: the window median ignores it.
    assert feed(rule, state, [0.5, 0.6, 50.0, 0.5, 0.6, 0.5] * 5) == []


def test_hysteresis_no_flapping_and_single_resolve():
    rule = ThresholdRule(density(critical=None, **{"for": 2, "clear_for": 5}), "site")
    state = rule.new_state()
    high = [3.0] * 10
    # Oscillates between 1.5 and 2.5: above clear_below, so the alert must stay up.
    wobble = [1.5, 2.5] * 10
    low = [0.2] * 12
    events = feed(rule, state, high + wobble + low + low)
    states = [a.state for _, a in events]
    assert states == ["firing", "resolved"]
    firing, resolved = events[0][1], events[1][1]
    assert firing.fingerprint == resolved.fingerprint
    assert resolved.starts_at == firing.starts_at and resolved.ends_at > firing.starts_at
    assert resolved.threshold == 1.0


def test_warning_and_critical_are_separate_alerts():
    rule = ThresholdRule(density(**{"for": 0, "clear_for": 0, "window": 1}), "site")
    state = rule.new_state()
    # 3.0 keeps critical up (it clears under warn), 1.5 clears it, 0.5 clears warning.
    events = feed(rule, state, [2.5, 5.0, 5.0, 3.0, 1.5, 0.5])
    got = [(a.severity, a.state) for _, a in events]
    assert got == [("warning", "firing"), ("critical", "firing"), ("critical", "resolved"),
                   ("warning", "resolved")]
    assert len({a.fingerprint for _, a in events}) == 2


def test_late_samples_are_ignored():
    rule = ThresholdRule(density(**{"for": 0, "window": 1}), "site")
    state = rule.new_state()
    assert rule.observe(state, T0 + 10, 0.1) == []
    assert rule.observe(state, T0 + 5, 9.9) == []  # older than what we have: dropped
    assert state.values == [0.1]


def test_count_rule_uses_counts():
    cfg = CountRuleConfig.model_validate({"kind": "count", "zone": "z", "warn": 30, "for": 0,
                                          "window": 1})
    rule = ThresholdRule(cfg, "site")
    assert rule.value_of(CountEvent("c", "z", T0, 31.0, 0.1)) == 31.0
    (alert,) = rule.observe(rule.new_state(), T0, 31.0)
    assert alert.rule == "count" and "people" in alert.summary


def test_camera_offline_fires_once_and_resolves_on_frames():
    cfg = CameraOfflineRuleConfig(kind="camera_offline", after=30)
    rule = CameraOfflineRule(cfg, "site", "cam", ["z"])
    state = rule.new_state(T0)
    assert rule.on_tick(state, T0 + 29) == []
    (fired,) = rule.on_tick(state, T0 + 31)
    assert fired.state == "firing" and fired.labels["camera"] == "cam"
    assert rule.on_tick(state, T0 + 60) == []  # still offline: no duplicate
    (resolved,) = rule.on_seen(state, T0 + 61)
    assert resolved.state == "resolved" and resolved.fingerprint == fired.fingerprint
    assert rule.on_seen(state, T0 + 62) == []


def _config() -> CrowdwatchConfig:
    return CrowdwatchConfig.model_validate({
        "cameras": [{"id": "cam", "url": "sim://school-gate", "zones": [{
            "id": "z", "polygon": [[0, 0], [10, 0], [10, 10], [0, 10]],
            "ground": {"image": [[0, 0], [10, 0], [10, 10], [0, 10]],
                       "world_m": [[0, 0], [5, 0], [5, 5], [0, 5]]}}]}],
        "rules": [density(**{"for": 2, "clear_for": 2, "window": 2}).model_dump(by_alias=True),
                  {"kind": "camera_offline", "after": 5}],
    })


def test_engine_routes_and_dedupes_across_restated_events():
    engine = RuleEngine(_config(), start_ts=T0)
    sent = []
    for i in range(40):
        value = 5.0 if 5 <= i < 20 else 0.1
        sent += engine.handle(CountEvent("cam", "z", T0 + i, value * 25, value, 25.0))
    kinds = [(a.severity, a.state) for a in sent]
    assert kinds.count(("warning", "firing")) == 1 and kinds.count(("warning", "resolved")) == 1
    assert kinds.count(("critical", "firing")) == 1 and kinds.count(("critical", "resolved")) == 1
    assert engine.firing == {}


def test_engine_offline_uses_ticks_and_health():
    engine = RuleEngine(_config(), start_ts=T0)
    assert engine.handle(CameraHealth("cam", T0 + 1, "up")) == []
    assert engine.tick(T0 + 4) == []
    (fired,) = engine.tick(T0 + 7)
    assert fired.rule == "camera_offline"
    assert engine.handle(CameraHealth("cam", T0 + 8, "down")) == []  # down is not a frame
    (resolved,) = engine.handle(CountEvent("cam", "z", T0 + 9, 1.0, 0.04, 25.0))
    assert resolved.state == "resolved"
