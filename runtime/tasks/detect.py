"""Object detection: letterbox the frame, run the model, decode boxes back onto the original frame.

The card's `postprocess["format"]` names the decoder: `ssd-anchors` (MediaPipe BlazeFace-style
SSD with fixed anchors), `yolo` / `yolov5` / `yolov8` (Ultralytics heads) or `darknet` (Darknet
YOLO heads from OpenCV DNN or an imported model, see `edgekit.runtime.tasks.darknet`) or
`edgekit-grid` (edgekit's own `detector` recipe, see `edgekit.runtime.tasks.grid`). Each decoder is
bound to the model once: anchors are made and outputs chosen (by shape, never by name) in
`__init__`, so a frame costs only the decoding itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from edgekit.card import ModelCard
from edgekit.errors import DataError, ModelFileError
from edgekit.runtime.backends import TensorInfo
from edgekit.runtime.detection import (
    Detection,
    LetterboxInfo,
    decode_ssd,
    decode_yolo,
    draw_detections,
    letterbox,
    ssd_anchors,
)
from edgekit.runtime.preprocess import (
    ImageSpec,
    dequantize,
    image_input_layout,
    normalize,
    prepare_image,
    quantize,
)
from edgekit.runtime.tasks import TASKS, Task, TaskOptions
from edgekit.runtime.tasks.darknet import DarknetDecoder
from edgekit.runtime.tasks.grid import GridDecoder

Decoder = Callable[[Sequence[np.ndarray], LetterboxInfo | None], list[Detection]]


def _as_float(out: np.ndarray, info: TensorInfo) -> np.ndarray:
    if info.quant is not None and out.dtype.kind in "iu":
        return dequantize(out, *info.quant)
    return out


def _shapes(outputs: Sequence[TensorInfo]) -> str:
    return ", ".join(str(tuple(o.shape)) for o in outputs)


class SsdDecoder:
    """MediaPipe SSD: box+keypoint regressors (1, N, 4+2k) and score logits (1, N, 1)."""

    def __init__(self, card: ModelCard, outputs: Sequence[TensorInfo], options: TaskOptions) -> None:
        pp = card.postprocess
        try:
            size = pp["input_size"]
            self.input_size = int(size) if isinstance(size, (int, float)) else tuple(int(v) for v in size)
            strides = [int(s) for s in pp["strides"]]
            per_cell = [int(a) for a in pp["anchors_per_cell"]]
            keypoints = int(pp.get("keypoints", 0))
            self.conf = float(options.conf if options.conf is not None else pp.get("score_threshold", 0.5))
            self.iou = float(options.iou if options.iou is not None else pp.get("iou_threshold", 0.3))
            self.max_det = int(pp.get("max_det", 100))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(f"model card field postprocess is not an ssd-anchors spec: {e!r}") from None
        if len(strides) != len(per_cell):
            raise ModelFileError(
                "model card fields postprocess.strides and anchors_per_cell differ in length"
            )
        self.anchors = ssd_anchors(self.input_size, strides, per_cell)
        n, channels = len(self.anchors), 4 + 2 * keypoints
        h, w = (self.input_size,) * 2 if isinstance(self.input_size, int) else self.input_size
        per_layer = [-(-h // s) * -(-w // s) * a for s, a in zip(strides, per_cell)]

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
                f"the model has {_shapes(outputs)}"
            )

        self.regressors, self.scores = find(channels), find(1)
        self.infos = list(outputs)
        self.label = card.labels[0] if card.labels else "object"

    def __call__(self, outputs: Sequence[np.ndarray], info: LetterboxInfo | None) -> list[Detection]:
        reg, cls = (
            np.concatenate([_as_float(outputs[i], self.infos[i]) for i in indices], axis=-2)
            for indices in (self.regressors, self.scores)
        )
        return decode_ssd(
            reg, cls, self.anchors, self.input_size, self.conf, self.iou, info, self.label, self.max_det
        )


class YoloDecoder:
    """Ultralytics heads: one output (1, 4+nc, N) (YOLOv8) or (1, N, 5+nc) (YOLOv5)."""

    def __init__(self, card: ModelCard, outputs: Sequence[TensorInfo], options: TaskOptions) -> None:
        pp = card.postprocess
        fmt = pp.get("format", "yolo")
        self.layout = None if fmt == "yolo" else fmt
        self.labels = list(card.labels) or None
        nc = len(self.labels) if self.labels else None
        fits = [
            i
            for i, o in enumerate(outputs)
            if len(o.shape) == 3 and (nc is None or {4 + nc, 5 + nc} & {d for d in o.shape[1:] if d})
        ]
        if not fits:
            want = f"{4 + nc} or {5 + nc} channels" if nc else "a (1, C, N) or (1, N, C) output"
            raise ModelFileError(f"a YOLO detector needs {want}; the model has {_shapes(outputs)}")
        self.index = fits[0]
        self.info = outputs[self.index]
        try:
            self.conf = float(options.conf if options.conf is not None else pp.get("conf", 0.25))
            self.iou = float(options.iou if options.iou is not None else pp.get("iou", 0.45))
            self.max_det = int(pp.get("max_det", 300))
        except (TypeError, ValueError) as e:
            raise ModelFileError(f"model card field postprocess has a bad threshold: {e}") from None
        self.agnostic = bool(pp.get("agnostic", False))
        self.normalized = bool(pp.get("normalized", False))

    def __call__(self, outputs: Sequence[np.ndarray], info: LetterboxInfo | None) -> list[Detection]:
        out = _as_float(outputs[self.index], self.info)
        return decode_yolo(
            out,
            self.layout,
            self.conf,
            self.iou,
            self.labels,
            info,
            self.max_det,
            self.agnostic,
            self.normalized,
        )


DECODERS: dict[str, type] = {
    "darknet": DarknetDecoder,
    "edgekit-grid": GridDecoder,
    "ssd-anchors": SsdDecoder,
    "yolo": YoloDecoder,
    "yolov5": YoloDecoder,
    "yolov8": YoloDecoder,
}


@TASKS.register()
class Detect(Task):
    """Boxes (and keypoints) in pixels of the original frame.

    `preprocess` keeps the frame's LetterboxInfo for the following `postprocess`: one frame at a
    time per task, as the Predictor runs it.
    """

    name = "detect"
    accepts = "image"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec = ImageSpec.from_dict(self.card.preprocess)
        fmt = self.card.postprocess.get("format")
        if fmt not in DECODERS:
            raise ModelFileError(
                f"model card field postprocess.format is {fmt!r}: use one of {', '.join(DECODERS)}"
            )
        self.decode: Decoder = DECODERS[fmt](self.card, self.outputs, self.options)
        info = self.inputs[0]
        self._nchw = image_input_layout(tuple(info.shape), self.spec, "a detector")
        self._dtype = info.dtype
        self._quant = info.quant if info.dtype.kind in "iu" else None
        self._classes = None if self.options.classes is None else np.array(self.options.classes)
        self.letterbox_info: LetterboxInfo | None = None

    def preprocess(self, raw: np.ndarray) -> list[np.ndarray]:
        if not isinstance(raw, np.ndarray) or raw.ndim not in (2, 3):
            raise DataError(f"expected an image, got {type(raw).__name__}")
        if self.spec.resize == "letterbox":
            boxed, self.letterbox_info = letterbox(raw, self.spec.size, color=self.spec.pad)
        else:
            # stretched: prepare_image resizes as training's `features` did (INTER_AREA when shrinking),
            # so a trained detector sees the same pixels here; only the scale maps boxes back
            (h, w), (dst_h, dst_w) = raw.shape[:2], self.spec.size
            boxed = raw
            self.letterbox_info = LetterboxInfo((dst_w / w, dst_h / h), (0, 0), (h, w), (dst_h, dst_w))
        x = normalize(prepare_image(boxed, self.spec), self.spec)
        x = (x.transpose(2, 0, 1) if self._nchw else x)[None]
        if self._quant is not None:
            return [quantize(x, *self._quant, self._dtype)]
        return [np.ascontiguousarray(x, dtype=self._dtype)]

    def postprocess(self, outputs: Sequence[np.ndarray]) -> list[Detection]:
        detections = self.decode(outputs, self.letterbox_info)
        if self._classes is not None:
            detections = [d for d in detections if d.class_id in self._classes]
        return detections

    def draw(self, frame: np.ndarray, results: Sequence[Detection]) -> np.ndarray:
        return draw_detections(frame, results)
