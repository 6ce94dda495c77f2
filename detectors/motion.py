"""Motion without identity: walking speed per zone and flow through lines.

From two frames a fraction of a second apart, dense optical flow (OpenCV's DIS, its
fastest preset, at the geometry counter's work width) is read only on the counted
foreground. Every foreground pixel already carries a share of a person and the place
its owner's feet stand (:func:`~crowdwatch.detectors.geometry.owner_feet`); its image
motion, projected to the ground through the zone's homography at those feet, is a
velocity in m/s. Pixels are pooled per connected blob (a blob moves as one: averaging
its pixels cancels the flow's noise), and a blob slower than ``min_speed`` stands.

- *Speed*: the person-weighted mean (and spread) of the blobs' ground speeds in a zone.
- *Trust*: flow is computed forward and backward; where the two disagree (occlusion,
  people passing each other) a pixel's motion is unknown and its piece takes the rest's.
- *Flow through a line*: the people weight of the moving foreground in a band ``band_m``
  wide around the line, times its velocity across the line, over the band's width, is
  the rate of people crossing (persons/s) at that instant: a density times a velocity,
  integrated over the line's length. Rates each way are kept apart (counterflow).

Nothing here forms a trajectory, an id or a per-person vector, and nothing of it is
kept: each measurement is two frames, reduced to a few numbers per zone and line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from crowdwatch.detectors.foreground import frame_light
from crowdwatch.detectors.geometry import GeometryDetector, owner_feet, people_weights
from crowdwatch.detectors.lines import LineGeometry, homography_jacobian
from crowdwatch.detectors.person_scale import SILHOUETTE_AREA_RATIO
from crowdwatch.detectors.zones import ZoneGeometry

FLOW_PAD = 8  # work pixels around the foreground that the flow sees (its patch size)
FB_TOLERANCE_PX = 0.5  # forward-backward disagreement a trusted pixel may have ...
FB_TOLERANCE_SHARE = 0.3  # ... plus this share of its motion


@dataclass(frozen=True)
class MotionSettings:
    min_speed: float = 0.25  # m/s: a blob slower than this stands (flow noise, sway)
    max_speed: float = 8.0  # m/s: faster is a flow error (a sprinter runs ~10)
    min_person: float = 0.3  # a blob lighter than this share of a person is noise
    piece: float = 0.5  # blobs are weighed in pieces this share of a person tall and wide
    # "checked": flow both ways, pixels where they disagree (occlusions, people passing
    # each other) take no part; "forward": one flow, half the cost.
    method: Literal["checked", "forward"] = "checked"


@dataclass(frozen=True)
class ZoneMotion:
    speed_mps: float | None  # person-weighted mean ground speed, None: nobody seen
    spread_mps: float | None  # its person-weighted standard deviation
    moving_share: float | None  # share of the seen people who walk (faster than min_speed)


@dataclass(frozen=True)
class LineFlow:
    in_per_s: float  # people crossing to the line's `in` side per second, now
    out_per_s: float
    length_m: float


@dataclass
class _Blobs:
    mass: np.ndarray  # people per piece
    velocity: np.ndarray  # mean ground velocity per piece (m/s), n×2
    whole: float = 1.0  # people counted whole (each blob at least one) per person weight


class MotionMeter:
    """Per camera: turns a counted frame and the one after it into speeds and flows."""

    def __init__(self, lines: list[LineGeometry], settings: MotionSettings | None = None
                 ) -> None:
        self.lines = lines
        self.s = settings or MotionSettings()
        self._dis = cv2.DISOpticalFlow_create(  # type: ignore[attr-defined]
            cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self._dis.setFinestScale(0)

    def measure(self, geometry: GeometryDetector, follower: np.ndarray, dt: float,
                zones: list[ZoneGeometry]) -> tuple[dict[str, ZoneMotion], dict[str, LineFlow]]:
        """``follower``: the view (same size and masking as the counted one) ``dt``
        seconds after it. Needs the geometry counter to have counted that view."""
        bands = [seg.band for line in self.lines for seg in line.segments]
        img, scale, masks = geometry.foreground_of(zones + bands)
        later, _ = geometry.work_image(follower)
        flow = self._flow(geometry, img, later, [fg for _, fg in masks])
        homographies = [z.homography for z in zones]
        homographies += [line.homography for line in self.lines for _ in line.segments]
        blobs = [self._blobs(plan, fg, flow, h, scale, dt) if h is not None and flow is not None
                 else None for (plan, fg), h in zip(masks, homographies, strict=True)]
        speeds = {z.zone_id: _zone_motion(b, self.s) for z, b in zip(zones, blobs, strict=False)}
        flows: dict[str, LineFlow] = {}
        k = len(zones)
        whole = {z.zone_id: b.whole for z, b in zip(zones, blobs, strict=False) if b is not None}
        for line in self.lines:
            rate_in = rate_out = 0.0
            # A band cuts people at its edges, so it cannot tell a whole person from a
            # part: its weights are made whole as the line's zone counts them.
            factor = whole.get(line.zone_id, 1.0) / line.band_m
            for seg in line.segments:
                b = blobs[k]
                k += 1
                if b is None or not len(b.mass):
                    continue
                across = b.velocity @ seg.normal_m
                walking = np.hypot(b.velocity[:, 0], b.velocity[:, 1]) >= self.s.min_speed
                rate_in += float((b.mass * np.maximum(across, 0) * walking).sum()) * factor
                rate_out += float((b.mass * np.maximum(-across, 0) * walking).sum()) * factor
            flows[line.line_id] = LineFlow(rate_in, rate_out, line.length_m)
        return speeds, flows

    def _flow(self, geometry: GeometryDetector, img: np.ndarray, later: np.ndarray,
              fgs: list[np.ndarray]) -> np.ndarray | None:
        """Image motion (work pixels per pair) of the foreground, over its bounding box.

        Both frames are reduced to their foreground on black (the later one's by the same
        light-corrected difference from the background), so the flow follows the people's
        outlines and is not pinned to zero by the still floor around their flat clothes;
        DIS runs at its fastest preset but down to full work resolution (the preset's
        coarser finest scale loses a far walker's sub-pixel steps). Checked: a pixel whose
        backward flow does not bring it home (within ``FB_TOLERANCE_PX`` plus
        ``FB_TOLERANCE_SHARE`` of its motion) is NaN, unknown."""
        union = np.zeros(img.shape[:2], np.uint8)
        for fg in fgs:
            union |= fg
        x, y, w, h = cv2.boundingRect(union)
        if w == 0 or h == 0:
            return None
        y0, y1 = max(0, y - FLOW_PAD), min(img.shape[0], y + h + FLOW_PAD)
        x0, x1 = max(0, x - FLOW_PAD), min(img.shape[1], x + w + FLOW_PAD)
        if min(y1 - y0, x1 - x0) < 2 * FLOW_PAD:
            return None
        bg = geometry.bg.image
        assert bg is not None
        box = (slice(y0, y1), slice(x0, x1))
        a, b = (_on_black(frame, bg, box, geometry) for frame in (img, later))
        flow = np.zeros((*img.shape[:2], 2), np.float32)
        if self.s.method == "checked":
            fwd = self._dis.calc(a, b, None)
            bwd = self._dis.calc(b, a, None)
            gy, gx = np.mgrid[0:fwd.shape[0], 0:fwd.shape[1]].astype(np.float32)
            back = cv2.remap(bwd, gx + fwd[..., 0], gy + fwd[..., 1], cv2.INTER_LINEAR)
            error = np.hypot(*(fwd + back).transpose(2, 0, 1))
            scale_px = np.hypot(*fwd.transpose(2, 0, 1))
            bad = error > FB_TOLERANCE_PX + FB_TOLERANCE_SHARE * scale_px
            fwd[bad] = np.nan
            flow[box] = fwd
            return flow
        flow[box] = self._dis.calc(a, b, None)
        return flow

    def _blobs(self, plan, fg: np.ndarray, flow: np.ndarray, h: np.ndarray, scale: float,
               dt: float) -> _Blobs:
        ys, xs, feet = owner_feet(fg, plan)
        if not len(ys):
            return _Blobs(np.zeros(0), np.zeros((0, 2)))
        # (a blob is at least one person: the counter's ``max(1, weight)``, as a factor)
        weight = people_weights(fg, plan)[ys, xs].astype(np.float64)
        n_blobs, labels = cv2.connectedComponents(fg, connectivity=8)
        label = labels[ys, xs]
        blob_mass = np.bincount(label, weights=weight, minlength=n_blobs)
        real = blob_mass[label] >= self.s.min_person
        kept = blob_mass[blob_mass >= self.s.min_person]
        whole = float(np.maximum(kept, 1.0).sum() / kept.sum()) if len(kept) else 1.0
        ys, xs, feet, weight, label = ys[real], xs[real], feet[real], weight[real], label[real]
        # Pieces about half a person across, by the owner's feet: a blob where people walk
        # both ways is several pieces that move apart, not one that stands still.
        side = np.maximum(2, (self.s.piece * np.sqrt(
            plan.area_at_feet[feet, xs] / SILHOUETTE_AREA_RATIO)).astype(np.int64))
        key = (label.astype(np.int64) << 40) | ((feet // side) << 20) | (xs // side)
        _, piece = np.unique(key, return_inverse=True)
        # The feet's image motion from the pixel's, then ground metres per pixel there.
        u, v, v_feet = (xs + 0.5) / scale, (ys + 0.5) / scale, (feet + 0.5) / scale
        moved = flow[ys, xs].astype(np.float64) / scale
        known = ~np.isnan(moved[:, 0])
        moved[:, 1] *= feet_motion_ratio(h, u, v, v_feet)
        jac = homography_jacobian(h, u, v_feet)
        ground = np.einsum("nij,nj->ni", jac, moved) / dt
        mass = np.bincount(piece, weights=weight)
        # Velocity from the pixels whose motion is trusted (both ways agree); a piece with
        # none takes its blob's.
        seen = np.where(known, weight, 0.0)
        ground = np.where(known[:, None], ground, 0.0)
        seen_p = np.bincount(piece, weights=seen)
        vx = np.bincount(piece, weights=seen * ground[:, 0])
        vz = np.bincount(piece, weights=seen * ground[:, 1])
        seen_b = np.bincount(label, weights=seen)
        bx = np.bincount(label, weights=seen * ground[:, 0]) / np.maximum(seen_b, 1e-12)
        bz = np.bincount(label, weights=seen * ground[:, 1]) / np.maximum(seen_b, 1e-12)
        piece_blob = np.zeros(len(mass), np.int64)
        piece_blob[piece] = label
        own = seen_p > 1e-9
        vx = np.where(own, vx / np.maximum(seen_p, 1e-12), bx[piece_blob])
        vz = np.where(own, vz / np.maximum(seen_p, 1e-12), bz[piece_blob])
        keep = (mass > 0) & (own | (seen_b[piece_blob] > 1e-9))
        velocity = np.stack([vx[keep], vz[keep]], 1)
        mass = mass[keep]
        sane = np.hypot(velocity[:, 0], velocity[:, 1]) <= self.s.max_speed
        return _Blobs(mass[sane], velocity[sane], whole)


def _on_black(frame: np.ndarray, bg: np.ndarray, box: tuple[slice, slice],
              geometry: GeometryDetector) -> np.ndarray:
    """Grey of what differs from the background (light-corrected), black elsewhere: the
    same test on both frames of a pair, so neither is cut differently (a tighter mask on
    one frame reads as motion)."""
    gain, threshold = frame_light(frame[box], bg[box], geometry.s.foreground)
    differs = cv2.absdiff(frame[box].astype(np.float32) * (1.0 / gain),
                          bg[box].astype(np.float32)).max(axis=2) > threshold
    return cv2.cvtColor(frame[box], cv2.COLOR_BGR2GRAY) * differs.astype(np.uint8)


def feet_motion_ratio(h: np.ndarray, u: np.ndarray, v: np.ndarray, v_feet: np.ndarray
                      ) -> np.ndarray:
    """How much farther the feet move vertically in the image than a point of the same
    person at row ``v``: (v_feet − horizon) / (v − horizon), the horizon being the ground
    plane's vanishing line in the pixel's column. Walking towards the camera, a point at
    height z above the feet moves (H − z)/H of what the feet do (H: camera height); sideways
    every point of a person moves alike. So a body pixel's flow becomes the feet's, and the
    ground velocity is exact for an upright person under a pinhole camera."""
    if abs(h[2, 1]) < 1e-12:
        return np.ones_like(v)  # looking straight down: no horizon, no difference
    horizon = -(h[2, 0] * u + h[2, 2]) / h[2, 1]
    above = v - horizon
    ratio = np.where(np.abs(above) > 1.0, (v_feet - horizon) / np.where(
        np.abs(above) > 1.0, above, 1.0), 1.0)
    return np.clip(ratio, 1.0, 4.0)


def _zone_motion(blobs: _Blobs | None, s: MotionSettings) -> ZoneMotion:
    if blobs is None or not len(blobs.mass):
        return ZoneMotion(None, None, None)
    speed = np.hypot(blobs.velocity[:, 0], blobs.velocity[:, 1])
    total = float(blobs.mass.sum())
    mean = float((blobs.mass * speed).sum() / total)
    spread = float(np.sqrt((blobs.mass * (speed - mean) ** 2).sum() / total))
    moving = float(blobs.mass[speed >= s.min_speed].sum() / total)
    return ZoneMotion(mean, spread, moving)
