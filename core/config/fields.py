"""Field types every section shares: durations, points, ids, and the strict base model."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

DURATION_PATTERN = r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$"
_DURATION = re.compile(DURATION_PATTERN)
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
# A timer, window or timeout longer than this never acts while anyone still watches for
# it; longer values are typos or unit mix-ups ("300h" for "300s").
MAX_DURATION_S = 366 * 86400.0
# No count, level, size or pixel in a real site comes near this: a larger number is a
# typo, a unit mix-up or an attempt to overflow what sums or allocates with it.
MAX_NUMBER = 1e9


def _parse_duration(value: Any) -> Any:
    """'10s', '2m', '500ms', '1h' or a bare number of seconds."""
    if isinstance(value, bool):
        # pydantic turns ValueError (not TypeError) into a located validation error
        raise ValueError("expected a duration like '10s' or '2m'")
    if isinstance(value, int | float):
        return _bounded_duration(float(value))
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return _bounded_duration(float(match.group(1)) * _UNIT_S[match.group(2)])
    raise ValueError(f"expected a duration like '10s' or '2m', got {value!r}")


def _bounded_duration(seconds: float) -> float:
    if seconds > MAX_DURATION_S:
        raise ValueError(f"{seconds:g} s is longer than a year (at most {MAX_DURATION_S:g} s): "
                         "a timer or window that long never acts; check the unit")
    return seconds


DURATION_MARK = "x-crowdwatch-duration"  # the schema writes these as "number or '10s'"
Seconds = Annotated[float, BeforeValidator(_parse_duration),
                    Field(ge=0, json_schema_extra={DURATION_MARK: True})]
Point = Annotated[list[float], Field(min_length=2, max_length=2)]
Polygon = Annotated[list[Point], Field(min_length=3)]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]


class Strict(BaseModel):
    # No infinite or NaN number anywhere in a site file: a level of .inf never fires,
    # a duration of .nan never ends.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _sane(cls, value: Any) -> Any:
        """Every number within MAX_NUMBER; every string printable (ids, names, paths and
        URLs reach log lines and metric labels, where a newline forges a line)."""
        problem = _insane(value)
        if problem:
            raise ValueError(problem)
        return value


def _insane(value: Any, depth: int = 0) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if abs(value) > MAX_NUMBER:
            return (f"{value:g} is beyond ±{MAX_NUMBER:g}: no site setting is that large "
                    "(a typo or a unit mix-up?)")
        return None
    if isinstance(value, str):
        if not value.isprintable():
            bad = next(c for c in value if not c.isprintable())
            return (f"contains the control character {bad!r}: names, ids, paths and URLs "
                    "must be printable (they reach log lines and metric labels)")
        return None
    if isinstance(value, list | tuple) and depth < 3:  # points, polygons, lists of ids
        for item in value:
            problem = _insane(item, depth + 1)
            if problem:
                return problem
    return None



Loc = tuple[str | int, ...]
"""A field's path in the file: ("cameras", 0, "zones", 1, "polygon")."""
