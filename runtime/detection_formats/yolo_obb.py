"""`yolov8-obb`: Ultralytics oriented boxes. One output (1, 4+nc+1, N): centre xywh, class scores,
then the angle in radians. NMS is Ultralytics' rotated one (probabilistic IoU, Fast-NMS); results
are `OrientedDetection`s with the rotated box and the axis-aligned box around it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgekit.card import ModelCard
from edgekit.runtime.backends import TensorInfo
from edgekit.runtime.detection import LetterboxInfo, OrientedDetection, obb_corners, rotated_nms
from edgekit.runtime.detection_formats import (
    FORMATS,
    NO_OPTIONS,
    DetectionFormat,
    FrameDecoder,
)
from edgekit.runtime.detection_formats.yolo import YoloSettings, head_output, head_rows, yolo_fields
from edgekit.runtime.options import TaskOptions
from edgekit.runtime.tensors import from_tensor

_CLASS_OFFSET = 7680.0  # Ultralytics' max_wh: each class's boxes moved apart so NMS keeps classes apart


def decode_obb(rows: np.ndarray, nc: int, settings: YoloSettings, info: LetterboxInfo | None):
    """(N, 4+nc+1) rows -> kept (xywhr in input pixels, scores, class ids), best first."""
    class_scores = rows[:, 4 : 4 + nc]
    class_ids = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(rows)), class_ids]
    keep = scores > settings.conf
    xywhr = np.concatenate([rows[keep, :4], rows[keep, -1:]], axis=1).astype(np.float32)
    scores, class_ids = scores[keep], class_ids[keep]
    if settings.normalized and info is not None:
        h, w = info.dst_shape
        xywhr[:, :4] *= (w, h, w, h)
    shifted = xywhr.copy()
    if not settings.agnostic:
        shifted[:, :2] += class_ids[:, None] * _CLASS_OFFSET
    kept = rotated_nms(shifted, scores, settings.iou, settings.max_det)
    return xywhr[kept], scores[kept], class_ids[kept]


class YoloObbFormat(DetectionFormat):
    """`yolov8-obb`: rotated boxes; mAP and filters read the axis-aligned box around each."""

    name = "yolov8-obb"

    def settings(self, card: ModelCard, options: TaskOptions = NO_OPTIONS) -> YoloSettings:
        return YoloSettings(**yolo_fields(card, options))

    def bind(self, settings: YoloSettings, outputs: Sequence[TensorInfo]) -> FrameDecoder:
        nc = len(settings.labels)
        channels = 4 + nc + 1
        index = head_output(outputs, channels, f"a YOLO oriented-box model with {nc} classes")
        tensor = outputs[index]

        def decode(raw: Sequence[np.ndarray], info: LetterboxInfo | None) -> list[OrientedDetection]:
            rows = head_rows(from_tensor(raw[index], tensor), channels)
            xywhr, scores, class_ids = decode_obb(rows, nc, settings, info)
            xywhr = xywhr.astype(np.float64)
            if info is not None:  # Ultralytics' scale_boxes(xywh=True): centre and size, never clipped
                xywhr[:, :2] = (xywhr[:, :2] - info.pad) / info.scale
                xywhr[:, 2:4] /= info.scale
            corners = obb_corners(xywhr)
            bounds = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)
            return [
                OrientedDetection(
                    tuple(map(float, b)), float(s), settings.label(int(c)), int(c), xywhr=tuple(map(float, r))
                )
                for b, s, c, r in zip(bounds, scores, class_ids, xywhr, strict=True)
            ]

        return decode


FORMATS.add(YoloObbFormat())
