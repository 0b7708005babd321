"""Task metrics on model outputs, numpy only: the same numbers from `edgekit evaluate`, export
validation and `bench`, on a laptop or on a device.

`METRICS` maps a task name to `(card, outputs, y) -> {"metric name": value, ...}`; the first key is
the task's headline metric. `outputs` are the model's raw outputs for a batch (one array per model
output, the batch first); `y` is the split's targets as the dataset holds them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from edgekit.registry import Registry

MetricFn = Callable[[Any, Sequence[np.ndarray], Any], dict[str, float]]
# segment (IoU/Dice) and detect (mAP@0.5) register themselves beside their tasks
METRICS: Registry[MetricFn] = Registry(
    "metric",
    modules=(
        "edgekit.runtime.tasks.segment",
        "edgekit.runtime.detection_metrics",
        "edgekit.runtime.tasks.translate",
    ),
)


def class_probabilities(card: Any, scores: np.ndarray) -> np.ndarray:
    """A classifier's float outputs (N, C) or (N, 1) -> probabilities (N, C), by the card's activation."""
    s = np.asarray(scores, dtype=np.float64).reshape(len(scores), -1)
    activation = card.postprocess.get("activation", "softmax")
    if activation == "sigmoid" and s.shape[1] == 1:  # one unit: P(class 1)
        return np.concatenate([1.0 - s, s], axis=1)
    if activation == "logits":
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return s


def accuracy(card: Any, outputs: Sequence[np.ndarray], y: Any) -> dict[str, float]:
    """Top-1 accuracy of a classifier."""
    probs = class_probabilities(card, outputs[0])
    return {"accuracy": float((probs.argmax(1) == np.asarray(y)).mean())}


for _task in ("classify-image", "classify-text", "classify-audio"):
    METRICS.add(accuracy, _task)



def evaluate_outputs(card: Any, outputs: Sequence[np.ndarray] | np.ndarray, y: Any) -> dict[str, float]:
    """The task's metrics for a batch of raw model outputs against the dataset's targets."""
    if isinstance(outputs, np.ndarray):
        outputs = [outputs]
    return METRICS.get(card.task)(card, list(outputs), y)
