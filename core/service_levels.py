"""Levels of service (A–F) for walkways, by density and by flow.

Defaults are John J. Fruin's walkway levels (Pedestrian Planning and Design, 1971): by
density about 0.31, 0.43, 0.72, 1.08 and 2.15 persons/m² between A|B ... E|F, and by
flow 23, 33, 49, 66 and 82 persons per metre per minute (82 is also the UK Green
Guide's maximum through a gate). A site may set its own boundaries.
"""

from __future__ import annotations

import bisect
import itertools
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

LEVELS = "ABCDEF"
FRUIN_DENSITY = [0.31, 0.43, 0.72, 1.08, 2.15]
FRUIN_FLOW = [23.0, 33.0, 49.0, 66.0, 82.0]
Bounds = Annotated[list[Annotated[float, Field(gt=0, le=1000)]],
                   Field(min_length=5, max_length=5)]


class ServiceLevelsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    density: Bounds = Field(default_factory=lambda: list(FRUIN_DENSITY), description=(
        "Persons/m² where A|B, B|C, C|D, D|E and E|F meet (default: Fruin's walkways)."))
    flow: Bounds = Field(default_factory=lambda: list(FRUIN_FLOW), description=(
        "Persons per metre per minute where A|B ... E|F meet (default: Fruin's walkways)."))

    @field_validator("density", "flow")
    @classmethod
    def _increasing(cls, value: list[float]) -> list[float]:
        if any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError("boundaries must increase from A|B to E|F")
        return value


def level_of(value: float, bounds: list[float]) -> str:
    """The level (A–F) of a value: A below the first boundary, F from the last."""
    return LEVELS[bisect.bisect_right(bounds, value)]


def level_number(level: str) -> int:
    """A=1 ... F=6, for a gauge (dashboards map the numbers back to letters)."""
    return LEVELS.index(level) + 1
