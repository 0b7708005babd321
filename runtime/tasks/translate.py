"""Translation with an encoder-only model (the seeds' Transformer): text in, one target word per
source position out, decoded greedily.

The card says how: its preprocess is the source `TextSpec` (tokenizer, maxlen, padding and cutting
at the end), its labels are the target vocabulary (0 padding, 1 the unknown word), and its
postprocess says what an unknown source word becomes (`"unknown": "copy"`: the word itself, as a
name passes through a translation, or `"mark"`: the unknown token) and that decoding ends at the
first position predicted as padding. Words past `maxlen` are cut and the result says how many."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgekit.errors import DataError
from edgekit.runtime.tasks import TASKS
from edgekit.runtime.tasks.text import ClassifyText
from edgekit.runtime.text import OOV_ID, PAD_ID, Tokenizer, split_words

UNKNOWN_RULES = ("copy", "mark")


@dataclass(frozen=True)
class Token:
    word: str
    id: int  # the target vocabulary id the model chose
    score: float  # its probability
    copied: bool = False  # an unknown source word passed through (card postprocess "unknown": "copy")

    def to_dict(self) -> dict[str, Any]:
        return {"word": self.word, "id": self.id, "score": round(self.score, 6), "copied": self.copied}


@dataclass(frozen=True)
class Translation:
    text: str
    tokens: tuple[Token, ...]
    dropped_words: int = 0  # source words past the model's maxlen, not translated
    note: str = ""  # said when the input held nothing to translate, or was cut

    def __str__(self) -> str:
        return self.text + (f" ({self.note})" if self.note else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "tokens": [t.to_dict() for t in self.tokens],
            "dropped_words": self.dropped_words,
            "note": self.note,
        }


def target_tokenizer(card: Any) -> Tokenizer:
    """The tokenizer whose ids are the card's labels (the target vocabulary)."""
    from edgekit.runtime.datasets.translate import target_tokenizer as from_labels

    lower = bool(card.preprocess.get("tokenizer", {}).get("lower", True))
    return from_labels(tuple(card.labels), lower)


def token_probabilities(card: Any, scores: np.ndarray, maxlen: int) -> np.ndarray:
    """Float outputs -> (N, maxlen, vocabulary) probabilities, by the card's activation."""
    s = np.asarray(scores, dtype=np.float64).reshape(len(scores), maxlen, -1)
    if card.postprocess.get("activation", "softmax") == "logits":
        e = np.exp(s - s.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    return s


def token_accuracy(card: Any, outputs: Sequence[np.ndarray], y: Any) -> dict[str, float]:
    """The share of target words predicted right at their position, padding ignored; and the share
    of sentences with every word right."""
    maxlen = int(card.preprocess["maxlen"])
    pred = token_probabilities(card, outputs[0], maxlen).argmax(-1)
    spec = card.preprocess
    want = target_tokenizer(card).encode_batch(
        [str(t) for t in y], maxlen, spec.get("padding", "post"), spec.get("truncating", "post")
    )
    words = want != PAD_ID
    right = (pred == want) & words
    if not words.any():
        raise DataError("no target words to score translations against")
    return {
        "token_accuracy": float(right.sum() / words.sum()),
        "sentence_accuracy": float((right.sum(1) == words.sum(1)).mean()),
    }


@TASKS.register()
class Translate(ClassifyText):
    name = "translate"
    dataset = "parallel-csv"
    accepts = "text"
    # one class per position, not per input: no confusion matrix, no top-1 agreement on the whole output
    classifies = False

    @classmethod
    def metrics(
        cls, card: Any, outputs: Sequence[np.ndarray], y: Any, items: Sequence[Any] | None = None
    ) -> dict[str, float]:
        return token_accuracy(card, outputs, y)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # the source tokenizer, its input checks
        self.vocabulary = tuple(self.card.labels)
        target_tokenizer(self.card)  # the labels are a target vocabulary, or one clear sentence
        self.unknown = self.card.postprocess.get("unknown", "copy")
        if self.unknown not in UNKNOWN_RULES:
            raise DataError(
                f"the card's postprocess 'unknown' is {self.unknown!r}: use one of {UNKNOWN_RULES}"
            )
        self._words: list[str] = []
        self._ids = np.zeros(self.spec.maxlen, np.int64)
        self._dropped = 0

    def preprocess(self, raw: str) -> list[np.ndarray]:
        # kept for postprocess (one input at a time): the words an unknown id stands for, and the cut
        words = split_words(raw, self.spec.tokenizer.lower)
        n = self.spec.maxlen
        self._dropped = max(0, len(words) - n)
        self._words = words[-n:] if self.spec.truncating == "pre" else words[:n]
        feeds = super().preprocess(raw)
        self._ids = feeds[0].reshape(-1).astype(np.int64)
        return feeds

    def postprocess(self, outputs: Sequence[np.ndarray]) -> list[Translation]:
        if not self._words:
            return [Translation("", (), 0, "no words to translate")]
        probs = token_probabilities(self.card, self.scores(outputs), self.spec.maxlen)[0]
        # where each source word sits among the padded ids
        start = self.spec.maxlen - len(self._words) if self.spec.padding == "pre" else 0
        tokens: list[Token] = []
        for pos in range(start, self.spec.maxlen):
            best = int(probs[pos].argmax())
            score = float(probs[pos, best])
            i = pos - start
            if i < len(self._words) and self._ids[pos] == OOV_ID and self.unknown == "copy":
                tokens.append(Token(self._words[i], best, score, copied=True))
                continue
            if best == PAD_ID:  # the model says the sentence ends here
                break
            tokens.append(Token(self.vocabulary[best], best, score))
        note = ""
        if self._dropped:
            note = f"{self._dropped} word(s) past the model's {self.spec.maxlen} were not translated"
        return [Translation(" ".join(t.word for t in tokens), tuple(tokens), self._dropped, note)]


