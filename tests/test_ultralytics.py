"""Ultralytics exports decoded as Ultralytics' own `predict` decodes them: small random-weight files
made by tests/make_peer_fixtures.py, with Ultralytics' predictions stored beside them, so this runs
with neither torch nor Ultralytics. Names come from the file's own metadata, never COCO's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgekit.runtime.inferred_cards import ultralytics_metadata

pytestmark = pytest.mark.runtime_only  # needs no TensorFlow: run on arm64 too

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


def _predict(name: str, **options):
    """edgekit's results on the fixture image (BGR, as predict took it), and Ultralytics' record."""
    pytest.importorskip("onnxruntime")
    cv2 = pytest.importorskip("cv2")
    from edgekit.runtime.predictor import Predictor
    from edgekit.runtime.tasks import TaskOptions

    want = json.loads((FIXTURES / f"{name}.json").read_text())
    model = FIXTURES / want.get("model", f"{name}.onnx")
    if model.suffix == ".tflite":
        pytest.importorskip("ai_edge_litert")
    image = cv2.imread(str(FIXTURES / want.get("image", "shapes.png")))
    conf = want.get("conf") if "boxes" in want else None
    with Predictor(model, options=TaskOptions(conf=conf, **options)) as predictor:
        return predictor(image).results, want, predictor.card


def _matches(want: dict, found, boxes: np.ndarray) -> np.ndarray:
    """(wanted, found) pairs with IoU >= 0.9, the same class and the same score."""
    iou = _iou(np.array(want["boxes"]).reshape(-1, 4), boxes.reshape(-1, 4))
    same_class = np.array(want["classes"])[:, None] == np.array([d.class_id for d in found])[None, :]
    same_score = np.isclose(np.array(want["scores"])[:, None], [d.score for d in found], atol=1e-4)
    return (iou >= 0.9) & same_class & same_score


PADDED = [
    f"{m}_{frame}"
    for m in ("yolov8_padded", "yolov8_padded_nms")
    for frame in ("landscape", "portrait", "odd")
]


@pytest.mark.parametrize("name", PADDED)
def test_boxes_match_ultralytics_on_frames_the_letterbox_pads(name):
    """Landscape (150x200), portrait (200x150) and 157x211 (no side a multiple of the stride; the
    padding splits 20/21) frames through detectors whose features respond to the padded rows
    (tests/make_peer_fixtures.py: PADDED_MODELS): the letterbox's grey, its split and the mapping
    back to the frame must all be Ultralytics' for every box, class and score to match."""
    found, want, card = _predict(name)
    image = cv2_imread(FIXTURES / want["image"])
    assert image.shape[0] != image.shape[1] and card.preprocess["resize"] == "letterbox"
    assert card.postprocess["format"] == ("yolo-end2end" if "_nms_" in name else "yolov8")
    assert len(set(want["scores"])) == len(want["scores"])  # no ties: the kept boxes are not an order's luck
    assert len(want["boxes"]) >= 50 and len(found) == len(want["boxes"])
    pairs = _matches(want, found, np.array([d.box for d in found]))
    assert pairs.any(axis=1).all(), f"{(~pairs.any(axis=1)).sum()} of Ultralytics' boxes not found"
    # boxes reach into the padded band: the frame's edges, where the letterbox's grey is seen
    boxes = np.array(want["boxes"])
    h, w = image.shape[:2]
    assert ((boxes[:, [0, 1]] <= 1).any(axis=1) | (boxes[:, 2] >= w - 1) | (boxes[:, 3] >= h - 1)).sum() >= 5


def cv2_imread(path: Path) -> np.ndarray:
    cv2 = pytest.importorskip("cv2")
    return cv2.imread(str(path))


@pytest.mark.parametrize("name", ["yolov8_seg", "yolov8_seg_tflite"])
def test_segment_boxes_and_masks_match_ultralytics_instance_for_instance(name):
    import base64

    found, want, card = _predict(name)
    assert card.task == "detect" and card.postprocess["format"] == "yolov8-seg"
    assert card.labels == ("cat", "dog", "kite")
    assert len(set(want["scores"])) == len(want["scores"])  # no ties: see test_obb below
    assert len(want["boxes"]) > 50 and len(found) == len(want["boxes"])
    pairs = _matches(want, found, np.array([d.box for d in found]))
    assert pairs.any(axis=1).all()
    shape = tuple(want["masks"]["shape"])  # (stored, H, W): the best instances' masks on the frame
    bits = np.frombuffer(base64.b64decode(want["masks"]["bits"]), np.uint8)
    masks = np.unpackbits(bits)[: int(np.prod(shape))].reshape(shape).astype(bool)
    for i, theirs in enumerate(masks):
        ours = found[int(pairs[i].argmax())].mask
        assert ours is not None and ours.shape == theirs.shape == (160, 160)  # noisy.png's size
        iou = (ours & theirs).sum() / max((ours | theirs).sum(), 1)
        assert iou >= 0.9, f"instance {i}: mask IoU {iou:.3f}"


@pytest.mark.parametrize("name", ["yolov8_pose", "yolov8_pose_tflite"])
def test_pose_keypoints_match_ultralytics_within_a_pixel(name):
    found, want, card = _predict(name)
    assert card.postprocess["format"] == "yolov8-pose" and card.postprocess["kpt_shape"] == [17, 3]
    assert len(set(want["scores"])) == len(want["scores"])  # no ties: see test_obb below
    assert len(want["boxes"]) > 50 and len(found) == len(want["boxes"])
    pairs = _matches(want, found, np.array([d.box for d in found]))
    assert pairs.any(axis=1).all()
    theirs = np.array(want["keypoints"])  # (N, 17, 3): x, y, visibility
    ours = np.array([d.keypoints for d in found])
    scores = np.array([d.keypoint_scores for d in found])
    assert ours.shape == (len(found), 17, 2)
    # random weights give boxes that coincide (clipped to the frame): each of Ultralytics' poses is
    # one of ours whose box, class and score match, every keypoint within a pixel
    near = np.abs(theirs[:, None, :, :2] - ours[None]).max(axis=(2, 3)) <= 1.0
    same_vis = np.abs(theirs[:, None, :, 2] - scores[None]).max(axis=2) <= 1e-4
    assert (pairs & near & same_vis).any(axis=1).all()


@pytest.mark.parametrize("name", ["yolov8_obb", "yolov8_obb_tflite"])
def test_obb_rotated_boxes_match_ultralytics_after_rotated_nms(name):
    from edgekit.runtime.detection import OrientedDetection

    found, want, card = _predict(name)
    assert card.postprocess["format"] == "yolov8-obb"
    # no tied scores: which of two tied boxes Fast-NMS keeps would be the sort's tie order
    assert len(set(want["scores"])) == len(want["scores"])
    assert len(want["boxes"]) >= 20 and len(found) == len(want["boxes"])
    assert all(isinstance(d, OrientedDetection) for d in found)
    theirs, ours = np.array(want["boxes"]), np.array([d.xywhr for d in found])  # xywhr
    # matched by centre, size and angle within a pixel / a hundredth of a radian, class and score
    close = (np.abs(theirs[:, None, :4] - ours[None, :, :4]).max(axis=2) <= 1.0) & (
        np.abs(theirs[:, None, 4] - ours[None, :, 4]) <= 0.01
    )
    same_class = np.array(want["classes"])[:, None] == np.array([d.class_id for d in found])[None, :]
    same_score = np.isclose(np.array(want["scores"])[:, None], [d.score for d in found], atol=1e-4)
    assert (close & same_class & same_score).any(axis=1).all()


def test_classify_top5_matches_ultralytics():
    found, want, card = _predict("yolov8_cls", top_k=5)
    assert card.task == "classify-image" and card.preprocess["resize"] == "crop"
    assert [r.index for r in found] == want["top5"]
    assert [r.label for r in found] == [f"kind{i}" for i in want["top5"]]
    assert np.allclose([r.score for r in found], np.array(want["probs"])[want["top5"]], atol=0.02)


@pytest.mark.parametrize("name", ["yolov8_seg", "yolov8_pose", "yolov8_obb"])
def test_masks_keypoints_and_rotated_boxes_are_drawn(name):
    found, _, _ = _predict(name)
    from edgekit.runtime.detection import draw_detections

    frame = np.zeros((150, 200, 3), np.uint8)
    draw_detections(frame, found[:5])
    assert frame.any()
    d = found[0].to_dict()
    assert {"mask", "keypoint_scores", "xywhr"} & set(d)


def test_rotated_nms_is_fast_nms_over_probiou():
    from edgekit.runtime.detection import probiou, rotated_nms

    a = np.array([[50, 50, 40, 20, 0.0]], np.float32)
    assert np.isclose(probiou(a, a)[0, 0], 1.0, atol=1e-3)
    # a quarter turn of a square is the same square; far apart boxes do not overlap
    assert np.isclose(probiou([[0, 0, 30, 30, 0]], [[0, 0, 30, 30, np.pi / 2]])[0, 0], 1.0, atol=1e-3)
    assert probiou(a, [[500, 500, 40, 20, 0]])[0, 0] < 0.01
    # B overlaps A, C overlaps B only: Fast-NMS drops C too (B, though dropped, still suppresses it)
    boxes = np.array([[50, 50, 40, 40, 0], [56, 50, 40, 40, 0], [62, 50, 40, 40, 0]], np.float32)
    ious = probiou(boxes, boxes)
    threshold = (ious[0, 1] + ious[0, 2]) / 2
    assert ious[1, 2] > threshold > ious[0, 2]
    assert rotated_nms(boxes, np.array([0.9, 0.8, 0.7]), threshold).tolist() == [0]


def test_info_says_the_names_came_from_the_files_metadata():
    from typer.testing import CliRunner

    from edgekit.cli import app

    result = CliRunner().invoke(app, ["info", str(FIXTURES / "yolov8_pose.onnx")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = {k: v.strip() for k, _, v in (x.strip().partition("  ") for x in result.stdout.splitlines()) if v}
    assert rows["labels"] == "cat, dog, kite" and rows["labels from"] == "file metadata (names)"
    assert rows["kpt_shape from"] == "file metadata (kpt_shape)"
    assert rows["input size from"].endswith("file metadata (imgsz)")
    assert rows["thresholds from"].startswith("defaults (Ultralytics predict")


@pytest.mark.parametrize(
    "name", ["yolov8", "yolov8_nms", "yolov8_seg", "yolov8_pose", "yolov8_obb", "yolov8_cls"]
)
def test_inferred_preprocessing_is_ultralytics_own(name):
    """What predict does to a frame, as the card must say it: LetterBox(auto=False) with grey 114 to
    imgsz, or for a classifier classify_transforms (short side resized, centre crop); then RGB / 255
    (ToTensor), no mean or std."""
    from edgekit.runtime.predictor import Predictor

    pytest.importorskip("onnxruntime")
    with Predictor(FIXTURES / f"{name}.onnx") as p:
        pre, post = p.card.preprocess, p.card.postprocess
    resize = {"resize": "crop"} if name == "yolov8_cls" else {"resize": "letterbox", "pad": 114}
    size = [64, 64] if name == "yolov8_cls" else [160, 160]
    assert pre == {"kind": "image", "size": size, "channels": 3, "scale": 1 / 255, "offset": 0.0, **resize}
    if name in ("yolov8", "yolov8_nms"):
        assert post["format"] == ("yolo-end2end" if name == "yolov8_nms" else "yolov8")
