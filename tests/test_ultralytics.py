"""Ultralytics exports decoded as Ultralytics' own `predict` decodes them: small random-weight files
made by tests/make_peer_fixtures.py, with Ultralytics' predictions stored beside them, so this runs
with neither torch nor Ultralytics. Names come from the file's own metadata, never COCO's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgekit.runtime.inferred_cards import ultralytics_metadata

FIXTURES = Path(__file__).parent / "fixtures" / "ultralytics"
MODELS = ["yolov8", "yolov8_nms", "yolo11"]


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt, rb = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod((rb - lt).clip(0), axis=2)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


@pytest.mark.parametrize("name", MODELS)
def test_boxes_match_ultralytics_predict_box_for_box(name):
    pytest.importorskip("onnxruntime")
    cv2 = pytest.importorskip("cv2")
    from edgekit.runtime.predictor import Predictor
    from edgekit.runtime.tasks import TaskOptions

    want = json.loads((FIXTURES / f"{name}.json").read_text())
    # BGR, as OpenCV reads it and as Ultralytics' predict takes it: edgekit turns it into RGB itself
    image = cv2.imread(str(FIXTURES / "shapes.png"))
    with Predictor(FIXTURES / f"{name}.onnx", options=TaskOptions(conf=want["conf"])) as predictor:
        found = predictor(image).results
        assert predictor.card.labels == ("cat", "dog", "kite")  # the file's names, not COCO's
    assert len(want["boxes"]) > 50, "the fixture has enough boxes to make parity meaningful"
    # box for box: the same count, each of Ultralytics' boxes found with its class and its score
    assert len(found) == len(want["boxes"])
    iou = _iou(np.array(want["boxes"]), np.array([d.box for d in found]))
    same_class = np.array(want["classes"])[:, None] == np.array([d.class_id for d in found])[None, :]
    same_score = np.isclose(np.array(want["scores"])[:, None], [d.score for d in found], atol=1e-4)
    assert ((iou >= 0.9) & same_class & same_score).any(axis=1).all()
    assert {d.label for d in found} <= {"cat", "dog", "kite"}


def test_metadata_is_read_without_onnx_and_names_are_a_literal():
    meta = ultralytics_metadata(FIXTURES / "yolov8_nms.onnx")
    assert meta["names"] == {0: "cat", 1: "dog", 2: "kite"} and meta["imgsz"] == [160, 160]
    assert meta["task"] == "detect" and meta["args"]["nms"] is True
