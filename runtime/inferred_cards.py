"""Cards for well-known model files that carry none, recognised by their tensor signature.

A MediaPipe BlazeFace TFLite or an Ultralytics YOLO export runs with no `--card` because its
inputs and outputs say what it is; anything else still needs an edgekit card.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edgekit.card import ModelCard, TensorSpec
from edgekit.runtime.backends import Session, TensorInfo
from edgekit.runtime.darknet import CFG_SUFFIX, WEIGHTS_SUFFIX, read_darknet_card
from edgekit.runtime.detection_formats.ssd import BLAZEFACE_FULL_RANGE, BLAZEFACE_SHORT_RANGE, SsdSpec
from edgekit.runtime.labels import COCO_CLASSES
from edgekit.runtime.preprocess import ImageSpec

_BLAZEFACE = {
    "face_detection_short_range": BLAZEFACE_SHORT_RANGE,
    "face_detection_full_range": BLAZEFACE_FULL_RANGE,
}
_BLAZEFACE_KEYPOINTS = 6
_YOLO_INPUT = 640  # Ultralytics' default when the input size is dynamic
_YOLO_STRIDES = (8, 16, 32)


def infer_card(path: str | Path, session: Session) -> ModelCard | None:
    """A card for a known detector that has none inside (BlazeFace, Ultralytics YOLO, a Darknet cfg),
    else None."""
    for infer in (_darknet_card, _blazeface_card, _yolo_card):
        card = infer(Path(path), session.inputs, session.outputs)
        if card is not None:
            return card
    return None


def _spec(t: TensorInfo, layout: str = "") -> TensorSpec:
    return TensorSpec(t.name, tuple(t.shape), str(t.dtype), layout)


def _darknet_card(
    path: Path, inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo]
) -> ModelCard | None:
    if path.suffix.lower() not in (CFG_SUFFIX, WEIGHTS_SUFFIX):
        return None
    return read_darknet_card(path)


def _blazeface_card(
    path: Path, inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo]
) -> ModelCard | None:
    if len(inputs) != 1 or len(outputs) not in (2, 4) or inputs[0].dtype.kind != "f":
        return None
    for name, ssd in _BLAZEFACE.items():
        # the TFLite files give (1, 896, 16) and (1, 896, 1); the ONNX conversions (PINTO, keijiro)
        # split both per anchor layer: (1, 512, 16), (1, 384, 16), (1, 512, 1), (1, 384, 1)
        cells = [(ssd.input_size + s - 1) // s for s in ssd.strides]
        counts = [c * c * a for c, a in zip(cells, ssd.anchors_per_cell)]
        split = counts if len(outputs) == 4 else [sum(counts)]
        wanted = {(1, k, c) for k in split for c in (4 + 2 * _BLAZEFACE_KEYPOINTS, 1)}
        if (
            tuple(inputs[0].shape) == (1, ssd.input_size, ssd.input_size, 3)
            and len(wanted) == len(outputs)
            and {tuple(o.shape) for o in outputs} == wanted
        ):
            return _ssd_card(path, name, ssd, inputs[0], outputs)
    return None


def _ssd_card(
    path: Path, name: str, ssd: SsdSpec, inp: TensorInfo, outputs: Sequence[TensorInfo]
) -> ModelCard:
    # MediaPipe's graph: letterbox with black, then pixels to [-1, 1]
    pixels = ImageSpec((ssd.input_size, ssd.input_size), 3, 1 / 127.5, -1.0, "letterbox", pad=0)
    regressors = next(o for o in outputs if o.shape[-1] != 1)
    return ModelCard(
        task="detect",
        labels=("face",),
        input=_spec(inp, "NHWC"),
        output=_spec(regressors),
        preprocess=pixels.to_dict(),
        postprocess={
            "format": "ssd-anchors",
            "input_size": ssd.input_size,
            "strides": list(ssd.strides),
            "anchors_per_cell": list(ssd.anchors_per_cell),
            "score_threshold": ssd.score_threshold,
            "iou_threshold": ssd.iou_threshold,
            "keypoints": _BLAZEFACE_KEYPOINTS,
        },
        recipe=f"mediapipe:{name}",
        format=path.suffix.lstrip(".").lower(),
    )


def _yolo_card(path: Path, inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo]) -> ModelCard | None:
    if len(inputs) != 1 or len(outputs) != 1 or len(inputs[0].shape) != 4 or len(outputs[0].shape) != 3:
        return None
    inp, out = inputs[0], outputs[0]
    nchw = inp.shape[1] == 3 and inp.shape[3] != 3
    if (inp.shape[1] if nchw else inp.shape[3]) != 3:
        return None
    a, b = out.shape[1], out.shape[2]
    h, w = inp.shape[2:4] if nchw else inp.shape[1:3]
    # the anchor count that strides 8, 16 and 32 give (3 anchors per cell in YOLOv5) says which
    # axis holds the anchors; failing that, the channel axis is the short one (N is thousands)
    cells = sum(-(-h // s) * -(-w // s) for s in _YOLO_STRIDES) if h and w else 0
    anchors = {cells, 3 * cells} - {0}
    if b in anchors and a not in anchors:
        channels_first = True
    elif a in anchors and b not in anchors:
        channels_first = False
    elif a is not None and b is not None and a != b:
        channels_first = a < b
    else:
        channels_first = b is None
    c = a if channels_first else b
    if c is None:
        return None
    if channels_first:
        layout, nc = "yolov8", c - 4  # YOLOv5 never exports channels first
    else:
        layout, nc = ("yolov8", 80) if c == 84 else ("yolov5", c - 5)
    if nc < 1:
        return None
    pixels = ImageSpec((h or _YOLO_INPUT, w or _YOLO_INPUT), 3, 1 / 255, 0.0, "letterbox", pad=114)
    return ModelCard(
        task="detect",
        labels=COCO_CLASSES if nc == len(COCO_CLASSES) else tuple(str(i) for i in range(nc)),
        input=_spec(inp, "NCHW" if nchw else "NHWC"),
        output=_spec(out),
        preprocess=pixels.to_dict(),
        # Ultralytics' TFLite exports give boxes as fractions of the input size
        postprocess={
            "format": layout,
            "conf": 0.25,
            "iou": 0.45,
            "normalized": path.suffix.lower() == ".tflite",
        },
        recipe="ultralytics:yolo",
        format=path.suffix.lstrip(".").lower(),
    )
