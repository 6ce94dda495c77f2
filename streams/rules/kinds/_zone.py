"""What rules on one zone's values share: where the values come from, and checks."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from crowdwatch.config import CrowdwatchConfig, Loc, RuleSource
from crowdwatch.events import Alert
from crowdwatch.streams.rules.base import Input, Route, Rule, RuleSpec, S

SOURCE_HELP = ("Where the zone's values come from: camera counts, sensor readings, or auto "
               "(camera if a camera watches the zone, else its sensors).")


class ZoneRuleSpec(RuleSpec):
    watches_zone_values: ClassVar[bool] = True
    zone: str = Field(description="Zone id this rule watches.")
    source: RuleSource = Field("auto", description=SOURCE_HELP)

    def reads(self) -> str:
        raise NotImplementedError

    def route(self, site: CrowdwatchConfig) -> tuple[Route, str]:
        """The input the rule listens on, and the camera that watches the zone ('' if none)."""
        zones = site.zones()
        camera = zones[self.zone][0].id if self.zone in zones else ""
        from_camera = site.zone_source(self.zone, self.source) == "camera"
        return Route(Input.CAMERA_ZONE if from_camera else Input.SENSOR_ZONE, self.zone), camera

    def camera_route(self) -> Route:
        """The route of a rule fed by camera counts (rules built outside a site)."""
        return Route(Input.CAMERA_ZONE, self.zone)

    def problems(self, site: CrowdwatchConfig) -> list[tuple[Loc, str]]:
        zones, sensor_zones = site.zones(), site.sensor_zones()
        source = site.zone_source(self.zone, self.source)
        if self.zone not in zones and self.zone not in sensor_zones:
            return [(("zone",), f"no zone with id {self.zone!r}")]
        if source == "camera" and self.zone not in zones:
            return [(("source",), f"no camera watches zone {self.zone!r}")]
        if source == "sensor" and not any(d.zone == self.zone for d in site.sensors.devices):
            return [(("source",), f"no sensor in sensors.devices reports zone {self.zone!r}")]
        if self.reads() == "density":
            if source == "camera" and zones[self.zone][1].ground is None:
                return [(("zone",), f"density needs zone {self.zone!r} to have `ground`")]
            if source == "sensor" and (self.zone not in sensor_zones
                                       or sensor_zones[self.zone].area_m2 is None):
                return [(("zone",), f"density needs sensor zone {self.zone!r} to have "
                         "`area_m2`")]
        return []


def pick(metric: str, count: float, density: float | None) -> float | None:
    """The value a zone rule reads from a sample."""
    return density if metric == "density" else count


class ZoneValueRule(Rule[S]):
    """A rule that judges one zone's values (its ``metric``) one sample at a time."""

    metric: str

    def on_zone(self, state: S, zone_id: str, ts: float, count: float,
                density: float | None) -> list[Alert]:
        value = pick(self.metric, count, density)
        return [] if value is None else self.observe(state, ts, value)

    def observe(self, state: S, ts: float, value: float) -> list[Alert]:
        raise NotImplementedError
