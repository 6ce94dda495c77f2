"""Each detector's count error on simulated frames, against the generator's exact truth."""

from __future__ import annotations

import numpy as np
import pytest

from crowdwatch.detectors.background import BackgroundDetector, RegressionModel
from crowdwatch.detectors.hog import HogDetector
from crowdwatch.detectors.kinds.hog import HogDetectorConfig
from crowdwatch.detectors.registry import build_detector
from crowdwatch.ingest.camera import CameraPipeline
from crowdwatch.ingest.sim import SimParams
from crowdwatch.ingest.sources import SimSource
from crowdwatch.streams.runtime.demo import demo_config
from crowdwatch.tools.calibrate import calibrate_on_sim

# A seed the shipped model never saw (it was fitted on seeds 101-103).
HELD_OUT = "sim://school-gate?people=80&period=45&seed=4242"


def run_sequence(detector, samples: int, every: int = 1):
    camera = demo_config().cameras[0].model_copy(update={"url": HELD_OUT})
    source = SimSource(HELD_OUT, camera.sample_hz, realtime=False)
    pipeline = CameraPipeline(camera, detector)
    polygon = camera.zones[0].polygon
    truth, counts = [], []
    for i in range(samples):
        frame = source.read()
        if i % every:
            continue
        (event,) = pipeline.process(frame)
        if i >= 5:  # background model warm-up
            truth.append(source.scene.true_count(polygon))
            counts.append(event.count)
    return np.array(truth, float), np.array(counts)


def test_background_detector_tracks_the_crowd_curve():
    truth, counts = run_sequence(BackgroundDetector(), samples=190)
    mae = np.abs(counts - truth).mean()
    # Bound: 6 people, about a quarter of the mean count (~21) on a sequence that spans a
    # quiet phase, a surge to ~60 and dispersal. The demo's warn and clear levels are ~11
    # people apart and the rules use a window median, so this error cannot make the demo
    # flap; bench_detectors measures ~4.9 on this sequence.
    assert mae <= 6.0, f"MAE {mae:.2f}"
    # It must follow the surge, not just sit at the mean.
    assert np.corrcoef(truth, counts)[0, 1] > 0.9
    assert counts[truth >= 40].mean() > 3 * counts[truth <= 6].mean()


def test_hog_finds_people_when_sparse_and_undercounts_crowds():
    det = build_detector(HogDetectorConfig(kind="hog", upscale=2.0))
    assert isinstance(det, HogDetector)
    truth, counts = run_sequence(det, samples=120, every=4)
    sparse = truth <= 8
    dense = truth >= 30
    assert sparse.any() and dense.any()
    # HOG is the sparse-scene baseline: in the quiet phase it is within a few people
    # (figures there are small and sometimes occluded by the lamp post) ...
    assert np.abs(counts[sparse] - truth[sparse]).mean() <= 4.0
    assert counts.max() >= 1
    # ... and it misses most of a dense crowd: the reason `background` is the default.
    assert counts[dense].mean() < truth[dense].mean()


def test_calibrate_model_file_detector_round_trip(tmp_path):
    camera = demo_config().cameras[0]
    model, samples = calibrate_on_sim(camera, seeds=[11], frames_per_seed=60)
    path = tmp_path / "gate.json"
    model.save(path)
    loaded = RegressionModel.load(path)
    assert loaded.coef == model.coef and loaded.intercept == model.intercept
    assert loaded.layout == "global" and loaded.background == model.background
    assert len(samples.truth) == 52  # 60 samples less 8 while the background settles
    # The loaded model drives a detector chosen by config.
    cfg = camera.detector.model_copy(update={"model": str(path)})
    det = build_detector(cfg)
    assert isinstance(det, BackgroundDetector) and det.model.coef == model.coef
    # Fitted predictions reproduce the fit on its own rows.
    assert np.allclose(loaded.predict(samples.features), model.predict(samples.features))


def test_bad_model_file_names_the_file(tmp_path):
    path = tmp_path / "m.json"
    path.write_text('{"kind": "hog"}')
    with pytest.raises(ValueError, match="m.json"):
        RegressionModel.load(path)
    path.write_text('{"kind": "background", "version": 2, "layout": "rings", "coef": [], '
                    '"intercept": 0, "mean": [], "scale": []}')
    with pytest.raises(ValueError, match="layout"):
        RegressionModel.load(path)


def test_sim_is_deterministic_and_scripted():
    params = SimParams.from_url(HELD_OUT)
    a, b = SimSource(HELD_OUT, 2, realtime=False), SimSource(HELD_OUT, 2, realtime=False)
    for _ in range(6):
        fa, fb = a.read(), b.read()
    assert np.array_equal(fa.image, fb.image)
    polygon = demo_config().cameras[0].zones[0].polygon
    counts = []
    for _ in range(int(params.period * 2)):
        a.read()
        counts.append(a.scene.true_count(polygon))
    assert min(counts[:10]) <= 8 and max(counts) >= 40  # quiet, then a surge
    with pytest.raises(ValueError, match="unknown sim parameter"):
        SimParams.from_url("sim://school-gate?crowd=9")


def test_order_statistic_matches_a_full_sort():
    import numpy as np

    from crowdwatch.detectors.background import order_statistic_u8

    rng = np.random.default_rng(5)
    for n in (1, 2, 7, 60):
        frames = [rng.integers(0, 256, (9, 11, 3), dtype=np.uint8) for _ in range(n)]
        frames[0][0, 0, 0] = 255  # extremes included
        stack = np.sort(np.stack(frames), axis=0)
        for k in {0, n // 2, n - 1}:
            assert np.array_equal(order_statistic_u8(frames, k), stack[k])
