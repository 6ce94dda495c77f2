"""The site and where people are counted: zones, their ground planes and counting lines."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from crowdwatch.config.fields import Identifier, Point, Polygon, Strict
from crowdwatch.util.shapes import polygon_problem, quad_problem


class SiteConfig(Strict):
    name: str = Field("crowdwatch", title="Site name",
                      description="Label on every metric and alert.")
    timezone: str = Field("UTC", description="IANA zone for human-facing times.")

    @field_validator("timezone")
    @classmethod
    def _iana(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (like Europe/London or "
                             "UTC)") from None
        return value


class GroundPlane(Strict):
    """Four image points and their ground coordinates in metres define a homography."""

    image: Annotated[list[Point], Field(min_length=4, max_length=4)] = Field(
        description="Four pixel points (in the camera's native resolution)."
    )
    world_m: Annotated[list[Point], Field(min_length=4, max_length=4)] = Field(
        description="The same four points on the ground, in metres."
    )

    @field_validator("image", "world_m")
    @classmethod
    def _general_position(cls, value: list[list[float]]) -> list[list[float]]:
        problem = quad_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class LineConfig(Strict):
    """A counting line on its zone's ground plane: people crossing it each way."""

    id: Identifier = Field(description="Line id; unique across the site (zones' ids too).")
    points: Annotated[list[Point], Field(min_length=2, max_length=32)] = Field(
        description="Two or more image points (native pixels). Crossing `in` is moving to "
        "the side where (b−a)×(p−a) > 0 for consecutive points a, b (y down: for a line "
        "drawn top to bottom on screen, `in` is right to left); `out` the other way.")
    band_m: float = Field(2.0, gt=0.2, le=10.0, description="Width (m) of the ground band "
                          "around the line whose moving people measure the flow: wider is "
                          "steadier, narrower tells lines close together apart.")


class ZoneConfig(Strict):
    id: Identifier = Field(description="Zone id; unique across the site.")
    polygon: Polygon | None = Field(
        None, description="Zone outline in image pixels (native resolution).")
    mask: str | None = Field(
        None, description="Instead of a polygon: a PNG the size of the frame, white = zone.")
    ground: GroundPlane | None = Field(None, description="Ground calibration for density.")
    height_ref: list[Annotated[list[float], Field(min_length=4, max_length=4)]] | None = Field(
        None, min_length=1,
        description="Standing people as [foot_x, foot_y, head_x, head_y] native pixels: "
        "gives the person size everywhere, so the geometry counter needs no labels.")
    perspective: str | None = Field(
        None, description="A relative perspective map (.npy, weight ∝ 1/person area), "
        "scaled by height_ref.")
    lines: list[LineConfig] = Field(
        default_factory=list, max_length=16, description="Counting lines on this zone's "
        "ground plane (needs `ground`): flow each way, per metre, and walking speed.")
    lat: float | None = Field(None, ge=-90, le=90, description="Zone latitude (map panels).")
    lon: float | None = Field(None, ge=-180, le=180, description="Zone longitude (map panels).")

    @model_validator(mode="after")
    def _one_outline(self) -> ZoneConfig:
        if (self.polygon is None) == (self.mask is None):
            raise ValueError("give exactly one of polygon or mask")
        return self

    @field_validator("polygon")
    @classmethod
    def _simple(cls, value: list[list[float]] | None) -> list[list[float]] | None:
        problem = None if value is None else polygon_problem(value)
        if problem:
            raise ValueError(problem)
        return value

