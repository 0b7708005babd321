"""`darknet`: Darknet YOLO heads, from OpenCV DNN or an imported model, one decode for every backend.

OpenCV DNN's `[yolo]` layers already give rows of (cx, cy, w, h, objectness, objectness x class
probability) normalised to the input; an imported model (Keras, TFLite, ONNX) gives the raw head
tensors, which `decode_head` turns into the same rows exactly as OpenCV's region layer does. From
the rows on, the path is the YOLO formats': score = best class column, `--conf`, NMS, boxes back
onto the frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgekit.card import ModelCard
from edgekit.errors import ModelFileError
from edgekit.runtime.backends import TensorInfo
from edgekit.runtime.darknet import YoloHead
from edgekit.runtime.detection import Detection, LetterboxInfo
from edgekit.runtime.detection_formats import (
    FORMATS,
    NO_OPTIONS,
    DetectionFormat,
    FrameDecoder,
    common_settings,
)
from edgekit.runtime.detection_formats.yolo import YoloSettings, finish_yolo
from edgekit.runtime.options import TaskOptions
from edgekit.runtime.tensors import from_tensor


@dataclass(frozen=True)
class DarknetSettings(YoloSettings):
    """A Darknet card: its heads and input size; NMS across classes and normalised rows by default."""

    conf: float = 0.5
    iou: float = 0.4
    agnostic: bool = True
    normalized: bool = True  # the rows are fractions of the input
    input_size: tuple[int, int] = (416, 416)
    heads: tuple[YoloHead, ...] = ()


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def decode_head(raw: np.ndarray, head: YoloHead, input_size: tuple[int, int]) -> np.ndarray:
    """Raw (1, rows, cols, A*(5+nc)) head -> (rows*cols*A, 5+nc) rows as OpenCV's yolo layer gives.

    Darknet puts anchor a's 5+nc values in channels a*(5+nc) onward; the row order is grid row,
    column, then anchor. Box centre: (cell + (sigmoid(t) - 0.5) * scale_x_y + 0.5) / grid; size:
    exp(t) * anchor / input size; class columns: objectness * sigmoid(class), zero at or below
    the head's `thresh`.
    """
    gh, gw = head.grid
    a, k = len(head.anchors), 5 + head.classes
    # float64: exp of a large raw w/h must neither overflow nor warn
    t = np.asarray(raw, dtype=np.float64).reshape(gh, gw, a, k)
    h, w = input_size
    col, row = np.meshgrid(np.arange(gw), np.arange(gh))
    offset = (_sigmoid(t[..., :2]) - 0.5) * head.scale_x_y + 0.5
    cx = (col[..., None] + offset[..., 0]) / gw
    cy = (row[..., None] + offset[..., 1]) / gh
    anchors = np.asarray(head.anchors, dtype=np.float64)
    bw = np.exp(t[..., 2]) * anchors[:, 0] / w
    bh = np.exp(t[..., 3]) * anchors[:, 1] / h
    obj = _sigmoid(t[..., 4])
    probs = obj[..., None] * _sigmoid(t[..., 5:])
    probs[probs <= head.thresh] = 0
    rows = np.concatenate([np.stack([cx, cy, bw, bh, obj], axis=-1), probs], axis=-1)
    return rows.reshape(-1, k).astype(np.float32)


class DarknetFormat(DetectionFormat):
    """Binds a Darknet card's heads to the model's outputs, by shape: OpenCV rows (rows, 5+nc) or
    raw heads (1, rows, cols, A*(5+nc)), channels last or first."""

    name = "darknet"

    def settings(self, card: ModelCard, options: TaskOptions = NO_OPTIONS) -> DarknetSettings:
        pp = card.postprocess
        nc = len(card.labels)
        if not nc:
            raise ModelFileError("a Darknet model card needs its labels (one per class)")
        try:
            input_size = (int(pp["input_size"][0]), int(pp["input_size"][1]))
            heads = tuple(YoloHead.from_dict(h, nc) for h in pp["heads"])
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise ModelFileError(f"model card field postprocess is not a darknet spec: {e!r}") from None
        return DarknetSettings(
            **common_settings(card, options, conf=("conf", 0.5), iou=("iou", 0.4), max_det=300),
            agnostic=bool(pp.get("agnostic", True)),
            input_size=input_size,
            heads=heads,
        )

    def bind(self, settings: DarknetSettings, outputs: Sequence[TensorInfo]) -> FrameDecoder:
        nc = len(settings.labels)
        infos = list(outputs)
        # (output index, head, how to read it); each output is bound to at most one head
        bound: list[tuple[int, YoloHead, str]] = []
        free = list(range(len(outputs)))
        for head in settings.heads:
            for i in free:
                how = _fits(outputs[i].shape, head)
                if how:
                    bound.append((i, head, how))
                    free.remove(i)
                    break
            else:
                others = {_classes(o.shape, head) for o in outputs} - {None, nc}
                if others:
                    raise ModelFileError(
                        f"the model detects {min(others)} classes but the card has {nc} labels: "
                        f"give --labels a file with {min(others)} names"
                    )
                shapes = ", ".join(str(tuple(o.shape)) for o in outputs)
                raise ModelFileError(
                    f"the card's {head.grid[0]}x{head.grid[1]} head with {len(head.anchors)} anchors and "
                    f"{nc} classes fits none of the model's outputs ({shapes}): is the card for this model?"
                )

        return DarknetDecoder(settings, infos, bound)


class DarknetDecoder:
    """A Darknet model's per-frame decoder: its heads bound to outputs; `rows` as OpenCV gives them."""

    def __init__(
        self,
        settings: DarknetSettings,
        infos: Sequence[TensorInfo],
        bound: Sequence[tuple[int, YoloHead, str]],
    ) -> None:
        self.settings, self.infos, self.bound = settings, list(infos), list(bound)

    def rows(self, outputs: Sequence[np.ndarray]) -> np.ndarray:
        """Every bound head's rows, as OpenCV's yolo layers give them, stacked in head order."""
        parts = []
        for i, head, how in self.bound:
            out = from_tensor(outputs[i], self.infos[i])
            if how == "rows":
                parts.append(np.asarray(out, dtype=np.float32).reshape(-1, 5 + head.classes))
                continue
            if how == "nchw":
                out = np.asarray(out).reshape(head.channels, *head.grid).transpose(1, 2, 0)
            parts.append(decode_head(out, head, self.settings.input_size))
        return np.concatenate(parts)

    def __call__(self, outputs: Sequence[np.ndarray], info: LetterboxInfo | None) -> list[Detection]:
        rows = self.rows(outputs)
        # class columns are already objectness x probability: the score is the best of them
        return finish_yolo(rows[:, :4], rows[:, 5:], self.settings, info)


def _fits(shape: Sequence[int | None], head: YoloHead) -> str:
    """How an output of `shape` carries `head`: "rows", "nhwc", "nchw", or "" when it does not."""
    dims = tuple(shape)
    if len(dims) == 2 and dims[1] == 5 + head.classes and dims[0] in (head.rows, None):
        return "rows"
    if len(dims) == 4 and dims[0] in (1, None):
        if dims[1:] == (*head.grid, head.channels):
            return "nhwc"
        if dims[1:] == (head.channels, *head.grid):
            return "nchw"
    return ""


def _classes(shape: Sequence[int | None], head: YoloHead) -> int | None:
    """The class count an output of `shape` would carry for `head`'s grid and anchors, if any."""
    dims, a = tuple(shape), len(head.anchors)
    if len(dims) == 2 and dims[1] and dims[1] > 5 and dims[0] == head.grid[0] * head.grid[1] * a:
        return dims[1] - 5
    if len(dims) == 4 and head.grid in (dims[1:3], dims[2:4]):
        channels = dims[3] if dims[1:3] == head.grid else dims[1]
        if channels and channels % a == 0 and channels // a > 5:
            return channels // a - 5
    return None


FORMATS.add(DarknetFormat())
