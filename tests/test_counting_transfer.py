"""Counting on scenes nobody labelled: geometry, few-shot, honest baselines, warm-up.

Mall tests read ../shared/data (or $CROWDWATCH_DATA) and fail, not skip, without it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from crowdwatch.config import CameraConfig
from crowdwatch.detectors.geometry import GeometryDetector
from crowdwatch.detectors.person_scale import HeightRef, person_height_map
from crowdwatch.errors import ConfigError
from crowdwatch.events import CameraHealth, CountEvent
from crowdwatch.ingest.camera import CameraWorker
from crowdwatch.ingest.sim import (
    PERSON_HEIGHT_M,
    PinholeGround,
    SimParams,
    SimScene,
    gate_zone_config,
)
from crowdwatch.ingest.sources import numbered_frames
from crowdwatch.metrics import Metrics
from crowdwatch.tools.fewshot import fit_correction, fit_with_deferred
from crowdwatch.tools.held_frames import HeldFrames
from crowdwatch.tools.sim_counts import count_on_sim, sim_gate_zone
from tests.test_demo_e2e import new_media_files
from tests.test_eval_mall import cli, mall

MALL_PAIRS = "[[395,406,395,297],[285,331,283,230]]"


@pytest.mark.parametrize("cam_h,focal,horizon", [(6.0, 0.78, 0.25), (12.0, 0.6, 0.05)])
def test_person_size_from_homography_and_from_pairs_matches_the_camera(cam_h, focal, horizon):
    params = SimParams(width=640, height=360, cam_h=cam_h, focal=focal, horizon=horizon)
    cam = PinholeGround.of(params)
    zone, _ = sim_gate_zone(params)
    xs, zs = np.array([-3.0, 0.0, 2.5, 3.5]), np.array([13.5, 15.0, 17.0, 19.5])
    u, v = cam.to_image(xs, zs)
    truth = cam.person_height_px(zs)
    from_h = person_height_map(zone.shape, homography=zone.homography)
    got = from_h[np.round(v).astype(int), np.round(u).astype(int)]
    assert np.allclose(got, truth, rtol=0.03), (got, truth)
    # Two (foot, head) pairs an installer measures give the same sizes everywhere.
    pairs = HeightRef(tuple((float(a), float(b), float(a), float(b - t))
                            for a, b, t in zip(u[:2], v[:2], truth[:2], strict=True)))
    from_pairs = person_height_map(zone.shape, height_ref=pairs)
    got = from_pairs[np.round(v).astype(int), np.round(u).astype(int)]
    assert np.allclose(got, truth, rtol=0.03), (got, truth)
    assert PERSON_HEIGHT_M == 1.7


def test_height_ref_errors_name_the_problem():
    with pytest.raises(ConfigError, match="head not above"):
        HeightRef.parse([[10, 100, 10, 120]], "zone z")
    with pytest.raises(ConfigError, match="different rows"):
        person_height_map((100, 100), height_ref=HeightRef(((10, 50, 10, 20),)))
    with pytest.raises(ConfigError, match="needs geometry"):
        person_height_map((100, 100))


def test_zero_label_object_counting_on_a_sparse_sim_camera():
    """People apart (≤ 0.3/m²) on a camera (10 m, wide lens) nothing was fitted to.

    Bound: within 40 % of the true count on average. The method measurably does
    +27 % here today (figures ~10 px tall at the working width split into fragments,
    each counted as a person); the issue's 15 % goal is not met on this camera, and
    this guards against getting worse, and against counting nothing.
    """
    params = SimParams(scene="steady", people=12, base=12, seed=5, width=640, height=360,
                       cam_h=10.0, focal=0.6, horizon=0.1)
    pred, truth, _ = count_on_sim(GeometryDetector(), params, frames=60, warmup=400)
    assert truth.mean() >= 5
    rel = float(np.abs(pred - truth).sum() / truth.sum())
    assert rel <= 0.4, (rel, truth.mean(), pred.mean())
    assert pred.min() >= 1


def eval_json(tmp_path: Path, name: str, *args: str) -> dict:
    res = cli("eval", *args, "--json", f"{name}.json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    return json.loads((tmp_path / f"{name}.json").read_text())


def test_few_shot_beats_zero_label_on_mall(shared_data, tmp_path):
    m = mall(shared_data)
    started = time.time() - 1
    common = ("--source", m["source"], "--truth", m["truth"], "--roi-mask", m["roi"],
              "--perspective", m["perspective"], "--height-ref", MALL_PAIRS,
              "--detectors", "geometry", "--limit", "400", "--warmup", "100")
    zero = eval_json(tmp_path, "zero", *common, "--train-frames", "0", "--plot", "zero.png")
    few = eval_json(tmp_path, "few", *common, "--train-frames", "30")
    assert zero["train_frames"] == 0 and zero["constant_is_oracle"]
    assert zero["recommended"] == "geometry"
    assert few["train_frames"] == 30 and few["train_pick"] == "spread"
    g0, g30 = zero["detectors"]["geometry"], few["detectors"]["geometry"]
    # A few numbers on top of the zero-label count (its background is ready only at
    # ~370, so most of the 30 labels were measured once it was).
    assert g30["calibration"]["layout"] in ("scale", "affine", "edges")
    assert g30["calibration_deferred"] > 20 and g30["calibration"]["deferred_frames_used"]
    assert g30["cv_mae"] is not None
    assert g30["mae"] < g0["mae"]
    assert g30["skill"] > 0 and g30["beats_constant"]
    for det in (g0, g30):
        assert {"mae", "rmse", "mean_rel_error", "bias", "ms_per_frame", "skill",
                "collapsed", "bands"} <= set(det)
        assert det["bands"] and all(b["frames"] > 0 for b in det["bands"].values())
    # Only the requested plot is written; no frame is stored anywhere.
    assert new_media_files([tmp_path], started) == [str(tmp_path / "zero.png")]


def test_constant_baseline_and_collapse_flag(shared_data, tmp_path):
    """A counter forced to a constant (a zone on the empty ceiling, scored against the
    whole frame's count) is flagged collapsed and worse than the constant."""
    m = mall(shared_data)
    res = cli("eval", "--source", m["source"], "--truth", m["truth"],
              "--zone", "[[250,0],[400,0],[400,12],[250,12]]", "--height-ref", MALL_PAIRS,
              "--perspective", m["perspective"], "--detectors", "geometry",
              "--warmup", "380", "--limit", "520", "--train-frames", "20", "--json", "r.json",
              cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    const, geo = report["detectors"]["constant"], report["detectors"]["geometry"]
    truth_train_mean = const["value"]
    assert 15 < truth_train_mean < 50 and not const["oracle"]
    assert geo["collapsed"] is True
    assert geo["skill"] <= 0.0 or geo["calibration"]["layout"] == "constant"
    assert "COLLAPSED" in res.stdout
    assert report["recommended"] in ("constant", "geometry")


def test_fit_correction_picks_by_cross_validation():
    rng = np.random.default_rng(3)
    raw = rng.uniform(5, 40, 30)
    truth = 1.6 * raw + rng.normal(0, 0.5, 30)
    corr = fit_correction(raw, truth)
    assert corr.layout == "scale" and abs(corr.slope - 1.6) < 0.05
    assert corr.cv_mae is not None and corr.cv_mae < corr.constant_cv_mae
    noise = fit_correction(rng.uniform(0, 1, 30), rng.uniform(20, 22, 30))
    assert noise.layout == "constant" and noise.warning and "constant" in noise.warning


def test_fit_correction_weighs_the_edge_length_only_when_it_helps():
    rng = np.random.default_rng(5)
    people = rng.uniform(10, 50, 30)
    raw = 0.7 * people + rng.normal(0, 3, 30)  # area: misses some, noisy
    edges = 2.0 * people + rng.normal(0, 6, 30)  # outlines: another noisy view
    corr = fit_correction(raw, people, edges)
    assert corr.layout == "edges" and corr.edge_weight > 0 and corr.slope > 0
    without = fit_correction(raw, people)
    assert corr.cv_mae is not None and without.cv_mae is not None
    assert corr.cv_mae < 0.8 * without.cv_mae
    assert np.abs(corr.apply(raw, edges) - people).mean() < 2.0
    # An edge length that says nothing is left out, and no weight ever goes negative.
    junk = fit_correction(raw, people, rng.uniform(0, 100, 30))
    assert junk.layout != "edges" or junk.edge_weight < 0.02
    anti = fit_correction(raw, people, 100 - people)  # fewer edges with more people
    assert anti.edge_weight >= 0 and anti.slope >= 0
    assert fit_correction(raw[:8], people[:8], edges[:8]).layout != "edges"  # too few


def test_cast_shadows_are_not_counted_as_people():
    """Hard sun shadows (long, bluish, coming and going with clouds) on a sparse sim
    camera: the count stays near the same scene's under an overcast sky.

    Bound: within 20 % of the true count. Measured: +14 %. What is left is the hard
    case: people standing around in the sun all along, so their shadows are learnt into
    the background and where a shadow has moved, its edge stands out. Without the
    texture tests the gap was +15 % and both counts were higher.
    """
    sunny = SimParams(scene="steady", people=14, base=14, seed=6, width=640, height=360,
                      cam_h=8.0, focal=0.8, horizon=0.15, shadow=0.6, sun_az=70, sun_len=2.0)
    overcast = replace(sunny, shadow=0.0)
    scene = SimScene(sunny)
    scene.advance_to(30.0)
    sun_frame = scene.render().astype(int)
    dark = SimScene(overcast)
    dark.advance_to(30.0)
    assert np.abs(sun_frame - dark.render()).max() > 60  # the shadows are really there
    pred_sun, truth, _ = count_on_sim(GeometryDetector(), sunny, frames=60, warmup=400)
    pred_dull, truth_dull, _ = count_on_sim(GeometryDetector(), overcast, frames=60,
                                            warmup=400)
    assert np.array_equal(truth, truth_dull) and truth.mean() >= 5
    assert abs(pred_sun.mean() - pred_dull.mean()) <= 0.2 * truth.mean(), (
        pred_sun.mean(), pred_dull.mean(), truth.mean())
    assert np.abs(pred_sun - truth).mean() <= 0.3 * truth.mean()


def test_warm_up_withholds_counts_until_the_background_is_built():
    params = SimParams(people=20, base=5, seed=2, width=640, height=360)
    zone = gate_zone_config(params)
    camera = CameraConfig.model_validate({
        "id": "cam", "url": params.to_url(), "sample_hz": 10, "detector": {"kind": "geometry"},
        "zones": [{"id": "gate", **zone}]})
    events: list = []
    stop = threading.Event()
    worker = CameraWorker(camera, events.append, Metrics(), stop, realtime=False)
    worker.start()
    deadline = time.time() + 120
    while time.time() < deadline and not any(isinstance(e, CountEvent) for e in events):
        time.sleep(0.2)
    stop.set()
    worker.join(10)
    assert not worker.is_alive()
    first_count = next(i for i, e in enumerate(events) if isinstance(e, CountEvent))
    before = [e for e in events[:first_count] if isinstance(e, CameraHealth)]
    states = [e.state for e in before]
    assert states[0] == "warming_up" and states[-1] == "up", states
    assert "counts withheld" in before[0].reason
    detector = worker.pipeline.detector
    assert isinstance(detector, GeometryDetector) and detector.ready
    # A quiet scene is ready once its background stops changing, before it is half full.
    assert detector.bg.stable
    assert detector.s.background.ready_min <= len(detector.bg.frames)
    assert len(detector.bg.frames) < detector.s.background.ready_kept


def test_a_background_that_keeps_changing_waits_for_half_its_buffer(shared_data):
    """Mall: people come and go in the same places, so each recompute of the background
    moves 1-3 % of the pixels for minutes; it is ready only with ``ready_kept`` samples.
    A quiet sim scene settles after a dozen samples and counts from then on as well as
    later."""
    m = mall(shared_data)
    detector, ready_at = GeometryDetector(), 0
    for number, image in numbered_frames(m["source"], stop=500):
        detector.prime(image)
        if detector.ready:
            ready_at = number
            break
    assert len(detector.bg.frames) == detector.s.background.ready_kept and ready_at > 300
    assert not detector.bg.stable and min(detector.bg.changes) > 0.005

    params = SimParams(people=30, base=3, seed=8, width=640, height=360)
    zone, polygon = sim_gate_zone(params)
    scene, sim = SimScene(params), GeometryDetector()
    for i in range(400):
        scene.advance_to(i * 0.5)
        sim.prime(scene.render())
        if sim.ready:
            break
    assert i < 150 and sim.bg.stable
    errors = []
    for j in range(i + 1, i + 241):
        scene.advance_to(j * 0.5)
        errors.append((sim.count(scene.render(), [zone])[zone.zone_id][0],
                       scene.true_count(polygon)))
    counted, truth = np.array(errors).T
    assert np.abs(counted - truth).sum() / truth.sum() < 0.25


def test_calibration_frames_labelled_during_warm_up_are_measured_once_it_is_ready(
        shared_data, tmp_path):
    """Footage that starts cold, calibrated on its first 80 frames: the geometry
    counter's background is ready only after ~370, so without keeping those frames it
    would have no calibration at all (it used to fall back to zero-label)."""
    m = mall(shared_data)
    common = ("--source", m["source"], "--truth", m["truth"], "--roi-mask", m["roi"],
              "--perspective", m["perspective"], "--height-ref", MALL_PAIRS,
              "--detectors", "geometry", "--limit", "520")
    zero = eval_json(tmp_path, "zero", *common, "--train-frames", "0", "--warmup", "80")
    first = eval_json(tmp_path, "first", *common, "--train-frames", "80",
                      "--train-pick", "first")
    geo = first["detectors"]["geometry"]
    assert geo["calibration_deferred"] == 80 and geo["calibration_not_kept"] == 0
    assert geo["calibration"]["deferred_frames_used"] is True
    assert geo["calibration"]["layout"] != "none"
    # Scored on the same frames (81-520, as counted live once ready).
    assert geo["frames"] == zero["detectors"]["geometry"]["frames"]
    assert geo["mae"] < 0.6 * zero["detectors"]["geometry"]["mae"]
    assert geo["skill"] > 0.3


def test_calibrate_geometry_on_labels_that_all_come_during_the_warm_up(shared_data, tmp_path):
    """120 labelled frames, the background ready only at ~370: the footage is read on
    until it is, and all 120 are fitted (before, calibrate refused: no labelled frame
    came after the background was built)."""
    m = mall(shared_data)
    res = cli("calibrate", "footage", "--layout", "geometry", "--source", m["source"],
              "--truth", m["truth"], "--roi-mask", m["roi"], "--perspective", m["perspective"],
              "--height-ref", MALL_PAIRS, "--train-frames", "120", "--out", "geo.json",
              cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    result = json.loads((tmp_path / "geo.json").read_text())
    assert result["labelled_frames"] == 120 == result["deferred_frames"]
    assert result["deferred_frames_used"] is True
    assert result["layout"] in ("scale", "affine", "edges")
    assert result["expected_mae"] < result["constant_mae"]


def test_held_frames_do_not_teach_the_background_and_respect_their_memory_limit():
    params = SimParams(people=20, base=5, seed=4, width=640, height=360)
    zone, _ = sim_gate_zone(params)
    scene = SimScene(params)
    detector = GeometryDetector()
    frame_bytes = detector.work_image(scene.render())[0].nbytes
    held = HeldFrames(limit_mb=3.5 * frame_bytes / 2**20)  # room for 3 frames
    for i in range(5):
        scene.advance_to(i * 0.5)
        image = scene.render()
        detector.prime(image)
        held.keep(i, detector, image)
    assert held.not_kept == 2
    while not detector.ready:
        scene.advance_to(scene.t + 0.5)
        detector.prime(scene.render())
    frames, background = list(detector.bg.frames), detector.bg.image
    out = held.release(detector, zone)
    assert [n for n, _ in out] == [0, 1, 2] == held.released
    assert all(count >= 0 and length >= 0 for _, (count, length) in out)
    assert detector.bg.frames == frames and detector.bg.image is background
    assert held.release(detector, zone) == []


def test_people_masks_are_what_the_counter_counts_and_teach_it_nothing():
    """The masks another signal is checked against (bench/probe_appearance.py): the same
    foreground the count comes from, taken without learning from the frame."""
    from crowdwatch.detectors.geometry import count_people

    params = SimParams(people=30, base=10, seed=3, width=640, height=360)
    zone, _ = sim_gate_zone(params)
    scene = SimScene(params)
    detector = GeometryDetector()
    while not detector.ready:
        scene.advance_to(scene.t + 0.5)
        detector.prime(scene.render())
    scene.advance_to(scene.t + 30.0)
    image = scene.render()
    frames, background = list(detector.bg.frames), detector.bg.image
    for _ in range(2 * detector.s.background.every):  # a live camera would learn by now
        mask = detector.people_masks(image, [zone])[zone.zone_id]
    assert detector.bg.frames == frames and detector.bg.image is background
    work, scale = detector.work_image(image)
    assert mask.shape == work.shape[:2] and mask.any()
    plan = detector._plan(zone, work.shape[:2], scale)
    raw = detector.measure(work, scale, [zone], edges=False)[zone.zone_id][0]
    assert raw > 1 and count_people(mask, plan, detector.s.min_person) == raw
    empty = detector.people_masks(cv2.resize(background, (640, 360)), [zone])[zone.zone_id]
    assert empty.sum() < 0.05 * mask.sum()


def test_deferred_frames_join_the_fit_only_when_the_live_ones_are_too_few():
    rng = np.random.default_rng(3)
    truth = rng.uniform(5, 40, 200)
    raw = 0.5 * truth + rng.normal(0, 1, 200)
    drifted = np.arange(200) < 100  # deferred, and counted 6 higher (the scene drifted)
    raw[drifted] += 6
    corr, used = fit_with_deferred(raw, truth, None, drifted)
    assert used is False  # 100 live frames are enough, and the drift stays out of the fit
    live = corr.apply(raw[~drifted])
    assert np.abs(live - truth[~drifted]).mean() < 2.0
    polluted = fit_correction(raw, truth)  # what fitting all of them gives
    assert np.abs(polluted.apply(raw[~drifted]) - truth[~drifted]).mean() > 3.0
    _, used = fit_with_deferred(raw[80:], truth[80:], None, drifted[80:])
    assert used is False  # 100 live vs 20 deferred
    _, used = fit_with_deferred(raw[:110], truth[:110], None, drifted[:110])
    assert used is True  # 10 live frames, 100 deferred: the labels were mostly warm-up
    _, used = fit_with_deferred(raw[100:], truth[100:], None, drifted[100:])
    assert used is False  # nothing deferred


def test_console_recalibration_keeps_and_scales_the_edge_weight(tmp_path):
    """A camera calibrated with the edge length, recalibrated on the page (a scale and
    offset fitted on its corrected counts): the two compose, the edge weight included."""
    from crowdwatch.config import load_config, parse_config
    from crowdwatch.console.setup import Setup
    from crowdwatch.console.site_editor import SiteEditor

    zone = gate_zone_config(SimParams(width=640, height=360))
    site = tmp_path / "site.yaml"
    site.write_text(
        "site: {name: recal}\ncameras:\n  - id: cam\n    url: \"sim://school-gate?w=640&h=360\"\n"
        "    detector: {kind: geometry, slope: 0.5, offset: 1.0, edge_weight: 0.2}\n"
        f"    zones:\n      - id: gate\n        polygon: {json.dumps(zone['polygon'])}\n"
        f"        ground: {json.dumps(zone['ground'])}\nrules: []\n")
    applied: list = []
    setup = Setup(SiteEditor(site, lambda text, src: parse_config(text, src)),
                  lambda: load_config(site), lambda cam: None,
                  lambda cfg: applied.append(cfg), lambda cam: {},
                  geometry_of=lambda cam: (cam.detector.slope, cam.detector.offset,
                                           cam.detector.edge_weight))
    status, body = setup.apply_calibration("cam", 2.0, 3.0, "admin", "127.0.0.1")
    assert status == 200, body
    det = load_config(site).cameras[0].detector
    assert (det.slope, det.offset, det.edge_weight) == (1.0, 5.0, 0.4)
    assert applied and applied[0].cameras[0].detector.edge_weight == 0.4
