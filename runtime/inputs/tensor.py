"""Tensors: arrays fed to a model as they are (a file with no card: `edgekit run x.tflite --source
x.npy`). The card's `preprocess["inputs"]` lists each input's name, shape and dtype."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgekit.errors import ConfigError
from edgekit.runtime.inputs import INPUT_KINDS, InputKind
from edgekit.runtime.tensors import random_tensor


def _inputs(preprocess: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    inputs = preprocess.get("inputs")
    if not inputs:
        raise ConfigError("a tensor model's card lists no inputs to make arrays for")
    return list(inputs)


class TensorInput(InputKind):
    name = "tensor"

    def features(self, preprocess: Mapping[str, Any], raw: Sequence[Any]) -> np.ndarray:
        """A batch of arrays for the model's first input, stacked as they are."""
        return np.stack([np.asarray(item) for item in raw])

    def generate(self, preprocess: Mapping[str, Any], n: int, seed: int = 0) -> np.ndarray:
        """`n` arrays for the first input, spread over its dtype's range (without the batch axis)."""
        first = _inputs(preprocess)[0]
        rng = np.random.default_rng(seed)
        return random_tensor((n, *first["shape"][1:]), np.dtype(first["dtype"]), rng)

    def blank(self, preprocess: Mapping[str, Any]) -> list[np.ndarray]:
        """Zeros for every input, as the model takes them."""
        return [np.zeros(i["shape"], np.dtype(i["dtype"])) for i in _inputs(preprocess)]


INPUT_KINDS.add(TensorInput())
