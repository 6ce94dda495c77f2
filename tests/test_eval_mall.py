"""Counting on real footage (CUHK Mall): eval harness, calibrate round trip, privacy.

These read ../shared/data (or $CROWDWATCH_DATA) and fail, not skip, when it is missing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from crowdwatch.config import CameraConfig
from crowdwatch.ingest.camera import CameraPipeline
from crowdwatch.ingest.sources import Frame, numbered_frames
from crowdwatch.tools.calibrate import read_truth
from crowdwatch.tools.evaluate import make_zone
from tests.helpers import own_env
from tests.test_demo_e2e import new_media_files

SLICE = 240  # frames 1..240: calibrate on 1..180, score on 181..240


def mall(shared_data: Path) -> dict[str, str]:
    d = shared_data / "mall"
    return {"source": str(d / "frames" / "seq_%06d.jpg"), "truth": str(d / "counts.csv"),
            "heads": str(d / "heads.csv"), "roi": str(d / "roi_mask.png"),
            "perspective": str(d / "perspective.npy")}


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crowdwatch.cli", *args], cwd=cwd,
                          capture_output=True, text=True, check=False, env=own_env(cwd))


def test_eval_on_a_real_slice_compares_detectors(shared_data, tmp_path):
    m = mall(shared_data)
    started = time.time() - 1
    res = cli("eval", "--source", m["source"], "--truth", m["truth"], "--roi-mask", m["roi"],
              "--perspective", m["perspective"], "--train-frames", "180", "--train-pick", "first",
              "--limit", str(SLICE),
              "--hog-stride", "6", "--json", "report.json", "--plot", "report.png", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["train_frames"] == 180 and report["test_frames"] == SLICE - 180
    dets = report["detectors"]
    # No person size given: every counter but those that need one (fused, geometry).
    assert set(dets) == {"appearance", "background", "background_global", "hog", "constant"}
    for name, d in dets.items():
        assert {"mae", "rmse", "mean_rel_error", "bias", "ms_per_frame", "frames", "skill",
                "collapsed", "bands"} <= set(d), name
        assert d["rmse"] >= d["mae"] > 0
    assert dets["background"]["skill"] == round(
        1 - dets["background"]["mae"] / dets["background"]["constant_mae"], 4)
    assert report["recommended"] in dets
    assert dets["background"]["frames"] == 60 and dets["hog"]["frames"] == 10
    # Pinned counting behaviour on real labelled frames (mean count here ~30): a change
    # that breaks counting fails this, as counting semantics must not drift silently.
    assert dets["background"]["mae"] < 4.0
    assert dets["background"]["mae"] < dets["hog"]["mae"]
    # The only picture evaluation writes is the plot; no frames anywhere.
    assert new_media_files([tmp_path], started) == [str(tmp_path / "report.png")]
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_truth_from_head_points_matches_counts(shared_data):
    m = mall(shared_data)
    counts = read_truth(m["truth"])
    heads = read_truth(m["heads"])
    assert heads == counts  # every head annotated is counted
    zone = make_zone((480, 640), roi_mask=m["roi"])
    in_roi = read_truth(m["heads"], zone, (480, 640))
    frames = sorted(counts)
    diffs = np.array([counts[f] - in_roi[f] for f in frames])
    assert (diffs >= 0).all() and (diffs == 0).mean() > 0.99


def test_calibrate_model_file_then_detector_from_config(shared_data, tmp_path):
    m = mall(shared_data)
    res = cli("calibrate", "footage", "--source", m["source"], "--truth", m["truth"],
              "--roi-mask", m["roi"],
              "--train-frames", "150", "--out", "mall.json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["layout"] == "cells" and summary["rows"] == 150
    # A camera config points at the model file; the live pipeline uses it.
    camera = CameraConfig.model_validate({
        "id": "mall", "url": m["source"], "detector": {"kind": "background",
                                                       "model": str(tmp_path / "mall.json")},
        "zones": [{"id": "concourse", "mask": m["roi"]}]})
    pipeline = CameraPipeline(camera)
    truth = read_truth(m["truth"])
    errors = []
    for number, image in numbered_frames(m["source"], stop=200):
        (event,) = pipeline.process(Frame(number, float(number), image))
        if number > 150:
            errors.append(abs(event.count - truth[number]))
    assert event.detector == "background" and event.zone_id == "concourse"
    assert np.mean(errors) < 4.5


def test_ground_calibration_check(tmp_path):
    good = cli("calibrate", "ground", "--ground-image", "[[100,400],[1180,400],[1280,720],[0,720]]",
               "--ground-world", "[[0,6],[12,6],[12,0],[0,0]]", cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    check = json.loads(good.stdout)
    assert abs(check["area_m2"] - 72.0) < 1e-6 and check["convex"]
    crossed = cli("calibrate", "ground",
                  "--ground-image", "[[100,400],[1280,720],[1180,400],[0,720]]",
                  "--ground-world", "[[0,6],[12,6],[12,0],[0,0]]", cwd=tmp_path)
    assert crossed.returncode == 2 and "convex" in crossed.stderr
    centimetres = cli("calibrate", "ground",
                      "--ground-image", "[[100,400],[1180,400],[1280,720],[0,720]]",
                      "--ground-world", "[[0,0.06],[0.12,0.06],[0.12,0],[0,0]]", cwd=tmp_path)
    assert centimetres.returncode == 1 and "in metres" in centimetres.stderr
    bad = cli("calibrate", "ground", "--ground-image", "[[0,0],[1,1]]", "--ground-world", "[[0,0]]",
              cwd=tmp_path)
    assert bad.returncode == 2
