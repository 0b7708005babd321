"""Every detection format in the registry: its batch decode (for mAP) agrees with its per-frame
decode (for `edgekit run`) on the same outputs."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import ModelFileError
from edgekit.models.step import CardLike
from edgekit.runtime.backends import TensorInfo
from edgekit.runtime.detection_formats import FORMATS, detection_format
from edgekit.runtime.detection_formats.edgekit_grid import encode_grid, grid_postprocess
from edgekit.runtime.detection_formats.ssd import KNOWN_SSD

pytestmark = pytest.mark.runtime_only  # needs no TensorFlow: run on arm64 too

PIXELS = {"kind": "image", "size": [64, 64], "channels": 3, "scale": 1 / 255, "offset": 0.0}
ROWS = np.array([[0, 0.3, 0.3, 0.2, 0.2], [1, 0.7, 0.6, 0.3, 0.4]], np.float32)


def yolov8_output(rows: np.ndarray, n: int = 50) -> np.ndarray:
    """(1, 4+2, n): the rows' boxes in input pixels with their class at 0.9, the rest background."""
    out = np.zeros((4 + 2, n), np.float32)
    out[:4] = 1.0
    out[:4, : len(rows)] = (rows[:, 1:5] * 64).T
    out[4 + rows[:, 0].astype(int), np.arange(len(rows))] = 0.9
    return out[None]


def ssd_output() -> list[np.ndarray]:
    """BlazeFace-shaped outputs (1, 896, 4) and (1, 896, 1) with one confident anchor."""
    reg, logits = np.zeros((1, 896, 4), np.float32), np.full((1, 896, 1), -10.0, np.float32)
    reg[0, 2] = (8, 20, 20, 30)  # a 20x30 box inside the input (the batch path clips to the image)
    logits[0, 2] = 3.0
    return [reg, logits]


def end2end_output(rows: np.ndarray = ROWS) -> np.ndarray:
    """(1, 300, 6): the rows as x1, y1, x2, y2 in input pixels, score 0.9, class; zero rows after."""
    out = np.zeros((300, 6), np.float32)
    xy, wh = rows[:, 1:3] * 64, rows[:, 3:5] * 64
    out[: len(rows), :4] = np.hstack([xy - wh / 2, xy + wh / 2])
    out[: len(rows), 4], out[: len(rows), 5] = 0.9, rows[:, 0]
    return out[None]


def extra_channels(rows: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """YOLOv8's output for the rows with more channels per box after the class scores."""
    head = yolov8_output(rows)[0]
    return np.concatenate([head, np.repeat(extra[:, None], head.shape[1], axis=1)])[None]


def seg_outputs() -> list[np.ndarray]:
    """A head with 4 mask coefficients (1, 0, 0, 0) and prototypes whose first channel is all 1:
    each box's mask fills the box."""
    protos = np.zeros((1, 4, 16, 16), np.float32)
    protos[0, 0] = 1.0
    return [extra_channels(ROWS, np.array([1, 0, 0, 0], np.float32)), protos]


SSD_OPTIONS = {"input_size_height": 128, "input_size_width": 128, "strides": [8, 16, 16, 16]}
SSD = {"format": "ssd-anchors", "input_size": 128, "strides": [8, 16], "anchors_per_cell": [2, 6]}
SSD_PIXELS = {**PIXELS, "size": [128, 128], "resize": "letterbox", "pad": 0}
# name -> (postprocess, preprocess, raw outputs of one image)
CASES = {
    "edgekit-grid": (grid_postprocess(16), PIXELS, lambda: [encode_grid(ROWS, (4, 4), 2)[None]]),
    "yolo": ({"format": "yolo"}, PIXELS, lambda: [yolov8_output(ROWS)]),
    "yolov8": ({"format": "yolov8"}, PIXELS, lambda: [yolov8_output(ROWS)]),
    "ssd-anchors": (SSD, SSD_PIXELS, ssd_output),
    "yolo-end2end": ({"format": "yolo-end2end"}, PIXELS, lambda: [end2end_output()]),
    "yolov8-seg": ({"format": "yolov8-seg"}, PIXELS, seg_outputs),
    "yolov8-pose": (
        {"format": "yolov8-pose", "kpt_shape": [2, 3]},
        PIXELS,
        lambda: [extra_channels(ROWS, np.array([10, 12, 0.9, 20, 22, 0.8], np.float32))],
    ),
    "yolov8-obb": ({"format": "yolov8-obb"}, PIXELS, lambda: [extra_channels(ROWS, np.zeros(1, np.float32))]),
}


def test_ssd_anchor_options_give_the_merged_layers_anchors():
    """MediaPipe's options for the short-range face detector (strides 8, 16, 16, 16) give the same
    anchors, and so the same detections, as the card's merged strides and anchors per cell."""
    raw = ssd_output()
    found = []
    for postprocess in (SSD, {"format": "ssd-anchors", "anchors": SSD_OPTIONS}):
        card = CardLike("detect", ("face",), SSD_PIXELS, postprocess)
        fmt = detection_format(card)
        settings = fmt.settings(card)
        found.append(
            fmt.bind(settings, [TensorInfo(f"o{i}", o.shape, o.dtype) for i, o in enumerate(raw)])(raw, None)
        )
    assert found[0] and found[0] == found[1]


@pytest.mark.parametrize("name", sorted(CASES))
def test_batch_decode_agrees_with_the_per_frame_decode(name):
    postprocess, pixels, outputs = CASES[name]
    card = CardLike("detect", ("a", "b"), pixels, postprocess)
    fmt = detection_format(card)
    settings = fmt.settings(card)
    raw = outputs()
    frame = fmt.bind(settings, [TensorInfo(f"o{i}", o.shape, o.dtype) for i, o in enumerate(raw)])(raw, None)
    assert frame, "the outputs hold detections"
    two = [np.concatenate([o, o]) for o in raw]  # a batch of the same image twice
    batch = fmt.decode_batch(settings, two)
    h, w = settings.input.size
    for image in batch:
        np.testing.assert_allclose(image.boxes * (w, h, w, h), [d.box for d in frame], atol=1e-4)
        np.testing.assert_allclose(image.scores, [d.score for d in frame], rtol=1e-6)
        assert image.classes.tolist() == [d.class_id for d in frame]


def test_every_format_is_tested_or_named_here():
    # darknet and yolov5 are decoded through the same finish as yolo (tests/test_darknet.py,
    # tests/test_detection.py); the rest have a case above
    assert set(FORMATS.names()) == set(CASES) | {"darknet", "yolov5"}


def test_an_unknown_format_names_the_known_ones():
    with pytest.raises(ModelFileError, match="use one of darknet, edgekit-grid, ssd-anchors, yolo"):
        detection_format(CardLike("detect", ("a",), PIXELS, {"format": "retina"}))


# what MediaPipe's graphs say of each detector (TensorsToDetectionsCalculator: num_boxes,
# num_coords, min_score_thresh), read from google-ai-edge/mediapipe; see KNOWN_SSD's comment
MEDIAPIPE_GRAPHS = {
    "face_detection_short_range": (896, 16, 0.5),
    "face_detection_full_range": (2304, 16, 0.6),
    "face_detection_back": (896, 16, 0.65),
    "palm_detection": (2016, 18, 0.5),
    "palm_detection_256": (2944, 18, 0.5),
    "palm_detection_128": (896, 18, 0.5),
    "pose_detection": (2254, 12, 0.5),
    "pose_detection_128": (896, 12, 0.5),
}


@pytest.mark.parametrize("spec", KNOWN_SSD, ids=lambda s: s.name)
def test_known_ssd_detectors_have_their_graphs_anchor_count_coords_and_threshold(spec):
    boxes, coords, threshold = MEDIAPIPE_GRAPHS[spec.name]
    assert len(spec.anchors()) == boxes
    assert 4 + 2 * spec.keypoints == coords
    assert spec.score_threshold == threshold and spec.iou_threshold == 0.3


def test_known_ssd_detectors_are_told_apart_by_input_anchors_and_channels():
    keys = [(s.input_size, len(s.anchors()), s.keypoints) for s in KNOWN_SSD]
    assert len(set(keys)) == len(keys)
