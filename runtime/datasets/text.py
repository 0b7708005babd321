"""Text datasets, numpy only: any `text,label` CSV (the shipped corpus by default), and IMDB
movie reviews from the Keras cache or the aclImdb folder layout.

Every Split holds the raw texts (an object array of str), as the runtime's text sources give them:
the tokenizer is fitted at training time and written into the card, so a device encodes text with
the same vocabulary and rules."""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edgekit.errors import DataError
from edgekit.runtime.datasets import (
    DATASETS,
    HELDOUT_SEED,
    SHIPPED,
    Dataset,
    Split,
    split_off,
    stratified_heldout,
)
from edgekit.runtime.datasets._files import keras_download, numpy_only_load

CORPUS = SHIPPED / "text_corpus.csv"
LABELS_FILE = "labels.txt"  # beside a CSV: the class list, one per line, in class-index order
HELDOUT_FRACTION = 0.2  # of each class, where the CSV has no split column
_TRAIN = "train"
_HELDOUT = {"test", "heldout", "held-out", "val", "validation"}


# ---- CSV ---------------------------------------------------------------------------------------


class _Skips:
    """Rows left out of a CSV, by reason, with their line numbers (said in the description)."""

    def __init__(self) -> None:
        self.lines: dict[str, list[int]] = {}

    def add(self, reason: str, line: int) -> None:
        self.lines.setdefault(reason, []).append(line)

    @property
    def count(self) -> int:
        return sum(map(len, self.lines.values()))

    def describe(self) -> str:
        def where(lines: list[int]) -> str:
            shown = ", ".join(map(str, lines[:5]))
            more = f" and {len(lines) - 5} more" if len(lines) > 5 else ""
            return f"line{'s' if len(lines) > 1 else ''} {shown}{more}"

        parts = [f"{len(v)} {reason} ({where(v)})" for reason, v in self.lines.items()]
        return f"{self.count} row(s) skipped: " + "; ".join(parts)


def _decoded_lines(raw: bytes, skips: _Skips, where: list[int]) -> Iterator[str]:
    """The file's lines as str; a line that is not UTF-8 is skipped and counted. `where[0]` holds
    the line number of the last line handed out, so the CSV reader's rows can be placed."""
    if raw.startswith(b"\xef\xbb\xbf"):  # a BOM, as Excel writes UTF-8 CSV
        raw = raw[3:]
    for number, line in enumerate(raw.splitlines(keepends=True), 1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            skips.add(f"not UTF-8 (e.g. byte 0x{line[e.start]:02x})", number)
            continue
        where[0] = number
        yield text


def _class_list(path: Path) -> tuple[str, ...] | None:
    """The classes in `labels.txt` beside the CSV, in order; None when there is none."""
    file = path.with_name(LABELS_FILE)
    if not file.is_file():
        return None
    try:
        names = [n.strip() for n in file.read_text(encoding="utf-8-sig").splitlines()]
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read the class list {file}: {e}") from None
    names = [n for n in names if n]
    if not names or len(set(names)) != len(names):
        raise DataError(f"{file} must list each class once, one per line")
    return tuple(names)


def load_text_csv(path: str | Path, name: str = "text-csv", source: str | None = None) -> Dataset:
    """A CSV with a header naming `text` and `label` columns (and optionally `split`: train/test).

    Classes are the sorted labels found, or the list in a `labels.txt` beside the file (a label
    outside it is an error). Without a split column a fixed, stratified fifth of each class is held
    out. Empty texts and lines that are not UTF-8 are skipped and counted; a text seen before is
    dropped, so no held-out text is also a training text."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None
    skips, where = _Skips(), [0]
    reader = csv.reader(_decoded_lines(raw, skips, where))
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path} is empty: a text CSV needs a header row naming 'text' and 'label'")
        columns = [c.strip().lower() for c in header]
        found = ", ".join(repr(c) for c in header) or "none"
        if "text" not in columns or "label" not in columns:
            raise DataError(
                f"{path.name} has the column(s) {found} in its first row; a text CSV needs a header row "
                "naming a 'text' and a 'label' column (and optionally 'split': train or test)"
            )
        col_text, col_label = columns.index("text"), columns.index("label")
        col_split = columns.index("split") if "split" in columns else None
        texts, labels, splits, lines = [], [], [], []
        seen: set[str] = set()
        duplicates = 0
        for row in reader:
            line = where[0]
            if not any(cell.strip() for cell in row):
                skips.add("empty", line)
                continue
            if len(row) < len(columns):
                skips.add(f"with fewer than {len(columns)} fields", line)
                continue
            text, label = row[col_text].strip(), row[col_label].strip()
            if not text:
                skips.add("with an empty text", line)
                continue
            if not label:
                skips.add("with no label", line)
                continue
            key = " ".join(text.lower().split())
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            texts.append(text)
            labels.append(label)
            splits.append(row[col_split].strip().lower() if col_split is not None else "")
            lines.append(line)
    except csv.Error as e:
        raise DataError(f"{path} line {where[0]} is not valid CSV: {e}") from None
    if not texts:
        raise DataError(f"{path} has no rows with a text and a label ({skips.count} skipped)")

    classes = _class_list(path)
    if classes is None:
        classes = tuple(sorted(set(labels)))
    else:
        outside = [(label, line) for label, line in zip(labels, lines) if label not in classes]
        if outside:
            shown = ", ".join(f"{label!r} (line {line})" for label, line in outside[:3])
            raise DataError(
                f"{len(outside)} row(s) of {path.name} have labels outside the class list in "
                f"{path.with_name(LABELS_FILE)}: {shown}; fix them or add the class to the list"
            )
    if len(classes) < 2:
        raise DataError(f"{path} has one class ({classes[0]!r}): a classifier needs two or more")
    index = {c: i for i, c in enumerate(classes)}
    x = np.empty(len(texts), dtype=object)
    x[:] = texts
    y = np.array([index[label] for label in labels], dtype=np.int64)

    if col_split is not None:
        unknown = sorted({s for s in splits if s != _TRAIN and s not in _HELDOUT})
        if unknown:
            raise DataError(
                f"{path.name} has split value(s) {', '.join(map(repr, unknown[:3]))}: use 'train' or 'test'"
            )
        test = np.array([s in _HELDOUT for s in splits])
        if test.all() or not test.any():
            raise DataError(f"{path.name}'s split column must mark some rows 'train' and some 'test'")
        missing = sorted(set(y[test].tolist()) - set(y[~test].tolist()))
        if missing:
            raise DataError(
                f"class {classes[missing[0]]!r} of {path.name} has held-out rows but no training rows"
            )
        # shuffle the training part once (fixed seed) so a --limit slice holds every class
        order = np.random.default_rng(HELDOUT_SEED + 1).permutation(np.flatnonzero(~test))
        train, heldout = Split(x[order], y[order]), Split(x[test], y[test])
        how = "held out: the rows marked test"
    else:
        counts = np.bincount(y, minlength=len(classes))
        present = counts[counts > 0]  # a class of labels.txt may have no rows: it is not split
        if present.min() < 2:
            few = int(np.flatnonzero(counts == present.min())[0])
            raise DataError(
                f"class {classes[few]!r} in {path.name} has {present.min()} row(s): each class needs two or more"
            )
        per_class = max(1, int(present.min() * HELDOUT_FRACTION))
        train, heldout = split_off(x, y, stratified_heldout(y, per_class))
        how = f"held out: {per_class} per class"
    notes = [how]
    if duplicates:
        notes.append(f"{duplicates} repeated text(s) dropped")
    if skips.count:
        notes.append(skips.describe())
    return Dataset(
        name,
        source or str(path),
        f"{len(texts)} texts in {len(classes)} classes from {path} ({'; '.join(notes)})",
        classes,
        train,
        heldout,
        skipped=skips.count,
    )


def _csv_in(folder: Path) -> Path:
    """The one CSV in `folder` (the generator's text_corpus.csv first)."""
    if (folder / CORPUS.name).is_file():
        return folder / CORPUS.name
    found = sorted(folder.glob("*.csv"))
    if len(found) != 1:
        raise DataError(
            f"{folder} holds {len(found)} .csv files: give --data the CSV itself (text,label columns)"
        )
    return found[0]


@DATASETS.register("text-csv")
def text_csv(data: str | None = None) -> Dataset:
    """A `text,label` CSV: the corpus shipped with edgekit by default, or --data FILE.csv / a folder
    holding one (as `edgekit data make text --out DIR` writes)."""
    if data in (None, "", "auto", "shipped"):
        ds = load_text_csv(CORPUS, source="shipped")
        return Dataset(
            ds.name,
            ds.source,
            ds.description.replace(str(CORPUS), "the corpus shipped with edgekit", 1),
            ds.labels,
            ds.train,
            ds.heldout,
            ds.skipped,
        )
    path = Path(data)
    if path.is_dir():
        path = _csv_in(path)
    elif not path.exists():
        raise DataError(
            f"{path} does not exist: give --data a CSV with a header naming 'text' and 'label' columns, "
            "or a folder holding one (`edgekit data make text --out DIR` makes one)"
        )
    return load_text_csv(path, source=str(path))


# ---- IMDB --------------------------------------------------------------------------------------

IMDB_LABELS = ("negative", "positive")
IMDB_NPZ = "imdb.npz"
IMDB_WORD_INDEX = "imdb_word_index.json"
ACLIMDB_LAYOUT = (
    "an aclImdb folder (train/pos, train/neg, test/pos, test/neg holding one review per .txt file)"
)


def keras_datasets_folder() -> Path:
    """Where keras.datasets keeps its downloads."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"


def _npz_arrays(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Arrays from an .npz whose object arrays (IMDB's ragged reviews) are unpickled with nothing but
    numpy's own array rebuilding allowed: np.load(allow_pickle=True) would run any code a file names."""
    out = {}
    try:
        with zipfile.ZipFile(path) as z:
            for key in keys:
                with z.open(f"{key}.npy") as f:
                    fp = io.BytesIO(f.read())
                version = np.lib.format.read_magic(fp)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
                if dtype.hasobject:
                    array = np.asarray(numpy_only_load(fp, encoding="latin1"))
                else:
                    array = np.frombuffer(fp.read(), dtype).reshape(shape, order="F" if fortran else "C")
                out[key] = array
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError) as e:
        raise DataError(f"{path} is not an IMDB .npz ({', '.join(keys)}): {e}") from None
    return out


def _read_word_index(path: Path) -> dict[int, str]:
    """imdb_word_index.json (word -> frequency rank) as rank -> word."""
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
        return {int(rank): str(word) for word, rank in index.items()}
    except (OSError, ValueError, AttributeError, TypeError) as e:
        raise DataError(f"{path} is not the IMDB word index (a JSON object of word: rank): {e}") from None


def _decode_reviews(seqs: np.ndarray, words: dict[int, str]) -> np.ndarray:
    """Reviews as word ranks -> the texts they stand for (ranks the index lacks are left out)."""
    x = np.empty(len(seqs), dtype=object)
    x[:] = [" ".join(words[int(i)] for i in seq if int(i) in words) for seq in seqs]
    return x


def _shuffled(x: np.ndarray, y: np.ndarray) -> Split:
    # a fixed order, so a --limit slice holds both classes (folders list one class then the other)
    order = np.random.default_rng(HELDOUT_SEED + 1).permutation(len(y))
    return Split(x[order], y[order])


def load_imdb_npz(path: Path, word_index: Path, source: str) -> Dataset:
    """keras.datasets' imdb.npz (word ranks) decoded to text through imdb_word_index.json."""
    if not word_index.is_file():
        raise DataError(
            f"{path} holds the reviews as word indices only, and the words ({word_index.name}) are not "
            f"beside it: a text model's card needs them to encode text on a device. Run with --data keras "
            f"to download both, put {word_index.name} beside {path.name}, or give --data {ACLIMDB_LAYOUT}"
        )
    arrays = _npz_arrays(path, ("x_train", "y_train", "x_test", "y_test"))
    words = _read_word_index(word_index)
    splits = []
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], np.asarray(arrays[f"y_{part}"], dtype=np.int64).reshape(-1)
        if len(x) != len(y) or (len(y) and (y.min() < 0 or y.max() > 1)):
            raise DataError(f"{path} must hold as many reviews as 0/1 labels in x_{part} and y_{part}")
        splits.append((_decode_reviews(x, words), y))
    return Dataset(
        "imdb",
        source,
        f"IMDB reviews from {path}, decoded through {word_index.name} (held out: the official test set)",
        IMDB_LABELS,
        _shuffled(*splits[0]),
        Split(*splits[1]),
    )


def _read_review_folder(folder: Path) -> tuple[list[str], int]:
    texts, bad = [], 0
    for file in sorted(folder.glob("*.txt")):
        try:
            text = file.read_bytes().decode("utf-8").strip()
        except (OSError, UnicodeDecodeError):
            bad += 1
            continue
        if text:
            texts.append(text)
        else:
            bad += 1
    return texts, bad


def load_aclimdb(root: Path) -> Dataset:
    """The Stanford aclImdb layout: train/{neg,pos}/*.txt and test/{neg,pos}/*.txt (test held out)."""
    if (root / "aclImdb").is_dir():
        root = root / "aclImdb"
    needed = [root / part / label for part in ("train", "test") for label in ("neg", "pos")]
    missing = [str(p.relative_to(root)) for p in needed if not p.is_dir()]
    if missing:
        raise DataError(f"{root} lacks {', '.join(missing)}: give --data {ACLIMDB_LAYOUT}")
    splits, skipped = [], 0
    for part in ("train", "test"):
        xs, ys = [], []
        for label, sub in enumerate(("neg", "pos")):
            texts, bad = _read_review_folder(root / part / sub)
            if not texts:
                raise DataError(f"{root / part / sub} holds no readable .txt reviews")
            skipped += bad
            xs += texts
            ys += [label] * len(texts)
        x = np.empty(len(xs), dtype=object)
        x[:] = xs
        splits.append((x, np.array(ys, dtype=np.int64)))
    note = f", {skipped} empty or non-UTF-8 file(s) skipped" if skipped else ""
    return Dataset(
        "imdb",
        str(root),
        f"IMDB reviews from the aclImdb folder {root} (held out: its test set{note})",
        IMDB_LABELS,
        _shuffled(*splits[0]),
        Split(*splits[1]),
        skipped=skipped,
    )


def _download_keras_imdb() -> Path:
    hint = f"give --data {ACLIMDB_LAYOUT}"
    keras_download("imdb", "IMDB", hint)
    try:
        from keras.datasets import imdb

        imdb.get_word_index()
    except Exception as e:
        raise DataError(f"could not download the IMDB word index ({type(e).__name__}): {hint}") from None
    return keras_datasets_folder() / IMDB_NPZ


@DATASETS.register("imdb")
def imdb(data: str | None = None) -> Dataset:
    """IMDB movie reviews (positive/negative): keras.datasets' word indices from the Keras cache
    (with --data keras to download them), or --data an aclImdb folder or an imdb.npz file."""
    if data in (None, "", "auto"):
        cached = keras_datasets_folder() / IMDB_NPZ
        if not cached.is_file():
            raise DataError(
                f"IMDB is not in the Keras cache ({cached}): use --data keras to download it, "
                f"or give --data {ACLIMDB_LAYOUT}"
            )
        # the source is the file: export and evaluate load it again with no download attempt
        return load_imdb_npz(cached, cached.with_name(IMDB_WORD_INDEX), str(cached))
    if data == "keras":
        path = _download_keras_imdb()
        return load_imdb_npz(path, path.with_name(IMDB_WORD_INDEX), str(path))
    path = Path(data)
    if path.is_dir():
        return load_aclimdb(path)
    if path.is_file() and path.suffix.lower() == ".npz":
        return load_imdb_npz(path, path.with_name(IMDB_WORD_INDEX), str(path))
    raise DataError(f"--data {path} is not {ACLIMDB_LAYOUT}, an imdb.npz file, or 'keras'")
