"""Arrays as a source: a `.npy` (one input array, or a stack of them along the first axis) or an
`.npz` (one array per model input, by name), for models that take tensors rather than images."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edgekit.errors import SourceError
from edgekit.runtime.sources import SOURCES, Item, Source, SourceKind

SUFFIXES = (".npy", ".npz")


class ArraySource(Source):
    """One item: the array of a `.npy`, or the {name: array} of an `.npz` (loaded with pickles off)."""

    kind = "arrays"

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = Path(path)
        try:
            loaded = np.load(self.path, allow_pickle=False)
            self.data = dict(loaded.items()) if isinstance(loaded, np.lib.npyio.NpzFile) else loaded
        except (OSError, ValueError) as e:
            raise SourceError(f"cannot read arrays from {self.path}: {e}") from None

    def __iter__(self) -> Iterator[Item]:
        yield Item(self.data, 0, self.path.name, time.perf_counter())


SOURCES.add(
    SourceKind(
        "arrays",
        "a .npy or .npz of input arrays",
        matches=lambda spec: Path(spec).suffix.lower() in SUFFIXES and Path(spec).is_file(),
        open=ArraySource,
        produces="tensor",
    )
)
