"""Rows of a CSV file as inputs for table models and forecasters (`--source readings.csv`), read
lazily: a file of any size streams through with one row in memory. Each item is a `TableRow`: the
row's values by column name, and where it came from (for the one sentence about a bad value).

`--realtime` plays the file at its own timestamps, as the sensor logged it: each row is handed
over when its time comes, the first at once, reckoned from its column of dates or times (the one
named like a time, else the first whose value parses as one; `runtime/series.py`). Every row is
handed over, late if the model is slow, never dropped: a forecaster's window needs each reading."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

from edgekit.errors import SourceError
from edgekit.runtime.sources import SOURCES, Item, Source, SourceKind, SourceOptions

TABLE_SUFFIXES = (".csv", ".csv.gz")


class TableRow(dict):
    """One row: column name -> its text (a dict), and `where` it came from ("readings.csv line 12")."""

    __slots__ = ("where",)

    def __init__(self, values: dict[str, str], where: str) -> None:
        super().__init__(values)
        self.where = where


class CsvRows(Source):
    kind = "table"

    def __init__(self, path: Path, realtime: bool = False) -> None:
        from edgekit.runtime.table import csv_rows  # csv and gzip only when a table is read

        super().__init__()
        self.path = path
        self.header, rows = csv_rows(path)  # an empty file: one sentence here
        first = next(rows, None)
        if first is None:
            raise SourceError(f"{path} has a header row but no rows of values")
        self._rows = itertools.chain([first], rows)
        self._close = rows.close
        self.clock: int | None = None  # the column of times --realtime plays by
        if realtime:
            self.clock = time_column(self.header, first[1])
            if self.clock is None:
                rows.close()
                raise SourceError(
                    f"--realtime plays {path.name} at its timestamps, but no column of its first row "
                    f"holds a date or time ({', '.join(self.header)})"
                )

    def __iter__(self) -> Iterator[Item]:
        from edgekit.runtime.series import parse_time

        name = self.path.name
        start = first = None
        for index, (line, fields) in enumerate(self._rows):
            row = TableRow(dict(zip(self.header, fields, strict=True)), f"{name} line {line}")
            if self.clock is not None:
                when = parse_time(fields[self.clock])
                if when is None:
                    self.skip(f"{name} line {line}: {fields[self.clock]!r} is not a date or time")
                    continue
                if start is None:
                    start, first = time.perf_counter(), when
                wait = start + (when - first) - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            yield Item(row, index, f"{name}:{line}", time.perf_counter())

    def close(self) -> None:
        self._close()


def time_column(header: list[str], fields: list[str]) -> int | None:
    """The index of the column a row's time is read from: one named like a time whose value parses,
    else the first whose value does; None: none does."""
    from edgekit.runtime.series import TIME_NAMES, is_date, parse_time

    named = [i for i, h in enumerate(header) if h.strip().lower() in TIME_NAMES]
    for i in named:
        if parse_time(fields[i]) is not None:
            return i
    # a column not named like a time must hold a date: a plain number is any column's reading
    return next((i for i in range(len(header)) if i not in named and is_date(fields[i])), None)


def _matches(spec: str) -> bool:
    return "://" not in spec and spec.lower().endswith(TABLE_SUFFIXES)


def _open(spec: str, options: SourceOptions) -> Source:
    return CsvRows(Path(spec), realtime=options.realtime)


SOURCES.add(
    SourceKind(
        "csv",
        "a .csv file, one row per input (table models, forecasters; --realtime plays it at its timestamps)",
        _matches,
        _open,
        produces="table",
        options=("realtime",),
    )
)
