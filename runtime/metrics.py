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
