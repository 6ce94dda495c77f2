"""`kind: onnx`: a user's own detector export, read by its config (a tiny model built here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from crowdwatch.config import CameraConfig
from crowdwatch.errors import ModelError
from crowdwatch.ingest.camera import CameraPipeline
from crowdwatch.ingest.sources import Frame

# Boxes in the model's 64×64 input pixels (x0, y0, x1, y1): a person standing low in the
# picture, a person high up (outside the zone), a doubtful person, and a car.
BOXES = [[24, 30, 40, 60], [24, 2, 40, 10], [44, 30, 60, 60], [4, 30, 20, 60]]
SCORES = [0.9, 0.8, 0.1, 0.95]
CLASSES = [0, 0, 0, 2]


def tiny_detector(path: Path) -> Path:
    """An ONNX graph that 'detects' the boxes above whatever it is shown (its outputs
    still depend on the input, as a real model's do)."""
    image = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])
    outputs = [helper.make_tensor_value_info("det_boxes", TensorProto.FLOAT, [1, 4, 4]),
               helper.make_tensor_value_info("det_scores", TensorProto.FLOAT, [1, 4]),
               helper.make_tensor_value_info("det_classes", TensorProto.FLOAT, [1, 4])]
    consts = [numpy_helper.from_array(np.asarray([BOXES], np.float32), "boxes_c"),
              numpy_helper.from_array(np.asarray([SCORES], np.float32), "scores_c"),
              numpy_helper.from_array(np.asarray([CLASSES], np.float32), "classes_c"),
              numpy_helper.from_array(np.asarray(0.0, np.float32), "zero")]
    nodes = [helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
             helper.make_node("Mul", ["mean", "zero"], ["nothing"])]
    for name in ("boxes", "scores", "classes"):
        nodes.append(helper.make_node("Add", [f"{name}_c", "nothing"], [f"det_{name}"]))
    graph = helper.make_graph(nodes, "tiny", [image], outputs, initializer=consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def camera(model: Path, **detector: object) -> CameraConfig:
    """The zone (grown by the headroom of an unsized zone) spans the frame: the model sees
    the whole 200×200 picture in one crop (max_tiles 1), letterboxed to its 64×64 input."""
    return CameraConfig(id="door", url="door.mp4", detect_width=200, zones=[
        {"id": "low", "polygon": [[0, 40], [200, 40], [200, 200], [0, 200]]}],
        detector={"kind": "onnx", "model": str(model), "input_size": [64, 64],
                  "boxes_output": "det_boxes", "scores_output": "det_scores",
                  "classes_output": "det_classes", "max_tiles": 1, **detector})


def test_a_users_detector_counts_people_by_their_feet_in_the_zone(tmp_path: Path) -> None:
    pipe = CameraPipeline(camera(tiny_detector(tmp_path / "tiny.onnx"), every=1))
    frame = Frame(seq=1, ts=0.0, image=np.full((200, 200, 3), 120, np.uint8))
    [event] = pipe.process(frame)
    # The low person only: the high one stands outside, the doubtful one scores under
    # 0.3, the car is not a person.
    assert event.count == 1.0
    assert event.detector == "appearance"


def test_the_person_class_and_score_come_from_the_config(tmp_path: Path) -> None:
    model = tiny_detector(tmp_path / "tiny.onnx")
    frame = Frame(seq=1, ts=0.0, image=np.full((200, 200, 3), 120, np.uint8))
    [cars] = CameraPipeline(camera(model, person_class=2)).process(frame)
    assert cars.count == 1.0
    [lenient] = CameraPipeline(camera(model, score=0.05)).process(frame)
    assert lenient.count == 2.0


def test_a_wrong_output_name_says_what_the_model_has(tmp_path: Path) -> None:
    model = tiny_detector(tmp_path / "tiny.onnx")
    with pytest.raises(ModelError, match="det_boxes, det_classes, det_scores"):
        CameraPipeline(camera(model, boxes_output="boxes"))


def test_a_missing_model_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="nowhere.onnx"):
        CameraPipeline(camera(tmp_path / "nowhere.onnx"))
