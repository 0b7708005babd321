"""Letterbox geometry, IoU and NMS against their definitions, written out here: Ultralytics'
LetterBox (scale min(H/h, W/w), the padding split with round(d -/+ 0.1)), IoU = intersection over
union, greedy NMS (a box is dropped when its IoU with a kept, better box is above the threshold),
classes never suppressing each other."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.runtime.detection import (
    _nms_numpy,
    box_iou,
    class_aware_nms,
    letterbox,
    letterbox_info,
    nms,
    overlapping,
    unletterbox_boxes,
    xywh_to_xyxy,
)

pytestmark = pytest.mark.runtime_only


def ultralytics_letterbox(h: int, w: int, size: tuple[int, int]) -> tuple[int, int, int, int, int, int]:
    """(new_h, new_w, top, bottom, left, right) as ultralytics.data.augment.LetterBox computes them."""
    r = min(size[0] / h, size[1] / w)
    new_w, new_h = int(round(w * r)), int(round(h * r))
    dw, dh = (size[1] - new_w) / 2, (size[0] - new_h) / 2
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    return new_h, new_w, top, bottom, left, right


@pytest.mark.parametrize(
    "shape",
    # (159, 160) and (160, 159): one row or column of padding, all of it below or to the right
    [
        (150, 200),
        (200, 150),
        (157, 211),
        (211, 157),
        (480, 640),
        (37, 101),
        (101, 37),
        (160, 160),
        (159, 160),
        (160, 159),
    ],
)
@pytest.mark.parametrize("size", [(160, 160), (128, 192)])
def test_letterbox_is_ultralytics_letterbox(shape, size):
    h, w = shape
    new_h, new_w, top, bottom, left, right = ultralytics_letterbox(h, w, size)
    info = letterbox_info(shape, size)
    assert info.pad == (left, top) and info.scale == (new_w / w, new_h / h)
    image = np.full((h, w, 3), 200, np.uint8)
    boxed, same = letterbox(image, size, color=114)
    assert same is info and boxed.shape == (*size, 3)
    inside = np.zeros(size, bool)
    inside[top : top + new_h, left : left + new_w] = True
    assert (boxed[inside] == 200).all() and (boxed[~inside] == 114).all()
    assert boxed.shape[0] == top + new_h + bottom and boxed.shape[1] == left + new_w + right
    # and back: the frame's corners land on the picture's corners
    corners = np.array([[left, top, left + new_w, top + new_h]], np.float64)
    np.testing.assert_allclose(unletterbox_boxes(corners, info), [[0, 0, w, h]], atol=1e-9)


def test_a_stretch_maps_each_axis_on_its_own_and_boxes_are_clipped_to_the_frame():
    info = letterbox_info((100, 300), (50, 50), keep_aspect=False)
    assert info.pad == (0, 0) and info.scale == (50 / 300, 50 / 100)
    boxed, _ = letterbox(np.zeros((100, 300, 3), np.uint8), (50, 50), keep_aspect=False)
    assert boxed.shape == (50, 50, 3)
    out = unletterbox_boxes(np.array([[-5.0, 10, 25, 60]]), info)
    np.testing.assert_allclose(out, [[0, 20, 150, 100]])  # clipped to the 300 x 100 frame
    gray, _ = letterbox(np.zeros((100, 300), np.uint8), (50, 50), color=9)
    assert gray.shape[:2] == (50, 50) and gray[0, 0] == 9


def test_centre_size_boxes_become_corners():
    np.testing.assert_allclose(xywh_to_xyxy(np.array([[10.0, 20, 4, 6, 0.9]])), [[8, 17, 12, 23]])


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union if union > 0 else 0.0


def test_box_iou_is_intersection_over_union():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 50, (40, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 30, (40, 2))], axis=1)
    for box in boxes[:5]:
        np.testing.assert_allclose(box_iou(box, boxes), [iou(box, b) for b in boxes], rtol=1e-12)
    # boxes under a pixel: areas and unions below 1 are areas all the same
    tiny = np.array([[0.0, 0, 0.5, 0.5], [0.25, 0, 0.75, 0.5], [0, 0, 10, 0.5], [0, 0, 10, 10]])
    for box in tiny:
        np.testing.assert_allclose(box_iou(box, tiny), [iou(box, b) for b in tiny], rtol=1e-12)
    assert box_iou(tiny[0], tiny[1:2])[0] == pytest.approx(1 / 3)
    empty = np.array([5.0, 5, 5, 5])
    assert box_iou(empty, np.array([[5.0, 5, 5, 5], [0, 0, 10, 10]])).tolist() == [0.0, 0.0]
    # a box with x2 < x1 has no area, not a negative one
    assert box_iou(np.array([0.0, 0, 10, 10]), np.array([[8.0, 0, 2, 10]])).tolist() == [0.0]


def test_overlapping_is_iou_strictly_above_the_threshold():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 5], [20, 20, 20, 20], [20, 20, 20, 20]], np.float32)
    over = overlapping(boxes, 0.5)  # boxes 0 and 1: IoU exactly 0.5
    assert not over[0, 1] and not over[1, 0]
    assert overlapping(boxes, 0.49)[0, 1]
    assert not over[2, 3] and not over[2, 2]  # empty boxes overlap nothing, not even themselves


def greedy(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    keep: list[int] = []
    for i in sorted(range(len(boxes)), key=lambda i: (-scores[i], i)):
        if all(iou(boxes[i], boxes[k]) <= threshold for k in keep):
            keep.append(i)
    return keep


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["positive", "non-positive scores"])
def test_nms_is_greedy_nms_for_any_scores(seed, sign):
    """OpenCV keeps only scores above a threshold >= 0: non-positive scores (log-probabilities,
    raw logits) are ranked instead, and NMS must keep the same boxes as with their order."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 60, (60, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 25, (60, 2))], axis=1).astype(np.float32)
    scores = rng.permutation(60).astype(np.float32) / 60
    if sign < 0:
        scores = -scores  # the best is 0.0
    want = greedy(boxes, scores, 0.45)
    assert nms(boxes, scores, 0.45).tolist() == want
    assert _nms_numpy(boxes, scores, 0.45, 300).tolist() == want
    assert nms(boxes, scores, 0.45, max_det=3).tolist() == want[:3]
    assert _nms_numpy(boxes, scores, 0.45, 3).tolist() == want[:3]


def test_a_box_scored_zero_is_kept_when_nothing_covers_it():
    boxes = np.array([[0, 0, 10, 10], [50, 50, 60, 60]], np.float32)
    assert sorted(nms(boxes, np.array([0.9, 0.0])).tolist()) == [0, 1]
    assert nms(np.zeros((0, 4)), np.zeros(0)).tolist() == []


def test_classes_never_suppress_each_other_even_at_the_frames_edge():
    """The same box in three classes: all kept, however low the IoU threshold; two boxes of one
    class: the better only. The largest coordinate is the one the class offset is built from."""
    box = [0.0, 0.0, 100.0, 100.0]
    boxes = np.array([box, box, box, [1.0, 1.0, 99.0, 99.0]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    keep = class_aware_nms(boxes, scores, np.array([0, 1, 2, 0]), iou_threshold=1e-5)
    assert keep.tolist() == [0, 1, 2]
    assert class_aware_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0)).tolist() == []


def test_at_most_300_boxes_are_kept_by_default():
    """Ultralytics' max_det: 300 of 400 boxes that overlap nothing, the 300 best."""
    xy = np.stack(np.meshgrid(np.arange(20) * 10.0, np.arange(20) * 10.0), axis=-1).reshape(-1, 2)
    boxes = np.concatenate([xy, xy + 5], axis=1)
    scores = np.linspace(0.1, 0.9, 400)
    assert nms(boxes, scores).tolist() == list(range(399, 99, -1))
    assert class_aware_nms(boxes, scores, np.arange(400) % 3).tolist() == list(range(399, 99, -1))


def test_boxes_without_width_overlap_nothing():
    boxes = np.array([[0, 0, 0, 10], [0, 0, 1, 10], [0, 0, 0, 10]], np.float32)
    assert sorted(nms(boxes[:2], np.array([0.9, 0.8]), 0.3).tolist()) == [0, 1]
    # (OpenCV takes two empty boxes at one place as the same box; the numpy pass, as no overlap)
    assert sorted(_nms_numpy(boxes, np.array([0.9, 0.8, 0.7], np.float32), 0.3, 300).tolist()) == [0, 1, 2]
