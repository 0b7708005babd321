"""Detection post-processing in plain numpy: letterbox, NMS, YOLO and MediaPipe SSD decoding."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from edgekit.deps import require
from edgekit.errors import ConfigError, DataError

YoloLayout = Literal["yolov5", "yolov8"]
_CV2_INSTALL = "pip install 'opencv-python>=4.10,<5'"


@dataclass(frozen=True)
class Detection:
    """One detected object, in pixels of the original image."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    score: float
    label: str
    class_id: int
    keypoints: tuple[tuple[float, float], ...] = ()

    def to_dict(self) -> dict:
        """A JSON-ready dict of this detection."""
        return {
            "box": list(self.box),
            "score": self.score,
            "label": self.label,
            "class_id": self.class_id,
            "keypoints": [list(p) for p in self.keypoints],
        }


@dataclass(frozen=True)
class LetterboxInfo:
    """How an image was resized and padded, so results can be mapped back onto it."""

    scale: tuple[float, float]  # (x, y): resized size / original size
    pad: tuple[int, int]  # (left, top) pixels added before the resized image
    src_shape: tuple[int, int]  # original (height, width)
    dst_shape: tuple[int, int]  # model input (height, width)


def letterbox(
    image: np.ndarray,
    size: tuple[int, int],
    color: int | tuple[int, ...] = 114,
    keep_aspect: bool = True,
) -> tuple[np.ndarray, LetterboxInfo]:
    """Resize `image` to fit `size` (height, width) keeping its aspect, padding evenly around it."""
    cv2 = require("cv2", _CV2_INSTALL)
    h, w = image.shape[:2]
    dst_h, dst_w = size
    if keep_aspect:
        r = min(dst_h / h, dst_w / w)
        new_w, new_h = round(w * r), round(h * r)
    else:
        new_w, new_h = dst_w, dst_h
    if (new_w, new_h) != (w, h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    dw, dh = (dst_w - new_w) / 2, (dst_h - new_h) / 2
    # the +-0.1 splits an odd padding the way Ultralytics does, so boxes match its exports
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    if top or bottom or left or right:
        value = (color,) * 3 if isinstance(color, int) else color
        image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=value)
    info = LetterboxInfo((new_w / w, new_h / h), (left, top), (h, w), (dst_h, dst_w))
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
    """Greedy NMS: indices of the kept boxes, best score first; IoU above the threshold suppresses."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < max_det:
        i, order = order[0], order[1:]
        keep.append(int(i))
        order = order[box_iou(boxes[i], boxes[order]) <= iou_threshold]
    return np.array(keep, dtype=np.int64)


def class_aware_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    iou_threshold: float = 0.45,
    max_det: int = 300,
) -> np.ndarray:
    """NMS within each class only: indices of the kept boxes, best score first."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if not boxes.size:
        return np.zeros(0, dtype=np.int64)
    # shifting each class to its own region of the plane stops boxes of different classes overlapping
    offset = (np.abs(boxes).max() + 1) * np.asarray(class_ids, dtype=np.float64)[:, None]
    return nms(boxes + offset, scores, iou_threshold, max_det)


def weighted_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float = 0.3,
    keypoints: np.ndarray | None = None,
    max_det: int = 100,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """MediaPipe's weighted NMS: each cluster becomes the score-weighted mean of its boxes and keypoints.

    The best box gathers every remaining box whose IoU with it exceeds the threshold; the
    result keeps the best box's score. Returns (boxes, scores, keypoints or None).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    kps = None if keypoints is None else np.asarray(keypoints, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    out_boxes, out_scores, out_kps = [], [], []
    while order.size and len(out_boxes) < max_det:
        top = order[0]
        near = box_iou(boxes[top], boxes[order]) > iou_threshold
        near[0] = True  # a zero-area box has IoU 0 with itself but still belongs to its cluster
        cluster, order = order[near], order[~near]
        weights = scores[cluster] / scores[cluster].sum()
        out_boxes.append(weights @ boxes[cluster])
        out_scores.append(scores[top])
        if kps is not None:
            out_kps.append(np.tensordot(weights, kps[cluster], axes=1))
    merged_kps = None if kps is None else np.array(out_kps).reshape(-1, *kps.shape[1:])
    return np.array(out_boxes).reshape(-1, 4), np.array(out_scores), merged_kps


def detect_yolo_layout(shape: Sequence[int], num_classes: int | None = None) -> YoloLayout:
    """Tell a YOLOv5 output (1, N, 5+nc) from a YOLOv8 one (1, 4+nc, N) or (1, N, 4+nc).

    The channel axis is the shorter one (N is thousands of anchors). Channels first is always
    YOLOv8: YOLOv5 never exports that way. Channels last is ambiguous (YOLOv5, or a transposed
    YOLOv8): `num_classes` settles it when given (5+nc or 4+nc channels); without it YOLOv5 is
    assumed, since that is the layout its exporter writes.
    """
    dims = tuple(int(d) for d in shape)
    if len(dims) == 3 and dims[0] == 1:
        dims = dims[1:]
    if len(dims) != 2:
        raise DataError(f"a YOLO output has shape (1, C, N) or (1, N, C), got {tuple(shape)}")
    channels_first = dims[0] < dims[1]
    channels = min(dims)
    if num_classes is None:
        return "yolov8" if channels_first else "yolov5"
    if channels == 4 + num_classes:
        return "yolov8"
    if channels == 5 + num_classes and not channels_first:
        return "yolov5"
    raise ConfigError(
        f"a YOLO output of shape {tuple(shape)} does not fit {num_classes} classes: "
        f"expected {4 + num_classes} (YOLOv8) or {5 + num_classes} (YOLOv5) channels"
    )


def decode_yolov8(
    output: np.ndarray,
    conf: float = 0.25,
    iou: float = 0.45,
    labels: Sequence[str] | None = None,
    info: LetterboxInfo | None = None,
    max_det: int = 300,
    agnostic: bool = False,
    normalized: bool = False,
) -> list[Detection]:
    """Decode a YOLOv8 output, (1, 4+nc, N) or (1, N, 4+nc): centre xywh then class scores."""
    rows = _yolo_rows(output, labels, extra=4)
    class_scores = rows[:, 4:]
    return _finish_yolo(rows[:, :4], class_scores, conf, iou, labels, info, max_det, agnostic, normalized)


def decode_yolov5(
    output: np.ndarray,
    conf: float = 0.25,
    iou: float = 0.45,
    labels: Sequence[str] | None = None,
    info: LetterboxInfo | None = None,
    max_det: int = 300,
    agnostic: bool = False,
    normalized: bool = False,
) -> list[Detection]:
    """Decode a YOLOv5 output (1, N, 5+nc): centre xywh, objectness, class scores; score = obj * cls."""
    rows = _yolo_rows(output, labels, extra=5)
    class_scores = rows[:, 4:5] * rows[:, 5:]
    return _finish_yolo(rows[:, :4], class_scores, conf, iou, labels, info, max_det, agnostic, normalized)


_YOLO_DECODERS = {"yolov5": decode_yolov5, "yolov8": decode_yolov8}


def decode_yolo(
    output: np.ndarray,
    layout: YoloLayout | None = None,
    conf: float = 0.25,
    iou: float = 0.45,
    labels: Sequence[str] | None = None,
    info: LetterboxInfo | None = None,
    max_det: int = 300,
    agnostic: bool = False,
    normalized: bool = False,
) -> list[Detection]:
    """Decode a YOLO output with `layout`, or the one `detect_yolo_layout` infers."""
    layout = layout or detect_yolo_layout(output.shape, len(labels) if labels else None)
    decode = _YOLO_DECODERS[layout]
    return decode(output, conf, iou, labels, info, max_det, agnostic, normalized)


def _yolo_rows(output: np.ndarray, labels: Sequence[str] | None, extra: int) -> np.ndarray:
    """The output as (N, channels) rows, whichever way round the model wrote it."""
    out = np.asarray(output, dtype=np.float32)
    if out.ndim == 3 and out.shape[0] == 1:
        out = out[0]
    if out.ndim != 2:
        raise DataError(f"a YOLO output has shape (1, C, N) or (1, N, C), got {np.shape(output)}")
    channels = extra + len(labels) if labels else None
    # the channel axis is the short one, unless the label count says which it is
    if (out.shape[0] == channels) or (channels is None and out.shape[0] < out.shape[1]):
        out = out.T
    if out.shape[1] <= extra or (channels is not None and out.shape[1] != channels):
        raise DataError(
            f"a YOLO output of shape {np.shape(output)} has no room for "
            f"{len(labels) if labels else 'any'} classes after {extra} box channels"
        )
    return out


def _finish_yolo(
    xywh: np.ndarray,
    class_scores: np.ndarray,
    conf: float,
    iou: float,
    labels: Sequence[str] | None,
    info: LetterboxInfo | None,
    max_det: int,
    agnostic: bool,
    normalized: bool,
) -> list[Detection]:
    """Threshold, NMS and map back: the part every YOLO layout shares."""
    class_ids = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(class_ids)), class_ids]
    mask = scores > conf
    boxes = xywh_to_xyxy(xywh[mask].astype(np.float64))
    scores, class_ids = scores[mask], class_ids[mask]
    if normalized:
        # some TFLite exports give coordinates as fractions of the input size
        if info is None:
            raise ConfigError("normalized YOLO boxes need the LetterboxInfo of the input")
        h, w = info.dst_shape
        boxes *= (w, h, w, h)
    if agnostic:
        keep = nms(boxes, scores, iou, max_det)
    else:
        keep = class_aware_nms(boxes, scores, class_ids, iou, max_det)
    boxes = boxes[keep] if info is None else unletterbox_boxes(boxes[keep], info)
    return [
        Detection(tuple(map(float, b)), float(s), _label(labels, int(c)), int(c))
        for b, s, c in zip(boxes, scores[keep], class_ids[keep], strict=True)
    ]


def _label(labels: Sequence[str] | None, class_id: int) -> str:
    return labels[class_id] if labels and class_id < len(labels) else str(class_id)


@dataclass(frozen=True)
class SsdSpec:
    """Anchor layout and thresholds of a MediaPipe SSD detector (from its graph's .pbtxt)."""

    input_size: int
    strides: tuple[int, ...]
    anchors_per_cell: tuple[int, ...]
    score_threshold: float = 0.5
    iou_threshold: float = 0.3
    asset: str | None = None  # the model file shipped in edgekit/runtime/assets, if any

    def anchors(self) -> np.ndarray:
        """The (N, 4) anchors of this layout."""
        return ssd_anchors(self.input_size, self.strides, self.anchors_per_cell)


# MediaPipe's face_detection_short_range.pbtxt (strides 8,16,16,16 merge to 2 and 6 per cell)
# and face_detection_full_range.pbtxt (one stride-4 layer, no interpolated anchor)
BLAZEFACE_SHORT_RANGE = SsdSpec(128, (8, 16), (2, 6), 0.5, asset="face_detection_short_range.tflite")
BLAZEFACE_FULL_RANGE = SsdSpec(192, (4,), (1,), 0.6, asset="face_detection_full_range.tflite")


def ssd_anchors(
    input_size: int | tuple[int, int] = 128,
    strides: Sequence[int] = (8, 16),
    anchors_per_cell: Sequence[int] = (2, 6),
) -> np.ndarray:
    """MediaPipe SsdAnchorsCalculator with fixed-size anchors: (N, 4) of x, y, w=1, h=1, normalised.

    Anchors run layer by layer, then row, column and anchor within a cell, as the model's
    outputs do; centres sit at (cell + 0.5) / grid.
    """
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    layers = []
    for stride, per_cell in zip(strides, anchors_per_cell, strict=True):
        rows, cols = math.ceil(h / stride), math.ceil(w / stride)
        y, x = np.mgrid[:rows, :cols]
        centres = np.stack([(x + 0.5) / cols, (y + 0.5) / rows], axis=-1).reshape(-1, 2)
        layers.append(np.repeat(centres, per_cell, axis=0))
    centres = np.concatenate(layers)
    return np.hstack([centres, np.ones_like(centres)]).astype(np.float32)


def decode_ssd(
    regressors: np.ndarray,
    classificators: np.ndarray,
    anchors: np.ndarray,
    input_size: int | tuple[int, int],
    score_threshold: float = 0.5,
    iou: float = 0.3,
    info: LetterboxInfo | None = None,
    label: str = "face",
    max_det: int = 100,
) -> list[Detection]:
    """Decode MediaPipe SSD outputs (1, N, 4+2k) and (1, N, 1) into detections with k keypoints.

    As MediaPipe's TensorsToDetectionsCalculator: offsets are in input pixels around each
    anchor, scores are the sigmoid of logits clipped to +-100, overlapping boxes are merged
    by weighted NMS. Boxes are in original-image pixels when `info` is given, else input pixels.
    """
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    raw = np.asarray(regressors, dtype=np.float64).reshape(len(anchors), -1, 2)
    logits = np.asarray(classificators, dtype=np.float64).reshape(len(anchors))
    # float64 so that exp(100) neither overflows nor warns
    scores = 1 / (1 + np.exp(-logits.clip(-100, 100)))
    anchors = np.asarray(anchors, dtype=np.float64)
    points = raw / (w, h) * anchors[:, None, 2:4]
    points[:, 0] += anchors[:, :2]  # row 1 is the box size, which no anchor position moves
    points[:, 2:] += anchors[:, None, :2]
    centre, size = points[:, 0], points[:, 1]
    boxes = np.hstack([centre - size / 2, centre + size / 2])
    mask = (scores >= score_threshold) & (size > 0).all(axis=1)
    boxes, scores, kps = weighted_nms(boxes[mask], scores[mask], iou, points[mask, 2:], max_det)
    boxes = boxes * (w, h, w, h)
    kps = kps * (w, h)
    if info is not None:
        boxes, kps = unletterbox_boxes(boxes, info), unletterbox_points(kps, info)
    return [
        Detection(tuple(map(float, b)), float(s), label, 0, tuple((float(x), float(y)) for x, y in k))
        for b, s, k in zip(boxes, scores, kps, strict=True)
    ]


_PALETTE = ((56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207),
            (10, 249, 72), (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0))  # fmt: skip


def draw_detections(
    image: np.ndarray,
    detections: Sequence[Detection],
    thickness: int = 2,
    font_scale: float = 0.5,
    point_radius: int = 3,
) -> np.ndarray:
    """Draw boxes, `label score` captions and keypoints onto `image` in place, and return it."""
    cv2 = require("cv2", _CV2_INSTALL)
    for d in detections:
        color = _PALETTE[d.class_id % len(_PALETTE)]
        x1, y1, x2, y2 = (round(v) for v in d.box)
        cv2.rectangle(image, (x1, y1), (x2, y2), color, thickness)
        text = f"{d.label} {d.score:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        # the caption goes inside the box when there is no room above it
        ty = y1 - base if y1 - th - base >= 0 else y1 + th + base
        cv2.rectangle(image, (x1, ty - th - base), (x1 + tw, ty + base), color, -1)
        white = (255, 255, 255)
        cv2.putText(image, text, (x1, ty), cv2.FONT_HERSHEY_SIMPLEX, font_scale, white, 1, cv2.LINE_AA)
        for x, y in d.keypoints:
            cv2.circle(image, (round(x), round(y)), point_radius, color, -1, cv2.LINE_AA)
    return image
