"""`yolo`, `yolov5`, `yolov8`: Ultralytics heads, one output each.

YOLOv8: (1, 4+nc, N) or transposed (1, N, 4+nc): centre xywh, then class scores. YOLOv5:
(1, N, 5+nc): centre xywh, objectness, class probabilities; score = objectness x class. `yolo`
tells the two apart by shape (`detect_yolo_layout`). Boxes are input pixels, or fractions of the
input where the card says `normalized` (Ultralytics' TFLite exports). `finish_yolo` (threshold,
NMS, back onto the frame) is shared with the Darknet format."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from edgekit.card import ModelCard
from edgekit.errors import ConfigError, DataError, ModelFileError
from edgekit.runtime.backends import TensorInfo
from edgekit.runtime.detection import (
    Detection,
    LetterboxInfo,
    class_aware_nms,
    nms,
    unletterbox_boxes,
    xywh_to_xyxy,
)
from edgekit.runtime.detection_formats import (
    FORMATS,
    NO_OPTIONS,
    DetectionFormat,
    DetectionSettings,
    FrameDecoder,
    common_settings,
    output_shapes,
)
from edgekit.runtime.options import TaskOptions
from edgekit.runtime.tensors import from_tensor

YoloLayout = Literal["yolov5", "yolov8"]


@dataclass(frozen=True)
class YoloSettings(DetectionSettings):
    """A YOLO card: the layout (None: by shape), NMS across classes or not, normalised boxes or pixels."""

    layout: YoloLayout | None = None
    agnostic: bool = False
    normalized: bool = False


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
    output: np.ndarray, settings: YoloSettings = YoloSettings(), info: LetterboxInfo | None = None
) -> list[Detection]:
    """Decode a YOLOv8 output, (1, 4+nc, N) or (1, N, 4+nc): centre xywh then class scores."""
    rows = _yolo_rows(output, settings.labels, extra=4)
    return finish_yolo(rows[:, :4], rows[:, 4:], settings, info)


def decode_yolov5(
    output: np.ndarray, settings: YoloSettings = YoloSettings(), info: LetterboxInfo | None = None
) -> list[Detection]:
    """Decode a YOLOv5 output (1, N, 5+nc): centre xywh, objectness, class scores; score = obj * cls."""
    rows = _yolo_rows(output, settings.labels, extra=5)
    return finish_yolo(rows[:, :4], rows[:, 4:5] * rows[:, 5:], settings, info)


_LAYOUTS = {"yolov5": decode_yolov5, "yolov8": decode_yolov8}


def decode_yolo(
    output: np.ndarray, settings: YoloSettings = YoloSettings(), info: LetterboxInfo | None = None
) -> list[Detection]:
    """Decode a YOLO output with the settings' layout, or the one `detect_yolo_layout` infers."""
    layout = settings.layout or detect_yolo_layout(output.shape, len(settings.labels) or None)
    return _LAYOUTS[layout](output, settings, info)


def _yolo_rows(output: np.ndarray, labels: Sequence[str], extra: int) -> np.ndarray:
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


def select_yolo(
    xywh: np.ndarray, class_scores: np.ndarray, settings: YoloSettings, info: LetterboxInfo | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Threshold and NMS, still in input pixels: (boxes x1 y1 x2 y2, scores, class ids, the kept
    rows' indices), best first. Heads with more per-box channels (masks, keypoints) read the rows."""
    class_ids = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(class_ids)), class_ids]
    rows = np.flatnonzero(scores > settings.conf)
    boxes = xywh_to_xyxy(xywh[rows].astype(np.float32))
    scores, class_ids = scores[rows], class_ids[rows]
    if settings.normalized:
        # some TFLite exports give coordinates as fractions of the input size
        if info is None:
            raise ConfigError("normalized YOLO boxes need the LetterboxInfo of the input")
        h, w = info.dst_shape
        boxes *= (w, h, w, h)
    if settings.agnostic:
        keep = nms(boxes, scores, settings.iou, settings.max_det)
    else:
        keep = class_aware_nms(boxes, scores, class_ids, settings.iou, settings.max_det)
    return boxes[keep], scores[keep], class_ids[keep], rows[keep]


def finish_yolo(
    xywh: np.ndarray, class_scores: np.ndarray, settings: YoloSettings, info: LetterboxInfo | None
) -> list[Detection]:
    """Threshold, NMS and map back: the part every YOLO layout (and Darknet) shares."""
    boxes, scores, class_ids, _ = select_yolo(xywh, class_scores, settings, info)
    boxes = boxes if info is None else unletterbox_boxes(boxes, info)
    return [
        Detection(tuple(map(float, b)), float(s), settings.label(int(c)), int(c))
        for b, s, c in zip(boxes, scores, class_ids, strict=True)
    ]


def head_rows(output: np.ndarray, channels: int) -> np.ndarray:
    """A YOLOv8-style head output, (1, C, N) or (1, N, C), as (N, C) float32 rows."""
    out = np.asarray(output, dtype=np.float32).reshape(output.shape[-2:])
    if out.shape[0] == channels and out.shape[1] != channels:
        out = out.T
    if out.shape[1] != channels:
        raise DataError(f"a YOLO head output of shape {np.shape(output)} has no axis of {channels} channels")
    return out


def head_output(outputs: Sequence[TensorInfo], channels: int | None, what: str) -> int:
    """The index of the (1, C, N) or (1, N, C) output with `channels` channels (any when None)."""
    for i, o in enumerate(outputs):
        if len(o.shape) == 3 and (channels is None or channels in o.shape[1:]):
            return i
    want = f"a (1, {channels}, N) output" if channels else "a (1, C, N) output"
    raise ModelFileError(f"{what} needs {want}; the model has {output_shapes(outputs)}")


def yolo_fields(
    card: ModelCard, options: TaskOptions = NO_OPTIONS, layout: str = "yolov8", iou: float = 0.7
) -> dict[str, Any]:
    """The settings every YOLO-family format reads from a card: thresholds (Ultralytics' `predict`
    defaults: conf 0.25, IoU 0.7), the head layout, class-agnostic NMS, normalised boxes."""
    pp = card.postprocess
    return {
        **common_settings(card, options, conf=("conf", 0.25), iou=("iou", iou), max_det=300),
        "layout": layout,
        "agnostic": bool(pp.get("agnostic", False)),
        "normalized": bool(pp.get("normalized", False)),
    }


class YoloFormat(DetectionFormat):
    """`yolo` (layout by shape), `yolov5` or `yolov8`: one entry per name the card may give."""

    def __init__(self, name: str) -> None:
        self.name = name  # type: ignore[misc]
        self.layout: YoloLayout | None = None if name == "yolo" else name  # type: ignore[assignment]

    def settings(self, card: ModelCard, options: TaskOptions = NO_OPTIONS) -> YoloSettings:
        return YoloSettings(**yolo_fields(card, options, self.layout, iou=0.45))

    def bind(self, settings: YoloSettings, outputs: Sequence[TensorInfo]) -> FrameDecoder:
        nc = len(settings.labels) or None
        fits = [
            i
            for i, o in enumerate(outputs)
            if len(o.shape) == 3 and (nc is None or {4 + nc, 5 + nc} & {d for d in o.shape[1:] if d})
        ]
        if not fits:
            want = f"{4 + nc} or {5 + nc} channels" if nc else "a (1, C, N) or (1, N, C) output"
            raise ModelFileError(f"a YOLO detector needs {want}; the model has {output_shapes(outputs)}")
        index, tensor = fits[0], outputs[fits[0]]

        def decode(raw: Sequence[np.ndarray], info: LetterboxInfo | None) -> list[Detection]:
            return decode_yolo(from_tensor(raw[index], tensor), settings, info)

        return decode


for _name in ("yolo", "yolov5", "yolov8"):
    FORMATS.add(YoloFormat(_name))


class YoloEnd2EndFormat(DetectionFormat):
    """`yolo-end2end`: NMS done in the graph (Ultralytics `export(nms=True)`, YOLO26): one output
    (1, K, 6+) of x1, y1, x2, y2, score, class per row, best first; only the threshold is left."""

    name = "yolo-end2end"

    def settings(self, card: ModelCard, options: TaskOptions = NO_OPTIONS) -> YoloSettings:
        return YoloSettings(
            **common_settings(card, options, conf=("conf", 0.25), iou=("iou", 0.7), max_det=300),
            normalized=bool(card.postprocess.get("normalized", False)),
        )

    def bind(self, settings: YoloSettings, outputs: Sequence[TensorInfo]) -> FrameDecoder:
        fits = [i for i, o in enumerate(outputs) if len(o.shape) == 3 and (o.shape[2] or 0) >= 6]
        if not fits:
            raise ModelFileError(
                "an end-to-end YOLO detector needs a (1, K, 6) output; "
                f"the model has {output_shapes(outputs)}"
            )
        index, tensor = fits[0], outputs[fits[0]]

        def decode(raw: Sequence[np.ndarray], info: LetterboxInfo | None) -> list[Detection]:
            rows = np.asarray(from_tensor(raw[index], tensor), dtype=np.float32).reshape(-1, tensor.shape[2])
            rows = rows[rows[:, 4] > settings.conf][: settings.max_det]
            boxes = rows[:, :4].copy()
            if settings.normalized:
                if info is None:
                    raise ConfigError("normalized YOLO boxes need the LetterboxInfo of the input")
                h, w = info.dst_shape
                boxes *= (w, h, w, h)
            if info is not None:
                boxes = unletterbox_boxes(boxes, info)
            return [
                Detection(tuple(map(float, b)), float(r[4]), settings.label(int(r[5])), int(r[5]))
                for b, r in zip(boxes, rows, strict=True)
            ]

        return decode


FORMATS.add(YoloEnd2EndFormat())
