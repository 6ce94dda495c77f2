"""People the detector sees, plus the foreground it does not explain.

A person detector counts people who stand still (no foreground) and people apart; the
geometry counter counts crowds as area, occluded people included, but loses the still.
The fused count per zone is the detector's boxes with feet in the zone plus the geometry
weight of the counted foreground outside every box, so nobody is counted twice and
neither kind of person is lost. When the detector sees nobody, it is the geometry count.

Between detector runs (its budget), the count is the geometry count now plus what the
last run added to it (people standing still stay where it saw them; people hidden
behind others stay hidden until the next run says otherwise). A teacher learns
the geometry scale from the detector's counts in sparse samples (see ``teacher``).
"""

from __future__ import annotations

import cv2
import numpy as np

from crowdwatch.detectors.appearance import PersonFinder, feet_in
from crowdwatch.detectors.base import ZoneCounts
from crowdwatch.detectors.boxes import Boxes, Image
from crowdwatch.detectors.geometry import GeometryDetector, blob_people, people_weights
from crowdwatch.detectors.teacher import Teacher, TeacherSettings, isolated
from crowdwatch.detectors.zones import ZoneGeometry

# Weight of the newest run in the carried correction (exponential: the last two runs
# weigh three quarters of it).
CARRY_WEIGHT = 0.5


def box_mask(boxes: Boxes, shape: tuple[int, int], scale: float) -> np.ndarray:
    """uint8 mask (255 inside any box) of boxes drawn at ``scale`` on a ``shape`` frame."""
    mask = np.zeros(shape, np.uint8)
    for x0, y0, x1, y1 in np.round(boxes.xyxy * scale).astype(int):
        cv2.rectangle(mask, (int(x0), int(y0)), (int(x1), int(y1)), 255, thickness=-1)
    return mask


def residual_people(fg: np.ndarray, per_pixel: np.ndarray, covered: np.ndarray,
                    boxes: np.ndarray, scale: float, min_person: float) -> float:
    """The geometry count of the foreground the detector's people do not explain.

    A blob no box touches counts as the geometry counter counts it (whole people). A
    blob boxes touch keeps what is left of it: its weight outside the boxes, or, when
    more, its whole weight less the people boxed in it (each explains 1/``scale`` of
    weight), as a crowd's box also covers the undetected people behind its person. Kept
    only if at least ``min_person``. So the fused count is never below the geometry count
    of any blob, and never counts a boxed person twice. ``boxes``: the boxes of people
    standing in the zone, at the foreground's scale.
    """
    n_blobs, labels = cv2.connectedComponents(fg, connectivity=8)
    if n_blobs <= 1:
        return 0.0
    flat = labels.ravel()
    inside = covered.ravel() > 0
    total = np.bincount(flat, weights=per_pixel.ravel(), minlength=n_blobs)[1:]
    boxed = np.bincount(flat, weights=per_pixel.ravel() * inside, minlength=n_blobs)[1:]
    touched = np.bincount(flat[inside], minlength=n_blobs)[1:] > 0
    people = np.zeros(n_blobs, np.float64)  # boxed people per blob (the blob they most fill)
    for box in boxes:
        rect = _clip(box, fg.shape)
        if rect is None:
            continue
        x0, y0, x1, y1 = rect
        under = np.bincount(labels[y0:y1, x0:x1].ravel(), minlength=n_blobs)
        under[0] = 0
        if under.any():
            people[int(under.argmax())] += 1.0
    free = ~touched & (total >= min_person)
    left = np.maximum(total - boxed, total - people[1:] / max(scale, 1e-9))
    cut = touched & (left >= min_person)
    return float(np.maximum(total[free], 1.0).sum() + left[cut].sum())


def _clip(box: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    rows, cols = shape[:2]
    x0, y0, x1, y1 = (int(v) for v in np.round(box))
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(cols, x1), min(rows, y1)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


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
            standing = feet_in(zone, boxes)
            seen = float(standing.sum())
            residual = 0.0
            if per_pixel is not None:
                if self.teach:
                    self._teach(teacher, boxes, standing, fg, per_pixel, scale)
                if covered is None:
                    covered = box_mask(boxes, fg.shape, scale)
                residual = residual_people(fg, per_pixel, covered,
                                           boxes.xyxy[standing] * scale, teacher.scale,
                                           min_person)
            fused = seen + teacher.scale * residual
            # Carried until the next run: what the detector adds to the geometry count
            # (people standing still, people hidden behind others), averaged over runs
            # so that one run's misses or false boxes do not hold for a whole budget.
            added = fused - teacher.scale * geometry_raw
            before = self._added.get(zone.zone_id)
            self._added[zone.zone_id] = added if before is None else (
                before + CARRY_WEIGHT * (added - before))
            out[zone.zone_id] = fused
        return out

    @staticmethod
    def _teach(teacher: Teacher, boxes: Boxes, standing: np.ndarray, fg: np.ndarray,
               per_pixel: np.ndarray, scale: float) -> None:
        """Each isolated, moving person in the zone teaches the geometry weight of one."""
        alone = isolated(boxes) & standing
        for box in boxes.xyxy[alone] * scale:
            rect = _clip(box, fg.shape)
            if rect is None:
                continue
            x0, y0, x1, y1 = rect
            inside = fg[y0:y1, x0:x1] > 0
            if inside.mean() >= teacher.s.min_foreground:
                teacher.observe(float(per_pixel[y0:y1, x0:x1][inside].sum()))

    def count(self, frame: Image, zones: list[ZoneGeometry]) -> ZoneCounts:
        slope, offset = self.correction
        quality = self.geometry.bg.warm
        return {zid: (max(0.0, slope * raw + offset), quality)
                for zid, raw in self.raw_counts(frame, zones).items()}

    def teaching(self) -> dict[str, dict[str, float | int | bool]]:
        """Per zone: the geometry scale the detector taught, and from what."""
        return {zid: t.report() for zid, t in self.teachers.items()}
