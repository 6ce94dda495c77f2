"""Camera ingest against real streams: files, MJPEG over HTTP, RTSP from GStreamer."""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.events import CameraHealth
from crowdwatch.ingest.health import HealthMonitor, HealthSettings
from crowdwatch.ingest.sim import SimParams, SimScene
from crowdwatch.ingest.source_plugin import open_source
from crowdwatch.ingest.sources import SourceError, redact_url
from crowdwatch.ingest.stream import StreamSource
from crowdwatch.metrics import Metrics
from crowdwatch.streams.alerting.sinks import Dispatcher
from crowdwatch.streams.rules.engine import RuleEngine
from crowdwatch.streams.runtime.embedded import EmbeddedRunner
from tests.helpers import free_port, metric_value, popen_child, read_jsonl, scrape, wait_for
from tests.test_demo_e2e import start_run

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("videogen", ROOT / "bench" / "videogen.py")
videogen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(videogen)


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Short H.264 clips: the sim scene with keyframes every 1 s and every 4 s, a frozen one."""
    d = tmp_path_factory.mktemp("clips")
    frames = list(videogen.sim_frames(640, 360, 25 * 12, fps=25))
    return {
        "gop25": videogen.write_h264(d / "gop25.mp4", 640, 360, seconds=12, gop=25,
                                     frames=frames),
        "gop100": videogen.write_h264(d / "gop100.mp4", 640, 360, seconds=12, gop=100,
                                      frames=frames),
        "frozen": videogen.write_h264(d / "frozen.mp4", 640, 360, seconds=8, gop=25,
                                      frames=[frames[0]] * 200),
        "long": videogen.write_h264(d / "long.mp4", 640, 360, seconds=60, gop=25,
                                    frames=videogen.sim_frames(640, 360, 25 * 60, fps=25)),
    }


def test_keyframe_mode_decodes_one_frame_per_sample(clips):
    src = StreamSource(str(clips["gop25"]), sample_hz=1, realtime=False)
    samples = []
    while (frame := src.read()) is not None:
        samples.append(frame)
    assert src.mode == "keyframe" and src.keyframe_interval == pytest.approx(1.0, abs=0.05)
    assert len(samples) == 12
    assert src.decoded == len(samples)  # no P-frame ever decoded
    assert src.packets >= 290  # yet every packet was read off the stream
    assert samples[0].image.shape == (360, 640, 3)
    assert samples[5].ts - samples[4].ts == pytest.approx(1.0, abs=0.05)


def test_auto_falls_back_to_decoding_all_when_keyframes_are_rare(clips):
    src = StreamSource(str(clips["gop100"]), sample_hz=1, realtime=False)
    samples = []
    while (frame := src.read()) is not None:
        samples.append(frame)
    assert src.mode == "all" and src.keyframe_interval == pytest.approx(4.0, abs=0.1)
    assert len(samples) >= 9  # about one per second once the interval is known
    gaps = np.diff([f.ts for f in samples[-5:]])
    assert np.allclose(gaps, 1.0, atol=0.1)


def test_output_is_downscaled_inside_the_conversion(clips):
    src = StreamSource(str(clips["gop25"]), sample_hz=1, realtime=False, out_width=320)
    assert src.read().image.shape == (180, 320, 3)


def test_missing_file_is_a_source_error():
    with pytest.raises(SourceError, match="cannot open"):
        open_source("/nonexistent/clip.mp4", 1.0)


def test_frozen_stream_becomes_stale(clips):
    src = StreamSource(str(clips["frozen"]), sample_hz=2, realtime=False)
    monitor = HealthMonitor(HealthSettings(stale_after=3.0))
    verdicts = []
    while (frame := src.read()) is not None:
        verdicts.append((frame.ts - src._start_wall, monitor.observe(frame.image, frame.ts)))
    states = [(t, v.state) for t, v in verdicts]
    assert all(s == "up" for t, s in states if t < 3.0)
    assert states[-1][1] == "stale" and "unchanged" in verdicts[-1][1].reason


def sim_views(n: int, seed: int = 5):
    scene = SimScene(SimParams(scene="steady", people=20, seed=seed, width=640, height=360))
    for i in range(n):
        scene.advance_to(i * 0.5)
        yield i * 0.5, scene.render()


def test_normal_scene_stays_up_and_tampering_is_caught():
    monitor = HealthMonitor(HealthSettings(tamper_after=2.0))
    views = list(sim_views(60))
    assert {monitor.observe(img, t).state for t, img in views[:30]} == {"up"}
    t0 = views[30][0]

    def run(transform, seconds: float = 3.0) -> str:
        nonlocal t0
        verdict = None
        for k in range(int(seconds / 0.5)):
            t0 += 0.5
            verdict = monitor.observe(transform(views[30 + k % 20][1]), t0)
        return verdict

    dark = run(lambda im: (im * 0.03).astype(np.uint8))
    assert dark.state == "tampered" and "dark" in dark.reason
    assert run(lambda im: im, 1.0).state == "up"
    covered = run(lambda im: np.full_like(im, 128))
    assert covered.state == "tampered" and "blank" in covered.reason
    assert run(lambda im: im, 1.0).state == "up"
    blurred = run(lambda im: cv2.GaussianBlur(im, (0, 0), 6))
    assert blurred.state == "tampered" and "blurred" in blurred.reason
    assert run(lambda im: im, 1.0).state == "up"
    moved = run(lambda im: np.roll(im, 90, axis=1))
    assert moved.state == "tampered" and "moved" in moved.reason
    assert run(lambda im: im, 1.0).state == "up"
    # A short blip under tamper_after never changes the state.
    assert run(lambda im: (im * 0.03).astype(np.uint8), 1.0).state == "up"


def test_stale_camera_raises_offline_with_the_reason():
    config = CrowdwatchConfig.model_validate({
        "cameras": [{"id": "cam", "url": "sim://school-gate",
                     "zones": [{"id": "z", "polygon": [[0, 0], [9, 0], [9, 9]]}]}],
        "rules": [{"kind": "camera_offline", "after": 10}]})
    engine = RuleEngine(config, start_ts=0.0)
    engine.handle(CameraHealth("cam", 1.0, "up"))
    engine.handle(CameraHealth("cam", 2.0, "stale", 2.0, "picture unchanged for 10s"))
    (alert,) = engine.tick(12.0)
    assert alert.state == "firing" and "stale: picture unchanged" in alert.summary


class MjpegHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        try:
            for _, img in sim_views(400, seed=9):
                jpg = cv2.imencode(".jpg", img)[1].tobytes()
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n"
                                 b"Content-Length: %d\r\n\r\n" % len(jpg) + jpg + b"\r\n")
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args) -> None:
        pass


def test_mjpeg_over_http():
    server = ThreadingHTTPServer(("127.0.0.1", 0), MjpegHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        src = open_source(f"http://127.0.0.1:{server.server_address[1]}/video.mjpg", 4.0,
                          read_timeout=3.0)
        frames = [src.read() for _ in range(6)]
        src.close()
    finally:
        server.shutdown()
    assert all(f.image.shape == (360, 640, 3) for f in frames)
    gaps = np.diff([f.ts for f in frames])
    assert 0.15 < np.median(gaps) < 0.4  # sampled at ~4 Hz from a 20 fps stream


def test_stalled_http_socket_times_out():
    class Silent(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            time.sleep(30)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Silent)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(SourceError):
            src = open_source(f"http://u:pw@127.0.0.1:{server.server_address[1]}/v.mjpg", 2.0,
                              open_timeout=2.0, read_timeout=2.0)
            src.read()
    finally:
        server.shutdown()
    assert time.monotonic() - started < 10


def test_a_broken_camera_never_stops_the_others():
    config = CrowdwatchConfig.model_validate({
        "cameras": [
            {"id": "broken", "url": "/nonexistent/cam.mp4", "reconnect": {"initial": 0.2,
                                                                         "max": 0.5},
             "zones": [{"id": "zb", "polygon": [[0, 0], [9, 0], [9, 9]]}]},
            {"id": "good", "url": "sim://steady?people=10&w=640&h=360", "sample_hz": 4,
             "zones": [{"id": "zg", "polygon": [[0, 0], [640, 0], [640, 360], [0, 360]]}]}],
        "rules": [], "metrics": {"port": 0}})
    metrics = Metrics()
    runner = EmbeddedRunner(config, Dispatcher([], metrics), metrics, realtime=True)
    runner.run(duration=3.0)
    assert metrics.value("crowdwatch_frames_total", {"camera": "good"}) >= 8
    assert metrics.value("crowdwatch_camera_up", {"camera": "broken"}) == 0
    assert metrics.value("crowdwatch_camera_up", {"camera": "good"}) == 1


def test_credentials_are_redacted():
    assert redact_url("rtsp://admin:hunter2@10.0.0.5:554/s1") == "rtsp://***@10.0.0.5:554/s1"
    assert redact_url("rtsp://10.0.0.5/s1") == "rtsp://10.0.0.5/s1"


def require_rtsp_server() -> None:
    check = subprocess.run(["bash", str(ROOT / "tests" / "support" / "rtsp" / "install.sh")],
                           capture_output=True, text=True, check=False)
    if check.returncode != 0:
        pytest.fail("GStreamer RTSP server packages missing "
                    "(tests/support/rtsp/install.sh failed): "
                    + check.stderr)


def start_rtsp(port: int, clip: Path, log: Path) -> subprocess.Popen:
    serve = ROOT / "tests" / "support" / "rtsp" / "serve.py"
    proc = popen_child(["/usr/bin/python3", str(serve),
                             "--port", str(port), "--path", "/cam1", "--file", str(clip),
                             "--user", "admin", "--password", "s3cret-pw"],
                            stdout=log.open("a"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if "serving" in log.read_text():
            return proc
        assert proc.poll() is None, log.read_text()
        time.sleep(0.1)
    raise AssertionError("RTSP server did not start: " + log.read_text())


def metric(port: int, name: str, camera: str) -> float:
    return metric_value(port, name, camera=camera)


@pytest.mark.slow
def test_rtsp_server_killed_and_restarted(clips, tmp_path):
    require_rtsp_server()
    rtsp_port, metrics_port = free_port(), free_port()
    url = f"rtsp://admin:s3cret-pw@127.0.0.1:{rtsp_port}/cam1"
    config = tmp_path / "site.yaml"
    config.write_text(json.dumps({
        "site": {"name": "ingest-test"},
        "cameras": [
            {"id": "gate-rtsp", "url": url, "sample_hz": 2, "read_timeout": "2s",
             "open_timeout": "3s", "reconnect": {"initial": "0.5s", "max": "1s"},
             "zones": [{"id": "gate", "polygon": [[0, 0], [640, 0], [640, 360], [0, 360]]}]},
            {"id": "square-sim", "url": "sim://steady?people=10&w=640&h=360", "sample_hz": 2,
             "zones": [{"id": "square", "polygon": [[0, 0], [640, 0], [640, 360], [0, 360]]}]},
        ],
        "rules": [{"kind": "camera_offline", "after": "4s"}],
        "engine": {"tick": "0.5s"},
    }))
    log = tmp_path / "rtsp.log"
    alerts_path = tmp_path / "alerts.jsonl"
    server = start_rtsp(rtsp_port, clips["long"], log)
    run = start_run(tmp_path, "--config", str(config), "--metrics-port", str(metrics_port),
                    "--alerts-jsonl", str(alerts_path), "--duration", "120")
    try:
        wait_for(lambda: metric(metrics_port, "crowdwatch_frames_total", "gate-rtsp") >= 3, 20,
                 "frames from the RTSP camera")
        server.send_signal(signal.SIGKILL)
        server.wait()
        killed = time.time()
        sim_before = metric(metrics_port, "crowdwatch_frames_total", "square-sim")
        fired = wait_for(lambda: [a for a in read_jsonl(alerts_path)
                                  if a["rule"] == "camera_offline" and a["state"] == "firing"],
                         15, "camera_offline to fire")
        assert fired[0]["labels"]["camera"] == "gate-rtsp"
        from crowdwatch.events import parse_ts

        # after (4 s) + a read timeout (2 s) + one engine tick, with slack for a loaded CI box
        assert parse_ts(fired[0]["starts_at"], "starts_at") - killed < 10
        assert metric(metrics_port, "crowdwatch_camera_up", "gate-rtsp") == 0
        # The other camera kept going throughout.
        assert metric(metrics_port, "crowdwatch_frames_total", "square-sim") > sim_before + 4
        server = start_rtsp(rtsp_port, clips["long"], log)
        wait_for(lambda: [a for a in read_jsonl(alerts_path) if a["rule"] == "camera_offline"
                          and a["state"] == "resolved"], 20, "camera_offline to resolve")
        assert metric(metrics_port, "crowdwatch_camera_up", "gate-rtsp") == 1
        metrics_text = scrape(metrics_port)
    finally:
        server.send_signal(signal.SIGTERM)
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=20)
    states = [(a["rule"], a["state"]) for a in read_jsonl(alerts_path)]
    assert states.count(("camera_offline", "firing")) == 1
    assert states.count(("camera_offline", "resolved")) == 1
    for text in (err, metrics_text, alerts_path.read_text()):
        assert "s3cret-pw" not in text
    assert "rtsp://***@127.0.0.1" in err  # the logs still say which camera


def test_rtsp_wrong_password_is_reported_without_it(clips, tmp_path):
    require_rtsp_server()
    port = free_port()
    server = start_rtsp(port, clips["gop25"], tmp_path / "rtsp.log")
    try:
        with pytest.raises(SourceError) as err:
            open_source(f"rtsp://admin:wrong-pw@127.0.0.1:{port}/cam1", 1.0, open_timeout=3,
                        read_timeout=3)
        assert "wrong-pw" not in str(err.value) and "***@127.0.0.1" in str(err.value)
        good = open_source(f"rtsp://admin:s3cret-pw@127.0.0.1:{port}/cam1", 1.0,
                           open_timeout=3, read_timeout=3)
        frame = good.read()
        good.close()
        assert frame.image.shape == (360, 640, 3)
    finally:
        server.terminate()
        server.wait()
