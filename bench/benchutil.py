"""What every benchmark does first: one pinned core, single-threaded OpenCV."""

from __future__ import annotations

import os

import cv2


def pin_one_core() -> None:
    """Benchmarks compare paths side by side on one core; other load shares the other."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    cv2.setNumThreads(1)
