"""Metric functions shared by tasks, numpy only: the same numbers on a laptop or on a device.

Each task class says which metrics it reports (`Task.metrics`); `edgekit.runtime.scoring` asks it.
Functions here take `(card, outputs, y)`: a batch of raw model outputs (one array per model output,
the batch first) and the split's targets as the dataset holds them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


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


def precision_recall_f1(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class precision, recall, F1 and support from a confusion matrix (rows the true class).

    A class never predicted has precision 0, and one never present has recall 0 (scikit-learn's
    `zero_division=0`): a 0/0 is reported as 0, never NaN, so averages and JSON stay plain numbers."""
    m = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(m)
    predicted, support = m.sum(axis=0), m.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(tp), where=both > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64)}


def averaged(per_class: dict[str, np.ndarray]) -> dict[str, float]:
    """Macro (every class alike) and weighted (by support) averages of precision, recall and F1.

    Macro averages over every class of the matrix, absent ones included (as scikit-learn does with
    `labels=` given), so a class the data lacks counts as 0 rather than vanishing."""
    support = per_class["support"]
    total = support.sum()
    out: dict[str, float] = {}
    for kind in ("precision", "recall", "f1"):
        values = per_class[kind]
        out[f"macro_{kind}"] = float(values.mean()) if values.size else 0.0
    for kind in ("precision", "recall", "f1"):
        values = per_class[kind]
        out[f"weighted_{kind}"] = float((values * support).sum() / total) if total else 0.0
    return out


def classification_scores(predicted: Any, actual: Any, labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy first (the headline every table shows), the macro and weighted averages, then
    `per_class`: {label: {precision, recall, f1, support}}."""
    from edgekit.plots import confusion_matrix

    actual = np.asarray(actual, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    classes = max(len(labels), int(actual.max(initial=-1)) + 1, int(predicted.max(initial=-1)) + 1)
    names = [labels[i] if i < len(labels) else str(i) for i in range(classes)]
    per_class = precision_recall_f1(confusion_matrix(predicted, actual, classes))
    scores: dict[str, Any] = {"accuracy": float((predicted == actual).mean()) if actual.size else 0.0}
    scores.update(averaged(per_class))
    scores["per_class"] = {
        name: {
            "precision": float(per_class["precision"][i]),
            "recall": float(per_class["recall"][i]),
            "f1": float(per_class["f1"][i]),
            "support": int(per_class["support"][i]),
        }
        for i, name in enumerate(names)
    }
    return scores


def classifier_metrics(card: Any, outputs: Sequence[np.ndarray], y: Any) -> dict[str, Any]:
    """A classifier's accuracy, precision, recall and F1 (per class and averaged) on raw outputs."""
    probs = class_probabilities(card, outputs[0])
    return classification_scores(probs.argmax(1), y, tuple(card.labels))
