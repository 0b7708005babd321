"""Cards for well-known model files that carry none, recognised by their tensor signature.

A MediaPipe BlazeFace TFLite or an Ultralytics YOLO export runs with no `--card` because its
inputs and outputs say what it is; anything else still needs an edgekit card.
"""

from __future__ import annotations

import ast
import contextlib
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgekit.card import ModelCard, TensorSpec
from edgekit.errors import ModelFileError, UnsupportedError
from edgekit.runtime.backends import Session, TensorInfo
from edgekit.runtime.darknet_suffixes import CFG_SUFFIX, WEIGHTS_SUFFIX
from edgekit.runtime.detection_formats.ssd import KNOWN_SSD, SsdAnchorOptions
from edgekit.runtime.files import ModelFile
from edgekit.runtime.preprocess import ImageSpec

_YOLO_INPUT = 640  # Ultralytics' default when the input size is dynamic
_YOLO_STRIDES = (8, 16, 32)
# an Ultralytics file's `task` -> the detection format that decodes its head (all run as `detect`)
_TASK_FORMATS = {"detect": "yolov8", "segment": "yolov8-seg", "pose": "yolov8-pose", "obb": "yolov8-obb"}


def infer_card(file: str | Path | ModelFile, session: Session) -> ModelCard | None:
    """A card for a known detector that has none inside (BlazeFace, Ultralytics YOLO, a Darknet cfg),
    else None."""
    file = ModelFile.open(file)
    for infer in (_darknet_card, _blazeface_card, _ultralytics_card, _yolo_card):
        card = infer(file, session.inputs, session.outputs)
        if card is not None:
            return card
    return None


def _spec(t: TensorInfo, layout: str = "") -> TensorSpec:
    return TensorSpec(t.name, tuple(t.shape), str(t.dtype), layout)


def _darknet_card(
    file: ModelFile, inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo]
) -> ModelCard | None:
    path = file.path
    if path.suffix.lower() not in (CFG_SUFFIX, WEIGHTS_SUFFIX):
        return None
    from edgekit.runtime.darknet import read_darknet_card  # the parser only for a Darknet file

    return read_darknet_card(path)


def _ssd_outputs(outputs: Sequence[TensorInfo]) -> tuple[int, int] | None:
    """(anchor count, regressor channels) of MediaPipe SSD outputs: (1, N, C) and (1, N, 1), or both
    split per anchor layer; None when the outputs are not shaped so."""
    if len(outputs) not in (2, 4) or any(len(o.shape) != 3 or not o.shape[1] for o in outputs):
        return None
    scores = [o for o in outputs if o.shape[2] == 1]
    boxes = [o for o in outputs if o.shape[2] != 1]
    if len(scores) != len(boxes) or len({o.shape[2] for o in boxes}) != 1:
        return None
    n = sum(o.shape[1] for o in boxes)
    channels = boxes[0].shape[2]
    if n != sum(o.shape[1] for o in scores) or channels < 4 or channels % 2:
        return None
    return n, channels


def _blazeface_card(
    file: ModelFile, inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo]
) -> ModelCard | None:
    """A MediaPipe SSD detector (BlazeFace short/full range, back camera, palm, pose) matched by input
    size, anchor count and keypoints; an SSD file that matches none asks for --anchors."""
    path = file.path
    found = _ssd_outputs(outputs)
    if len(inputs) != 1 or found is None or inputs[0].dtype.kind != "f" or len(inputs[0].shape) != 4:
        return None
    n, channels = found
    _, h, w, c = inputs[0].shape
    if c != 3:
        return None
    for ssd in KNOWN_SSD:
        options = ssd.options
        if (
            (options.input_size_height, options.input_size_width) == (h, w)
            and len(ssd.anchors()) == n
            and channels == 4 + 2 * ssd.keypoints
            and (len(outputs) == 2 or len(options.layers()) == 2)
        ):
            matched = f"MediaPipe's {ssd.name} configuration (matched by the {h}x{w} input and {n} anchors)"
            return ssd_card(path, inputs[0], outputs, options, ssd.keypoints, matched, ssd.labels, ssd.name,
                            ssd.score_threshold, ssd.iou_threshold)  # fmt: skip
    raise ModelFileError(
        f"{path.name} looks like a MediaPipe SSD detector ({n} anchors, {h}x{w} input) but matches no known "
        "anchor configuration: pass --anchors FILE (a JSON of MediaPipe's SsdAnchorsCalculator options)"
    )


def ssd_card(
    path: Path,
    inp: TensorInfo,
    outputs: Sequence[TensorInfo],
    options: SsdAnchorOptions,
    keypoints: int,
    anchors_from: str,
    labels: tuple[str, ...] = ("object",),
    name: str = "ssd",
    score_threshold: float = 0.5,
    iou_threshold: float = 0.3,
) -> ModelCard:
    """The card of a MediaPipe SSD detector with these anchors (`anchors_from` says where they came
    from; a known configuration also names its labels and thresholds, else MediaPipe's defaults)."""
    graph = f"MediaPipe's {name} graph" if name != "ssd" else "defaults"
    # MediaPipe's graph: letterbox with black, then pixels to [-1, 1]
    size = (options.input_size_height, options.input_size_width)
    pixels = ImageSpec(size, 3, 1 / 127.5, -1.0, "letterbox", pad=0)
    regressors = next(o for o in outputs if o.shape[-1] != 1)
    return ModelCard(
        task="detect",
        labels=labels,
        input=_spec(inp, "NHWC"),
        output=_spec(regressors),
        preprocess=pixels.to_dict(),
        postprocess={
            "format": "ssd-anchors",
            "anchors": options.to_dict(),
            "score_threshold": score_threshold,
            "iou_threshold": iou_threshold,
            "keypoints": keypoints,
            "inferred_from": {
                "task": "tensor shapes (MediaPipe SSD outputs (1, N, 4+2k) and (1, N, 1))",
                "anchors": anchors_from,
                "keypoints": f"tensor shapes ({keypoints} from the regressors' width)",
                "labels": f"{graph}: {', '.join(labels)}",
                "thresholds": f"{graph}: score {score_threshold}, IoU {iou_threshold}",
                "preprocess": "defaults (MediaPipe: letterbox with black, [-1, 1])",
            },
        },
        recipe=f"mediapipe:{name}",
        format=path.suffix.lstrip(".").lower(),
    )


def anchors_card(path: str | Path | ModelFile, anchors: str | Path) -> ModelCard:
    """`edgekit run --anchors FILE`: the card of an SSD detector from a JSON of MediaPipe's
    SsdAnchorsCalculator options; keypoints from the regressors' width."""
    from edgekit.runtime.backends import open_model

    try:
        config = json.loads(Path(anchors).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ModelFileError(f"cannot read the anchors file {anchors}: {e}") from None
    options = SsdAnchorOptions.from_dict(
        config if isinstance(config, dict) else {}, f"anchors file {anchors}"
    )
    file = ModelFile.open(path)
    path = file.path
    with open_model(file) as session:
        found = _ssd_outputs(session.outputs)
        if found is None or len(session.inputs) != 1:
            raise ModelFileError(f"{path.name} has no SSD outputs (1, N, 4+2k) and (1, N, 1) for --anchors")
        n, channels = found
        if len(options.anchors()) != n:
            raise ModelFileError(
                f"the anchors file {anchors} gives {len(options.anchors())} anchors; {path.name} has {n}"
            )
        return ssd_card(
            path, session.inputs[0], session.outputs, options, (channels - 4) // 2, f"--anchors {anchors}"
        )


def _yolo_card(
    file: ModelFile, inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo]
) -> ModelCard | None:
    path = file.path
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
    from edgekit.runtime.labels import COCO_CLASSES  # a YOLO file's names only when one is run

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
            "inferred_from": {
                "task": "tensor shapes (no metadata in the file)",
                "format": f"tensor shapes ({layout}: {c} channels per box)",
                "input size": "tensor shapes" if h and w else f"default ({_YOLO_INPUT})",
                "labels": f"default (COCO's names for {nc} classes)"
                if nc == len(COCO_CLASSES)
                else f"class numbers ({nc} classes in the head, no names in the file)",
                "thresholds": "defaults (conf 0.25, iou 0.45)",
                "preprocess": "defaults (Ultralytics: letterbox with 114, RGB / 255)",
            },
        },
        recipe="ultralytics:yolo",
        format=path.suffix.lstrip(".").lower(),
    )


# --- Ultralytics: the metadata every export carries ------------------------------------------------

# free text in Ultralytics' metadata; every other value is a Python literal (`names` is a dict)
_TEXT_KEYS = ("task", "description", "author", "date", "version", "license", "docs")


def ultralytics_metadata(file: str | Path | ModelFile) -> dict[str, Any]:
    """The metadata an Ultralytics export carries (read by the file's kind: ONNX `metadata_props`,
    the zip appended to a TFLite flatbuffer), values parsed (`ast.literal_eval`, never eval);
    empty for any other file."""
    raw = ModelFile.open(file).metadata
    if "names" not in raw and "task" not in raw:
        return {}
    meta: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str) and key not in _TEXT_KEYS:
            with contextlib.suppress(ValueError, SyntaxError):
                value = ast.literal_eval(value)
        meta[key] = value
    return meta


def _meta_names(meta: dict[str, Any], path: Path) -> tuple[str, ...] | None:
    """`names` as a tuple by class index; one sentence naming the field when it is malformed."""
    names = meta.get("names")
    if names is None:
        return None
    if isinstance(names, list | tuple):
        names = dict(enumerate(names))
    try:
        table = {int(k): str(v) for k, v in names.items()}
    except (AttributeError, TypeError, ValueError):
        raise ModelFileError(f"{path}: metadata field 'names' is not a dict of class index to name") from None
    if sorted(table) != list(range(len(table))):
        raise ModelFileError(
            f"{path}: metadata field 'names' does not number its classes 0 to {len(table) - 1}"
        )
    return tuple(table[i] for i in range(len(table)))


def _ultralytics_card(
    file: ModelFile, inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo]
) -> ModelCard | None:
    """A card from an Ultralytics export's own metadata (names, imgsz, task, end2end), checked against
    its tensors: where the two disagree the tensors win, with a warning naming the field."""
    path = file.path
    if path.suffix.lower() not in (".onnx", ".tflite") or len(inputs) != 1 or len(inputs[0].shape) != 4:
        return None
    meta = ultralytics_metadata(file)
    if not meta:
        return None
    inp = inputs[0]
    nchw = inp.shape[1] == 3 and inp.shape[3] != 3
    h, w = inp.shape[2:4] if nchw else inp.shape[1:3]
    sources = {"task": "file metadata (task)"}
    task = str(meta.get("task", "detect"))
    imgsz = meta.get("imgsz")
    size = (h, w) if h and w else None
    if isinstance(imgsz, int):
        imgsz = [imgsz, imgsz]
    if isinstance(imgsz, list | tuple) and len(imgsz) == 2 and all(isinstance(v, int) for v in imgsz):
        if size is None:
            size, sources["input size"] = (int(imgsz[0]), int(imgsz[1])), "file metadata (imgsz)"
        elif tuple(imgsz) != size:
            warnings.warn(
                f"{path.name}: metadata field 'imgsz' {list(imgsz)} does not match the input tensor "
                f"{list(size)}; using the tensor's",
                stacklevel=2,
            )
            sources["input size"] = "tensor shapes (metadata imgsz disagrees)"
        else:
            sources["input size"] = "tensor shapes = file metadata (imgsz)"
    elif imgsz is not None:
        raise ModelFileError(f"{path}: metadata field 'imgsz' is {imgsz!r}, not [height, width]")
    else:
        sources["input size"] = "tensor shapes" if size else "default (640)"
    size = size or (_YOLO_INPUT, _YOLO_INPUT)
    names = _meta_names(meta, path)
    args = meta.get("args") if isinstance(meta.get("args"), dict) else {}
    end2end = bool(meta.get("end2end") or args.get("nms"))
    fmt = path.suffix.lstrip(".").lower()
    if task == "classify":
        out = outputs[0]
        labels = _checked_names(names, out.shape[-1], path, sources)
        # classify_transforms: short side to the size, centre crop, RGB / 255
        pixels = ImageSpec(size, 3, 1 / 255, 0.0, "crop")
        sources["preprocess"] = "defaults (Ultralytics classify: short side resized, centre crop, RGB / 255)"
        return ModelCard(
            task="classify-image", labels=labels, input=_spec(inp, "NCHW" if nchw else "NHWC"),
            output=_spec(out), preprocess=pixels.to_dict(),
            postprocess={"activation": "softmax", "inferred_from": sources}, recipe=f"ultralytics:{task}",
            format=fmt,
        )  # fmt: skip
    if task not in _TASK_FORMATS:
        raise UnsupportedError(
            f"{path.name} is an Ultralytics {task!r} model; edgekit decodes its "
            f"{', '.join(sorted(_TASK_FORMATS))} and classify exports"
        )
    out = max(
        (o for o in outputs if len(o.shape) == 3), key=lambda o: sum(d or 0 for d in o.shape), default=None
    )
    extra = 0  # per-box channels after the class scores: mask coefficients, keypoints, the angle
    if out is None:
        return None
    pixels = ImageSpec(size, 3, 1 / 255, 0.0, "letterbox", pad=114)
    sources["preprocess"] = "defaults (Ultralytics: letterbox with 114, RGB / 255)"
    post: dict[str, Any] = {"conf": 0.25, "iou": 0.7, "normalized": False}
    sources["thresholds"] = "defaults (Ultralytics predict: conf 0.25, iou 0.7)"
    if end2end:
        # (1, 300, 6): x1, y1, x2, y2, score, class, NMS done in the graph; the class count only in names
        post["format"] = "yolo-end2end"
        sources["format"] = "file metadata (end2end / args.nms) and tensor shapes"
        labels = names if names else tuple(str(i) for i in range(80))
        sources["labels"] = "file metadata (names)" if names else "default (class numbers)"
    elif task != "detect":
        post["format"] = _TASK_FORMATS[task]
        sources["format"] = f"file metadata (task {task})"
        c = [d for d in out.shape[1:] if d]
        if not c:
            return None
        if task == "pose":
            kpt = meta.get("kpt_shape", [17, 3])
            if not (isinstance(kpt, list | tuple) and len(kpt) == 2 and all(isinstance(v, int) for v in kpt)):
                raise ModelFileError(
                    f"{path}: metadata field 'kpt_shape' is {kpt!r}, not [keypoints, values]"
                )
            post["kpt_shape"] = list(kpt)
            from_file = "kpt_shape" in meta
            sources["kpt_shape"] = "file metadata (kpt_shape)" if from_file else "default (COCO 17x3)"
            extra = kpt[0] * kpt[1]
        elif task == "obb":
            extra = 1
        else:  # segment: as many coefficients as the prototypes have channels
            protos = next((o for o in outputs if len(o.shape) == 4), None)
            if protos is None:
                return None
            nm = [d for d in (protos.shape[1], protos.shape[3]) if d and names and 4 + len(names) + d in c]
            extra = nm[0] if nm else protos.shape[1] or 32
        labels = _checked_names(names, min(c) - 4 - extra, path, sources)
    else:
        c = [d for d in out.shape[1:] if d]
        channels = min(c) if c else None
        if channels is None:
            return None
        layout = "yolov8" if names is None or channels == 4 + len(names) else "yolo"
        post["format"] = layout
        sources["format"] = "tensor shapes"
        nc = (
            channels - 4
            if layout == "yolov8"
            else (channels - 5 if channels - 5 == len(names or ()) else channels - 4)
        )
        labels = _checked_names(names, nc, path, sources)
    post["inferred_from"] = sources
    # Ultralytics' TFLite exports give boxes as fractions of the input size
    post["normalized"] = fmt == "tflite"
    return ModelCard(
        task="detect", labels=labels, input=_spec(inp, "NCHW" if nchw else "NHWC"), output=_spec(out),
        preprocess=pixels.to_dict(), postprocess=post, recipe=f"ultralytics:{task}", format=fmt,
    )  # fmt: skip


def _checked_names(
    names: tuple[str, ...] | None, nc: int | None, path: Path, sources: dict[str, str]
) -> tuple[str, ...]:
    """The file's names where their count fits the head's classes; else a warning and class numbers
    (never COCO's or a wrong name in silence)."""
    if names is not None and (nc is None or len(names) == nc):
        sources["labels"] = "file metadata (names)"
        return names
    if names is not None:
        warnings.warn(
            f"{path.name}: metadata field 'names' lists {len(names)} classes but the output has {nc}; "
            "labelling by class number (pass --labels FILE for names)",
            stacklevel=2,
        )
        sources["labels"] = f"class numbers (metadata names has {len(names)}, the head {nc})"
    else:
        sources["labels"] = "class numbers (no names in the file)"
    return tuple(str(i) for i in range(nc or 0))
