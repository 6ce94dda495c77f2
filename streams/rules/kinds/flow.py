"""flow: people per metre of a line per minute, over a level, with `for` and hysteresis.

The value is the window's mean of each sample's rate (crossings over the sample's
interval, per metre of line, per minute), so a window of a minute reads like the flow
figures of crowd-safety guidance: Fruin's walkway level E ends at 82 persons/m/min, the
UK Green Guide's maximum through a gate.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from crowdwatch.config import CrowdwatchConfig, Loc, Seconds
from crowdwatch.events import Alert, CountEvent
from crowdwatch.streams.rules.base import Rule
from crowdwatch.streams.rules.kinds._threshold import ThresholdRule, ThresholdSpec, ThresholdState
from crowdwatch.streams.rules.registry import rule_kind


@rule_kind
class FlowRuleConfig(ThresholdSpec):
    """Flow through a counting line, persons per metre per minute."""

    kind: Literal["flow"]
    watches_zone_values: ClassVar[bool] = False  # it reads a line, not the zone's count
    zone: str = Field("", description="The line's zone (filled in from the line).")
    line: str = Field(description="Id of a line in a camera zone's `lines`.")
    direction: Literal["in", "out", "both"] = Field(
        "both", description="Which way counts: in, out, or both added.")
    window: Seconds = Field(60.0, gt=0, le=3600, description="Span the flow is averaged over.")
    statistic: Literal["median", "p90", "mean", "max"] = "mean"

    IDENTITY: ClassVar[tuple[str, ...]] = ("line", "direction", "warn", "critical")

    def target(self) -> str:
        return self.line

    def reads(self) -> str:
        return "flow"

    def problems(self, site: CrowdwatchConfig) -> list[tuple[Loc, str]]:
        lines = site.lines()
        if self.line not in lines:
            return [(("line",), f"no line with id {self.line!r} in any camera zone")]
        zone = lines[self.line][0].id
        if self.zone and self.zone != zone:
            return [(("zone",), f"line {self.line!r} lies in zone {zone!r}, not {self.zone!r}")]
        return []

    def build(self, site: CrowdwatchConfig) -> list[Rule[Any]]:
        spec = self.model_copy(update={"zone": site.lines()[self.line][0].id, "source": "camera"})
        route, camera = spec.route(site)
        return [FlowRule(spec, site.site.name, camera, route)]


class FlowRule(ThresholdRule):
    def __init__(self, cfg: FlowRuleConfig, site: str, camera_id: str, route: Any) -> None:
        super().__init__(cfg, site, camera_id, route)
        self.line_cfg = cfg
        self.unit = f"persons/m/min ({cfg.direction}) through {cfg.line}"

    def on_count(self, state: ThresholdState, event: CountEvent) -> list[Alert]:
        value = event.flow_ppmm(self.line_cfg.line, self.line_cfg.direction)
        return [] if value is None else self.observe(state, event.ts, value)

    def on_zone(self, state: ThresholdState, zone_id: str, ts: float, count: float,
                density: float | None) -> list[Alert]:
        return []  # sensors count no line
