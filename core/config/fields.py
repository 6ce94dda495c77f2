"""Field types every section shares: durations, points, ids, and the strict base model."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

DURATION_PATTERN = r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$"
_DURATION = re.compile(DURATION_PATTERN)
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def _parse_duration(value: Any) -> Any:
    """'10s', '2m', '500ms', '1h' or a bare number of seconds."""
    if isinstance(value, bool):
        # pydantic turns ValueError (not TypeError) into a located validation error
        raise ValueError("expected a duration like '10s' or '2m'")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNIT_S[match.group(2)]
    raise ValueError(f"expected a duration like '10s' or '2m', got {value!r}")


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



Loc = tuple[str | int, ...]
"""A field's path in the file: ("cameras", 0, "zones", 1, "polygon")."""
