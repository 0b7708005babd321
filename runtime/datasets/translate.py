"""Parallel text for translation, numpy only: any two-column `source,target` CSV (Multi30k-style
sentence pairs), or the German -> English corpus edgekit generates when no --data is given.

x holds the source sentences and y the target sentences, both raw strings (object arrays), as a
text source gives them. The target vocabulary is fitted here, on the training targets only, with
the project's tokenizer: it is the dataset's `labels` (id -> word, 0 padding, 1 unknown), so it is
the model's output classes and goes into the card; the source tokenizer is fitted by the recipe
(`fit_preprocess`) and goes into the card's preprocess."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from edgekit.errors import DataError
from edgekit.runtime.datasets import DATASETS, HELDOUT_SEED, Dataset, Split
from edgekit.runtime.text import Tokenizer

PAD_LABEL = "<pad>"  # label 0: what the model predicts past the end of a sentence
HELDOUT_FRACTION = 0.2  # a CSV without a split column: this share of its rows, fixed by seed
_HELDOUT = {"test", "heldout", "held-out", "val", "validation"}
_LAYOUT = "a CSV whose header names 'source' and 'target' columns (and optionally 'split': train/test)"


def target_labels(targets: list[str]) -> tuple[str, ...]:
    """The output classes: padding, the unknown word, then the target words, most frequent first."""
    tokenizer = Tokenizer.fit(targets)
    return (PAD_LABEL, tokenizer.oov_token, *tokenizer.words)


def target_tokenizer(labels: tuple[str, ...] | list[str], lower: bool = True) -> Tokenizer:
    """The tokenizer whose ids are the indices of `labels` (as `target_labels` made them)."""
    if len(labels) < 3 or labels[0] != PAD_LABEL:
        raise DataError(
            f"a translation model's labels must be its target vocabulary ({PAD_LABEL!r}, the unknown "
            f"word, then the words); got {list(labels[:3])}..."
        )
    return Tokenizer(words=tuple(labels[2:]), lower=lower, oov_token=labels[1])


def parse_parallel_csv(text: str, where: str) -> tuple[Split, Split, int]:
    """(train, heldout, rows skipped) from CSV text with source and target columns."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise DataError(f"{where} is empty: it needs {_LAYOUT}")
    header = [h.strip().lower() for h in rows[0]]
    if "source" not in header or "target" not in header:
        raise DataError(f"{where} has columns {rows[0]}: it needs {_LAYOUT}")
    cs, ct = header.index("source"), header.index("target")
    csplit = header.index("split") if "split" in header else None
    src, tgt, test, skipped = [], [], [], 0
    for row in rows[1:]:
        if len(row) <= max(cs, ct) or not row[cs].strip() or not row[ct].strip():
            skipped += 1
            continue
        src.append(row[cs].strip())
        tgt.append(row[ct].strip())
        test.append(csplit is not None and len(row) > csplit and row[csplit].strip().lower() in _HELDOUT)
    if len(src) < 2:
        raise DataError(f"{where} has {len(src)} sentence pair(s) with both sides: it needs two or more")
    x, y = np.empty(len(src), dtype=object), np.empty(len(tgt), dtype=object)
    x[:], y[:] = src, tgt
    mask = np.array(test)
    if not mask.any() or mask.all():  # no usable split column: a fixed share of the rows
        rng = np.random.default_rng(HELDOUT_SEED)
        mask = np.zeros(len(x), dtype=bool)
        mask[rng.permutation(len(x))[: max(1, int(len(x) * HELDOUT_FRACTION))]] = True
    order = np.random.default_rng(HELDOUT_SEED + 1).permutation(np.flatnonzero(~mask))
    return Split(x[order], y[order]), Split(x[mask], y[mask]), skipped


def load_parallel_csv(text: str, where: str, source: str, description: str) -> Dataset:
    train, heldout, skipped = parse_parallel_csv(text, where)
    note = f", {skipped} row(s) without both sides skipped" if skipped else ""
    return Dataset(
        "parallel-csv",
        source,
        f"{len(train) + len(heldout)} sentence pairs from {description}{note}",
        target_labels(list(train.y)),
        train,
        heldout,
        skipped=skipped,
    )


@DATASETS.register("parallel-csv")
def parallel_csv(data: str | None = None) -> Dataset:
    """Sentence pairs: the generated German -> English corpus by default (or --data generated), or
    --data FILE.csv / a folder holding one (as `edgekit data make translate --out DIR` writes)."""
    if data in (None, "", "auto", "generated", "shipped"):
        from edgekit.runtime.datasets.synth.translate import corpus_csv

        return load_parallel_csv(
            corpus_csv(),
            "the generated corpus",
            "generated",
            "the German -> English corpus edgekit generates",
        )
    path = Path(data)
    if path.is_dir():
        found = sorted(path.glob("*.csv"))
        if len(found) != 1:
            raise DataError(f"{path} holds {len(found)} .csv files: give --data the CSV itself ({_LAYOUT})")
        path = found[0]
    if not path.is_file():
        raise DataError(f"{path} does not exist: give --data {_LAYOUT}, or a folder holding one")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {path} as UTF-8 text: {e}") from None
    return load_parallel_csv(text, str(path), str(path), str(path))
