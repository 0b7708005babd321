"""The classes a generator is asked for: `--source "digits:0123456789"` gives one request per digit,
in order (`digits:7777` four sevens), each with the seed of its noise (its position; `--seed`
mixes the run's own in). `--save grid.png` tiles the images of a run into one grid."""

from __future__ import annotations

import time
from collections.abc import Iterator

from edgekit.errors import SourceError
from edgekit.runtime.inputs.labels import Request
from edgekit.runtime.sources import SOURCES, Item, Source, SourceKind

SCHEME = "digits:"
MAX_REQUESTS = 10_000


class Digits(Source):
    """One request per digit of the spec."""

    kind = "digits"
    tiles = True  # each item's result is a picture of its own: --save IMAGE tiles them into a grid

    def __init__(self, spec: str) -> None:
        super().__init__()
        self.spec = spec
        wanted = spec[len(SCHEME) :].replace(",", "").replace(" ", "")
        bad = [c for c in wanted if not c.isdigit() or not c.isascii()]
        if not wanted or bad:
            what = f"holds {bad[0]!r}" if bad else "names no digit"
            raise SourceError(f"{spec!r} {what}: give the digits to generate, such as digits:0123456789")
        if len(wanted) > MAX_REQUESTS:
            raise SourceError(f"{spec!r} asks for {len(wanted)} images: at most {MAX_REQUESTS:,} a run")
        self.labels = [int(c) for c in wanted]

    def __iter__(self) -> Iterator[Item]:
        for i, label in enumerate(self.labels):
            yield Item(Request(label, i), i, f"digit {label} #{i}", time.perf_counter())

    def __len__(self) -> int:
        return len(self.labels)


SOURCES.add(
    SourceKind(
        "digits",
        "digits:0123456789 for the digits a generator makes, one image each (--seed sets the noise)",
        lambda s: s.startswith(SCHEME),
        Digits,
        produces="labels",
    )
)
