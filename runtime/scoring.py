"""A model file on a dataset split: its raw outputs as float arrays, and the task's metrics on them.

The same code serves `edgekit evaluate`, `bench`'s accuracy column, export validation and training
reports, so a number means the same thing everywhere. numpy only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgekit.runtime.tasks import get_task
from edgekit.runtime.tensors import from_tensor


def evaluate_outputs(
    card: Any, outputs: Sequence[np.ndarray] | np.ndarray, y: Any, items: Sequence[Any] | None = None
) -> dict[str, float]:
    """The card's task's metrics for a batch of raw model outputs against the dataset's targets."""
    if isinstance(outputs, np.ndarray):
        outputs = [outputs]
    return get_task(card.task).metrics(card, list(outputs), y, items)


def float_outputs(predictor: Any, outputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """One inference's outputs, dequantized where the tensor is integer."""
    return [
        np.asarray(from_tensor(value, info), dtype=np.float32)
        for value, info in zip(outputs, predictor.session.outputs)
    ]


def raw_outputs(predictor: Any, items: Sequence[Any]) -> list[np.ndarray]:
    """Every item through preprocess and the model: one float array per model output, batch first."""
    rows = [float_outputs(predictor, predictor.infer(item)) for item in items]
    if not rows:
        return []
    return [np.concatenate([r[i].reshape(1, *r[i].shape[1:]) for r in rows]) for i in range(len(rows[0]))]


def evaluate(predictor: Any, x: Sequence[Any], y: Any) -> dict[str, Any]:
    """The task's metrics of a model over raw items `x` with targets `y`, and its raw outputs."""
    outputs = raw_outputs(predictor, x)
    return {"metrics": evaluate_outputs(predictor.card, outputs, y, x), "outputs": outputs}
