"""Input kinds: everything edgekit knows about one kind of raw input (image, text, audio), in one
object per kind, one module each.

An `InputKind` turns a batch of raw items into the model's input (`features`, which training, export
validation, `evaluate` and the runtime tasks all call), makes raw items for a model that has no data
(`generate`: export validation of a user's model, the tests' made-up datasets) and gives one neutral
item to time a model on (`blank`). A card names its kind in `preprocess["kind"]` ("image" if absent).
A new kind is one new module here: the registry finds it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from edgekit.registry import Registry


class InputKind:
    """One kind of raw input; each method takes the card's (or recipe's) `preprocess` mapping."""

    name: ClassVar[str] = ""

    def features(self, preprocess: Mapping[str, Any], raw: Sequence[Any]) -> np.ndarray:
        """A batch of raw items -> the model's input batch, one row per item."""
        raise NotImplementedError

    def generate(self, preprocess: Mapping[str, Any], n: int, seed: int = 0) -> Any:
        """`n` raw items of this kind made up for the model (no labels, no meaning): enough to
        compare an artifact with Keras, never to measure accuracy."""
        raise NotImplementedError

    def blank(self, preprocess: Mapping[str, Any]) -> Any:
        """One neutral raw item (black image, silence, a plain sentence), for timing."""
        raise NotImplementedError

    def input_shape(self, preprocess: Mapping[str, Any], declared: tuple[int, ...]) -> tuple[int, ...]:
        """The model's input shape (no batch) these features make: the recipe's `declared` one,
        unless fitting the preprocessing decided it (a table's one-hot columns)."""
        return tuple(declared)


INPUT_KINDS: Registry[InputKind] = Registry("input kind", package=__name__)


def input_kind(preprocess: Mapping[str, Any]) -> InputKind:
    """The kind of raw input a card's `preprocess` describes."""
    return INPUT_KINDS.get(str(preprocess.get("kind", "image")))


def input_kind_names() -> list[str]:
    return INPUT_KINDS.names()
