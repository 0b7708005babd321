"""`edgekit-grid`: edgekit's own `detector` recipe, a single-shot grid head.

The model's one output is (1, S_h, S_w, 5 + C), channels last, every value already through a
sigmoid. Per cell: objectness, x and y offsets of the box centre inside the cell, sqrt of the box
width and height as fractions of the input, then one score per class. Decoding, outside the graph:

    cx = (col + x) / S_w    cy = (row + y) / S_h    w = sw ** 2    h = sh ** 2
    score = objectness * max(class scores), class = argmax(class scores)

then class-aware NMS, and boxes mapped back onto the original frame. `encode_grid` is the exact
inverse the training targets use: one object per cell (the cell holding its centre; where two
share a cell, the larger one)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgekit.card import ModelCard
from edgekit.errors import DataError, ModelFileError
from edgekit.runtime.backends import TensorInfo
from edgekit.runtime.detection import Detection, LetterboxInfo, class_aware_nms, unletterbox_boxes
from edgekit.runtime.detection_formats import (
    FORMATS,
    NO_OPTIONS,
    DetectionFormat,
    DetectionSettings,
    FrameDecoder,
    common_settings,
    output_shapes,
)
from edgekit.runtime.detection_metrics import ImageDetections
from edgekit.runtime.options import TaskOptions
from edgekit.runtime.tensors import from_tensor

FORMAT = "edgekit-grid"
BOX = 5  # objectness, x, y, sqrt w, sqrt h


def grid_postprocess(
    stride: int, conf: float = 0.25, iou: float = 0.45, max_det: int = 100
) -> dict[str, Any]:
    """The card's postprocess entry for a grid detector with this stride (the grid is input / stride)."""
    return {
        "format": FORMAT,
        "stride": stride,
        "layout": "NHWC (1, H/stride, W/stride, 5 + classes): objectness, x, y, sqrt w, sqrt h, classes",
        "box_encoding": "sigmoid: cx = (col + x) / grid_w, cy = (row + y) / grid_h, w = sw^2, h = sh^2",
        "score": "objectness * class score",
        "conf": conf,
        "iou": iou,
        "max_det": max_det,
    }


def encode_grid(rows: np.ndarray, grid: tuple[int, int], num_classes: int) -> np.ndarray:
    """YOLO rows (k, 5) [class, cx, cy, w, h] normalised -> the (S_h, S_w, 5 + C) target of one image."""
    gh, gw = grid
    target = np.zeros((gh, gw, BOX + num_classes), np.float32)
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
    # smallest first, so where two centres share a cell the larger object (written last) keeps it
    for cls, cx, cy, w, h in rows[np.argsort(rows[:, 3] * rows[:, 4], kind="stable")]:
        col, row = min(int(cx * gw), gw - 1), min(int(cy * gh), gh - 1)
        target[row, col] = 0
        target[row, col, :BOX] = (1.0, cx * gw - col, cy * gh - row, np.sqrt(w), np.sqrt(h))
        target[row, col, BOX + int(cls)] = 1.0
    return target


def decode_cells(out: np.ndarray, conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's (S_h, S_w, 5 + C) output -> (corners (k, 4) normalised, scores, class ids) above `conf`."""
    out = np.asarray(out, dtype=np.float64)
    gh, gw = out.shape[:2]
    cls = out[..., BOX:].argmax(-1)
    score = out[..., 0] * np.take_along_axis(out[..., BOX:], cls[..., None], -1)[..., 0]
    row, col = np.nonzero(score > conf)
    cell = out[row, col]
    cx, cy = (col + cell[:, 1]) / gw, (row + cell[:, 2]) / gh
    w, h = cell[:, 3] ** 2, cell[:, 4] ** 2
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return boxes, score[row, col], cls[row, col]


def decode_grid(
    out: np.ndarray, conf: float = 0.25, iou: float = 0.45, max_det: int = 100
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`decode_cells`, then class-aware NMS: (corners normalised, scores, class ids), best first."""
    boxes, scores, classes = decode_cells(out, conf)
    keep = class_aware_nms(boxes, scores, classes, iou, max_det)
    return boxes[keep], scores[keep], classes[keep]


def _nhwc(out: np.ndarray, channels: int) -> np.ndarray:
    """A batch of grid outputs as (N, S_h, S_w, 5 + C), whichever way round the backend gives it."""
    out = np.asarray(out)
    if out.ndim != 4:
        raise DataError(f"a grid detector's output is (N, S, S, {channels}), got {out.shape}")
    if out.shape[-1] == channels:
        return out
    if out.shape[1] == channels:  # channels first (an NCHW export)
        return out.transpose(0, 2, 3, 1)
    raise DataError(
        f"a grid detector's output for {channels - BOX} classes has {channels} channels, got {out.shape}"
    )


@dataclass(frozen=True)
class GridSettings(DetectionSettings):
    """An `edgekit-grid` card: thresholds (the recipe writes them) and at most 100 boxes."""

    max_det: int = 100


class GridFormat(DetectionFormat):
    name = FORMAT

    def settings(self, card: ModelCard, options: TaskOptions = NO_OPTIONS) -> GridSettings:
        return GridSettings(
            **common_settings(card, options, conf=("conf", 0.25), iou=("iou", 0.45), max_det=100)
        )

    def bind(self, settings: GridSettings, outputs: Sequence[TensorInfo]) -> FrameDecoder:
        labels = settings.labels
        channels = BOX + len(labels)
        fits = [i for i, o in enumerate(outputs) if len(o.shape) == 4 and channels in tuple(o.shape)[1:4:2]]
        if not fits:
            raise ModelFileError(
                f"an {FORMAT} detector with {len(labels)} classes needs an output (1, S, S, {channels}); "
                f"the model has {output_shapes(outputs)}"
            )
        index, tensor = fits[0], outputs[fits[0]]
        size = settings.input.size  # (height, width) of the input

        def decode(raw: Sequence[np.ndarray], info: LetterboxInfo | None) -> list[Detection]:
            out = _nhwc(from_tensor(raw[index], tensor), channels)[0]
            boxes, scores, classes = decode_grid(out, settings.conf, settings.iou, settings.max_det)
            h, w = info.dst_shape if info is not None else size
            boxes = boxes * (w, h, w, h)
            boxes = unletterbox_boxes(boxes, info) if info is not None else boxes
            return [
                Detection(tuple(map(float, b)), float(s), labels[int(c)], int(c))
                for b, s, c in zip(boxes, scores, classes, strict=True)
            ]

        return decode

    def decode_batch(
        self,
        settings: GridSettings,
        outputs: Sequence[np.ndarray],
        sizes: Sequence[tuple[int, int]] | None = None,
    ) -> list[ImageDetections]:
        """Decoded straight to normalised corners: a grid detector's frames are stretched, so its
        normalised boxes are the image's whatever its size."""
        out = _nhwc(outputs[0], BOX + len(settings.labels))
        return [ImageDetections(*decode_grid(o, settings.conf, settings.iou, settings.max_det)) for o in out]


FORMATS.add(GridFormat())
