"""Detection geometry in plain numpy: letterbox, NMS, drawing. Each format's decoding lives in
`edgekit.runtime.detection_formats`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from edgekit.deps import require

_CV2_INSTALL = "pip install 'opencv-python>=4.10,<5'"


@dataclass(frozen=True)
class Detection:
    """One detected object, in pixels of the original image."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    score: float
    label: str
    class_id: int
    keypoints: tuple[tuple[float, float], ...] = ()
    # per keypoint visibility (pose models: Ultralytics' third keypoint channel); empty when none
    keypoint_scores: tuple[float, ...] = ()
    # the instance's pixels, bool (H, W) at the frame's size (instance segmentation); None when none
    mask: np.ndarray | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict:
        """A JSON-ready dict of this detection (a mask as its area and run-length encoding)."""
        d = {
            "box": list(self.box),
            "score": self.score,
            "label": self.label,
            "class_id": self.class_id,
            "keypoints": [list(p) for p in self.keypoints],
        }
        if self.keypoint_scores:
            d["keypoint_scores"] = list(self.keypoint_scores)
        if self.mask is not None:
            d["mask"] = {"area": int(np.count_nonzero(self.mask)), "rle": mask_rle(self.mask)}
        return d


@dataclass(frozen=True)
class OrientedDetection(Detection):
    """A rotated box (Ultralytics OBB): centre, size and angle in radians, in pixels of the original
    image; `box` is the axis-aligned box around it, so everything that reads boxes still works."""

    xywhr: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0)

    def corners(self) -> np.ndarray:
        """The four corners (4, 2) of the rotated box."""
        return obb_corners(np.asarray([self.xywhr], dtype=np.float64))[0]

    def to_dict(self) -> dict:
        return {**super().to_dict(), "xywhr": list(self.xywhr)}


def mask_rle(mask: np.ndarray) -> dict:
    """COCO-style uncompressed run-length encoding: column-major runs, starting with background."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F").astype(np.int8)
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def obb_corners(xywhr: np.ndarray) -> np.ndarray:
    """(N, 5) centre x, centre y, width, height, angle (radians) -> (N, 4, 2) corners."""
    b = np.asarray(xywhr, dtype=np.float64).reshape(-1, 5)
    cos, sin = np.cos(b[:, 4]), np.sin(b[:, 4])
    half_w = np.stack([cos, sin], axis=1) * b[:, 2:3] / 2
    half_h = np.stack([-sin, cos], axis=1) * b[:, 3:4] / 2
    c = b[:, None, :2]
    return np.concatenate(
        [c + (half_w + half_h)[:, None], c + (half_w - half_h)[:, None],
         c - (half_w + half_h)[:, None], c - (half_w - half_h)[:, None]], axis=1,
    )  # fmt: skip


def probiou(a: np.ndarray, b: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """Probabilistic IoU of (N, 5) and (M, 5) xywhr boxes -> (N, M): each box as a Gaussian, 1 minus
    their Hellinger distance (Ultralytics' `batch_probiou`, the overlap its rotated NMS uses)."""
    a = np.asarray(a, dtype=np.float32).reshape(-1, 5)
    b = np.asarray(b, dtype=np.float32).reshape(-1, 5)

    def cov(x):
        w2, h2 = x[:, 2] ** 2 / 12, x[:, 3] ** 2 / 12
        cos, sin = np.cos(x[:, 4]), np.sin(x[:, 4])
        return w2 * cos**2 + h2 * sin**2, w2 * sin**2 + h2 * cos**2, (w2 - h2) * cos * sin

    (a1, b1, c1), (a2, b2, c2) = ((v[:, None] for v in cov(a)), (v[None, :] for v in cov(b)))
    dx, dy = a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1]
    den = (a1 + a2) * (b1 + b2) - (c1 + c2) ** 2
    t1 = ((a1 + a2) * dy**2 + (b1 + b2) * dx**2) / (den + eps) * 0.25
    t2 = ((c1 + c2) * -dx * dy) / (den + eps) * 0.5
    dets = np.sqrt((a1 * b1 - c1**2).clip(0) * (a2 * b2 - c2**2).clip(0))
    t3 = np.log(den / (4 * dets + eps) + eps) * 0.5
    bd = (t1 + t2 + t3).clip(eps, 100.0)
    return 1 - np.sqrt(1.0 - np.exp(-bd) + eps)


def rotated_nms(
    xywhr: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.7, max_det: int = 300
) -> np.ndarray:
    """Ultralytics' rotated NMS (`TorchNMS.fast_nms` with `batch_probiou`): a box is kept when no
    better-scored box overlaps it above the threshold, whether or not that box was itself kept
    (Fast-NMS, not greedy). Indices of the kept boxes, best first."""
    order = np.argsort(-np.asarray(scores, dtype=np.float32), kind="stable")
    if not len(order):
        return order.astype(np.int64)
    boxes = np.asarray(xywhr, dtype=np.float32).reshape(-1, 5)[order]
    over = np.triu(probiou(boxes, boxes), k=1) > iou_threshold
    return order[~over.any(axis=0)][:max_det]


@dataclass(frozen=True)
class LetterboxInfo:
    """How an image was resized and padded, so results can be mapped back onto it."""

    scale: tuple[float, float]  # (x, y): resized size / original size
    pad: tuple[int, int]  # (left, top) pixels added before the resized image
    src_shape: tuple[int, int]  # original (height, width)
    dst_shape: tuple[int, int]  # model input (height, width)


def letterbox_info(
    src_shape: tuple[int, int], size: tuple[int, int], keep_aspect: bool = True
) -> LetterboxInfo:
    """How `letterbox` fits an image of `src_shape` (height, width) into `size`; a plain stretch
    when `keep_aspect` is False. Every frame of one size gets the same (immutable) object, so what
    is worked out from it once per size (the SSD decoder's mapping to the frame) is found by `is`."""
    (h, w), (dst_h, dst_w) = src_shape, size
    return _letterbox_info(int(h), int(w), int(dst_h), int(dst_w), bool(keep_aspect))


@lru_cache(maxsize=64)
def _letterbox_info(h: int, w: int, dst_h: int, dst_w: int, keep_aspect: bool) -> LetterboxInfo:
    if not keep_aspect:
        return LetterboxInfo((dst_w / w, dst_h / h), (0, 0), (h, w), (dst_h, dst_w))
    r = min(dst_h / h, dst_w / w)
    new_w, new_h = round(w * r), round(h * r)
    dw, dh = (dst_w - new_w) / 2, (dst_h - new_h) / 2
    # the +-0.1 splits an odd padding the way Ultralytics does, so boxes match its exports
    top, left = round(dh - 0.1), round(dw - 0.1)
    return LetterboxInfo((new_w / w, new_h / h), (left, top), (h, w), (dst_h, dst_w))


def letterbox(
    image: np.ndarray,
    size: tuple[int, int],
    color: int | tuple[int, ...] = 114,
    keep_aspect: bool = True,
) -> tuple[np.ndarray, LetterboxInfo]:
    """Resize `image` to fit `size` (height, width) keeping its aspect, padding evenly around it."""
    cv2 = require("cv2", _CV2_INSTALL)
    info = letterbox_info(image.shape[:2], size, keep_aspect)
    (h, w), (dst_h, dst_w) = image.shape[:2], size
    new_w, new_h = round(w * info.scale[0]), round(h * info.scale[1])
    if (new_w, new_h) != (w, h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    left, top = info.pad
    bottom, right = dst_h - new_h - top, dst_w - new_w - left
    if top or bottom or left or right:
        value = (color,) * 3 if isinstance(color, int) else color
        image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=value)
    return image, info


def unletterbox_points(points: np.ndarray, info: LetterboxInfo) -> np.ndarray:
    """Map (..., 2) x, y points from model-input pixels back to the original image."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    p = (p - info.pad) / info.scale
    return p.reshape(np.shape(points))


def unletterbox_boxes(boxes: np.ndarray, info: LetterboxInfo) -> np.ndarray:
    """Map (N, 4) x1, y1, x2, y2 boxes from model-input pixels back to the original, clipped."""
    b = unletterbox_points(np.asarray(boxes).reshape(-1, 4), info).reshape(-1, 4)
    h, w = info.src_shape
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, w)
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, h)
    return b


def xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    """Convert (N, 4) centre-x, centre-y, width, height boxes to corners."""
    xy, half = xywh[:, :2], xywh[:, 2:4] / 2
    return np.concatenate([xy - half, xy + half], axis=1)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one x1, y1, x2, y2 box with each of (N, 4) boxes; 0 where the union is empty."""
    lt = np.maximum(box[:2], boxes[:, :2])
    rb = np.minimum(box[2:4], boxes[:, 2:4])
    inter = np.prod((rb - lt).clip(0), axis=1)
    area = np.prod((box[2:4] - box[:2]).clip(0))
    areas = np.prod((boxes[:, 2:4] - boxes[:, :2]).clip(0), axis=1)
    union = area + areas - inter
    return np.divide(inter, union, out=np.zeros_like(inter, dtype=np.float64), where=union > 0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.45, max_det: int = 300) -> np.ndarray:
    """Greedy NMS: indices of the kept boxes, best score first; IoU above the threshold suppresses.

    OpenCV's `NMSBoxes` (C++) does the greedy pass when OpenCV is installed, as it is wherever frames
    are letterboxed: a Python loop over kept boxes took 34 ms on 519 YOLO candidates where this
    takes well under 1 ms. Ties keep the earlier box, as a stable sort does."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    if not len(boxes):
        return np.zeros(0, dtype=np.int64)
    cv2 = _cv2()
    if cv2 is None:
        return _nms_numpy(boxes, scores, iou_threshold, max_det)
    # OpenCV's rectangles are x, y, w, h
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).astype(np.float64)
    xywh[:, 2:] = xywh[:, 2:].clip(0)
    if scores.min() <= 0:  # OpenCV keeps only scores above a threshold >= 0: rank them instead
        ranks = np.empty(len(scores), dtype=np.float32)
        ranks[np.argsort(-scores, kind="stable")] = np.arange(len(scores), 0, -1)
        scores = ranks
    # top_k=0: OpenCV's top_k trims candidates before NMS, max_det trims what NMS keeps
    keep = cv2.dnn.NMSBoxes(xywh, scores, 0.0, float(iou_threshold))
    return np.asarray(keep, dtype=np.int64).reshape(-1)[:max_det]


def overlapping(boxes: np.ndarray, iou_threshold: float) -> np.ndarray:
    """(N, N) bool: whether the IoU of each pair of x1, y1, x2, y2 boxes (the first four columns of
    (N, 4+) rows) exceeds the threshold.

    Compared as intersection > threshold x union, with no division: an empty union (two empty
    boxes) overlaps nothing. Only the plainest operations (slices, broadcast minimum, maximum,
    subtract, multiply): right after an invoke has evicted the caches, each new kind of numpy call
    costs more than its work on a handful of boxes."""
    lo, hi = boxes[:, :2], boxes[:, 2:4]
    wh = np.minimum(hi[:, None], hi) - np.maximum(lo[:, None], lo)
    np.maximum(wh, 0, out=wh)
    inter = wh[..., 0] * wh[..., 1]
    area = inter.reshape(-1)[:: len(inter) + 1]  # a box's intersection with itself: its area
    return inter > iou_threshold * (area[:, None] + area - inter)


def _nms_numpy(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_det: int) -> np.ndarray:
    """The same greedy NMS without OpenCV: one IoU matrix, then a pass over the sorted boxes."""
    order = np.argsort(-scores, kind="stable")
    over = overlapping(boxes[order].astype(np.float32), iou_threshold)
    suppressed = np.zeros(len(order), dtype=bool)
    keep = []
    for i in range(len(order)):  # only boxes that survive do work; the rest is a flag test
        if suppressed[i]:
            continue
        keep.append(i)
        if len(keep) == max_det:
            break
        suppressed |= over[i]
    return order[np.array(keep, dtype=np.int64)]


def class_aware_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    iou_threshold: float = 0.45,
    max_det: int = 300,
) -> np.ndarray:
    """NMS within each class only: indices of the kept boxes, best score first.

    One NMS over all boxes, each class shifted to its own region of the plane (the offset
    Ultralytics and torchvision's `batched_nms` use), so no loop runs over the classes."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    if not boxes.size:
        return np.zeros(0, dtype=np.int64)
    offset = (float(np.abs(boxes).max()) + 1) * np.asarray(class_ids, dtype=np.float32)[:, None]
    return nms(boxes + offset, scores, iou_threshold, max_det)


def _cv2():
    """OpenCV if installed, else None (NMS then runs in numpy)."""
    try:
        import cv2
    except ImportError:
        return None
    return cv2


def weighted_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float = 0.3,
    keypoints: np.ndarray | None = None,
    max_det: int = 100,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """MediaPipe's weighted NMS: each cluster becomes the score-weighted mean of its boxes and keypoints.

    The best box gathers every remaining box whose IoU with it exceeds the threshold; the
    result keeps the best box's score. Returns (boxes, scores, keypoints or None)."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    if keypoints is None:
        merged, merged_scores = weighted_merge(boxes, scores, iou_threshold, max_det)
        return merged, merged_scores, None
    kps = np.asarray(keypoints, dtype=np.float32)
    flat = kps.reshape(len(kps), math.prod(kps.shape[1:]))  # -1 cannot size an empty array
    merged, merged_scores = weighted_merge(np.hstack([boxes, flat]), scores, iou_threshold, max_det)
    return merged[:, :4], merged_scores, merged[:, 4:].reshape(len(merged), *kps.shape[1:])


def weighted_merge(
    rows: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.3, max_det: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted NMS on float32 rows that start with an x1, y1, x2, y2 box (keypoints or anything
    else averaged with it may follow): (merged rows, their scores), best first.

    The IoU of every pair is computed once; the loop per cluster only picks its members (two
    boolean operations), and every cluster is blended at once by one (clusters x rows) matrix of
    weights, so the cost barely grows with the number of faces."""
    if len(rows) <= 1:  # none, or one in its own cluster: the weighted mean of one row is the row
        return rows[:max_det], scores[:max_det]
    # ndarray methods and ufuncs, not numpy's Python wrappers (np.argsort, .all(), .sum(), a[idx]):
    # right after an invoke has evicted the caches, each wrapper costs ~10 µs more than its work
    order = (-scores).argsort(kind="stable")
    rows, scores = rows.take(order, axis=0), scores.take(order)
    near = overlapping(rows, iou_threshold)
    if max_det > 0 and np.logical_and.reduce(near[0, 1:]):  # one cluster (one face): no loop
        tops, weights = slice(1), scores[None]  # scores[tops]: the first row's
    else:
        left = np.ones(len(rows), dtype=bool)
        tops, members = [], []
        while len(tops) < max_det and np.logical_or.reduce(left):
            top = int(left.argmax())  # the best remaining row: the rows are sorted by score
            member = near[top] & left
            member[top] = True  # a zero-area box has IoU 0 with itself but is its own cluster
            left &= ~member
            members.append(member)
            tops.append(top)
        weights = np.array(members, dtype=np.float32).reshape(len(tops), len(rows)) * scores
    weights = weights / np.add.reduce(weights, axis=1, keepdims=True)
    if rows.shape[1] <= 4:
        return weights @ rows, scores[tops]
    # BLAS picks its kernel by the matrix's width, and kernels round the last bit differently:
    # boxes and keypoints are blended as two products, as they always were, so results stay bit
    # for bit what they were (a float32 bit is 1e-4 px on a 2048 px frame)
    merged = np.empty((len(weights), rows.shape[1]), np.float32)
    np.matmul(weights, rows[:, :4], out=merged[:, :4])
    np.matmul(weights, rows[:, 4:], out=merged[:, 4:])
    return merged, scores[tops]


_PALETTE = ((56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207),
            (10, 249, 72), (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0))  # fmt: skip


def draw_detections(
    image: np.ndarray,
    detections: Sequence[Detection],
    thickness: int = 2,
    font_scale: float = 0.5,
    point_radius: int = 3,
) -> np.ndarray:
    """Draw boxes (rotated ones as rotated rectangles), `label score` captions, instance masks as a
    tint, and keypoints (17 joined by the COCO skeleton) onto `image` in place, and return it."""
    cv2 = require("cv2", _CV2_INSTALL)
    from edgekit.runtime.drawing import caption

    for d in detections:  # masks first, so boxes and captions stay readable on top
        if d.mask is not None and d.mask.shape == image.shape[:2]:
            color = np.array(_PALETTE[d.class_id % len(_PALETTE)], dtype=np.float32)
            pixels = image[d.mask]
            tinted = pixels * (1 - _MASK_ALPHA) + color[: image.shape[2]] * _MASK_ALPHA
            image[d.mask] = tinted.astype(image.dtype)
    for d in detections:
        color = _PALETTE[d.class_id % len(_PALETTE)]
        x1, y1, x2, y2 = (round(v) for v in d.box)
        if isinstance(d, OrientedDetection):
            corners = np.round(d.corners()).astype(np.int32)
            cv2.polylines(image, [corners], True, color, thickness, cv2.LINE_AA)
        else:
            cv2.rectangle(image, (x1, y1), (x2, y2), color, thickness)
        # above the box, in its colour (letters black or white, whichever reads on it); inside the
        # box where there is no room above it
        caption(image, f"{d.label} {d.score:.2f}", (x1, y1), fill=color, scale=font_scale, below=False)
        _draw_keypoints(cv2, image, d, color, point_radius)
    return image


def _draw_keypoints(cv2, image: np.ndarray, d: Detection, color, radius: int) -> None:
    """Keypoints as dots; a 17-point pose joined by the COCO skeleton. Points the model scores below
    0.5 are left out, as Ultralytics' plot leaves them out."""
    from edgekit.runtime.labels import COCO_SKELETON

    seen = [not d.keypoint_scores or s >= _KEYPOINT_VISIBLE for s in d.keypoint_scores or d.keypoints]
    points = [(round(x), round(y)) for x, y in d.keypoints]
    if len(points) == len(COCO_SKELETON_POINTS):
        for a, b in COCO_SKELETON:
            if seen[a] and seen[b]:
                cv2.line(image, points[a], points[b], color, max(1, radius // 2), cv2.LINE_AA)
    for p, ok in zip(points, seen, strict=True):
        if ok:
            cv2.circle(image, p, radius, color, -1, cv2.LINE_AA)


_MASK_ALPHA = 0.4
_KEYPOINT_VISIBLE = 0.5
COCO_SKELETON_POINTS = range(17)  # a pose with this many points is drawn with the skeleton
