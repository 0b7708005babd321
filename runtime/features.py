"""Raw inputs -> model inputs, as a batch, by the card's `preprocess["kind"]`.

Training, export validation, `evaluate` and the runtime tasks all call `features`, so a model sees
the same numbers everywhere. Each kind (image, text, audio) is an `InputKind` in
`runtime/inputs/`. `model_inputs` and `card_inputs` are the same for a dataset split, by the
preprocess a recipe is training with or the card a trained model carries. numpy only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgekit.card import ModelCard
from edgekit.runtime.inputs import input_kind


def features(
    preprocess: Mapping[str, Any], raw: Sequence[Any], input_shape: tuple[int | None, ...] | None = None
) -> np.ndarray:
    """A batch of raw items -> the model's input batch (float32, or integer ids), reshaped to
    `input_shape` (no batch dimension) if given."""
    x = input_kind(preprocess).features(preprocess, raw)
    if input_shape is not None:
        x = x.reshape((len(x), *input_shape))
    x = np.asarray(x)
    # integer features (token ids) stay integer; floats are the model's float32
    return x if x.dtype.kind in "iu" else x.astype(np.float32, copy=False)


def model_inputs(preprocess: Mapping[str, Any], input_shape: tuple[int, ...], split: Any) -> np.ndarray:
    """A dataset split's raw items (`split.x`) -> what the model takes, at `input_shape` (no batch)."""
    return features(preprocess, split.x, input_shape)


def card_inputs(card: ModelCard, split: Any) -> np.ndarray:
    """`model_inputs` for a trained model, by its card's preprocess and input shape."""
    return model_inputs(card.preprocess, tuple(card.input.shape[1:]), split)
