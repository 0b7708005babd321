"""`ssd-anchors`: MediaPipe SSD detectors with fixed anchors (BlazeFace).

Two outputs: box+keypoint regressors (1, N, 4+2k) and score logits (1, N, 1), or the same split
into one output per anchor layer (the BlazeFace ONNX conversions). Decoded as MediaPipe's
TensorsToDetectionsCalculator does: offsets in input pixels around each anchor, sigmoid scores,
weighted NMS."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from edgekit.card import ModelCard
from edgekit.errors import ModelFileError
from edgekit.runtime.backends import TensorInfo
from edgekit.runtime.detection import (
    Detection,
    LetterboxInfo,
    unletterbox_boxes,
    unletterbox_points,
    weighted_nms,
)
from edgekit.runtime.detection_formats import (
    FORMATS,
    DetectionFormat,
    DetectionSettings,
    FrameDecoder,
    common_settings,
    output_shapes,
)
from edgekit.runtime.tasks import TaskOptions
from edgekit.runtime.tensors import from_tensor


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


@dataclass(frozen=True)
class SsdSettings(DetectionSettings):
    """An `ssd-anchors` card: anchor layout, keypoint count, thresholds (MediaPipe's defaults)."""

    conf: float = 0.5
    iou: float = 0.3
    max_det: int = 100
    input_size: int | tuple[int, int] = 128
    strides: tuple[int, ...] = (8, 16)
    anchors_per_cell: tuple[int, ...] = (2, 6)
    keypoints: int = 0

    @cached_property
    def anchors(self) -> np.ndarray:
        """The (N, 4) anchors, made once per settings."""
        return ssd_anchors(self.input_size, self.strides, self.anchors_per_cell)

    @property
    def hw(self) -> tuple[int, int]:
        """The anchors' input (height, width)."""
        size = self.input_size
        return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def decode_ssd(
    regressors: np.ndarray,
    classificators: np.ndarray,
    settings: SsdSettings,
    info: LetterboxInfo | None = None,
) -> list[Detection]:
    """Decode MediaPipe SSD outputs (1, N, 4+2k) and (1, N, 1) into detections with k keypoints.

    As MediaPipe's TensorsToDetectionsCalculator: offsets are in input pixels around each
    anchor, scores are the sigmoid of logits clipped to +-100, overlapping boxes are merged
    by weighted NMS. Boxes are in original-image pixels when `info` is given, else input pixels.
    """
    anchors = settings.anchors
    h, w = settings.hw
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
    mask = (scores >= settings.conf) & (size > 0).all(axis=1)
    boxes, scores, kps = weighted_nms(
        boxes[mask], scores[mask], settings.iou, points[mask, 2:], settings.max_det
    )
    boxes = boxes * (w, h, w, h)
    kps = kps * (w, h)
    if info is not None:
        boxes, kps = unletterbox_boxes(boxes, info), unletterbox_points(kps, info)
    label = settings.labels[0] if settings.labels else "object"
    return [
        Detection(tuple(map(float, b)), float(s), label, 0, tuple((float(x), float(y)) for x, y in k))
        for b, s, k in zip(boxes, scores, kps, strict=True)
    ]


class SsdFormat(DetectionFormat):
    name = "ssd-anchors"

    def settings(self, card: ModelCard, options: TaskOptions = TaskOptions()) -> SsdSettings:
        pp = card.postprocess
        try:
            size = pp["input_size"]
            input_size = int(size) if isinstance(size, (int, float)) else tuple(int(v) for v in size)
            strides = tuple(int(s) for s in pp["strides"])
            per_cell = tuple(int(a) for a in pp["anchors_per_cell"])
            keypoints = int(pp.get("keypoints", 0))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(f"model card field postprocess is not an ssd-anchors spec: {e!r}") from None
        if len(strides) != len(per_cell):
            raise ModelFileError(
                "model card fields postprocess.strides and anchors_per_cell differ in length"
            )
        common = common_settings(
            card, options, conf=("score_threshold", 0.5), iou=("iou_threshold", 0.3), max_det=100
        )
        return SsdSettings(
            **common, input_size=input_size, strides=strides, anchors_per_cell=per_cell, keypoints=keypoints
        )

    def bind(self, settings: SsdSettings, outputs: Sequence[TensorInfo]) -> FrameDecoder:
        n, channels = len(settings.anchors), 4 + 2 * settings.keypoints
        h, w = settings.hw
        per_layer = [-(-h // s) * -(-w // s) * a for s, a in zip(settings.strides, settings.anchors_per_cell)]

        def find(last: int) -> list[int]:
            for i, o in enumerate(outputs):
                if len(o.shape) >= 2 and o.shape[-1] == last and o.shape[-2] in (n, None):
                    return [i]
            # or one output per anchor layer, as the BlazeFace ONNX conversions split them
            parts = {
                o.shape[-2]: i for i, o in enumerate(outputs) if len(o.shape) == 3 and o.shape[-1] == last
            }
            if len(per_layer) > 1 and len(set(per_layer)) == len(per_layer) and set(per_layer) <= set(parts):
                return [parts[count] for count in per_layer]
            raise ModelFileError(
                f"the card's anchors ({n}) need outputs shaped (1, {n}, {channels}) and (1, {n}, 1); "
                f"the model has {output_shapes(outputs)}"
            )

        regressors, scores, infos = find(channels), find(1), list(outputs)

        def decode(raw: Sequence[np.ndarray], info: LetterboxInfo | None) -> list[Detection]:
            reg, cls = (
                np.concatenate([from_tensor(raw[i], infos[i]) for i in indices], axis=-2)
                for indices in (regressors, scores)
            )
            return decode_ssd(reg, cls, settings, info)

        return decode


FORMATS.add(SsdFormat())
