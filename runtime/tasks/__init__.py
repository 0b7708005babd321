"""Tasks own pre- and post-processing: raw input -> model feeds, model outputs -> typed results.
Each is bound to one model (its card and tensors) once, so the per-frame path does no lookups.

A task class also answers, without a model: whether it classifies (`classifies`), and its metrics
on a batch of raw outputs (`metrics`), which `edgekit evaluate`, `bench`, export validation and
training reports all read through `edgekit.runtime.scoring`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from edgekit.card import ModelCard
from edgekit.errors import UnsupportedError
from edgekit.registry import Registry
from edgekit.runtime.backends import TensorInfo
from edgekit.runtime.options import TaskOptions
from edgekit.runtime.tensors import reader, to_tensor


@dataclass(frozen=True)
class MetricBar:
    """What a quantized export must keep of one of the task's metrics, in the task's own terms:
    at most `tolerance` worse than Keras's value, as a share of it where `relative` (0.05: 5%)."""

    metric: str
    tolerance: float
    relative: bool = False

    def allowed(self, reference: float) -> float:
        return self.tolerance * abs(reference) if self.relative else self.tolerance


class Task:
    """Base class; subclasses register themselves in TASKS under `name`."""

    name: ClassVar[str] = ""
    accepts: ClassVar[str] = "image"  # the kind of raw input: image, text, audio
    # the dataset loader that reads `--data` for a model whose card names no dataset of its own (a
    # model from elsewhere: `edgekit evaluate yolov8n.onnx --data labelled/`); None: no such loader
    dataset: ClassVar[str | None] = None
    classifies: ClassVar[bool] = False  # one class per input: top-1 agreement, confusion matrices
    # metrics where lower is better (errors); every other one is higher-is-better
    lower_is_better: ClassVar[frozenset[str]] = frozenset()
    # what a quantized (dynamic, int8) export must keep beside the headline's drop in points
    quantized_bars: ClassVar[tuple[MetricBar, ...]] = ()
    # points of the headline a quantized export may lose at least, where the metric is noisier than
    # a classifier's accuracy (a generator's read-back rate): a floor under the mode's bar; None: none
    headline_bar: ClassVar[float | None] = None

    @classmethod
    def metrics(
        cls, card: Any, outputs: Sequence[np.ndarray], y: Any, items: Sequence[Any] | None = None
    ) -> dict[str, float]:
        """The task's metrics for a batch of raw model outputs (one float array per model output,
        the batch first) against the dataset's targets `y`; the first key is the headline. `items`
        are the raw inputs, for tasks whose outputs are relative to the model's input (letterboxed
        boxes)."""
        raise UnsupportedError(f"the {cls.name} task has no metrics to evaluate")

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
        self._read = [reader(info) for info in self.outputs]  # each output's codes -> values, made once

    def preprocess(self, raw: Any) -> list[np.ndarray]:
        raise NotImplementedError

    def postprocess(self, outputs: Sequence[np.ndarray]) -> list[Any]:
        raise NotImplementedError

    def feed(self, x: np.ndarray, index: int = 0) -> np.ndarray:
        """Float input values -> what model input `index` takes (quantized codes where it is int8/uint8)."""
        return to_tensor(x, self.inputs[index])

    def output(self, outputs: Sequence[np.ndarray], index: int = 0) -> np.ndarray:
        """Model output `index` as float values (dequantized where the tensor holds codes)."""
        return self._read[index](outputs[index])

    def scores(self, outputs: Sequence[np.ndarray]) -> np.ndarray:
        """The first output as float32 values."""
        return np.asarray(self.output(outputs), dtype=np.float32)

    def draw(self, frame: np.ndarray, results: Sequence[Any]) -> np.ndarray:
        return frame

    def wrong_source_hint(self, gives: str) -> str:
        """What to give this model instead of a source that gives `gives`: the sources that give what
        it takes (a task may say more: a tensor model's card can be made to read images)."""
        from edgekit.runtime.sources import SOURCES

        fitting = [k.description for k in SOURCES if k.produces == self.accepts]
        return f"give it {' or '.join(fitting[:3])}" if fitting else ""

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
