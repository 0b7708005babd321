"""Tables of named columns read from CSV files, in chunks, with bounded memory (numpy only).

A column holds numbers (float64, NaN where a value is missing) or text (an object array of str,
None where missing). Which one is read from the values themselves: a column whose every value is a
number is numbers, one with no number at all is text, and one that mixes the two is refused with
the first offending value and its line, unless it was declared text (categorical). A missing value
is an empty field or one of `MISSING_TEXT`.

Any file size is read with bounded memory: rows are parsed `chunk_rows` at a time, and past
`max_rows` a uniform sample of them is kept (a seeded reservoir), which the table's notes say. The
cleaning steps (`runtime/cleaning.py`) and the model's input (`runtime/table_features.py`) work on
these tables; a forecaster reads a series with `read_table` too (its rows stay in file order)."""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgekit.errors import DataError

# what counts as a missing value (compared stripped and lower-cased)
MISSING_TEXT = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
CHUNK_ROWS = 50_000
MAX_ROWS = 1_000_000  # rows kept in memory; a longer file is sampled down to this many
SAMPLE_SEED = 0


@dataclass(frozen=True)
class Table:
    """Columns by name, in the file's order, all of one length."""

    columns: dict[str, np.ndarray]
    source: str  # where the rows came from, for messages
    rows_read: int = 0  # rows in the file, before any sampling
    notes: tuple[str, ...] = field(default=())  # what was done to the rows, in order, for the report

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def is_number(self, name: str) -> bool:
        return self.columns[name].dtype.kind == "f"

    def missing(self, name: str) -> np.ndarray:
        """A boolean per row: True where the column's value is missing."""
        values = self.columns[name]
        return np.isnan(values) if values.dtype.kind == "f" else np.array([v is None for v in values], bool)

    def select(self, names: Sequence[str]) -> Table:
        """These columns only, in this order (each must exist: `check_columns` says which do not)."""
        check_columns(self, names)
        return replace(self, columns={n: self.columns[n] for n in names})

    def take(self, index: np.ndarray) -> Table:
        """The rows at `index` (indices or a boolean mask), in that order."""
        return replace(self, columns={n: v[index] for n, v in self.columns.items()})

    def noted(self, note: str | None) -> Table:
        return self if not note else replace(self, notes=(*self.notes, note))

    def records(self) -> np.ndarray:
        """The rows as a structured array (a field per column: float64 numbers, object text), the
        raw items a dataset split holds and a model's input is made from."""
        dtype = [(n, "f8" if v.dtype.kind == "f" else "O") for n, v in self.columns.items()]
        out = np.empty(len(self), dtype=dtype)
        for n, v in self.columns.items():
            out[n] = v
        return out


def check_columns(table: Table, names: Sequence[str], what: str = "column") -> None:
    """Every name is a column of the table; else one sentence naming the missing one and the table's."""
    absent = [n for n in names if n not in table.columns]
    if absent:
        raise DataError(
            f"{table.source} has no {what} {absent[0]!r}: its columns are {', '.join(table.names)}"
        )


def is_missing(text: str | None) -> bool:
    return text is None or text.strip().lower() in MISSING_TEXT


def _open_text(path: Path) -> io.TextIOBase:
    """The file as text (UTF-8, a BOM dropped; .gz read through gzip)."""
    try:
        if path.suffix.lower() == ".gz":
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
        return open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115  (closed by the caller)
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None


def csv_rows(path: str | Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """(the header, an iterator of (line number, fields)) of a CSV file, read lazily; an empty file,
    a header with no rows, an unnamed or repeated column, or a row of the wrong length is one
    sentence. Blank lines are skipped."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist (give a CSV file with a header row)")
    handle = _open_text(path)
    reader = csv.reader(handle)
    try:
        header = next(reader, None)
        while header is not None and not any(h.strip() for h in header):
            header = next(reader, None)  # blank lines before the header
    except (csv.Error, UnicodeDecodeError) as e:
        handle.close()
        raise DataError(f"{path} is not a readable CSV file: {e}") from None
    if header is None:
        handle.close()
        raise DataError(f"{path} is empty: it needs a header row naming the columns, then rows of values")
    header = [h.strip() for h in header]
    for i, name in enumerate(header):
        if not name:
            handle.close()
            raise DataError(f"column {i + 1} of {path} has no name in the header row")
        if name in header[:i]:
            handle.close()
            raise DataError(f"{path} names the column {name!r} twice in its header row")

    def rows() -> Iterator[tuple[int, list[str]]]:
        try:
            for fields in reader:
                if not fields or not any(f.strip() for f in fields):
                    continue
                if len(fields) != len(header):
                    raise DataError(
                        f"{path} line {reader.line_num} has {len(fields)} values, but its header names "
                        f"{len(header)} columns"
                    )
                yield reader.line_num, fields
        except (csv.Error, UnicodeDecodeError) as e:
            raise DataError(f"{path} line {reader.line_num} is not readable CSV: {e}") from None
        finally:
            handle.close()

    return header, rows()


def parse_numbers(values: Sequence[str | None]) -> tuple[np.ndarray, int | None]:
    """(float64 values, NaN for missing; the index of the first value that is neither a number
    nor missing, or None)."""
    out = np.empty(len(values), dtype=np.float64)
    for i, text in enumerate(values):
        if is_missing(text):
            out[i] = np.nan
            continue
        try:
            out[i] = float(text)
        except ValueError:
            return out, i
    return out, None


def _texts(values: Sequence[str | None]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = [None if is_missing(v) else v.strip() for v in values]
    return out


class _Column:
    """One column being read: its kind, settled from its values, and the first text among
    numbers (an error unless the column is text)."""

    def __init__(self, name: str, text: bool) -> None:
        self.name = name
        self.text = text  # declared text (categorical), or found to hold no numbers
        self.numbers = 0  # non-missing values that parse as numbers
        self.first_text: tuple[str, int] | None = None  # (value, line) of the first non-number

    def parse(self, values: list[str], lines: list[int]) -> np.ndarray:
        if self.text:
            return _texts(values)
        numbers, bad = parse_numbers(values)
        if bad is None:
            self.numbers += int((~np.isnan(numbers)).sum())
            return numbers
        if self.first_text is None:
            self.first_text = (values[bad].strip(), lines[bad])
        texts = _texts(values)
        self.numbers += sum(1 for v in texts if v is not None and _is_number(v))
        return texts

    def check(self, path: Path) -> None:
        """A column holding numbers and text both is refused (text among numbers is an error in
        the data, or a column to declare categorical)."""
        if self.first_text is not None and self.numbers:
            value, line = self.first_text
            raise DataError(
                f"{path} line {line}: column {self.name!r} holds {value!r} among numbers: correct the "
                f"value, leave it empty (a missing value), or declare the column categorical"
            )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_table(
    path: str | Path,
    columns: Sequence[str] | None = None,
    *,
    text: Sequence[str] = (),
    max_rows: int = MAX_ROWS,
    chunk_rows: int = CHUNK_ROWS,
    seed: int = SAMPLE_SEED,
) -> Table:
    """The CSV file's columns (`columns`: these only, in this order; else all), `text` read as
    text whatever they hold. At most `max_rows` rows are kept: beyond that a uniform sample, the
    same for the same seed. Memory is bounded by `max_rows` and `chunk_rows`, not by the file."""
    path = Path(path)
    header, rows = csv_rows(path)
    wanted = list(columns) if columns is not None else header
    absent = [n for n in [*wanted, *text] if n not in header]
    if absent:
        raise DataError(f"{path} has no column {absent[0]!r}: its columns are {', '.join(header)}")
    where = [header.index(n) for n in wanted]
    readers = [_Column(n, n in text) for n in wanted]
    kept: list[np.ndarray | None] = [None] * len(wanted)  # the reservoir, per column
    rng = np.random.default_rng(seed)
    seen = 0

    def take(chunk: list[list[str]], lines: list[int]) -> None:
        nonlocal seen
        parsed = [r.parse([f[i] for f in chunk], lines) for r, i in zip(readers, where, strict=True)]
        n = len(chunk)
        index = np.arange(seen, seen + n)
        seen += n
        fill = index < max_rows  # the reservoir's first rows: taken as they come
        # Algorithm R, a chunk at a time: row i replaces a random kept row with chance max_rows/(i+1)
        slots = np.where(fill, index, rng.integers(0, index + 1))
        chosen = slots < max_rows
        for j, values in enumerate(parsed):
            head = values[fill]
            column = head if kept[j] is None else _concat(kept[j], head)
            replaced = chosen & ~fill
            if replaced.any():
                column = _as_kind(column, values)
                column[slots[replaced]] = values[replaced]
            kept[j] = column

    chunk: list[list[str]] = []
    lines: list[int] = []
    for line, fields in rows:
        chunk.append(fields)
        lines.append(line)
        if len(chunk) >= chunk_rows:
            take(chunk, lines)
            chunk, lines = [], []
    if chunk:
        take(chunk, lines)
    if seen == 0:
        raise DataError(f"{path} has a header row but no rows of values")
    for r in readers:
        r.check(path)
    table = Table(dict(zip(wanted, kept, strict=True)), str(path), seen)
    if seen > max_rows:
        table = table.noted(
            f"sampled {max_rows:,} of the file's {seen:,} rows at random (seed {seed}): the rows kept "
            "in memory are bounded"
        )
    return table


def _concat(a: np.ndarray | None, b: np.ndarray) -> np.ndarray:
    if a is None:
        return b
    if a.dtype != b.dtype:  # numbers so far, text now (or the other way): both as text
        a, b = _as_text(a), _as_text(b)
    return np.concatenate([a, b])


def _as_kind(column: np.ndarray, like: np.ndarray) -> np.ndarray:
    return _as_text(column) if like.dtype == object and column.dtype != object else column


def _as_text(values: np.ndarray) -> np.ndarray:
    if values.dtype == object:
        return values
    out = np.empty(len(values), dtype=object)
    out[:] = [None if np.isnan(v) else repr(float(v)) for v in values]
    return out
