"""Tasks own pre- and post-processing: raw input -> model feeds, model outputs -> typed results.
Each is bound to one model (its card and tensors) once, so the per-frame path does no lookups."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from edgekit.card import ModelCard
from edgekit.registry import Registry
from edgekit.runtime.backends import TensorInfo
from edgekit.runtime.preprocess import dequantize


@dataclass(frozen=True)
class TaskOptions:
    """Run-time choices that override the card's defaults; None keeps the card's value."""

    top_k: int = 5
    conf: float | None = None  # detection score threshold
    iou: float | None = None  # detection NMS IoU threshold
    classes: tuple[int, ...] | None = None  # keep only detections of these class ids


class Task:
    """Base class; subclasses register themselves in TASKS under `name`."""

    name: ClassVar[str] = ""
    accepts: ClassVar[str] = "image"  # the kind of raw input: image, text, audio

    def __init__(
        self,
        card: ModelCard,
        inputs: Sequence[TensorInfo],
        outputs: Sequence[TensorInfo],
        options: TaskOptions,
    ) -> None:
        self.card = card
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.options = options

    def preprocess(self, raw: Any) -> list[np.ndarray]:
        raise NotImplementedError

    def postprocess(self, outputs: Sequence[np.ndarray]) -> list[Any]:
        raise NotImplementedError

    def scores(self, outputs: Sequence[np.ndarray]) -> np.ndarray:
        """The first output as float values (dequantized when the tensor is integer)."""
        out, info = outputs[0], self.outputs[0]
        if info.quant is not None and out.dtype.kind in "iu":
            return dequantize(out, *info.quant)
        return np.asarray(out, dtype=np.float32)

    def draw(self, frame: np.ndarray, results: Sequence[Any]) -> np.ndarray:
        return frame

    def blank_input(self) -> Any:
        """One neutral raw input this model takes (black frame, silence, a plain sentence), to time
        it where no data is at hand; the card's input kind says what that is."""
        from edgekit.runtime.inputs import input_kind

        return input_kind(self.card.preprocess).blank(self.card.preprocess)


TASKS: Registry[type[Task]] = Registry("task", package=__name__)


def get_task(name: str) -> type[Task]:
    return TASKS.get(name)


def task_names() -> list[str]:
    return TASKS.names()
