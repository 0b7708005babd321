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
        for value, info in zip(outputs, predictor.session.outputs, strict=False)
    ]


def raw_outputs(predictor: Any, items: Sequence[Any]) -> list[np.ndarray]:
    """Every item through preprocess and the model: one float array per model output, batch first."""
    rows = [float_outputs(predictor, predictor.infer(item)) for item in items]
    if not rows:
        return []
    return [np.concatenate([r[i].reshape(1, *r[i].shape[1:]) for r in rows]) for i in range(len(rows[0]))]


def non_finite_rows(outputs: Sequence[np.ndarray]) -> np.ndarray:
    """A boolean per item: True where any of its outputs holds NaN or inf."""
    bad = np.zeros(len(outputs[0]) if outputs else 0, dtype=bool)
    for out in outputs:
        if out.dtype.kind in "fc":
            bad |= ~np.isfinite(out.reshape(len(out), -1)).all(axis=1)
    return bad


def evaluate(predictor: Any, x: Sequence[Any], y: Any) -> dict[str, Any]:
    """The task's metrics of a model over raw items `x` with targets `y`, its raw outputs, and
    `non_finite`: how many items the model gave NaN or inf for. Those items count as wrong: the
    metrics are those of the other items scaled by their share (exact for accuracy, a per-item
    mean; every metric here is a fraction where higher is better), and `metrics["non_finite"]`
    says how many there were, so a damaged model never scores as if they were not there."""
    outputs = raw_outputs(predictor, x)
    bad = non_finite_rows(outputs)
    if not bad.any():
        return {
            "metrics": evaluate_outputs(predictor.card, outputs, y, x),
            "outputs": outputs,
            "non_finite": 0,
        }
    good = ~bad
    n, n_bad = len(bad), int(bad.sum())
    metrics: dict[str, Any] = {}
    if good.any():
        kept = [o[good] for o in outputs]
        items = [item for item, ok in zip(x, good, strict=True) if ok]
        scores = evaluate_outputs(predictor.card, kept, _take(y, good), items)
        metrics = {k: v * (n - n_bad) / n if isinstance(v, float) else v for k, v in scores.items()}
    metrics["non_finite"] = n_bad
    return {"metrics": metrics, "outputs": outputs, "non_finite": n_bad}


def _take(y: Any, keep: np.ndarray) -> Any:
    """The targets of the kept items: an array's rows, or a list's entries (boxes per image)."""
    if isinstance(y, np.ndarray):
        return y[keep]
    return [t for t, ok in zip(y, keep, strict=True) if ok]
