"""Replay a recorded feed through the rule engine on event time, at N× real time or flat out.

Time-based rules (camera offline, sensor silent) are ticked on the recording's own
clock, every ``engine.tick`` seconds of event time, so a replay at 10,000× decides
exactly as the live system would have.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.events import Alert, CountEvent, SensorEvent
from crowdwatch.streams.rules.base import RuleState
from crowdwatch.streams.rules.engine import RuleEngine
from crowdwatch.util.pacing import Pacer


@dataclass
class ReplayResult:
    events: Counter = field(default_factory=Counter)
    alerts: list[Alert] = field(default_factory=list)
    first_ts: float | None = None
    last_ts: float | None = None
    out_of_order: int = 0
    learned: dict[str, RuleState] = field(default_factory=dict)  # see RuleEngine.learned_state

    @property
    def span_s(self) -> float:
        return 0.0 if self.first_ts is None else (self.last_ts or 0.0) - self.first_ts


def replay(config: CrowdwatchConfig, events: Iterable[Any],
           on_alert: Callable[[Alert], None] | None = None, speed: float = 0.0,
           progress: Callable[[int], None] | None = None,
           on_event: Callable[[Any, RuleEngine], None] | None = None,
           seed: dict[str, RuleState] | None = None) -> ReplayResult:
    """Feed ``events`` (time-ordered) through a fresh engine (given ``seed``: learned
    state from an earlier run); speed 0 means flat out."""
    result = ReplayResult()
    tick = config.engine.tick
    engine: RuleEngine | None = None
    next_tick = 0.0
    pacer = Pacer(speed) if speed > 0 else None

    def emit(alerts: list[Alert]) -> None:
        for alert in alerts:
            result.alerts.append(alert)
            if on_alert is not None:
                on_alert(alert)

    for n, event in enumerate(events, 1):
        ts = event.ts
        if engine is None:
            engine = RuleEngine(config, start_ts=ts)
            if seed:
                engine.seed(seed)
            result.first_ts, next_tick = ts, ts + tick
        if result.last_ts is not None and ts < result.last_ts:
            result.out_of_order += 1
        while next_tick <= ts:
            emit(engine.tick(next_tick))
            next_tick += tick
        if pacer is not None and result.first_ts is not None:
            pacer.wait_until(ts - result.first_ts)
        result.last_ts = max(ts, result.last_ts or ts)
        result.events[event.TYPE] += 1
        emit(engine.handle(event))
        if on_event is not None:
            on_event(event, engine)
        if progress is not None and n % 1000 == 0:
            progress(n)
    if engine is not None and result.last_ts is not None:
        emit(engine.tick(result.last_ts))
        result.learned = engine.learned_state()
    return result


def summarize(result: ReplayResult, source: str, deadletters: int,
              skipped_columns: list[str] | None = None,
              repaired: list[Any] | None = None) -> dict[str, Any]:
    """What a replay found: events by type, notifications by rule, rate per day."""
    by_rule: dict[str, dict[str, int]] = {}
    for alert in result.alerts:
        counts = by_rule.setdefault(alert.rule, {"firing": 0, "resolved": 0})
        counts[str(alert.state)] += 1
    days = result.span_s / 86400
    summary: dict[str, Any] = {
        "input": source, "events": dict(result.events), "span_days": round(days, 3),
        "alerts": by_rule,
        "firing_per_day": round(sum(c["firing"] for c in by_rule.values()) / days, 3)
        if days else None,
        "deadletter": deadletters, "out_of_order": result.out_of_order}
    if skipped_columns:
        summary["unmapped_columns"] = skipped_columns
    if repaired:
        summary["repaired_dates"] = {"rows": len(repaired), "first": repaired[:5]}
    return summary


def zone_series_recorder(zones: set[str], metric: str = "count") -> tuple[dict[str, list],
                                                                         Callable]:
    """An ``on_event`` hook that records each zone's count or density as rules see it."""
    series: dict[str, list[tuple[float, float]]] = {}

    def record(event: Any, engine: RuleEngine) -> None:
        if isinstance(event, CountEvent):
            zone = event.zone_id
            value = event.density_ppm2 if metric == "density" else event.count
        elif isinstance(event, SensorEvent) and event.zone_id:
            zone = event.zone_id
            value = engine.as_metric(zone, engine.zone_value(zone, event.ts), metric)
        else:
            return
        if zone in zones and value is not None:
            points = series.setdefault(zone, [])
            if points and points[-1][0] == event.ts:
                points[-1] = (event.ts, value)
            else:
                points.append((event.ts, value))

    return series, record
