"""Text pre-processing, numpy only: a word tokenizer whose vocabulary and rules go into the card.

Training and the device call these same functions, so a model sees the same ids in both places.

The splitting rules (`RULES`, recorded in the card so a later change cannot silently alter ids):
1. Unicode NFC normalisation, so a composed and a decomposed "é" are the same word;
2. lower-casing (`str.lower`) when `lower=True`, as Keras' Tokenizer does;
3. letters, combining marks and digits (Unicode categories L*, M*, N*) make words, in any script;
4. each CJK ideograph is a word of its own (Chinese writes no spaces; BERT does the same);
5. each emoji or other symbol of category So is a word of its own (they carry sentiment);
   skin-tone modifiers, joiners and variation selectors are dropped;
6. apostrophes (' ’ ʼ) become ' and are kept inside words ("don't") but stripped at their ends;
7. everything else (punctuation, including _, other symbols, whitespace, controls) separates words.

A character table rather than a `\\w` regex: `\\w` excludes combining marks, so it would cut
Hindi, Thai or a decomposed accent in the middle of a word.

`TextSpec` is the card's preprocess for text models (kind "text"): the tokenizer plus the fixed
sequence length and Keras pad/truncate sides. The model input is int32 token ids: an Embedding
looks rows up by integer, and an id must never be scaled or quantized like a pixel.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from edgekit.errors import ConfigError, DataError

__all__ = ["PAD_ID", "OOV_ID", "RULES", "TextSpec", "Tokenizer", "split_words", "text_features"]

PAD_ID = 0
OOV_ID = 1
RULES = "edgekit-words-1"  # bump when split_words changes what it returns

_APOSTROPHES = "'\u2019\u02bc"
_CJK_RANGES = (
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x323AF),
    (0x2F800, 0x2FA1F),
)


class _CharMap(dict):
    """str.translate table filled on first sight of each character, so translate stays in C."""

    def __missing__(self, cp: int) -> str:
        ch = chr(cp)
        cat = unicodedata.category(ch)
        if ch in _APOSTROPHES:
            out = "'"
        elif 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF or (cat == "Cf" and cp != 0x200B):
            out = ""  # variation selectors, ZWJ, soft hyphen, BOM: invisible, part of their neighbour
        elif any(lo <= cp <= hi for lo, hi in _CJK_RANGES) or cat == "So":
            out = f" {ch} "
        elif cat[0] in "LMN":
            out = ch
        else:
            out = " "
        self[cp] = out
        return out


_CHARS = _CharMap()


def split_words(text: str, lower: bool = True) -> list[str]:
    """Split `text` into words by the rules in this module's docstring (RULES)."""
    if not isinstance(text, str):
        raise DataError(f"text must be a str, got {type(text).__name__}")
    text = unicodedata.normalize("NFC", text)
    if lower:
        text = text.lower()
    words = (w.strip("'") for w in text.translate(_CHARS).split())
    return [w for w in words if w]


@dataclass(frozen=True)
class Tokenizer:
    """Words to ids: 0 is padding, 1 is out-of-vocabulary, `words[i]` is id i + 2.

    Build it with `Tokenizer.fit(texts)`, or from a card with `Tokenizer.from_dict`."""

    words: tuple[str, ...]
    lower: bool = True
    oov_token: str = "<unk>"
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.words, tuple) or not all(isinstance(w, str) and w for w in self.words):
            raise ConfigError("Tokenizer words must be a tuple of non-empty strings")
        if not isinstance(self.oov_token, str) or not self.oov_token:
            raise ConfigError(f"Tokenizer oov_token must be a non-empty string, got {self.oov_token!r}")
        if not isinstance(self.lower, bool):
            raise ConfigError(f"Tokenizer lower must be true or false, got {self.lower!r}")
        index = {w: i + 2 for i, w in enumerate(self.words)}
        if len(index) != len(self.words):
            dup = next(w for w, n in Counter(self.words).items() if n > 1)
            raise ConfigError(f"Tokenizer vocabulary holds {dup!r} twice")
        object.__setattr__(self, "_index", index)

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size}, lower={self.lower}, oov_token={self.oov_token!r})"

    @classmethod
    def fit(
        cls,
        texts: Iterable[str],
        num_words: int | None = None,
        lower: bool = True,
        oov_token: str = "<unk>",
    ) -> Tokenizer:
        """Build the vocabulary from `texts`, most frequent first (ties: first seen first, as Keras).

        `num_words` counts ids as Keras does, padding and OOV included, so it is the vocab_size
        and the Embedding's input_dim: the num_words - 2 most frequent words are kept."""
        if isinstance(texts, str):
            raise DataError("Tokenizer.fit takes a list of texts, got a single str")
        if num_words is not None and (
            not isinstance(num_words, int) or isinstance(num_words, bool) or num_words < 2
        ):
            raise ConfigError(f"num_words must be at least 2 (padding and OOV), got {num_words!r}")
        counts: Counter[str] = Counter()
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise DataError(f"text {i} must be a str, got {type(text).__name__}")
            counts.update(split_words(text, lower))
        counts.pop(oov_token, None)  # the OOV token already has id 1
        # Counter keeps first-seen order and sorted() is stable, so ties keep that order
        ranked = [w for w, _ in sorted(counts.items(), key=lambda kv: -kv[1])]
        if num_words is not None:
            ranked = ranked[: num_words - 2]
        return cls(words=tuple(ranked), lower=lower, oov_token=oov_token)

    @property
    def vocab_size(self) -> int:
        """Number of ids, padding and OOV included: the Embedding's input_dim."""
        return len(self.words) + 2

    @property
    def word_index(self) -> Mapping[str, int]:
        """Read-only word -> id mapping, the OOV token included (as Keras' word_index)."""
        return MappingProxyType({self.oov_token: OOV_ID, **self._index})

    def encode(self, text: str) -> list[int]:
        """The ids of the words of `text`; unknown words are OOV_ID, an empty text gives []."""
        index = self._index
        return [index.get(w, OOV_ID) for w in split_words(text, self.lower)]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Words for ids, for reading what a model saw; padding is skipped."""
        return [self.oov_token if i == OOV_ID else self.words[i - 2] for i in map(int, ids) if i != PAD_ID]

    def encode_batch(
        self,
        texts: Iterable[str],
        maxlen: int | None = None,
        padding: str = "pre",
        truncating: str = "pre",
    ) -> np.ndarray:
        """Encode and pad to (len(texts), maxlen) int32, as keras pad_sequences does.

        `maxlen=None` uses the longest text; "pre" pads or cuts at the start, "post" at the end."""
        for name, value in (("padding", padding), ("truncating", truncating)):
            if value not in ("pre", "post"):
                raise ConfigError(f"{name} must be 'pre' or 'post', got {value!r}")
        if maxlen is not None and (not isinstance(maxlen, int) or isinstance(maxlen, bool) or maxlen < 0):
            raise ConfigError(f"maxlen must be a non-negative integer or None, got {maxlen!r}")
        if isinstance(texts, str):
            raise DataError("encode_batch takes a list of texts, got a single str")
        seqs = []
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise DataError(f"text {i} must be a str, got {type(text).__name__}")
            seqs.append(self.encode(text))
        if maxlen is None:
            maxlen = max(map(len, seqs), default=0)
        out = np.full((len(seqs), maxlen), PAD_ID, dtype=np.int32)
        for row, seq in zip(out, seqs, strict=True):
            seq = seq[-maxlen:] if truncating == "pre" else seq[:maxlen]
            if maxlen == 0 or not seq:
                continue
            if padding == "pre":
                row[maxlen - len(seq) :] = seq
            else:
                row[: len(seq)] = seq
        return out

    def to_dict(self) -> dict[str, Any]:
        """Vocabulary and rules as plain JSON values, for the model card."""
        return {"rules": RULES, "lower": self.lower, "oov_token": self.oov_token, "words": list(self.words)}

    @classmethod
    def from_dict(cls, d: Any) -> Tokenizer:
        """Rebuild from `to_dict()`; unknown keys, other rules or bad values raise DataError."""
        if not isinstance(d, dict):
            raise DataError(f"tokenizer must be a mapping, got {type(d).__name__}")
        unknown = sorted(set(d) - {"rules", "lower", "oov_token", "words"})
        if unknown:
            raise DataError(f"unknown tokenizer field(s) {', '.join(map(repr, unknown))}")
        if d.get("rules") != RULES:
            raise DataError(
                f"tokenizer rules {d.get('rules')!r} are not the rules this edgekit splits text by "
                f"({RULES!r}): ids would differ; re-train or upgrade edgekit"
            )
        words = d.get("words")
        if not isinstance(words, list):
            raise DataError(f"tokenizer field 'words' must be a list, got {type(words).__name__}")
        try:
            return cls(words=tuple(words), lower=d.get("lower", True), oov_token=d.get("oov_token", "<unk>"))
        except ConfigError as e:
            raise DataError(f"tokenizer in the card is malformed: {e}") from None


_SIDES = ("pre", "post")


@dataclass(frozen=True)
class TextSpec:
    """How raw text becomes the model's input: the tokenizer, then pad or cut to `maxlen` ids."""

    tokenizer: Tokenizer
    maxlen: int
    padding: str = "pre"  # Keras pad_sequences' defaults
    truncating: str = "pre"

    def __post_init__(self) -> None:
        if not isinstance(self.tokenizer, Tokenizer):
            raise ConfigError(f"TextSpec needs a Tokenizer, got {type(self.tokenizer).__name__}")
        if not isinstance(self.maxlen, int) or isinstance(self.maxlen, bool) or self.maxlen < 1:
            raise ConfigError(f"maxlen must be a positive integer, got {self.maxlen!r}")
        for name in ("padding", "truncating"):
            if getattr(self, name) not in _SIDES:
                raise ConfigError(f"{name} must be 'pre' or 'post', got {getattr(self, name)!r}")

    def encode(self, texts: Iterable[str]) -> np.ndarray:
        """Texts -> (N, maxlen) int32 ids; training, export checks and the device all call this."""
        return self.tokenizer.encode_batch(texts, self.maxlen, self.padding, self.truncating)

    def to_dict(self) -> dict[str, Any]:
        """The card's preprocess entry (kind "text"); vocab_size is the Embedding rows it needs."""
        return {
            "kind": "text",
            "maxlen": self.maxlen,
            "padding": self.padding,
            "truncating": self.truncating,
            "vocab_size": self.tokenizer.vocab_size,
            "tokenizer": self.tokenizer.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Any) -> TextSpec:
        """Rebuild from a card's preprocess; anything malformed raises DataError naming the field."""
        if not isinstance(d, Mapping) or d.get("kind") != "text":
            kind = d.get("kind") if isinstance(d, Mapping) else type(d).__name__
            raise DataError(f"the card's preprocess is not a text spec (kind {kind!r}, not 'text')")
        if "tokenizer" not in d or "maxlen" not in d:
            missing = [k for k in ("tokenizer", "maxlen") if k not in d]
            raise DataError(f"the card's text preprocess lacks {' and '.join(missing)}")
        tokenizer = Tokenizer.from_dict(d["tokenizer"])
        try:
            spec = cls(tokenizer, d["maxlen"], d.get("padding", "pre"), d.get("truncating", "pre"))
        except ConfigError as e:
            raise DataError(f"the card's text preprocess is malformed: {e}") from None
        if "vocab_size" in d and d["vocab_size"] != tokenizer.vocab_size:
            raise DataError(
                f"the card's text preprocess says vocab_size {d['vocab_size']!r} but its tokenizer "
                f"has {tokenizer.vocab_size} ids: the card was edited or is corrupt"
            )
        return spec


def text_features(preprocess: Mapping[str, Any], raw: Iterable[str]) -> np.ndarray:
    """A batch of texts -> (N, maxlen) int32 token ids, by the card's `TextSpec`."""
    return TextSpec.from_dict(preprocess).encode(list(raw))
