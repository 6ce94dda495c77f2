"""The camera threads of one process, each with its own stop switch.

Both the embedded runner and scale-out ingest run their cameras through a fleet, so
the console's setup hooks (a masked snapshot, a counted frame to label) and a setup
change (restart only the cameras it touched) behave the same in either mode.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from crowdwatch.config import CameraConfig
from crowdwatch.ingest.camera import CameraWorker, Emit, LabelSample
from crowdwatch.metrics import Metrics


class CameraFleet:
    def __init__(self, cameras: Sequence[CameraConfig], emit: Emit, metrics: Metrics,
                 realtime: bool = True) -> None:
        self.emit = emit
        self.metrics = metrics
        self.realtime = realtime
        self.workers = [self._worker(cam) for cam in cameras]

    def _worker(self, cam: CameraConfig) -> CameraWorker:
        return CameraWorker(cam, self.emit, self.metrics, threading.Event(),
                            realtime=self.realtime)

    def __len__(self) -> int:
        return len(self.workers)

    def start(self) -> None:
        """Start every camera not started yet (new ones after :meth:`replace`)."""
        for worker in self.workers:
            if worker.ident is None:
                worker.start()

    def any_alive(self) -> bool:
        return any(w.is_alive() for w in self.workers)

    def running(self, camera_id: str) -> CameraWorker | None:
        return next((w for w in self.workers if w.cfg.id == camera_id and w.is_alive()), None)

    def snapshot(self, camera_id: str) -> bytes | None:
        """A masked JPEG of the camera's next frame, in memory (None: no such camera or no
        frame in time)."""
        worker = self.running(camera_id)
        return None if worker is None else worker.snapshot()

    def label_frame(self, camera_id: str) -> LabelSample | None:
        """A masked JPEG of the camera's next counted frame with its per-zone counts."""
        worker = self.running(camera_id)
        return None if worker is None else worker.label_frame()

    def replace(self, cameras: Sequence[CameraConfig], timeout: float = 5.0) -> list[str]:
        """Stop the cameras that are gone or whose settings changed and make (not start)
        their successors; the others keep running untouched. Returns the new ones' ids."""
        wanted = {cam.id: cam for cam in cameras}
        keep, stopping = [], []
        for worker in self.workers:
            if wanted.get(worker.cfg.id) == worker.cfg and worker.is_alive():
                keep.append(worker)
            else:
                worker.stop_event.set()
                stopping.append(worker)
        for worker in stopping:
            worker.join(timeout=timeout)
        running = {w.cfg.id for w in keep}
        made = [self._worker(cam) for cam in cameras if cam.id not in running]
        self.workers = keep + made
        return sorted(w.cfg.id for w in made)

    def signal_stop(self) -> None:
        for worker in self.workers:
            worker.stop_event.set()

    def join(self, timeout: float = 5.0) -> None:
        for worker in self.workers:
            if worker.ident is not None:
                worker.join(timeout=timeout)

    def stop(self, timeout: float = 5.0) -> None:
        self.signal_stop()
        self.join(timeout)
