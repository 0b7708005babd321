"""Lines of readings as inputs for forecasters (table models too): `numbers:-` reads stdin,
`numbers:FILE` a text file, one item per line, as a sensor or a script writes them.

A line holds plain numbers (`21.5`, or `21.5,21.7,22.0` for a whole window, commas, semicolons or
spaces between), named values (`temperature=21.5 humidity=40`), or a JSON object
(`{"temperature": 21.5}`). Each becomes a `Readings` item: the named values by name, or the plain
numbers in order. A blank line, or one that is none of these, is skipped and counted with its
line number, so one garbled line from a sensor never ends a run. `runtime/sources/tcp.py` reads
the same lines from a TCP stream."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from edgekit.errors import SourceError
from edgekit.runtime.sources import SOURCES, Item, Source, SourceKind
from edgekit.runtime.sources.table import TableRow
from edgekit.runtime.table import is_missing

SCHEME = "numbers:"
_SPLIT = re.compile(r"[,;\s]+")


class Readings(TableRow):
    """One line's readings: named values (a dict, name -> text), or plain `numbers` in order
    (NaN where a field is missing), and `where` it came from ("stdin line 3")."""

    __slots__ = ("numbers",)

    def __init__(self, values: dict[str, str], where: str, numbers: tuple[float, ...] = ()) -> None:
        super().__init__(values, where)
        self.numbers = numbers


def parse_line(text: str, where: str) -> Readings:
    """One line -> its Readings; ValueError (with the reason) for a line that holds none."""
    text = text.strip()
    if not text:
        raise ValueError("empty")
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError as e:
            raise ValueError(f"not JSON ({e.msg})") from None
        if not isinstance(obj, dict) or not obj:
            raise ValueError("a JSON line must be an object of named readings")
        return Readings({str(k): "" if v is None else str(v) for k, v in obj.items()}, where)
    fields = [f for f in _SPLIT.split(text) if f]
    if any("=" in f for f in fields):
        pairs = {}
        for f in fields:
            name, found, value = f.partition("=")
            if not found or not name:
                raise ValueError(f"{f!r} is not name=value")
            pairs[name] = value
        return Readings(pairs, where)
    numbers = []
    for f in fields:
        if is_missing(f):
            numbers.append(float("nan"))
            continue
        try:
            numbers.append(float(f))
        except ValueError:
            raise ValueError(f"{f[:40]!r} is not a number") from None
    return Readings({}, where, tuple(numbers))


class ReadingLines(Source):
    """Items are the readings of a byte stream's lines (UTF-8), named `origin:line`."""

    kind = "readings"

    def __init__(self, origin: str, lines: Callable[[], Iterable[bytes]], close: Callable[[], None]) -> None:
        super().__init__()
        self.origin = origin
        self._lines = lines
        self._close = close

    def __iter__(self) -> Iterator[Item]:
        yield from read_lines(self, self.origin, self._lines())

    def close(self) -> None:
        self._close()


def read_lines(source: Source, origin: str, lines: Iterable[bytes], start: int = 0) -> Iterator[Item]:
    """The readings of each line, skipping (and counting on `source`) those that hold none."""
    index = start
    for number, raw in enumerate(lines, 1):
        where = f"{origin} line {number}"
        try:
            readings = parse_line(raw.decode("utf-8-sig" if number == 1 else "utf-8"), where)
        except UnicodeDecodeError:
            source.skip(f"{where}: not UTF-8")
            continue
        except ValueError as e:
            source.skip(f"{where}: {e}")
            continue
        yield Item(readings, index, f"{origin}:{number}", time.perf_counter())
        index += 1


def _open(spec: str) -> Source:
    target = spec[len(SCHEME) :]
    if target in ("", "-"):
        stream = getattr(sys.stdin, "buffer", None)
        if stream is None:
            raise SourceError("stdin is not readable here: give numbers:FILE")
        return ReadingLines("stdin", lambda: stream, lambda: None)
    path = Path(target)
    if not path.is_file():
        raise SourceError(f"{path} does not exist (give numbers:- for stdin, or a text file of readings)")
    try:
        handle = open(path, "rb")  # noqa: SIM115  (closed by the source's close())
    except OSError as e:
        raise SourceError(f"cannot read {path}: {e.strerror or e}") from None
    return ReadingLines(path.name, lambda: handle, handle.close)


SOURCES.add(
    SourceKind(
        "numbers",
        "numbers:- for lines of readings on stdin (numbers:FILE for a file), forecasters and tables",
        lambda s: s.startswith(SCHEME),
        _open,
        produces="table",
    )
)
