"""YOLO output decoding against the layouts' definitions, on outputs written by hand: YOLOv8
(1, 4+nc, N) or transposed, rows of centre x, y, width, height then class scores; YOLOv5
(1, N, 5+nc), an objectness before the class scores and score = objectness x class score. A box is
kept when its best class scores strictly above `conf`, then NMS (within classes unless agnostic),
then the letterbox undone."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import ConfigError, DataError
from edgekit.runtime.detection import letterbox_info
from edgekit.runtime.detection_formats.yolo import (
    YoloSettings,
    decode_yolo,
    decode_yolov5,
    decode_yolov8,
    detect_yolo_layout,
    head_rows,
)

pytestmark = pytest.mark.runtime_only

LABELS = ("cat", "dog", "kite")
# centre x, y, w, h in input pixels, and class scores
ROWS = np.array(
    [
        [40, 40, 20, 20, 0.9, 0.1, 0.0],  # a cat
        [42, 41, 20, 20, 0.2, 0.8, 0.0],  # a dog on the cat: another class, kept
        [41, 40, 20, 20, 0.7, 0.0, 0.0],  # a cat on the cat: suppressed
        [120, 60, 30, 10, 0.0, 0.0, 0.3],  # a kite
        [10, 150, 8, 8, 0.0, 0.25, 0.0],  # exactly at conf 0.25: dropped
        [150, 150, 8, 8, 0.1, 0.05, 0.2],  # below conf
    ],
    np.float32,
)
ROWS = np.concatenate([ROWS, np.zeros((14, 7), np.float32)])  # anchors outnumber channels, as in a real head
WANT = [  # x1, y1, x2, y2, score, class
    (30, 30, 50, 50, 0.9, 0),
    (32, 31, 52, 51, 0.8, 1),
    (105, 55, 135, 65, 0.3, 2),
]


def check(found, want, info=None):
    assert [(d.label, d.class_id) for d in found] == [(LABELS[c], c) for *_, c in want]
    for d, (*box, score, _) in zip(found, want, strict=True):
        if info is not None:  # input pixels -> frame pixels, clipped to the frame
            (left, top), (sx, sy), (h, w) = info.pad, info.scale, info.src_shape
            x1, y1, x2, y2 = (
                (box[0] - left) / sx,
                (box[1] - top) / sy,
                (box[2] - left) / sx,
                (box[3] - top) / sy,
            )
            box = [min(max(x1, 0), w), min(max(y1, 0), h), min(max(x2, 0), w), min(max(y2, 0), h)]
        np.testing.assert_allclose(d.box, box, atol=1e-4)
        assert d.score == pytest.approx(score, abs=1e-6)


SETTINGS = YoloSettings(LABELS, conf=0.25, iou=0.5)


def test_yolov8_either_way_round():
    check(decode_yolov8(ROWS.T[None], SETTINGS), WANT)  # (1, 4+nc, N): as Ultralytics exports
    check(decode_yolov8(ROWS[None], SETTINGS), WANT)  # (1, N, 4+nc)
    check(decode_yolo(ROWS.T[None], SETTINGS), WANT)  # the layout told by the shape


def test_yolov5_scores_are_objectness_times_class():
    objectness = np.ones((len(ROWS), 1), np.float32)
    objectness[[1, 3]] = [[0.5], [0.6]]
    v5 = np.concatenate([ROWS[:, :4], objectness, ROWS[:, 4:]], axis=1)
    found = decode_yolov5(v5[None], SETTINGS)
    # the dog: 0.5 x 0.8 = 0.4; the kite: 0.6 x 0.3 = 0.18, under conf 0.25
    check(found, [WANT[0], (32, 31, 52, 51, 0.4, 1)])
    found = decode_yolov5(v5[None], YoloSettings(LABELS, conf=0.1, iou=0.5))
    check(
        found,
        [WANT[0], (32, 31, 52, 51, 0.4, 1), (6, 146, 14, 154, 0.25, 1), (146, 146, 154, 154, 0.2, 2)]
        + [(105, 55, 135, 65, 0.18, 2)],
    )
    assert [d.label for d in decode_yolo(v5[None], YoloSettings(LABELS, conf=0.3, iou=0.5))] == ["cat", "dog"]


def test_agnostic_nms_lets_classes_suppress_each_other():
    found = decode_yolov8(ROWS.T[None], YoloSettings(LABELS, conf=0.25, iou=0.5, agnostic=True))
    check(found, [WANT[0], WANT[2]])


def test_boxes_are_mapped_back_through_the_letterbox():
    for frame in ((120, 320), (480, 320), (157, 211)):  # padded above and below, left and right, odd
        info = letterbox_info(frame, (160, 160))
        check(decode_yolov8(ROWS.T[None], SETTINGS, info), WANT, info)


def test_normalised_boxes_are_fractions_of_the_input():
    info = letterbox_info((160, 320), (160, 320))  # no padding: the input is the frame
    norm = ROWS.copy()
    norm[:, [0, 2]] /= 320
    norm[:, [1, 3]] /= 160
    found = decode_yolov8(norm.T[None], YoloSettings(LABELS, conf=0.25, iou=0.5, normalized=True), info)
    check(found, WANT)
    with pytest.raises(ConfigError, match="need the LetterboxInfo"):
        decode_yolov8(norm.T[None], YoloSettings(LABELS, conf=0.25, iou=0.5, normalized=True))


def test_max_det_keeps_the_best():
    found = decode_yolov8(ROWS.T[None], YoloSettings(LABELS, conf=0.25, iou=0.5, max_det=2))
    check(found, WANT[:2])


def test_layouts_are_told_by_their_shape_and_class_count():
    assert detect_yolo_layout((1, 7, 8400)) == "yolov8"
    assert detect_yolo_layout((7, 8400)) == "yolov8"
    assert detect_yolo_layout((1, 8400, 8)) == "yolov5"
    assert detect_yolo_layout((1, 8400, 7), num_classes=3) == "yolov8"
    assert detect_yolo_layout((1, 8400, 8), num_classes=3) == "yolov5"
    with pytest.raises(ConfigError, match=r"does not fit 3 classes: expected 7 \(YOLOv8\) or 8 \(YOLOv5\)"):
        detect_yolo_layout((1, 8, 8400), num_classes=3)  # channels first is never YOLOv5
    assert detect_yolo_layout((1, 84, 84)) == "yolov5"  # square: not channels first
    assert detect_yolo_layout((1, 8400, 84), num_classes=80) == "yolov8"  # a transposed YOLOv8
    with pytest.raises(DataError, match="has shape"):
        detect_yolo_layout((2, 7, 8400))


def test_rows_are_read_whichever_way_round_and_refused_when_they_do_not_fit():
    square = np.zeros((1, 7, 7), np.float32)  # 7 anchors of 7 channels: read as Ultralytics writes it
    square[0, :, 0] = [40, 40, 20, 20, 0.0, 0.9, 0.0]  # anchor 0, channels first: a dog
    (dog,) = decode_yolov8(square, YoloSettings(LABELS, conf=0.25))
    assert dog.label == "dog" and dog.box == pytest.approx((30, 30, 50, 50))
    np.testing.assert_array_equal(head_rows(ROWS.T[None], 7), ROWS)
    np.testing.assert_array_equal(head_rows(ROWS[None], 7), ROWS)
    with pytest.raises(DataError, match="no axis of 9 channels"):
        head_rows(ROWS[None], 9)
    with pytest.raises(DataError, match="no room for 3 classes"):
        decode_yolov8(np.zeros((1, 6, 50), np.float32), SETTINGS)
    with pytest.raises(DataError, match="has shape"):
        decode_yolov8(np.zeros((2, 7, 50), np.float32), SETTINGS)
    unlabelled = decode_yolov8(ROWS.T[None], YoloSettings((), conf=0.25, iou=0.5))
    assert [d.class_id for d in unlabelled] == [0, 1, 2]  # no labels: the channels by the short axis


def test_a_batch_of_one_only_is_unwrapped():
    assert detect_yolo_layout((1, 7)) == "yolov8"  # (C, N) with C = 1 < 7: no batch axis to drop
    with pytest.raises(DataError, match="has shape"):
        decode_yolov8(np.zeros((7, 20, 1), np.float32), SETTINGS)  # 3-D but not a batch of one
    found = decode_yolo(ROWS[None], YoloSettings(LABELS, conf=0.25, iou=0.5))  # (1, N, 4+nc): by the labels
    assert [d.label for d in found] == ["cat", "dog", "kite"]


def test_fewer_anchors_than_channels_and_heads_with_no_class_channel():
    # 6 anchors of 7 channels, channels last: the labels say it, though the short axis is the anchors
    check(decode_yolov8(ROWS[:6][None], SETTINGS), WANT)
    with pytest.raises(DataError, match="no room for any classes after 4 box channels"):
        decode_yolov8(np.zeros((1, 4, 20), np.float32), YoloSettings((), conf=0.25))
