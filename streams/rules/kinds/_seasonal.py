"""A zone's usual level by time of week, learned online: what ``seasonal`` and ``unusual``
share.

The model keeps, per slot of the week (e.g. Tuesday 15:00-16:00 in the site's time zone),
the slot's mean over each of the last ``weeks`` weeks; the *usual* is their median, so a
holiday, a closure or one big event is an outlier one week in ``weeks`` and never becomes
the usual. Beside it: how far today runs above or below its usual (a smoothed log ratio,
so a busy day lifts the forecast for the rest of the day), and per slot of the day a robust
scale of that ratio (how much this hour varies week to week), which makes "unusual"
mean the same for a quiet night and a busy noon.

Memory is fixed by the config: ``weeks`` x slots-per-week float32 values plus a
slots-per-day scale; config validation caps it at :data:`MAX_STATE_BYTES` per zone.
"""

from __future__ import annotations

import base64
import math
from array import array
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator

from crowdwatch.config import Seconds
from crowdwatch.streams.rules.base import EdgeState, Route
from crowdwatch.streams.rules.kinds._trend import TrendRule, TrendSpec

DAY_S = 86400
WEEK_S = 7 * DAY_S
MONDAY_OFFSET_S = 3 * DAY_S  # 1970-01-01 was a Thursday; weeks start on Monday
MAX_STATE_BYTES = 50_000  # per zone and rule, the budget
NAN = float("nan")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class SeasonalSpec(TrendSpec):
    """Settings of the time-of-week model (both kinds)."""

    slot: Seconds = Field(3600.0, gt=0, description="Width of a time-of-week slot; must "
                          "divide a day. Not finer than the readings arrive.")
    weeks: int = Field(8, ge=1, le=52, description="Weeks of history per slot (their "
                       "median; 1: the same slot last week).")
    min_weeks: int = Field(3, ge=1, description="Weeks a slot needs before it is trusted; "
                           "until then the rule is quiet (learning).")
    smooth: Seconds = Field(3600.0, gt=0, description="Time constant of today's deviation "
                            "from the usual.")
    baseline: Seconds = Field(21600.0, gt=0, description="How far back 'how today runs' "
                              "looks for the unusual test (a robust median of past slots).")
    persist: Seconds = Field(10800.0, gt=0, description="How long today's deviation carries "
                             "into the forecast before it fades back to the usual.")

    @model_validator(mode="after")
    def _fits(self) -> Self:
        if DAY_S % self.slot:
            raise ValueError(f"slot ({self.slot:g} s) must divide a day (86400 s)")
        if self.min_weeks > self.weeks:
            raise ValueError(f"min_weeks ({self.min_weeks}) must be <= weeks ({self.weeks})")
        size = state_bytes(self.slot, self.weeks)
        if size > MAX_STATE_BYTES:
            raise ValueError(f"slot {self.slot:g} s x {self.weeks} weeks needs {size:,} bytes "
                             f"per zone (limit {MAX_STATE_BYTES:,}): use a wider slot or "
                             "fewer weeks")
        return self


def state_bytes(slot: float, weeks: int) -> int:
    """Bytes of the model's arrays for one zone."""
    per_week = int(WEEK_S // slot)
    return 4 * (per_week * (weeks + 1) + int(DAY_S // slot)) + 8 * (weeks + 1)


def _pack(values: array[float]) -> str:
    return base64.b64encode(values.tobytes()).decode("ascii")


def _unpack(text: str) -> array[float]:
    out = array("f")
    out.frombytes(base64.b64decode(text))
    return out


@dataclass(slots=True)
class SeasonalState(EdgeState):
    """The model of one zone (and a rule's fire/resolve timers)."""

    history: array[float] = field(default_factory=lambda: array("f"))  # weeks x slots, row-major
    row_week: list[int] = field(default_factory=list)  # which week each row holds
    scale: array[float] = field(default_factory=lambda: array("f"))  # per slot of the day
    scale_n: int = 0  # residuals learned into ``scale``
    slot_now: int = -1  # absolute local slot being accumulated
    slot_sum: float = 0.0
    slot_n: int = 0
    recent_slots: list[int] = field(default_factory=list)  # closed slots, newest last
    recent_ratios: list[float] = field(default_factory=list)  # their log ratios to usual
    deviation: float = 0.0  # smoothed log ratio of now to its usual
    deviation_ts: float | None = None
    mean_level: float = 0.0  # long-run mean of the values (sets the log floor)
    last_ts: float | None = None
    window_times: list[float] = field(default_factory=list)  # unusual: samples judged
    window_values: list[float] = field(default_factory=list)
    predicted_at: float | None = None
    predicted_value: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]
        out["history"], out["scale"] = _pack(self.history), _pack(self.scale)
        out["row_week"] = list(self.row_week)
        for name in ("recent_slots", "recent_ratios", "window_times", "window_values"):
            out[name] = list(getattr(self, name))
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        values = dict(data)
        values["history"], values["scale"] = (_unpack(values["history"]),
                                              _unpack(values["scale"]))
        return cls(**values)

    def nbytes(self) -> int:
        return (self.history.itemsize * len(self.history)
                + self.scale.itemsize * len(self.scale) + 8 * len(self.row_week))


class LocalClock:
    """Absolute local slots of a time zone, with the UTC offset cached per quarter hour."""

    def __init__(self, timezone: str, slot: float) -> None:
        self.tz = ZoneInfo(timezone)
        self.slot = slot
        self.per_week = int(WEEK_S // slot)
        self.per_day = int(DAY_S // slot)
        self._key = -1
        self._offset = 0.0

    def local(self, ts: float) -> float:
        key = int(ts // 900)
        if key != self._key:
            offset = datetime.fromtimestamp(ts, UTC).astimezone(self.tz).utcoffset()
            self._key, self._offset = key, offset.total_seconds() if offset else 0.0
        return ts + self._offset

    def slot_of(self, ts: float) -> int:
        """Absolute slot index in local time (slot 0 starts on a Monday)."""
        return int((self.local(ts) + MONDAY_OFFSET_S) // self.slot)

    def week_of(self, slot: int) -> int:
        return slot // self.per_week

    def name(self, slot: int) -> str:
        """'Tuesday 15:00' for a slot."""
        in_week = slot % self.per_week
        day, rest = divmod(in_week * self.slot, DAY_S)
        return f"{WEEKDAYS[int(day)]} {int(rest // 3600):02d}:{int(rest % 3600 // 60):02d}"


class SeasonalModel:
    """Learning and queries over a :class:`SeasonalState` (the rule holds one of these)."""

    SCALE_RATE = 0.05  # weight of one residual in a slot-of-day's scale
    LEVEL_RATE = 0.001  # weight of one value in the long-run mean level
    MIN_SCALE = 0.05  # a log ratio scale never trusted tighter than 5 %

    def __init__(self, spec: SeasonalSpec, timezone: str) -> None:
        self.spec = spec
        self.clock = LocalClock(timezone, spec.slot)
        # One row per remembered week plus the week being filled, so every slot still
        # ahead this week has ``weeks`` past values.
        self.weeks = spec.weeks + 1
        self.recent_n = max(3, min(48, math.ceil(spec.baseline / spec.slot)))

    def new_state(self) -> SeasonalState:
        per_week, per_day = self.clock.per_week, self.clock.per_day
        return SeasonalState(history=array("f", [NAN]) * (per_week * self.weeks),
                             row_week=[-1] * self.weeks,
                             scale=array("f", [0.0]) * per_day)

    def valid(self, state: SeasonalState) -> bool:
        """A stored state shaped for these settings (else the rule starts afresh)."""
        return (len(state.history) == self.clock.per_week * self.weeks
                and len(state.row_week) == self.weeks
                and len(state.scale) == self.clock.per_day)

    def repair(self, state: SeasonalState) -> None:
        """Reshape, in place, a state that does not fit these settings (starts afresh)."""
        if not self.valid(state):
            fresh = self.new_state()
            for name in fresh.__slots__:  # type: ignore[attr-defined]
                setattr(state, name, getattr(fresh, name))

    # -- queries -------------------------------------------------------------------------

    def usual(self, state: SeasonalState, slot: int) -> float | None:
        """Median of the slot's past weeks (None while fewer than ``min_weeks``)."""
        per_week = self.clock.per_week
        col = slot % per_week
        values: list[float] = sorted(
            v for v in (state.history[r * per_week + col] for r in range(self.weeks))
            if not math.isnan(v))
        n = len(values)
        if n < self.spec.min_weeks:
            return None
        return values[n // 2] if n % 2 else 0.5 * (values[n // 2 - 1] + values[n // 2])

    def floor(self, state: SeasonalState) -> float:
        """Added to value and usual before a ratio, so near-empty hours cannot make
        huge ratios: 5 % of the zone's long-run mean level."""
        return max(0.05 * state.mean_level, 1e-6)

    def log_ratio(self, state: SeasonalState, value: float, usual: float) -> float:
        floor = self.floor(state)
        return math.log((max(value, 0.0) + floor) / (max(usual, 0.0) + floor))

    def scale(self, state: SeasonalState, slot: int) -> float:
        """Typical size of this slot-of-day's log ratio (robust, learned online)."""
        return max(1.25 * state.scale[slot % self.clock.per_day], self.MIN_SCALE)

    def band(self, state: SeasonalState, slot: int, usual: float, z: float
             ) -> dict[str, float]:
        """The usual +- ``z`` robust scales, as values (a dashboard's "usual band")."""
        spread = z * self.scale(state, slot)
        floor = self.floor(state)
        return {"usual_low": max(0.0, (usual + floor) * math.exp(-spread) - floor),
                "usual_high": (usual + floor) * math.exp(spread) - floor}

    def learned(self, state: SeasonalState) -> bool:
        """Enough residuals for the scale to mean something (two weeks of every slot of
        the day, after the usual itself needed ``min_weeks``)."""
        return state.scale_n >= 2 * 7 * self.clock.per_day

    def today(self, state: SeasonalState, slot: int) -> float:
        """How today runs against its usual, robustly: the median log ratio of the slots
        closed within ``baseline`` before ``slot`` (0 with fewer than 3), so a bump of an
        hour or two cannot explain itself away."""
        values: list[float] = sorted(
            r for s, r in zip(state.recent_slots, state.recent_ratios, strict=True)
            if slot - self.recent_n <= s < slot)
        n = len(values)
        if n < 3:
            return 0.0
        return values[n // 2] if n % 2 else 0.5 * (values[n // 2 - 1] + values[n // 2])

    def expected_now(self, state: SeasonalState, slot: int) -> float | None:
        """The usual for ``slot`` scaled by how today runs (:meth:`today`)."""
        usual = self.usual(state, slot)
        if usual is None:
            return None
        floor = self.floor(state)
        return max(0.0, (usual + floor) * math.exp(self.today(state, slot)) - floor)

    def expected(self, state: SeasonalState, ts: float, now: float) -> float | None:
        """The value expected at ``ts`` seen from ``now``: the usual for that time of week,
        scaled by today's deviation, which fades over ``persist``."""
        usual = self.usual(state, self.clock.slot_of(ts))
        if usual is None:
            return None
        fade = math.exp(-max(0.0, ts - now) / self.spec.persist)
        floor = self.floor(state)
        return max(0.0, (usual + floor) * math.exp(state.deviation * fade) - floor)

    # -- learning ------------------------------------------------------------------------

    def learn(self, state: SeasonalState, ts: float, value: float,
              judged: float | None = None) -> tuple[int, float | None]:
        """Take one sample (in time order). Returns its slot and its usual (learned from
        earlier weeks only, so it can judge this sample). ``judged``: the log ratio a rule
        compares when it is not the sample's own (a window mean against the window's
        usual), so the scale learns the spread of what is judged."""
        slot = self.clock.slot_of(ts)
        if slot != state.slot_now:
            self._close_slot(state)
            state.slot_now, state.slot_sum, state.slot_n = slot, 0.0, 0
        state.slot_sum += value
        state.slot_n += 1
        rate = self.LEVEL_RATE if state.mean_level else 1.0
        state.mean_level += rate * (value - state.mean_level)
        usual = self.usual(state, slot)
        if usual is not None:
            residual = self.log_ratio(state, value, usual)
            spread = residual if judged is None else judged
            self._learn_scale(state, slot, spread - self.today(state, slot))
            self._learn_deviation(state, ts, residual)
        state.last_ts = ts
        return slot, usual

    def _learn_deviation(self, state: SeasonalState, ts: float, residual: float) -> None:
        if state.deviation_ts is None:
            state.deviation, state.deviation_ts = residual, ts
            return
        weight = 1.0 - math.exp(-max(0.0, ts - state.deviation_ts) / self.spec.smooth)
        state.deviation += weight * (residual - state.deviation)
        state.deviation_ts = ts

    def _learn_scale(self, state: SeasonalState, slot: int, residual: float) -> None:
        i = slot % self.clock.per_day
        current = state.scale[i]
        size = abs(residual)
        if current > 0:
            size = min(size, 4.0 * current)  # one outlier moves the scale a bounded step
            state.scale[i] = current + self.SCALE_RATE * (size - current)
        else:
            state.scale[i] = size
        state.scale_n += 1

    def _close_slot(self, state: SeasonalState) -> None:
        """File the finished slot's mean under its week (the oldest week makes way)."""
        if state.slot_now < 0 or state.slot_n == 0:
            return
        mean = state.slot_sum / state.slot_n
        usual = self.usual(state, state.slot_now)
        if usual is not None:
            state.recent_slots.append(state.slot_now)
            state.recent_ratios.append(self.log_ratio(state, mean, usual))
            del state.recent_slots[:-self.recent_n], state.recent_ratios[:-self.recent_n]
        per_week = self.clock.per_week
        week = self.clock.week_of(state.slot_now)
        row = week % self.weeks
        if state.row_week[row] != week:
            if week < state.row_week[row]:
                return  # older than what the row holds: never overwrite newer weeks
            start = row * per_week
            for i in range(start, start + per_week):
                state.history[i] = NAN
            state.row_week[row] = week
        state.history[row * per_week + state.slot_now % per_week] = mean


class ModelRule(TrendRule[SeasonalState]):
    """A rule on one zone that keeps a time-of-week model (``seasonal``, ``unusual``)."""

    state_type = SeasonalState
    persistent = True

    def __init__(self, cfg: SeasonalSpec, severity: str, site: str, timezone: str = "UTC",
                 camera_id: str = "", route: Route | None = None) -> None:
        super().__init__(cfg, site, camera_id, route, severity)
        self.model = SeasonalModel(cfg, timezone)

    def new_state(self, now: float = 0.0) -> SeasonalState:
        return self.model.new_state()
