"""The `edgekit-grid` detection format: edgekit's own `detector` recipe, a single-shot grid head.

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
from typing import Any

import numpy as np

from edgekit.card import ModelCard
from edgekit.errors import DataError, ModelFileError
from edgekit.runtime.backends import TensorInfo
from edgekit.runtime.detection import Detection, LetterboxInfo, class_aware_nms, unletterbox_boxes
from edgekit.runtime.detection_metrics import BATCH_DECODERS, ImageDetections
from edgekit.runtime.preprocess import ImageSpec, dequantize
from edgekit.runtime.tasks import TaskOptions

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


@BATCH_DECODERS.register(FORMAT)
def decode_batch(card: Any, outputs: Sequence[np.ndarray], conf: float) -> list[ImageDetections]:
    """Raw grid outputs of a batch -> each image's detections (normalised corners) after NMS."""
    pp = card.postprocess
    out = _nhwc(outputs[0], BOX + len(card.labels))
    iou, max_det = float(pp.get("iou", 0.45)), int(pp.get("max_det", 100))
    return [ImageDetections(*decode_grid(o, conf, iou, max_det)) for o in out]


class GridDecoder:
    """Binds an `edgekit-grid` card to the model's output (found by shape) for the detect task."""

    def __init__(self, card: ModelCard, outputs: Sequence[TensorInfo], options: TaskOptions) -> None:
        pp = card.postprocess
        self.labels = tuple(card.labels)
        channels = BOX + len(self.labels)
        fits = [i for i, o in enumerate(outputs) if len(o.shape) == 4 and channels in tuple(o.shape)[1:4:2]]
        if not fits:
            shapes = ", ".join(str(tuple(o.shape)) for o in outputs)
            raise ModelFileError(
                f"an {FORMAT} detector with {len(self.labels)} classes needs an output (1, S, S, {channels}); "
                f"the model has {shapes}"
            )
        self.index = fits[0]
        self.info = outputs[self.index]
        self.channels = channels
        try:
            self.conf = float(options.conf if options.conf is not None else pp.get("conf", 0.25))
            self.iou = float(options.iou if options.iou is not None else pp.get("iou", 0.45))
            self.max_det = int(pp.get("max_det", 100))
        except (TypeError, ValueError) as e:
            raise ModelFileError(f"model card field postprocess has a bad threshold: {e}") from None
        self.size = ImageSpec.from_dict(card.preprocess).size  # (height, width) of the input

    def __call__(self, outputs: Sequence[np.ndarray], info: LetterboxInfo | None) -> list[Detection]:
        out = outputs[self.index]
        if self.info.quant is not None and out.dtype.kind in "iu":
            out = dequantize(out, *self.info.quant)
        boxes, scores, classes = decode_grid(_nhwc(out, self.channels)[0], self.conf, self.iou, self.max_det)
        h, w = info.dst_shape if info is not None else self.size
        boxes = boxes * (w, h, w, h)
        boxes = unletterbox_boxes(boxes, info) if info is not None else boxes
        return [
            Detection(tuple(map(float, b)), float(s), self.labels[int(c)], int(c))
            for b, s, c in zip(boxes, scores, classes, strict=True)
        ]
