"""Walker scenes for crowd dynamics: people who walk through, not around.

``counterflow``: a walkway across the square (its direction set by ``heading``, degrees
from the view axis); people enter at both ends (``share`` of them at the near end) and
walk to the other, slowing where it is crowded (a fundamental diagram: free speed at
low density, standstill at about 5.4 persons/m², as Weidmann's fits for walkways).

``bottleneck``: a school gate ``gate`` metres wide at the far side of the square; the
dismissal crowd (the school-gate crowd curve) walks from behind it towards the camera.
The gate passes at most ``GATE_CAPACITY`` persons per metre per second (the IMO figure
for doors), so at the peak a queue forms behind it, moves stop-and-go, then clears.

Only ground positions and velocities live here; the truth about crossings and speeds is
kept by :mod:`crowdwatch.ingest.sim_truth`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from crowdwatch.ingest.sim import SimParams, SimScene

WALKER_SCENES = ("counterflow", "bottleneck")
CENTRE = np.array([0.0, 18.0])
HALF_LENGTH = 13.0  # m along the walkway from the centre to each end
HALF_WIDTH = 3.0  # m across it
JAM_DENSITY = 5.4  # persons/m² at which walking stops
GATE_CAPACITY = 1.3  # persons per metre of gate per second
GATE_Z = 21.0  # the bottleneck's gate line (ground z, m)
LOOK_AHEAD = 1.2  # m: how far ahead a walker looks to judge the crowd
MAX_SPAWN = 3  # people who may enter per step
ARRIVED_M = 0.4  # a walker this close to the end of their way leaves the scene
NEAR_EXIT_Z = 3.5  # m: the bottleneck's walkers leave below the frame

# Columns of SimScene.people: x, z, vx, vz, target_x, target_z, phase, direction,
# free speed, style.


def axis(heading_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """(along, across) unit vectors of the walkway on the ground (x, z)."""
    h = math.radians(heading_deg)
    return np.array([math.sin(h), math.cos(h)]), np.array([math.cos(h), -math.sin(h)])


def _spawn(scene: SimScene, n: int) -> None:
    p, rng = scene.p, scene.rng
    rows = []
    for _ in range(n):
        if p.scene == "bottleneck":
            direction = -1.0  # towards the camera
            start = np.array([rng.uniform(-HALF_WIDTH * 2, HALF_WIDTH * 2), 34.0])
            end = np.array([rng.uniform(-HALF_WIDTH * 2, HALF_WIDTH * 2), NEAR_EXIT_Z])
        else:
            along, across = axis(p.heading)
            direction = 1.0 if rng.random() >= p.share else -1.0
            lateral = across * rng.uniform(-HALF_WIDTH, HALF_WIDTH)
            start = CENTRE - direction * HALF_LENGTH * along + lateral
            end = CENTRE + direction * (HALF_LENGTH + 1.0) * along + lateral
        speed = p.speed * rng.uniform(0.75, 1.25)
        rows.append([start[0], start[1], 0.0, 0.0, end[0], end[1], rng.uniform(0, 2 * math.pi),
                     direction, speed, rng.integers(0, 512)])
    if rows:
        scene.people = np.vstack([scene.people, np.array(rows)])


def _ahead_density(pos: np.ndarray, heading: np.ndarray) -> np.ndarray:
    """Persons/m² in the half disc ahead of each walker (LOOK_AHEAD radius)."""
    if len(pos) < 2:
        return np.zeros(len(pos))
    rel = pos[None, :, :] - pos[:, None, :]
    dist = np.linalg.norm(rel, axis=2)
    ahead = (rel * heading[:, None, :]).sum(axis=2) > 0
    near = (dist < LOOK_AHEAD) & ahead
    return near.sum(axis=1) / (math.pi * LOOK_AHEAD**2 / 2)


def step(scene: SimScene, dt: float, target: int) -> None:
    """Move every walker one step; admit newcomers up to ``target`` walking people."""

    p = scene.people
    waiting = len(p) if scene.p.scene == "counterflow" else int((p[:, 1] > GATE_Z).sum())
    if waiting < target:
        _spawn(scene, min(target - waiting, MAX_SPAWN))
        p = scene.people
    if not len(p):
        return
    to_t = p[:, 4:6] - p[:, 0:2]
    dist = np.linalg.norm(to_t, axis=1, keepdims=True) + 1e-6
    heading = to_t / dist
    crowd = _ahead_density(p[:, 0:2], heading)
    speed = p[:, 8] * np.clip(1.0 - crowd / JAM_DENSITY, 0.0, 1.0)
    desired = heading * speed[:, None]
    jitter = scene.rng.normal(0, 0.08, desired.shape) * speed[:, None]
    p[:, 2:4] = 0.6 * p[:, 2:4] + 0.4 * (desired + jitter)
    new = p[:, 0:2] + p[:, 2:4] * dt
    if scene.p.scene == "bottleneck":
        new = _through_gate(scene, p, new, dt)
    new[:, 1] = np.maximum(new[:, 1], 3.0)  # walkers may leave below the frame
    p[:, 2:4] = (new - p[:, 0:2]) / dt
    scene.moved(p[:, 0:2].copy(), new)
    p[:, 0:2] = new
    p[:, 6] += np.linalg.norm(p[:, 2:4], axis=1) * dt * 4.0
    arrived = np.linalg.norm(p[:, 4:6] - p[:, 0:2], axis=1) < ARRIVED_M
    scene.people = p[~arrived]


def _through_gate(scene: SimScene, p: np.ndarray, new: np.ndarray, dt: float) -> np.ndarray:
    """Walkers before the gate aim for its opening; crossing it takes one of the gate's
    tokens (GATE_CAPACITY × width per second, at most one saved up), or waits."""
    half = scene.p.gate / 2
    before = p[:, 1] > GATE_Z
    # Aim for the opening while behind it (a little inside its edges).
    p[before, 4] = np.clip(p[before, 4], -half * 0.8, half * 0.8)
    p[before, 5] = np.where(p[before, 5] > GATE_Z - 0.5, GATE_Z - 0.5, p[before, 5])
    # Outside the opening, the gate's wall stops them short of the line.
    crossing = np.flatnonzero(before & (new[:, 1] <= GATE_Z))
    order = crossing[np.argsort(new[crossing, 1])]
    scene.gate_tokens = min(1.0, scene.gate_tokens + GATE_CAPACITY * scene.p.gate * dt)
    for i in order:
        if abs(new[i, 0]) <= half and scene.gate_tokens >= 1.0:
            scene.gate_tokens -= 1.0
            # Once through, spread out over the near side of the square.
            p[i, 4] = scene.rng.uniform(-HALF_WIDTH * 2, HALF_WIDTH * 2)
            p[i, 5] = NEAR_EXIT_Z
        else:
            new[i, 1] = GATE_Z + 0.05
    return new


def walkway_zone_config(params: SimParams, zone_id: str = "walkway", line_id: str = "across",
                        half_length: float = 5.0) -> dict:
    """A zone over the middle of the walkway (``half_length`` m each way along it, the
    walkway's width and a metre more each side) with its ground calibration and one line
    straight across its middle: the config a test, bench or demo gives a walker scene.
    For the bottleneck, the line runs along the gate, just past it."""
    from crowdwatch.ingest.sim import PinholeGround

    cam = PinholeGround.of(params)
    if params.scene == "bottleneck":
        along, across = np.array([0.0, 1.0]), np.array([1.0, 0.0])
        centre = np.array([0.0, GATE_Z - 2.0])
        line_m = [centre + np.array([-params.gate, 1.5]), centre + np.array([params.gate, 1.5])]
    else:
        along, across = axis(params.heading)
        centre = CENTRE
        line_m = [centre - across * (HALF_WIDTH + 0.5), centre + across * (HALF_WIDTH + 0.5)]
    width = HALF_WIDTH + 1.0
    corners = np.array([centre - along * half_length - across * width,
                        centre + along * half_length - across * width,
                        centre + along * half_length + across * width,
                        centre - along * half_length + across * width])
    corners[:, 1] = np.maximum(corners[:, 1], 9.0)  # in front of the camera, in the frame

    def to_px(points: np.ndarray) -> list[list[float]]:
        u, v = cam.to_image(points[:, 0], points[:, 1])
        return [[round(float(a), 2), round(float(b), 2)] for a, b in zip(u, v, strict=True)]

    image = to_px(corners)
    world = (corners - corners[0]).round(4).tolist()
    return {"id": zone_id, "polygon": image, "ground": {"image": image, "world_m": world},
            "lines": [{"id": line_id, "points": to_px(np.array(line_m))}]}
