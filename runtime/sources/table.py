"""Rows of a CSV file as inputs for table models (`--source readings.csv`), read lazily: a file
of any size streams through with one row in memory. Each item is a `TableRow`: the row's values
by column name, and where it came from (for the one sentence about a bad value)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

from edgekit.errors import SourceError
from edgekit.runtime.sources import SOURCES, Item, Source, SourceKind

TABLE_SUFFIXES = (".csv", ".csv.gz")


class TableRow(dict):
    """One row: column name -> its text (a dict), and `where` it came from ("readings.csv line 12")."""

    __slots__ = ("where",)

    def __init__(self, values: dict[str, str], where: str) -> None:
        super().__init__(values)
        self.where = where


class CsvRows(Source):
    kind = "table"

    def __init__(self, path: Path) -> None:
        from edgekit.runtime.table import csv_rows  # csv and gzip only when a table is read

        super().__init__()
        self.path = path
        self.header, rows = csv_rows(path)  # an empty file: one sentence here
        first = next(rows, None)
        if first is None:
            raise SourceError(f"{path} has a header row but no rows of values")
        self._rows = itertools.chain([first], rows)
        self._close = rows.close

    def __iter__(self) -> Iterator[Item]:
        name = self.path.name
        for index, (line, fields) in enumerate(self._rows):
            row = TableRow(dict(zip(self.header, fields, strict=True)), f"{name} line {line}")
            yield Item(row, index, f"{name}:{line}", time.perf_counter())

    def close(self) -> None:
        self._close()


def _matches(spec: str) -> bool:
    return "://" not in spec and spec.lower().endswith(TABLE_SUFFIXES)


def _open(spec: str) -> Source:
    return CsvRows(Path(spec))


SOURCES.add(
    SourceKind("csv", "a .csv file, one row per input (table models)", _matches, _open, produces="table")
)
