"""People the detector sees, plus the foreground it does not explain.

A person detector counts people who stand still (no foreground) and people apart; the
geometry counter counts crowds as area, occluded people included, but loses the still.
The fused count per zone is the detector's boxes with feet in the zone plus the geometry
weight of the counted foreground outside every box, so nobody is counted twice and
neither kind of person is lost. When the detector sees nobody, it is the geometry count.

Between detector runs (its budget), the count is the geometry count now plus what the
last run added to it (people standing still stay where it saw them). A teacher learns
the geometry scale from the detector's counts in sparse samples (see ``teacher``).
"""

from __future__ import annotations

import cv2
import numpy as np

from crowdwatch.detectors.appearance import PersonFinder, feet_in
from crowdwatch.detectors.base import ZoneCounts
from crowdwatch.detectors.boxes import Boxes, Image
from crowdwatch.detectors.geometry import GeometryDetector, blob_people, people_weights
from crowdwatch.detectors.teacher import Teacher, TeacherSettings
from crowdwatch.detectors.zones import ZoneGeometry


def box_mask(boxes: Boxes, shape: tuple[int, int], scale: float) -> np.ndarray:
    """uint8 mask (255 inside any box) of boxes drawn at ``scale`` on a ``shape`` frame."""
    mask = np.zeros(shape, np.uint8)
    for x0, y0, x1, y1 in np.round(boxes.xyxy * scale).astype(int):
        cv2.rectangle(mask, (int(x0), int(y0)), (int(x1), int(y1)), 255, thickness=-1)
    return mask


class FusedDetector:
    """Detector boxes + unexplained geometry foreground, per zone, for one camera."""

    name = "fused"

    def __init__(self, finder: PersonFinder, geometry: GeometryDetector | None = None,
                 correction: tuple[float, float] = (1.0, 0.0), teach: bool = True,
                 teacher: TeacherSettings | None = None) -> None:
        self.finder = finder
        self.geometry = geometry or GeometryDetector()
        self.correction = correction  # few-shot: count = slope · fused + offset
        self.teach = teach
        self._teacher_settings = teacher
        self.teachers: dict[str, Teacher] = {}
        self._added: dict[str, float] = {}  # what the last run added to the geometry count

    @property
    def ready(self) -> bool:
        return self.geometry.ready

    def prime(self, frame: Image) -> None:
        self.geometry.prime(frame)

    def _teacher(self, zone_id: str) -> Teacher:
        teacher = self.teachers.get(zone_id)
        if teacher is None:
            teacher = self.teachers[zone_id] = Teacher(self._teacher_settings)
        return teacher

    def raw_counts(self, frame: Image, zones: list[ZoneGeometry]) -> dict[str, float]:
        """The fused count per zone before the few-shot correction."""
        scale, masks = self.geometry.observe(frame, zones)
        run = self.finder.due() or any(z.zone_id not in self._added for z in zones)
        boxes = self.finder.find(frame, zones) if run else None
        covered = None
        out = {}
        min_person = self.geometry.s.min_person
        for zone, (plan, fg) in zip(zones, masks, strict=True):
            teacher = self._teacher(zone.zone_id)
            per_pixel = people_weights(fg, plan, self.geometry.s.owners) if fg.any() else None
            geometry_raw = 0.0 if per_pixel is None else blob_people(fg, per_pixel, min_person)
            if boxes is None:
                out[zone.zone_id] = max(0.0, teacher.scale * geometry_raw
                                        + self._added[zone.zone_id])
                continue
            seen = float(feet_in(zone, boxes).sum())
            if self.teach:
                teacher.observe(seen, geometry_raw, boxes)
            residual = 0.0
            if per_pixel is not None:
                if covered is None:
                    covered = box_mask(boxes, fg.shape, scale)
                outside = cv2.bitwise_and(fg, cv2.bitwise_not(covered))
                residual = blob_people(outside, per_pixel, min_person, whole=False)
            fused = seen + teacher.scale * residual
            self._added[zone.zone_id] = fused - teacher.scale * geometry_raw
            out[zone.zone_id] = fused
        return out

    def count(self, frame: Image, zones: list[ZoneGeometry]) -> ZoneCounts:
        slope, offset = self.correction
        quality = self.geometry.bg.warm
        return {zid: (max(0.0, slope * raw + offset), quality)
                for zid, raw in self.raw_counts(frame, zones).items()}

    def teaching(self) -> dict[str, dict[str, float | int | bool]]:
        """Per zone: the geometry scale the detector taught, and from what."""
        return {zid: t.report() for zid, t in self.teachers.items()}
