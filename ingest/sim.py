"""A synthetic camera: person-like figures walking over a textured ground plane.

It exists so the demo runs with no camera and tests can compare counts with an exact
truth. The scene is a pinhole camera on a pole looking at a paved square; figures
are drawn with perspective (nearer is larger), occlude each other and a lamp post,
under slowly drifting light and sensor noise. A scripted crowd curve (a school gate
at dismissal: a few people, a surge to a dense crowd, then dispersal) sets how many
people are in the scene. No figure has a face or any identity: they are shapes.

URL form: ``sim://school-gate?people=70&period=45&seed=1&w=1280&h=720``.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from crowdwatch.ingest import sim_walkers
from crowdwatch.ingest.sim_params import SimParams
from crowdwatch.ingest.sim_truth import LineTally

PERSON_HEIGHT_M = 1.7


class PinholeGround:
    """Camera at height ``cam_h`` looking along the ground; maps ground (X, Z) to pixels."""

    def __init__(self, width: int, height: int, cam_h: float = 6.0, focal: float = 0.78,
                 horizon: float = 0.25) -> None:
        self.width, self.height, self.cam_h = width, height, cam_h
        self.f = focal * width
        self.cx = width / 2.0
        self.horizon = horizon * height

    @classmethod
    def of(cls, params: SimParams) -> PinholeGround:
        return cls(params.width, params.height, params.cam_h, params.focal, params.horizon)

    def to_image(self, x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.cx + self.f * x / z, self.horizon + self.f * self.cam_h / z

    def to_ground(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = self.f * self.cam_h / (np.asarray(v) - self.horizon)
        return (np.asarray(u) - self.cx) * z / self.f, z

    def person_height_px(self, z: np.ndarray) -> np.ndarray:
        return self.f * PERSON_HEIGHT_M / z


# The demo's calibrated zone, in ground metres: the pavement in front of the gate.
GATE_ZONE_M = ((-4.0, 13.0), (4.0, 13.0), (4.0, 20.0), (-4.0, 20.0))
SCENE_X = (-11.0, 11.0)
SCENE_Z = (8.0, 40.0)


def gate_zone_config(params: SimParams) -> dict:
    """The demo zone as config: image polygon plus its ground calibration."""
    cam = PinholeGround.of(params)
    xs = np.array([p[0] for p in GATE_ZONE_M])
    zs = np.array([p[1] for p in GATE_ZONE_M])
    u, v = cam.to_image(xs, zs)
    image = [[round(float(a), 1), round(float(b), 1)] for a, b in zip(u, v, strict=True)]
    world = [[x - GATE_ZONE_M[0][0], z - GATE_ZONE_M[0][1]] for x, z in GATE_ZONE_M]
    return {"polygon": image, "ground": {"image": image, "world_m": world}}


def crowd_target(params: SimParams, t: float) -> float:
    """How many people the script wants in the scene at time t (seconds)."""
    if params.scene == "steady":
        return float(params.people)
    phase = (t % params.period) / params.period
    base, peak = params.base, params.people
    if phase < 0.15:
        return base
    if phase < 0.40:
        s = (phase - 0.15) / 0.25
        return base + (peak - base) * (0.5 - 0.5 * math.cos(math.pi * s))
    if phase < 0.60:
        return peak
    if phase < 0.80:
        s = (phase - 0.60) / 0.20
        return peak - (peak - base) * (0.5 - 0.5 * math.cos(math.pi * s))
    return base


class SimScene:
    """Deterministic for a given seed and sequence of times."""

    STEP_S = 0.1

    def __init__(self, params: SimParams) -> None:
        self.p = params
        self.rng = np.random.default_rng(params.seed)
        self.cam = PinholeGround.of(params)
        self.t = 0.0
        self.background = self._make_background()
        self._noise_bank = [
            self.rng.normal(0, params.noise, (params.height, params.width, 1)).astype(np.float32)
            for _ in range(4)
        ]
        # Columns: x, z, vx, vz, target_x, target_z, phase, leaving, crowd, style
        self.people = np.zeros((0, 10))
        self._colors = self.rng.integers(20, 235, size=(512, 3))
        gz = np.array(GATE_ZONE_M)
        self._gate_center = gz.mean(axis=0)
        self.tallies: dict[str, LineTally] = {}
        self.gate_tokens = 0.0
        if params.scene not in sim_walkers.WALKER_SCENES:
            self._spawn(min(params.base, params.people), inside=True)

    # ---- scene state -------------------------------------------------------------------
    def _spawn(self, n: int, inside: bool = False) -> None:
        rng = self.rng
        rows = []
        for _ in range(n):
            crowd = 1.0
            tx = self._gate_center[0] + rng.normal(0, 2.4)
            tz = self._gate_center[1] + rng.normal(0, 2.0)
            if inside:
                x, z = tx + rng.normal(0, 2), tz + rng.normal(0, 2)
            else:
                side = rng.integers(0, 3)
                if side == 0:
                    x, z = SCENE_X[0], rng.uniform(10, 30)
                elif side == 1:
                    x, z = SCENE_X[1], rng.uniform(10, 30)
                else:
                    x, z = rng.uniform(-8, 8), SCENE_Z[1]
            rows.append([x, max(z, SCENE_Z[0] + 0.5), 0, 0, tx, tz, rng.uniform(0, 2 * math.pi),
                         0, crowd, rng.integers(0, 512)])
        if rows:
            self.people = np.vstack([self.people, np.array(rows)])

    def _step(self, dt: float) -> None:
        if self.p.scene in sim_walkers.WALKER_SCENES:
            self._walk(dt)
        else:
            self._mill(dt)
        self.t += dt

    def moved(self, before: np.ndarray, after: np.ndarray) -> None:
        """Every step calls this with the ground (x, z) of the same people before and
        after it moved them (before anyone leaves the scene): the truth of crossings."""
        if not self.tallies or not len(before):
            return
        u0, v0 = self.cam.to_image(before[:, 0], before[:, 1])
        u1, v1 = self.cam.to_image(after[:, 0], after[:, 1])
        for tally in self.tallies.values():
            tally.update(self.t + self.STEP_S, np.stack([u0, v0], 1), np.stack([u1, v1], 1))

    def watch_line(self, name: str, points_px: list[list[float]]) -> LineTally:
        """Keep exact crossings of an image polyline (native pixels) from now on."""
        tally = LineTally(np.asarray(points_px, dtype=np.float64))
        self.tallies[name] = tally
        return tally

    def true_speed(self, polygon_px: list[list[float]] | np.ndarray) -> float | None:
        """Mean walking speed (m/s) of the people whose feet are in an image polygon."""
        inside = self._inside(polygon_px)
        if not inside.any():
            return None
        return float(np.linalg.norm(self.people[inside, 2:4], axis=1).mean())

    def _inside(self, polygon_px: list[list[float]] | np.ndarray) -> np.ndarray:
        if not len(self.people):
            return np.zeros(0, bool)
        u, v = self.cam.to_image(self.people[:, 0], self.people[:, 1])
        poly = np.asarray(polygon_px, dtype=np.float32)
        return np.array([cv2.pointPolygonTest(poly, (float(a), float(b)), False) >= 0
                         for a, b in zip(u, v, strict=True)], bool)

    def _walk(self, dt: float) -> None:
        sim_walkers.step(self, dt, round(crowd_target(self.p, self.t)))

    def _mill(self, dt: float) -> None:
        target = round(crowd_target(self.p, self.t))
        staying = self.people[:, 7] == 0
        n_staying = int(staying.sum())
        if n_staying < target:
            self._spawn(min(target - n_staying, 4))  # a few per step: people arrive in a stream
        elif n_staying > target:
            idx = np.flatnonzero(staying)[: min(n_staying - target, 3)]
            self.people[idx, 7] = 1
            # Leavers head for the nearest side exit.
            self.people[idx, 4] = np.where(self.people[idx, 0] < 0, SCENE_X[0] - 2, SCENE_X[1] + 2)
            self.people[idx, 5] = self.people[idx, 1] + self.rng.normal(0, 3, len(idx))
        p = self.people
        to_t = p[:, 4:6] - p[:, 0:2]
        dist = np.linalg.norm(to_t, axis=1, keepdims=True) + 1e-6
        speed = np.where(p[:, 7:8] == 1, 1.6, np.minimum(1.3, 0.6 * dist))
        desired = to_t / dist * speed
        jitter = self.rng.normal(0, 0.35, desired.shape)
        p[:, 2:4] = 0.8 * p[:, 2:4] + 0.2 * (desired + jitter)
        before = p[:, 0:2].copy()
        p[:, 0:2] += p[:, 2:4] * dt
        p[:, 1] = np.clip(p[:, 1], SCENE_Z[0], SCENE_Z[1] + 5)
        self.moved(before, p[:, 0:2])
        p[:, 6] += np.linalg.norm(p[:, 2:4], axis=1) * dt * 4.0
        # Idle crowd members pick a new spot now and then, so the crowd keeps moving.
        idle = (p[:, 7] == 0) & (dist[:, 0] < 0.5) & (self.rng.random(len(p)) < 0.05)
        p[idle, 4] = self._gate_center[0] + self.rng.normal(0, 2.4, idle.sum())
        p[idle, 5] = self._gate_center[1] + self.rng.normal(0, 2.0, idle.sum())
        gone = (p[:, 7] == 1) & ((p[:, 0] < SCENE_X[0] - 1) | (p[:, 0] > SCENE_X[1] + 1))
        self.people = p[~gone]

    def advance_to(self, t: float) -> None:
        while self.t + self.STEP_S <= t + 1e-9:
            self._step(self.STEP_S)

    # ---- truth ---------------------------------------------------------------------------
    def true_count(self, polygon_px: list[list[float]] | np.ndarray) -> int:
        """People whose feet stand inside an image polygon (native pixels)."""
        return int(self._inside(polygon_px).sum())

    # ---- rendering -------------------------------------------------------------------------
    def _make_background(self) -> np.ndarray:
        w, h = self.p.width, self.p.height
        rng = self.rng
        img = np.zeros((h, w, 3), np.float32)
        cam = self.cam
        horizon = int(cam.horizon)
        # Building facade above the square, with windows.
        img[:horizon + 20] = (95, 105, 120)
        for x0 in range(20, w, 90):
            for y0 in range(15, horizon - 20, 50):
                img[y0:y0 + 30, x0:x0 + 55] = (60, 70, 85)
        # Paving: tiles on the ground plane, drawn through the camera.
        ground = np.full((h - horizon, w, 3), (128, 124, 118), np.float32)
        img[horizon:] = ground
        vs = np.arange(horizon + 1, h, dtype=np.float64)
        _, zrow = cam.to_ground(np.zeros_like(vs), vs)
        stripe = (np.floor(zrow / 1.2) % 2).astype(np.float32)
        img[horizon + 1:] += (stripe * 10 - 5)[:, None, None]
        for xm in np.arange(-20, 21, 1.2):
            u0, v0 = cam.to_image(np.array([xm]), np.array([SCENE_Z[0] - 3]))
            u1, v1 = cam.to_image(np.array([xm]), np.array([200.0]))
            cv2.line(img, (int(u0[0]), int(v0[0])), (int(u1[0]), int(v1[0])), (100, 98, 95), 1)
        # Low-frequency stains and high-frequency grain, so foreground is not trivially flat.
        low = cv2.resize(rng.normal(0, 12, (h // 40, w // 40)).astype(np.float32), (w, h),
                         interpolation=cv2.INTER_CUBIC)
        grain = rng.normal(0, 6, (h, w)).astype(np.float32)
        img += (low + grain)[:, :, None]
        # The gate: two pillars and a bar at the far edge of the zone.
        for gx in (-4.5, 4.5):
            u, v = cam.to_image(np.array([gx]), np.array([21.0]))
            hp = cam.person_height_px(np.array([21.0]))[0] * 1.4
            cv2.rectangle(img, (int(u[0] - 8), int(v[0] - hp)), (int(u[0] + 8), int(v[0])),
                          (70, 70, 78), -1)
        return img

    def _draw_person(self, img: np.ndarray, row: np.ndarray) -> None:
        x, z, vx, _, _, _, phase, _, _, style = row
        u, v = self.cam.to_image(np.array([x]), np.array([z]))
        u, v = float(u[0]), float(v[0])  # type: ignore[assignment]
        hp = float(self.cam.person_height_px(np.array([z]))[0])
        if v - hp > self.p.height or u < -hp or u > self.p.width + hp:
            return
        s = int(style)
        shirt = tuple(int(c) for c in self._colors[s])
        trousers = tuple(int(c) * 0.5 for c in self._colors[(s * 7 + 3) % 512])
        skin = (90 + (s % 5) * 25, 110 + (s % 5) * 22, 140 + (s % 5) * 20)
        lw = max(1, int(hp * 0.09))
        hip = (u, v - hp * 0.47)
        swing = math.sin(phase) * hp * 0.12
        for sign in (-1, 1):
            foot = (int(u + sign * swing), int(v))
            cv2.line(img, (int(hip[0]), int(hip[1])), foot, trousers, lw, cv2.LINE_AA)
        torso_w = hp * 0.13
        top = v - hp * 0.82
        cv2.ellipse(img, (int(u), int((top + hip[1]) / 2)),
                    (max(1, int(torso_w)), max(1, int((hip[1] - top) / 2))), 0, 0, 360, shirt, -1,
                    cv2.LINE_AA)
        for sign in (-1, 1):
            hand = (int(u + sign * torso_w * 1.2 - sign * swing * 0.3), int(v - hp * 0.45))
            cv2.line(img, (int(u + sign * torso_w * 0.8), int(top + hp * 0.04)), hand, shirt,
                     max(1, lw - 1), cv2.LINE_AA)
        cv2.circle(img, (int(u), int(v - hp * 0.9)), max(1, int(hp * 0.07)), skin, -1, cv2.LINE_AA)
        _ = vx

    def sun_strength(self) -> float:
        """Shadow darkness now: clouds pass (slowly), so the sun comes and goes."""
        if not self.p.shadow:
            return 0.0
        cloud = 0.5 + 0.5 * math.sin(self.t / 31.0 + self.p.seed)
        return self.p.shadow * min(1.0, 0.25 + cloud)

    def _cast_shadows(self, img: np.ndarray) -> None:
        """Hard shadows on the ground: each person's footprint stretched away from the sun,
        darker and bluer (lit by the sky only), and the sun's light on everything else."""
        strength = self.sun_strength()
        if strength <= 0 or not len(self.people):
            return
        az = math.radians(self.p.sun_az)
        length = PERSON_HEIGHT_M * self.p.sun_len
        dx, dz = math.sin(az), math.cos(az)
        mask = np.zeros(img.shape[:2], np.uint8)
        for x, z in self.people[:, 0:2]:
            side = np.array([dz, -dx]) * 0.22
            foot = np.array([x, z])
            tip = foot + np.array([dx, dz]) * length
            quad = np.array([foot + side, foot - side, tip - side * 0.6, tip + side * 0.6])
            if (quad[:, 1] < 0.5).any():
                continue
            u, v = self.cam.to_image(quad[:, 0], quad[:, 1])
            cv2.fillConvexPoly(mask, np.stack([u, v], 1).round().astype(np.int32), 1,
                               cv2.LINE_AA)
        ground = np.zeros_like(mask)
        ground[int(self.cam.horizon) + 1:] = 1
        shade = (mask & ground).astype(np.float32)[:, :, None]
        tint = np.array([1.0 - 0.75 * strength, 1.0 - 0.85 * strength, 1.0 - 0.9 * strength],
                        np.float32)  # B, G, R: sky light is blue
        img *= 1.0 + shade * (tint - 1.0)
        img *= 1.0 + 0.15 * strength  # sunlit: everything brighter

    def render(self) -> np.ndarray:
        """The frame at the current time, BGR uint8."""
        img = self.background.copy()
        self._cast_shadows(img)
        order: Any = np.argsort(-self.people[:, 1]) if len(self.people) else []
        for i in order:
            self._draw_person(img, self.people[i])
        # Lamp post in the foreground: occludes whoever walks behind it.
        u, _ = self.cam.to_image(np.array([-2.5]), np.array([10.0]))
        cv2.rectangle(img, (int(u[0]) - 6, int(self.cam.horizon)), (int(u[0]) + 6, self.p.height),
                      (45, 45, 50), -1)
        # Lighting drift: slow gain and a moving brightness gradient (clouds, sun).
        gain = 1.0 + 0.08 * math.sin(self.t / 23.0) + 0.04 * math.sin(self.t / 7.0)
        img *= gain
        noise = self._noise_bank[int(self.t * 10) % len(self._noise_bank)]
        shift = int(self.t * 37) % self.p.width
        img += np.roll(noise, shift, axis=1)
        return np.clip(img, 0, 255).astype(np.uint8)
