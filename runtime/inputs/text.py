"""Text: strings, made into token ids by the card's tokenizer (`runtime/text.py`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from edgekit.runtime.inputs import INPUT_KINDS, InputKind
from edgekit.runtime.text import TextSpec, text_features

# words for a text model whose tokenizer is not fitted yet (a recipe before training): any will do
SOME_WORDS = ("good", "bad", "film", "plot", "café", "dull", "great", "actor")
# a word no tokenizer fitted on real text holds: generated texts have out-of-vocabulary words too
UNKNOWN_WORD = "edgekitunseenword"


class TextInput(InputKind):
    name = "text"

    def features(self, preprocess: Mapping[str, Any], raw: Iterable[str]) -> np.ndarray:
        """A batch of texts -> (N, maxlen) int32 token ids, by the card's `TextSpec`."""
        return text_features(preprocess, raw)

    def generate(self, preprocess: Mapping[str, Any], n: int, seed: int = 0) -> np.ndarray:
        """Texts of words drawn from the card's vocabulary (and one unknown word), from one word to
        the model's full length, so every id, padding and out-of-vocabulary occur."""
        rng = np.random.default_rng(seed)
        if "tokenizer" in preprocess:
            spec = TextSpec.from_dict(preprocess)
            words, longest = (*spec.tokenizer.words, UNKNOWN_WORD), spec.maxlen
        else:
            words, longest = SOME_WORDS, 11
        lengths = rng.integers(1, longest + 1, n)
        return np.array([" ".join(rng.choice(words, size=k)) for k in lengths], dtype=object)

    def blank(self, preprocess: Mapping[str, Any]) -> str:
        return "a short sentence to time the model on"


INPUT_KINDS.add(TextInput())
