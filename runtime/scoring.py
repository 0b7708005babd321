"""A model file on a dataset split: its raw outputs as float arrays, and the task's metrics on them.

The same code serves `edgekit evaluate`, `bench`'s accuracy column and export validation, so a
number means the same thing everywhere. numpy only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgekit.runtime.metrics import evaluate_outputs
from edgekit.runtime.preprocess import dequantize


def float_outputs(predictor: Any, outputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """One inference's outputs, dequantized where the tensor is integer."""
    out = []
    for value, info in zip(outputs, predictor.session.outputs):
        if info.quant is not None and np.asarray(value).dtype.kind in "iu":
            value = dequantize(value, *info.quant)
        out.append(np.asarray(value, dtype=np.float32))
    return out


def raw_outputs(predictor: Any, items: Sequence[Any]) -> list[np.ndarray]:
    """Every item through preprocess and the model: one float array per model output, batch first."""
    rows = [float_outputs(predictor, predictor.infer(item)) for item in items]
    if not rows:
        return []
    return [np.concatenate([r[i].reshape(1, *r[i].shape[1:]) for r in rows]) for i in range(len(rows[0]))]


def evaluate(predictor: Any, x: Sequence[Any], y: Any) -> dict[str, Any]:
    """The task's metrics of a model over raw items `x` with targets `y`, and its raw outputs."""
    outputs = raw_outputs(predictor, x)
    return {"metrics": evaluate_outputs(predictor.card, outputs, y), "outputs": outputs}
