"""Detection post-processing: NMS on hand-made boxes, YOLO outputs from real ONNX graphs run by
onnxruntime, and MediaPipe's BlazeFace run by ai-edge-litert on scikit-image's photographs."""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import pytest
from tensor_fixtures import onnx_model_bytes

from edgekit.errors import ConfigError
from edgekit.runtime.detection import (
    Detection,
    _nms_numpy,
    class_aware_nms,
    draw_detections,
    letterbox,
    letterbox_info,
    nms,
    unletterbox_boxes,
    weighted_nms,
)
from edgekit.runtime.detection_formats.ssd import (
    BLAZEFACE_FULL_RANGE,
    BLAZEFACE_SHORT_RANGE,
    SsdSettings,
    decode_ssd,
    ssd_anchors,
)
from edgekit.runtime.detection_formats.yolo import (
    YoloSettings,
    decode_yolo,
    decode_yolov5,
    decode_yolov8,
    detect_yolo_layout,
)

pytestmark = pytest.mark.runtime_only  # needs no TensorFlow: run on arm64 too

LABELS = ("person", "car", "dog")


# --- NMS -------------------------------------------------------------------------------------


def test_nms_keeps_the_best_of_each_overlapping_group():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [5, 0, 15, 10]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.85])
    # IoU(0, 1) = 81/119 = 0.68; IoU(0, 3) = 50/150 = 0.33; box 2 overlaps nothing
    assert nms(boxes, scores, 0.5).tolist() == [0, 3, 2]
    assert nms(boxes, scores, 0.3).tolist() == [0, 2]
    assert nms(boxes, scores, 0.5, max_det=1).tolist() == [0]
    assert nms(np.zeros((0, 4)), np.zeros(0)).tolist() == []


def test_class_aware_nms_only_suppresses_within_a_class():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [1, 0, 11, 10]], float)
    scores = np.array([0.9, 0.8, 0.7])
    assert class_aware_nms(boxes, scores, np.array([0, 1, 0])).tolist() == [0, 1]
    assert nms(boxes, scores).tolist() == [0]


def _greedy_reference(boxes, scores, iou_threshold, max_det):
    """Greedy NMS written the slow, obvious way: the definition the fast ones must agree with."""
    order, keep = list(np.argsort(-scores, kind="stable")), []
    while order and len(keep) < max_det:
        i = order.pop(0)
        keep.append(i)
        order = [j for j in order if _iou(boxes[i], boxes[j]) <= iou_threshold]
    return keep


def _iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_nms_keeps_what_the_greedy_definition_keeps(seed):
    """OpenCV's NMSBoxes and the numpy fallback against the loop, on 600 crowded boxes (YOLO at
    conf 0.01 gives ~500 candidates): same boxes, same order."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 300, (600, 2))
    boxes = np.hstack([xy, xy + rng.uniform(5, 80, (600, 2))]).astype(np.float32)
    scores = rng.uniform(0.01, 1, 600).astype(np.float32)
    want = _greedy_reference(boxes.astype(np.float64), scores, 0.45, 300)
    assert nms(boxes, scores, 0.45, 300).tolist() == want
    assert _nms_numpy(boxes, scores, 0.45, 300).tolist() == want
    classes = rng.integers(0, 5, 600)
    per_class = class_aware_nms(boxes, scores, classes, 0.45, 1000)  # no class runs out of room
    for c in range(5):
        mine = [i for i in per_class.tolist() if classes[i] == c]
        idx = np.flatnonzero(classes == c)
        assert mine == idx[_greedy_reference(boxes[idx].astype(np.float64), scores[idx], 0.45, 300)].tolist()


def test_weighted_nms_blends_boxes_and_keypoints_by_score():
    boxes = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [50, 50, 60, 60]], float)
    scores = np.array([0.6, 0.9, 0.5])
    keypoints = np.array([[[7, 5]], [[5, 5]], [[55, 55]]], float)
    # IoU of the first two is 80/120: one cluster, weighted 0.9/1.5 and 0.6/1.5
    merged, merged_scores, merged_kps = weighted_nms(boxes, scores, 0.3, keypoints)
    np.testing.assert_allclose(merged, [[1.2, 0, 11.2, 10], [50, 50, 60, 60]])
    np.testing.assert_allclose(merged_scores, [0.9, 0.5])  # the cluster keeps its best score
    np.testing.assert_allclose(merged_kps, [[[5.8, 5]], [[55, 55]]])
    # above their IoU the two boxes stay apart, unblended
    apart, _, _ = weighted_nms(boxes, scores, 0.7)
    np.testing.assert_allclose(apart, boxes[[1, 0, 2]])


def test_weighted_nms_of_one_cluster_is_the_score_weighted_mean():
    # every box overlaps the best: one cluster, blended with no loop (the one-face case)
    rng = np.random.default_rng(0)
    boxes = np.array([0, 0, 10, 10], np.float32) + rng.uniform(-0.5, 0.5, (7, 4)).astype(np.float32)
    scores = rng.uniform(0.5, 1, 7).astype(np.float32)
    keypoints = rng.uniform(0, 10, (7, 3, 2)).astype(np.float32)
    merged, merged_scores, merged_kps = weighted_nms(boxes, scores, 0.3, keypoints)
    w = scores.astype(np.float64) / scores.sum()
    np.testing.assert_allclose(merged, [w @ boxes], rtol=1e-6)
    np.testing.assert_allclose(merged_kps, [np.einsum("n,nkc->kc", w, keypoints)], rtol=1e-6)
    assert merged_scores.tolist() == [scores.max()]
    assert len(weighted_nms(boxes, scores, 0.3, keypoints, max_det=0)[0]) == 0


def test_weighted_nms_keeps_a_zero_area_box_as_its_own_cluster():
    # IoU of a point-sized box with anything, itself included, is 0: it still stands for itself
    boxes = np.array([[5, 5, 5, 5], [0, 0, 10, 10]], np.float32)
    merged, merged_scores, _ = weighted_nms(boxes, np.array([0.9, 0.8]), 0.3)
    np.testing.assert_array_equal(merged, boxes)
    np.testing.assert_allclose(merged_scores, [0.9, 0.8])


# --- letterbox -------------------------------------------------------------------------------


def test_letterbox_pads_evenly_and_maps_boxes_back():
    image = np.full((480, 640, 3), 200, np.uint8)
    boxed, info = letterbox(image, (320, 320))
    assert boxed.shape == (320, 320, 3)
    assert info.scale == (0.5, 0.5) and info.pad == (0, 40)
    assert (boxed[:40] == 114).all() and (boxed[280:] == 114).all() and (boxed[40:280] == 200).all()
    back = unletterbox_boxes(np.array([[50, 90, 150, 240], [-10, 0, 400, 400]]), info)
    np.testing.assert_allclose(back, [[100, 100, 300, 400], [0, 0, 640, 480]])  # clipped to the image


# --- YOLO through real ONNX graphs -------------------------------------------------------------


def _run_onnx(graph, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """Build `graph` into a model, check it, and run it with onnxruntime on the CPU."""
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(onnx_model_bytes(graph), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def _to_input_xywh(boxes: np.ndarray, scale: float, pad: tuple[int, int]) -> np.ndarray:
    """Original-image x1, y1, x2, y2 boxes as the centre xywh a YOLO model sees after letterbox."""
    b = boxes * scale + np.array(pad * 2)
    return np.concatenate([(b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]], axis=1)


def _noise_rows(rng: np.random.Generator, n: int, channels: int, input_size: int) -> np.ndarray:
    """Background rows: random boxes whose every score is below 0.05."""
    rows = rng.uniform(0, 0.05, (n, channels))
    rows[:, :2] = rng.uniform(0, input_size, (n, 2))
    rows[:, 2:4] = rng.uniform(5, 50, (n, 2))
    return rows


@pytest.fixture(scope="module")
def yolov8_raw():
    """A YOLOv8-layout output (1, 4+3, N) made by a real ONNX graph, and the letterbox it assumes.

    The graph transposes (1, N, 7) rows into channels-first, as Ultralytics' exported head does;
    the picture is 640x480 letterboxed into 320x320 (scale 0.5, 40 pixels above and below).
    """
    onnx = pytest.importorskip("onnx")
    h = onnx.helper
    _, info = letterbox(np.zeros((480, 640, 3), np.uint8), (320, 320))
    objects = np.array(
        [  # x1, y1, x2, y2 in the original picture; score; class
            [100, 100, 300, 400, 0.9, 0],  # a person
            [110, 100, 310, 400, 0.8, 0],  # the same person again: suppressed
            [100, 100, 300, 400, 0.7, 1],  # same place, other class: kept unless class-agnostic
            [400, 50, 600, 250, 0.6, 2],  # a dog
            [20, 300, 120, 460, 0.2, 1],  # a car below --conf 0.25
        ]
    )
    rows = _noise_rows(np.random.default_rng(0), 200, 7, 320)
    rows[:5, :4] = _to_input_xywh(objects[:, :4], 0.5, (0, 40))
    rows[:5, 4:] = 0.01
    rows[np.arange(5), 4 + objects[:, 5].astype(int)] = objects[:, 4]
    rows = rows[np.random.default_rng(1).permutation(len(rows))][None].astype(np.float32)
    graph = h.make_graph(
        [h.make_node("Transpose", ["rows"], ["output0"], perm=[0, 2, 1])],
        "yolov8_head",
        [h.make_tensor_value_info("rows", onnx.TensorProto.FLOAT, [1, 200, 7])],
        [h.make_tensor_value_info("output0", onnx.TensorProto.FLOAT, [1, 7, 200])],
    )
    output = _run_onnx(graph, {"rows": rows})
    assert output.shape == (1, 7, 200)
    return output, info


def _summary(detections: list[Detection]) -> list[tuple]:
    return [(d.label, d.class_id, round(d.score, 3), *np.round(d.box, 2)) for d in detections]


def test_decode_yolov8_maps_boxes_back_to_the_original_picture(yolov8_raw):
    output, info = yolov8_raw
    detections = decode_yolov8(output, YoloSettings(LABELS, conf=0.25, iou=0.45), info)
    assert _summary(detections) == [
        ("person", 0, 0.9, 100, 100, 300, 400),
        ("car", 1, 0.7, 100, 100, 300, 400),
        ("dog", 2, 0.6, 400, 50, 600, 250),
    ]
    # the transposed layout, (1, N, 4+nc), decodes the same
    assert decode_yolov8(output.transpose(0, 2, 1), YoloSettings(LABELS), info) == detections


def test_decode_yolov8_conf_and_class_agnostic_nms(yolov8_raw):
    output, info = yolov8_raw
    low = decode_yolov8(output, YoloSettings(LABELS, conf=0.1), info)
    assert [d.label for d in low] == ["person", "car", "dog", "car"]
    assert low[-1].box == pytest.approx((20, 300, 120, 460), abs=1e-3)
    agnostic = decode_yolov8(output, YoloSettings(LABELS, conf=0.25, agnostic=True), info)
    assert [d.label for d in agnostic] == ["person", "dog"]
    assert decode_yolov8(output, YoloSettings(LABELS, conf=0.95), info) == []
    # without labels the class id names the class; without info boxes stay in input pixels
    plain = decode_yolov8(output)
    assert plain[0].label == "0" and plain[0].box == pytest.approx((50, 90, 150, 240), abs=1e-3)


def test_decode_yolov5_scores_objectness_times_class():
    """YOLOv5 layout from a graph that, like the real head, applies a sigmoid to the scores."""
    onnx = pytest.importorskip("onnx")
    h = onnx.helper
    _, info = letterbox(np.zeros((200, 400, 3), np.uint8), (320, 320))
    assert info.pad == (0, 80)
    boxes = np.array([[40, 20, 140, 180], [200, 50, 380, 150], [0, 0, 50, 50], [45, 20, 145, 180]])
    probs = np.array(  # objectness, then one probability per class
        [
            [0.9, 0.1, 0.8, 0.05],  # car, 0.72
            [0.3, 0.9, 0.1, 0.1],  # person, 0.27: just above --conf 0.25
            [0.2, 0.99, 0.1, 0.1],  # person, 0.198: below it, although its class is sure
            [0.8, 0.1, 0.75, 0.1],  # car, 0.6, overlapping the first: suppressed
        ]
    )
    rng = np.random.default_rng(2)
    xywh = _noise_rows(rng, 50, 4, 320)
    logits = np.full((50, 4), -8.0)
    xywh[:4] = _to_input_xywh(boxes, 0.8, (0, 80))
    logits[:4] = np.log(probs / (1 - probs))
    graph = h.make_graph(
        [
            h.make_node("Sigmoid", ["logits"], ["probs"]),
            h.make_node("Concat", ["xywh", "probs"], ["output0"], axis=2),
        ],
        "yolov5_head",
        [
            h.make_tensor_value_info("xywh", onnx.TensorProto.FLOAT, [1, 50, 4]),
            h.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, [1, 50, 4]),
        ],
        [h.make_tensor_value_info("output0", onnx.TensorProto.FLOAT, [1, 50, 8])],
    )
    feeds = {"xywh": xywh[None].astype(np.float32), "logits": logits[None].astype(np.float32)}
    output = _run_onnx(graph, feeds)
    detections = decode_yolov5(output, YoloSettings(LABELS, conf=0.25), info)
    assert _summary(detections) == [
        ("car", 1, 0.72, 40, 20, 140, 180),
        ("person", 0, 0.27, 200, 50, 380, 150),
    ]
    assert len(decode_yolov5(output, YoloSettings(LABELS, conf=0.15), info)) == 3
    # an exporter that writes coordinates as fractions of the input gives the same boxes
    normalized = output.copy()
    normalized[..., :4] /= 320
    assert _summary(decode_yolov5(normalized, YoloSettings(LABELS, normalized=True), info)) == _summary(
        detections
    )
    assert decode_yolo(output, YoloSettings(LABELS), info) == detections


def test_detect_yolo_layout():
    assert detect_yolo_layout((1, 84, 8400)) == "yolov8"
    assert detect_yolo_layout((1, 25200, 85)) == "yolov5"
    # channels last is ambiguous on its own; the class count settles it
    assert detect_yolo_layout((1, 8400, 84), num_classes=80) == "yolov8"
    assert detect_yolo_layout((1, 25200, 85), num_classes=80) == "yolov5"
    assert detect_yolo_layout((1, 6, 8400), num_classes=2) == "yolov8"
    with pytest.raises(ConfigError, match="does not fit 3 classes"):
        detect_yolo_layout((1, 8400, 84), num_classes=3)


# --- MediaPipe SSD: anchors, decoding, and the real BlazeFace ----------------------------------


def test_ssd_anchors_match_mediapipe():
    anchors = ssd_anchors()
    assert anchors.shape == (896, 4)
    assert (anchors[:, 2:] == 1).all()  # fixed-size anchors
    # 16x16 cells with 2 anchors each, then 8x8 with 6
    np.testing.assert_allclose(anchors[:2, :2], [[0.5 / 16, 0.5 / 16]] * 2)
    np.testing.assert_allclose(anchors[2, :2], [1.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[512:518, :2], [[0.5 / 8, 0.5 / 8]] * 6)
    np.testing.assert_allclose(anchors[-1, :2], [7.5 / 8, 7.5 / 8])
    full = BLAZEFACE_FULL_RANGE.anchors()
    assert full.shape == (2304, 4)
    np.testing.assert_allclose(full[[0, -1], :2], [[0.5 / 48] * 2, [47.5 / 48] * 2])


def test_decode_ssd_offsets_are_input_pixels_around_the_anchor():
    regressors = np.zeros((1, 896, 16), np.float32)
    classificators = np.full((1, 896, 1), -1000, np.float32)  # clipped to -100: no overflow
    # anchor 2 sits at (1.5/16, 0.5/16) = (12, 4) input pixels
    regressors[0, 2] = [20, 30, 40, 20, *[float(k) for k in range(12)]]
    classificators[0, 2] = 2.0
    (face,) = decode_ssd(regressors, classificators, SsdSettings(("face",), input_size=128))
    assert face.score == pytest.approx(1 / (1 + np.exp(-2)))
    assert face.box == pytest.approx((12, 24, 52, 44))  # centre (32, 34), 40 x 20
    np.testing.assert_allclose(face.keypoints, [(12 + 2 * k, 4 + 2 * k + 1) for k in range(6)])
    assert face.label == "face" and face.to_dict()["keypoints"][0] == pytest.approx([12, 5])


def test_decode_ssd_drops_boxes_without_width_or_height():
    regressors = np.zeros((1, 896, 16), np.float32)
    classificators = np.full((1, 896, 1), -1000, np.float32)
    classificators[0, [2, 40]] = 2.0
    regressors[0, 2, 2:4] = [40, 0]  # no height
    regressors[0, 40, 2:4] = [-5, 10]  # negative width
    info = letterbox_info((480, 640), (128, 128))
    assert decode_ssd(regressors, classificators, SsdSettings(("face",), input_size=128), info) == []
    regressors[0, 40, 2:4] = [20, 10]
    (face,) = decode_ssd(regressors, classificators, SsdSettings(("face",), input_size=128), info)
    assert face.box[2] - face.box[0] == pytest.approx(20 * 640 / 128)


def test_frames_of_one_size_share_their_letterbox_and_the_decoder_maps_each_size_as_its_own():
    """The decoder keeps the last frame mapping and finds it by identity: frames of alternating
    sizes must each get their own, and an equal LetterboxInfo made by hand the same boxes."""
    from edgekit.runtime.detection import LetterboxInfo

    assert letterbox_info((480, 640), (128, 128)) is letterbox_info([480, 640], (128, 128))
    assert letterbox_info((480, 640), (128, 128)) is not letterbox_info((480, 640), (128, 128), False)
    regressors = np.zeros((1, 896, 16), np.float32)
    classificators = np.full((1, 896, 1), -1000, np.float32)
    classificators[0, 40] = 2.0
    regressors[0, 40, :4] = [3, -2, 20, 10]
    settings = SsdSettings(("face",), input_size=128)
    wide, tall = letterbox_info((480, 640), (128, 128)), letterbox_info((640, 480), (128, 128))
    by_hand = LetterboxInfo(wide.scale, wide.pad, wide.src_shape, wide.dst_shape)
    found = [
        decode_ssd(regressors, classificators, settings, i)[0].box for i in (wide, tall, by_hand, None, wide)
    ]
    assert found[0] == found[2] == found[4] != found[1]
    assert found[3] != found[0] and max(found[3]) < 128  # input pixels when no frame is given
    (face,) = decode_ssd(regressors, classificators, settings, tall)
    assert face.box[2] - face.box[0] == pytest.approx(20 * 640 / 128)  # the tall frame's scale


def _blazeface(spec, image: np.ndarray) -> tuple[list[Detection], float]:
    """Run a shipped BlazeFace model as MediaPipe does: letterbox with black, scale to [-1, 1]."""
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    interpreter = litert.Interpreter(model_path=str(files("edgekit.runtime") / "assets" / spec.asset))
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    assert inp["shape"].tolist() == [1, spec.input_size, spec.input_size, 3]
    boxed, info = letterbox(image, (spec.input_size, spec.input_size), color=0)
    interpreter.set_tensor(inp["index"], (boxed.astype(np.float32) / 127.5 - 1)[None])
    interpreter.invoke()
    outputs = {d["shape"][-1]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}
    regressors, classificators = outputs[16], outputs[1]
    anchors = spec.anchors()
    assert regressors.shape == (1, len(anchors), 16) and classificators.shape == (1, len(anchors), 1)
    best = float(1 / (1 + np.exp(-classificators.max())))
    settings = SsdSettings(
        ("face",),
        conf=spec.score_threshold,
        iou=spec.iou_threshold,
        input_size=spec.input_size,
        anchor_options=spec.options,
    )
    detections = decode_ssd(regressors, classificators, settings, info)
    return detections, best


@pytest.mark.parametrize(
    ("spec", "expected"), [(BLAZEFACE_SHORT_RANGE, 0.921), (BLAZEFACE_FULL_RANGE, 0.937)]
)
def test_blazeface_finds_the_astronauts_face(spec, expected):
    skimage_data = pytest.importorskip("skimage.data")
    image = skimage_data.astronaut()  # 512x512 RGB, shipped inside the wheel
    detections, _ = _blazeface(spec, image)
    assert len(detections) == 1
    face = detections[0]
    assert face.score == pytest.approx(expected, abs=0.02)
    # her face spans about x 178-272, y 78-175 (checked by drawing it)
    x1, y1, x2, y2 = face.box
    assert 165 < x1 < 190 and 260 < x2 < 285 and 60 < y1 < 95 and 165 < y2 < 185
    assert len(face.keypoints) == 6
    right_eye, left_eye, nose, mouth, right_ear, left_ear = face.keypoints
    assert all(x1 < x < x2 and y1 < y < y2 for x, y in (right_eye, left_eye, nose, mouth))
    # the ear tragions mark the face's sides, so they may sit a pixel or two outside the box
    m = 0.05 * (x2 - x1)
    assert all(x1 - m < x < x2 + m and y1 < y < y2 for x, y in (right_ear, left_ear))
    assert right_eye[0] < nose[0] < left_eye[0] and max(right_eye[1], left_eye[1]) < nose[1] < mouth[1]
    drawn = draw_detections(image.copy(), detections)
    assert (drawn != image).any() and (drawn[300:] == image[300:]).all()  # drawn on the face only


@pytest.mark.parametrize(("spec", "ceiling"), [(BLAZEFACE_SHORT_RANGE, 0.5), (BLAZEFACE_FULL_RANGE, 0.05)])
def test_blazeface_finds_no_face_on_the_cat(spec, ceiling):
    skimage_data = pytest.importorskip("skimage.data")
    detections, best = _blazeface(spec, skimage_data.chelsea())
    assert detections == []
    # the short-range model half-believes in the cat's face (0.47); the full-range one does not
    assert best < ceiling
