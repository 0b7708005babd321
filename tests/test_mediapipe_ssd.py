"""MediaPipe SSD detectors beyond the two shipped files: several faces on one real photo from the
ONNX and TFLite copies of BlazeFace, an SSD file whose anchors edgekit does not know (refused with
one sentence, decoded with `--anchors FILE` or a card's anchors), and `edgekit info` saying where
each inferred field came from. (One face on the astronaut, ONNX against TFLite, is in
test_blazeface_onnx.py.)"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
from tensor_fixtures import onnx_model_bytes
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.runtime.detection_formats.ssd import BLAZEFACE_SHORT_RANGE, SsdAnchorOptions
from edgekit.runtime.predictor import Predictor

pytestmark = pytest.mark.runtime_only  # needs no TensorFlow: run on arm64 too

ASSETS = files("edgekit.runtime") / "assets"
ONNX = Path(str(ASSETS / "face_detection_front_128x128_barracuda.onnx"))
TFLITE = Path(str(ASSETS / "face_detection_short_range.tflite"))
runner = CliRunner()

# an SSD layout no known MediaPipe detector has: 64x64 input, 8x8 cells x 2 + 4x4 cells x 6 = 224
UNKNOWN = SsdAnchorOptions(64, 64, (8, 16, 16, 16))
UNKNOWN_N = 224
BOX_ANCHOR = 130  # in the stride-16 grid: cell (0, 0) is anchors 128..133; this one's centre is (8, 8)
BOX = (4.0, 6.0, 20.0, 12.0)  # offsets of centre x, y and width, height, in input pixels


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def detections(result) -> list[dict]:
    """The detections of the one image of a `run --json`."""
    assert result.exit_code == 0, result.output
    (record,) = [json.loads(x) for x in result.stdout.splitlines() if x.startswith('{"source"')]
    return record["results"]


def astronaut() -> np.ndarray:
    """scikit-image's astronaut (BGR, as OpenCV reads it)."""
    skimage_data = pytest.importorskip("skimage.data")
    return np.ascontiguousarray(skimage_data.astronaut()[..., ::-1])


@pytest.fixture(scope="module")
def four_faces() -> np.ndarray:
    """The astronaut's face, four times, at two sizes: a real photo with several faces to merge."""
    import cv2

    face = astronaut()[40:220, 130:310]  # 180 x 180 around the face
    small = cv2.resize(face, (120, 120), interpolation=cv2.INTER_AREA)
    canvas = np.full((400, 400, 3), 90, np.uint8)
    canvas[:180, :180] = face
    canvas[220:400, 210:390] = face
    canvas[10:130, 240:360] = small
    canvas[260:380, 20:140] = small
    return canvas


def test_onnx_and_tflite_copies_find_the_same_faces_on_one_photo(four_faces):
    """Four faces on one photo, merged cluster by cluster by weighted NMS: the split-head ONNX and
    the two-head TFLite give the same boxes, scores and keypoints."""
    found = {}
    for model in (ONNX, TFLITE):
        with Predictor(model) as p:
            found[model.suffix] = sorted(p(four_faces).results, key=lambda d: d.box)
    onnx, tflite = found[".onnx"], found[".tflite"]
    assert len(onnx) == len(tflite) == 4
    for a, b in zip(onnx, tflite, strict=True):
        assert a.label == b.label == "face" and a.score > 0.5
        assert a.score == pytest.approx(b.score, abs=1e-3)
        np.testing.assert_allclose(a.box, b.box, atol=0.1)
        np.testing.assert_allclose(a.keypoints, b.keypoints, atol=0.1)
    sides = sorted(round(d.box[2] - d.box[0]) for d in onnx)
    assert sides[1] * 1.5 < sides[2]  # two small faces and two large ones


def make_unknown_ssd(path: Path) -> Path:
    """An ONNX SSD detector with UNKNOWN's anchors: (1, 64, 64, 3) in, regressors (1, 224, 4) and
    scores (1, 224, 1) out; one anchor scores high, with BOX as its offsets.

    The outputs are constants; adding 0 x mean(image) makes onnxruntime take (and check) the input."""
    onnx = pytest.importorskip("onnx")
    h, t = onnx.helper, onnx.TensorProto.FLOAT
    regressors = np.zeros((1, UNKNOWN_N, 4), np.float32)
    regressors[0, :, 2:] = 4.0
    regressors[0, BOX_ANCHOR] = BOX
    scores = np.full((1, UNKNOWN_N, 1), -8.0, np.float32)
    scores[0, BOX_ANCHOR] = 3.0
    nodes = [
        h.make_node("ReduceMean", ["input"], ["mean"], axes=[1, 2, 3], keepdims=0),
        h.make_node("Constant", [], ["zero"], value=h.make_tensor("zero", t, [], [0.0])),
        h.make_node("Mul", ["mean", "zero"], ["nothing"]),
    ]
    for name, value in (("regressors", regressors), ("classificators", scores)):
        tensor = onnx.numpy_helper.from_array(value, f"{name}_value")
        nodes += [
            h.make_node("Constant", [], [f"{name}_value"], value=tensor),
            h.make_node("Add", [f"{name}_value", "nothing"], [name]),
        ]
    graph = h.make_graph(
        nodes,
        "ssd",
        [h.make_tensor_value_info("input", t, [1, 64, 64, 3])],
        [
            h.make_tensor_value_info("regressors", t, list(regressors.shape)),
            h.make_tensor_value_info("classificators", t, list(scores.shape)),
        ],
    )
    path.write_bytes(onnx_model_bytes(graph))
    return path


@pytest.fixture(scope="module")
def unknown(tmp_path_factory) -> dict[str, Path]:
    """The unknown SSD file, its anchors as a JSON of MediaPipe's options, and a 64x64 image."""
    import cv2

    folder = tmp_path_factory.mktemp("ssd")
    anchors = folder / "anchors.json"
    anchors.write_text(json.dumps(UNKNOWN.to_dict()))
    image = folder / "grey.png"
    cv2.imwrite(str(image), np.full((64, 64, 3), 128, np.uint8))
    return {"model": make_unknown_ssd(folder / "detector.onnx"), "anchors": anchors, "image": image}


def expected_box() -> tuple[float, float, float, float]:
    """BOX around anchor BOX_ANCHOR, by hand: the anchor's centre (8, 8) plus the offsets."""
    assert tuple(UNKNOWN.anchors()[BOX_ANCHOR]) == (0.125, 0.125, 1.0, 1.0)
    cx, cy, w, h = 8 + BOX[0], 8 + BOX[1], BOX[2], BOX[3]
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def test_an_ssd_file_with_unknown_anchors_asks_for_anchors_in_one_sentence(unknown):
    result = invoke("run", unknown["model"], "--source", unknown["image"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    (line,) = [x for x in result.output.splitlines() if x.strip()]
    assert "224 anchors" in line and "--anchors" in line


def test_run_with_an_anchors_file_decodes_an_unknown_ssd_file(unknown):
    (found,) = detections(
        invoke(
            "run", unknown["model"], "--source", unknown["image"], "--anchors", unknown["anchors"], "--json"
        )
    )
    assert found["score"] == pytest.approx(1 / (1 + np.exp(-3.0)), abs=1e-4)
    np.testing.assert_allclose(found["box"], expected_box(), atol=1e-3)


def test_an_anchors_file_that_does_not_fit_the_file_is_one_sentence(unknown, tmp_path):
    wrong = tmp_path / "anchors.json"
    wrong.write_text(json.dumps({**UNKNOWN.to_dict(), "strides": [8, 16]}))
    result = invoke("run", unknown["model"], "--source", unknown["image"], "--anchors", wrong)
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = [x for x in result.output.splitlines() if x.strip()]
    assert "anchors" in line and "224" in line


def test_a_cards_anchors_are_used(unknown, tmp_path):
    """The unknown file runs with a card holding its anchors; the shipped BlazeFace file, given a
    card whose anchors sit half a cell to the left, finds the face shifted by half a cell."""
    with Predictor(TFLITE) as p:
        card = p.card
    card_file = tmp_path / "card.json"
    data = json.loads(card.to_json())
    data["postprocess"] = {**data["postprocess"], "anchors": UNKNOWN.to_dict(), "keypoints": 0}
    data["preprocess"]["size"] = [64, 64]
    data["input"]["shape"], data["output"]["shape"] = [1, 64, 64, 3], [1, UNKNOWN_N, 4]
    card_file.write_text(json.dumps(data))
    (found,) = detections(
        invoke("run", unknown["model"], "--source", unknown["image"], "--card", card_file, "--json")
    )
    np.testing.assert_allclose(found["box"], expected_box(), atol=1e-3)

    import cv2

    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), astronaut())
    shifted = {**BLAZEFACE_SHORT_RANGE.options.to_dict(), "anchor_offset_x": 0.0}
    data = json.loads(card.to_json())
    data["postprocess"]["anchors"] = shifted
    card_file.write_text(json.dumps(data))
    (face,) = detections(invoke("run", TFLITE, "--source", photo, "--json"))
    (moved,) = detections(invoke("run", TFLITE, "--source", photo, "--card", card_file, "--json"))
    # half a cell is 4 or 8 input pixels (strides 8 and 16), 16 or 32 on the 512-pixel photo
    dx = np.subtract(face["box"], moved["box"])[[0, 2]]
    assert ((dx > 15.9) & (dx < 32.1)).all()
    np.testing.assert_allclose(face["box"][1::2], moved["box"][1::2], atol=1e-3)


def test_info_says_where_each_inferred_field_came_from():
    result = invoke("info", TFLITE)
    assert result.exit_code == 0, result.output
    rows = {k: v.strip() for k, _, v in (x.strip().partition("  ") for x in result.stdout.splitlines()) if v}
    assert "face_detection_short_range" in rows["anchors from"] and "896 anchors" in rows["anchors from"]
    assert rows["keypoints from"].startswith("tensor shapes (6")
    assert rows["preprocess from"].startswith("defaults")


MEDIAPIPE = Path(__file__).parent / "fixtures" / "mediapipe"


@pytest.mark.parametrize("frame", ["faces_wide", "faces_tall"])
def test_faces_match_mediapipe_face_detector_on_frames_far_from_square(frame):
    """MediaPipe Tasks' own FaceDetector on frames the letterbox pads (240x560: rows of black above
    and below; 461x203, odd: columns left and right), stored by tests/make_peer_fixtures.py.

    The two resample the frame differently (MediaPipe warps it, edgekit resizes it: 4.4x smaller
    here), which moves boxes by up to 11 px on faces of 66-107 px, an ear keypoint by 14 px and
    scores by up to 0.035, whatever the grey of the padding; so the bars are 15% of the face for
    boxes, 25% for keypoints, 0.05 for scores. What they catch: a stretch instead of the letterbox (scores 0.56-
    0.78, boxes 45 px off), boxes mapped back without the padding's offset or at the wrong scale,
    keypoints in the wrong order. (The letterbox grey is held by the Ultralytics parity.)"""
    import cv2

    want = json.loads((MEDIAPIPE / f"{frame}.json").read_text())
    image = cv2.imread(str(MEDIAPIPE / want["image"]))
    assert image.shape[0] != image.shape[1]
    with Predictor(TFLITE) as p:
        assert p.card.preprocess["resize"] == "letterbox" and p.card.preprocess["pad"] == 0
        found = sorted(p(image).results, key=lambda d: d.box[0])
    order = np.argsort([b[0] for b in want["boxes"]])
    assert len(found) == len(want["boxes"]) == 2
    for d, i in zip(found, order, strict=True):
        theirs = np.array(want["boxes"][i], float)
        size = theirs[2] - theirs[0]
        np.testing.assert_allclose(d.box, theirs, atol=0.15 * size)
        assert d.score == pytest.approx(want["scores"][i], abs=0.05)
        np.testing.assert_allclose(d.keypoints, want["keypoints"][i], atol=0.25 * size)


@pytest.mark.parametrize("model", [ONNX, TFLITE], ids=["onnx", "tflite"])
def test_inferred_blazeface_card_is_mediapipes_graph(model):
    """MediaPipe's face_detection_short_range graph: letterbox with black to 128x128, pixels to
    [-1, 1]; score 0.5, IoU 0.3; the regressors (16 numbers an anchor) are the card's output."""
    with Predictor(model) as p:
        card = p.card
    assert card.preprocess == {
        "kind": "image",
        "size": [128, 128],
        "channels": 3,
        "scale": 1 / 127.5,
        "offset": -1.0,
        "resize": "letterbox",
        "pad": 0,
    }
    assert card.output.shape[-1] == 16
    said = card.postprocess["inferred_from"]
    assert said["thresholds"] == "MediaPipe's face_detection_short_range graph: score 0.5, IoU 0.3"
    assert said["labels"] == "MediaPipe's face_detection_short_range graph: face"


def test_an_anchors_file_card_says_its_thresholds_are_defaults(unknown):
    from edgekit.runtime.inferred_cards import anchors_card

    card = anchors_card(unknown["model"], unknown["anchors"])
    said = card.postprocess["inferred_from"]
    assert said["thresholds"] == "defaults: score 0.5, IoU 0.3" and said["labels"] == "defaults: object"
    assert card.output.shape[-1] == 4 + 2 * card.postprocess["keypoints"]
