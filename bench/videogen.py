"""Synthetic H.264 clips for ingest tests and benchmarks (PyAV's libx264).

A moving scene (the simulated crowd, or a fast textured pan) at a fixed frame rate
with a fixed keyframe interval and no B-frames, like a typical IP camera stream.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


def textured_pan(width: int, height: int, frames: int, seed: int = 0):
    """A cheap moving scene: a noisy texture panning, with moving blobs."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(0, 255, (height // 8, width // 4, 3), dtype=np.uint8),
                      (width * 2, height), interpolation=cv2.INTER_CUBIC)
    for i in range(frames):
        x = (i * 4) % width
        img = np.ascontiguousarray(base[:, x:x + width])
        cx = int((np.sin(i / 20) * 0.4 + 0.5) * width)
        cv2.circle(img, (cx, height // 2), height // 8, (255, 255, 255), -1)
        yield img


def write_h264(path: str | Path, width: int = 1280, height: int = 720, fps: int = 25,
               seconds: float = 10.0, gop: int = 25, seed: int = 0, frames=None,
               realistic: bool = False) -> Path:
    """Encode an MP4 (H.264, constant GOP, no B-frames).

    ``realistic`` encodes as IP cameras do (High profile, CABAC and deblocking on, about
    4 Mbit/s at 720p), which costs more to decode than the ultrafast default.
    """
    path = Path(path)
    n = int(seconds * fps)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        stream.options = {"preset": "medium" if realistic else "ultrafast",
                          "tune": "zerolatency", "bf": "0", "g": str(gop),
                          "keyint_min": str(gop), "sc_threshold": "0", "crf": "28"}
        if realistic:
            stream.options |= {"profile": "high", "crf": "23", "maxrate": "4M",
                               "bufsize": "8M"}
        for img in frames if frames is not None else textured_pan(width, height, n, seed):
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def sim_frames(width: int, height: int, frames: int, fps: int = 25, seed: int = 3,
               people: int = 30):
    """The simulated crowd scene rendered at the clip's frame rate."""
    from crowdwatch.ingest.sim import SimParams, SimScene

    scene = SimScene(SimParams(scene="steady", people=people, seed=seed, width=width,
                               height=height))
    for i in range(frames):
        scene.advance_to(i / fps)
        yield scene.render()
