"""Text sources for text models: a literal text (`--text "..."`, or `--source text://...`), a .txt
file with one item per line, and stdin lines (`--source -`).

Lines are UTF-8 (a BOM is dropped); an empty line is skipped and counted, and a line that is not
UTF-8 is skipped and counted with its line number, so one bad byte never ends a run."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from edgekit.errors import SourceError
from edgekit.runtime.sources import SOURCES, Item, Source, SourceKind

TEXT_SCHEME = "text://"  # a spec that no file, camera or stream source matches, whatever the text
TEXT_SUFFIXES = (".txt",)


def text_spec(text: str) -> str:
    """The `--source` spec for a literal text (what `--text` opens)."""
    return TEXT_SCHEME + text


class TextLines(Source):
    """Items are the non-empty lines of a byte stream, decoded as UTF-8, named `origin:line`."""

    kind = "text"

    def __init__(
        self, origin: str, open_lines: Callable[[], Iterable[bytes]], close: Callable[[], None]
    ) -> None:
        super().__init__()
        self.origin = origin
        self._open_lines = open_lines
        self._close = close

    def __iter__(self) -> Iterator[Item]:
        index = 0
        for number, line in enumerate(self._open_lines(), 1):
            if number == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            try:
                text = line.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                self.skip(f"{self.origin} line {number}: not UTF-8 (byte 0x{line[e.start]:02x} at {e.start})")
                continue
            if not text.strip():
                self.skip(f"{self.origin} line {number}: empty")
                continue
            yield Item(text, index, f"{self.origin}:{number}", time.perf_counter())
            index += 1

    def close(self) -> None:
        self._close()


class LiteralText(Source):
    """One item: the text given on the command line."""

    kind = "text"

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def __iter__(self) -> Iterator[Item]:
        if not self.text.strip():
            self.skip("--text: empty")
            return
        yield Item(self.text, 0, "text", time.perf_counter())


def _open_literal(spec: str) -> Source:
    return LiteralText(spec[len(TEXT_SCHEME) :])


def _open_file(spec: str) -> Source:
    path = Path(spec)
    if not path.is_file():
        raise SourceError(f"text file {path} does not exist (give one text per line, UTF-8)")
    try:
        handle: BinaryIO = open(path, "rb")  # noqa: SIM115  (closed by the source's close())
    except OSError as e:
        raise SourceError(f"cannot read {path}: {e.strerror or e}") from None
    return TextLines(str(path), lambda: handle, handle.close)


def _open_stdin(spec: str) -> Source:
    # stdin's binary buffer: the terminal's or pipe's bytes, decoded line by line as UTF-8 here,
    # not by the locale's codec (which could fail on the first bad byte of the whole stream)
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        raise SourceError("stdin is not readable here: give --text or a .txt file")
    return TextLines("stdin", lambda: stream, lambda: None)


SOURCES.add(
    SourceKind(
        "text",
        'a text to classify (--text "..." or text://...)',
        lambda s: s.startswith(TEXT_SCHEME),
        _open_literal,
        produces="text",
    ),
)
SOURCES.add(
    SourceKind(
        "text-file",
        "a .txt file, one text per line",
        lambda s: "://" not in s and Path(s).suffix.lower() in TEXT_SUFFIXES and not set("*?[") & set(s),
        _open_file,
        produces="text",
    ),
)
SOURCES.add(
    SourceKind("stdin", "- for lines of text on stdin", lambda s: s == "-", _open_stdin, produces="text"),
)
