"""camera_offline: no usable frames from a camera for ``after`` seconds."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from crowdwatch.config import CrowdwatchConfig, Loc, Seconds
from crowdwatch.events import HealthState
from crowdwatch.streams.rules.base import Input, Route, Rule, RuleSpec
from crowdwatch.streams.rules.kinds._silence import OfflineState, SilenceRule
from crowdwatch.streams.rules.registry import rule_kind


@rule_kind
class CameraOfflineRuleConfig(RuleSpec):
    kind: Literal["camera_offline"]
    camera: str | None = Field(None, description="Camera id; default: every camera.")
    after: Seconds = Field(30.0, gt=0, description="No frames for this long raises the alert.")

    IDENTITY: ClassVar[tuple[str, ...]] = ()

    def problems(self, site: CrowdwatchConfig) -> list[tuple[Loc, str]]:
        if self.camera is not None and self.camera not in {c.id for c in site.cameras}:
            return [(("camera",), f"no camera with id {self.camera!r}")]
        return []

    def build(self, site: CrowdwatchConfig) -> list[Rule[Any]]:
        return [CameraOfflineRule(self, site.site.name, cam.id, [z.id for z in cam.zones])
                for cam in site.cameras if self.camera in (None, cam.id)]


class CameraOfflineRule(SilenceRule):
    """No frames from a camera for ``after`` seconds fires; the next frame resolves it.

    While it fires the camera is not trusted: its zones' rules take no samples."""

    kind = "camera_offline"
    entity_label = "camera"

    def __init__(self, cfg: CameraOfflineRuleConfig, site: str, camera_id: str,
                 zone_ids: list[str]) -> None:
        routes = (Route(Input.CAMERA_SEEN, camera_id), Route(Input.CAMERA_HEALTH, camera_id))
        super().__init__(cfg, cfg.after, "critical", site, camera_id, zone_ids,
                         routes, guards_camera=camera_id)
        self.cfg = cfg
        self.camera_id = camera_id

    def describe(self, firing: bool, silent: float, st: OfflineState | None) -> str:
        if not firing:
            return f"camera {self.camera_id} delivers frames again"
        summary = f"camera {self.camera_id} sent no usable frames for {silent:.0f}s"
        if st is not None and st.last_state != HealthState.UP:
            summary += f" (it is {st.last_state}: {st.last_reason})"
        return summary
