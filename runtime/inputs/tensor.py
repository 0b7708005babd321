"""Tensors: arrays the model takes as they are (a plain Keras model exported with no task, or a
`.tflite`/`.onnx` file with no card).

A raw item is one inference's input, batch dimension included (`(1, 20, 8)`), as `edgekit run
--source x.npy` feeds it; the card's `preprocess["sample"]` says the input's shape (no batch), dtype
and value range, so that inputs can be generated for a model that came with no data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgekit.runtime.inputs import INPUT_KINDS, InputKind

FREE_SIZE = 16  # a free (None) dimension, when inputs are generated


def sample_spec(preprocess: Mapping[str, Any]) -> tuple[tuple[int, ...], np.dtype, tuple[float, float]]:
    """(shape without batch, free sizes filled; dtype; (low, high)) of generated inputs: from the
    `sample` an export writes, or from the first of the `inputs` a file with no card shows (its
    batched shape; integers over a small non-negative range, as ids and codes are)."""
    sample = dict(preprocess.get("sample") or {})
    if not sample and preprocess.get("inputs"):
        first = preprocess["inputs"][0]
        dtype = np.dtype(first.get("dtype", "float32"))
        sample = {"shape": list(first["shape"])[1:], "dtype": dtype.name}
        if dtype.kind in "iu":
            sample["range"] = (0, min(int(np.iinfo(dtype).max), 127))
    shape = tuple(FREE_SIZE if d is None else int(d) for d in sample.get("shape", ()))
    low, high = sample.get("range", (-1.0, 1.0))
    return shape, np.dtype(sample.get("dtype", "float32")), (float(low), float(high))


class TensorInput(InputKind):
    name = "tensor"

    def features(self, preprocess: Mapping[str, Any], raw: Sequence[Any]) -> np.ndarray:
        """Items (each with its batch of 1) -> one batch, the values as they are."""
        x = np.asarray(raw)
        rank = len(sample_spec(preprocess)[0])
        if x.ndim == rank + 2:  # items that carry their own batch dimension
            x = x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])
        return x

    def generate(self, preprocess: Mapping[str, Any], n: int, seed: int = 0) -> np.ndarray:
        """Uniform values over the input's range (token ids below the vocabulary size), `n` items."""
        shape, dtype, (low, high) = sample_spec(preprocess)
        rng = np.random.default_rng(seed)
        if dtype.kind in "iub":
            x = rng.integers(int(low), int(high), size=(n, 1, *shape), endpoint=True)
        else:
            x = rng.uniform(low, high, size=(n, 1, *shape))
        return x.astype(dtype)

    def blank(self, preprocess: Mapping[str, Any]) -> np.ndarray:
        shape, dtype, _ = sample_spec(preprocess)
        return np.zeros((1, *shape), dtype)


INPUT_KINDS.add(TensorInput())
