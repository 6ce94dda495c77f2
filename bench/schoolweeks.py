"""A minute-level feed of school gates over simulated weeks, from the sim's crowd curve.

Each gate follows the simulator's school-gate script (:func:`crowd_target`: a few people,
a surge to a crowd, a plateau, dispersal) twice a school day: a morning drop-off at
08:20 and the dismissal at 15:10 (14:10 on Fridays). Weekends are quiet. Days vary:
a lognormal day factor shared by both surges, a parents' evening at 18:00 now and then,
one holiday week with no school; the counter reads a Poisson draw of the crowd with 10 %
counting error, once a minute. Deterministic for a seed.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

from crowdwatch.events import SensorEvent
from crowdwatch.ingest.sim import SimParams, crowd_target

MINUTE = 60.0
START = datetime(2026, 1, 5, tzinfo=UTC).timestamp()  # a Monday


def _poisson(rng: random.Random, mean: float) -> int:
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def gate_week_feed(gate: str, weeks: int, seed: int, holiday_week: int | None = None
                   ) -> list[SensorEvent]:
    """One gate's readings, one a minute for ``weeks`` weeks."""
    rng = random.Random(seed)
    size = rng.uniform(40, 160)  # peak crowd on an ordinary dismissal
    base = max(2, round(size * 0.06))
    drop_off = SimParams(people=round(size * 0.6), base=base, period=40 * 60.0)
    dismissal = SimParams(people=round(size), base=base, period=45 * 60.0)
    evening = SimParams(people=round(size * 0.8), base=base, period=60 * 60.0)
    out: list[SensorEvent] = []
    for day in range(weeks * 7):
        weekday = day % 7
        school = weekday < 5 and (holiday_week is None or day // 7 != holiday_week)
        factor = math.exp(rng.gauss(0, 0.15))
        surges: list[tuple[SimParams, float]] = []
        if school:
            end_h = 14 + 10 / 60 if weekday == 4 else 15 + 10 / 60
            surges = [(drop_off, 8 + 20 / 60), (dismissal, end_h)]
            if rng.random() < 0.05:
                surges.append((evening, 18.0))
        day_start = START + day * 86400
        for minute in range(1440):
            hour = minute / 60
            crowd = float(base)
            for params, at_h in surges:
                # The script's plateau (phase 0.40-0.60) starts at the surge's hour.
                t = (hour - at_h) * 3600 + 0.40 * params.period
                if 0 <= t < params.period:
                    scaled = SimParams(people=round(params.people * factor), base=base,
                                       period=params.period)
                    crowd = max(crowd, crowd_target(scaled, t))
            seen = _poisson(rng, crowd) * max(0.0, rng.gauss(1.0, 0.10))
            out.append(SensorEvent(sensor_id=gate, ts=day_start + minute * MINUTE,
                                   kind="counter", value=round(seen, 1),
                                   zone_id=f"zone-{gate}"))
    return out


def school_feed(gates: int, weeks: int, seed: int) -> list[SensorEvent]:
    """Every gate's readings merged in time order (one holiday week, the same for all)."""
    holiday = weeks - 3 if weeks > 6 else None
    feeds = [gate_week_feed(f"gate-{i}", weeks, seed * 1000 + i, holiday)
             for i in range(gates)]
    return sorted((e for feed in feeds for e in feed), key=lambda e: (e.ts, e.sensor_id))
