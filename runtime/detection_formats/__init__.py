"""Detection formats: how a detector's raw outputs become boxes, one module per format.

A card names its format in `postprocess["format"]`; `FORMATS` (this package, scanned) maps that name
to a `DetectionFormat`, which owns, in one place:

- `settings(card, options)`: the card's `postprocess` (thresholds with the run's `--conf`, `--iou`
  overrides) parsed once into one frozen dataclass, so a bad card fails when the model is opened;
- `bind(settings, outputs)`: the per-frame decoder for the `detect` task, with the model's outputs
  chosen by shape once (never by name), so a frame costs only the decoding;
- `decode_batch(settings, outputs, sizes)`: a batch of raw float outputs -> each image's detections
  in normalised corners, for mAP (`edgekit.runtime.detection_metrics`). By default it runs the
  per-frame decoder on each image, so the two cannot disagree.

Adding a format is adding one module here."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from edgekit.card import ModelCard
from edgekit.errors import ModelFileError, UnknownNameError
from edgekit.registry import Registry
from edgekit.runtime.backends import TensorInfo
from edgekit.runtime.detection import Detection, LetterboxInfo, letterbox_info
from edgekit.runtime.options import TaskOptions
from edgekit.runtime.preprocess import ImageSpec

if TYPE_CHECKING:
    from edgekit.runtime.detection_metrics import ImageDetections

# one frame's raw outputs (batch 1, in the model's output order) and how the frame was fitted to the
# input -> detections in pixels of the original frame (input pixels when the info is None)
FrameDecoder = Callable[[Sequence[np.ndarray], LetterboxInfo | None], list[Detection]]
NO_OPTIONS = TaskOptions()  # a run that overrides nothing: the card's own thresholds


@dataclass(frozen=True)
class DetectionSettings:
    """What every format reads from a card: labels, score and NMS thresholds, the input image."""

    labels: tuple[str, ...] = ()
    conf: float = 0.25  # score threshold
    iou: float = 0.45  # NMS IoU threshold
    max_det: int = 300
    input: ImageSpec | None = None  # the card's preprocess: input size and how frames are fitted

    def label(self, class_id: int) -> str:
        """The name of a class id; the id itself where the card has no name for it."""
        return self.labels[class_id] if class_id < len(self.labels) else str(class_id)


def common_settings(
    card: ModelCard,
    options: TaskOptions,
    *,
    conf: tuple[str, float] = ("conf", 0.25),
    iou: tuple[str, float] = ("iou", 0.45),
    max_det: int = 300,
) -> dict[str, Any]:
    """The DetectionSettings fields of a card, as keyword arguments: the `(card key, default)` of
    each threshold, overridden by the run's options. Threshold parsing is written only here."""
    pp = card.postprocess
    try:
        values = {
            "conf": float(options.conf if options.conf is not None else pp.get(conf[0], conf[1])),
            "iou": float(options.iou if options.iou is not None else pp.get(iou[0], iou[1])),
            "max_det": int(pp.get("max_det", max_det)),
        }
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"model card field postprocess has a bad threshold: {e}") from None
    return {**values, "labels": tuple(card.labels), "input": ImageSpec.from_dict(card.preprocess)}


class DetectionFormat:
    """One detection format; subclasses register an instance in FORMATS under `name`."""

    name: ClassVar[str] = ""

    def settings(self, card: ModelCard, options: TaskOptions = NO_OPTIONS) -> DetectionSettings:
        raise NotImplementedError

    def bind(self, settings: Any, outputs: Sequence[TensorInfo]) -> FrameDecoder:
        raise NotImplementedError

    def decode_batch(
        self, settings: Any, outputs: Sequence[np.ndarray], sizes: Sequence[tuple[int, int]] | None = None
    ) -> list[ImageDetections]:
        """Raw float outputs of a batch (one array per model output, batch first) -> each image's
        detections in corners normalised to the image. `sizes` are the images' (height, width)
        where frames were letterboxed (boxes are then mapped back as the detect task maps them);
        None: each image is the model's input."""
        from edgekit.runtime.detection_metrics import ImageDetections  # evaluation's, not a run's

        decode = self.bind(
            settings, [TensorInfo(f"output{i}", (1, *o.shape[1:]), o.dtype) for i, o in enumerate(outputs)]
        )
        size = settings.input.size
        resize = settings.input.resize
        found = []
        for n in range(len(outputs[0]) if outputs else 0):
            h, w = sizes[n] if sizes is not None else size
            info = letterbox_info((h, w), size, keep_aspect=resize == "letterbox")
            dets = decode([o[n : n + 1] for o in outputs], info)
            boxes = np.array([d.box for d in dets], dtype=np.float64).reshape(-1, 4) / (w, h, w, h)
            found.append(
                ImageDetections(
                    boxes,
                    np.array([d.score for d in dets], dtype=np.float64),
                    np.array([d.class_id for d in dets], dtype=np.int64),
                )
            )
        return found


FORMATS: Registry[DetectionFormat] = Registry("detection format", package=__name__)


def detection_format(card: ModelCard) -> DetectionFormat:
    """The format the card's `postprocess["format"]` names; one sentence naming the known ones if none."""
    fmt = card.postprocess.get("format")
    if isinstance(fmt, str):  # by the module its name says first: BlazeFace imports no YOLO decoder
        with contextlib.suppress(UnknownNameError):
            return FORMATS.get(fmt)
    raise ModelFileError(
        f"model card field postprocess.format is {fmt!r}: use one of {', '.join(sorted(FORMATS.names()))}"
    )


def output_shapes(outputs: Sequence[TensorInfo]) -> str:
    """The model's output shapes, for an error that says what was found."""
    return ", ".join(str(tuple(o.shape)) for o in outputs)
