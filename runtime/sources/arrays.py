"""Arrays as a source: a `.npy` (one sample a row, along its first axis, as `export --data` takes
arrays) or an `.npz` (one array per model input, by name, each with one sample a row), for models
that take tensors rather than images. Each row is one input, so a 3x64 array is three inputs to a
batch-1 TFLite file and to a dynamic-batch ONNX file alike; a 1-D array is one sample."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edgekit.errors import SourceError
from edgekit.runtime.sources import SOURCES, Item, Source, SourceKind

SUFFIXES = (".npy", ".npz")


class ArraySource(Source):
    """An item per row of the array of a `.npy`, or of the {name: array} of an `.npz` (loaded with
    pickles off); a 1-D array, or an `.npz` whose arrays differ in rows, is one item."""

    kind = "arrays"

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = Path(path)
        try:
            loaded = np.load(self.path, allow_pickle=False)
            self.data = dict(loaded.items()) if isinstance(loaded, np.lib.npyio.NpzFile) else loaded
        except (OSError, ValueError) as e:
            raise SourceError(f"cannot read arrays from {self.path}: {e}") from None

    def rows(self) -> int | None:
        """How many samples the file holds, one a row (None: it is one sample as it is)."""
        arrays = list(self.data.values()) if isinstance(self.data, dict) else [self.data]
        counts = {a.shape[0] if a.ndim >= 2 else None for a in arrays}
        return next(iter(counts)) if len(counts) == 1 else None

    def __iter__(self) -> Iterator[Item]:
        n = self.rows()
        if n is None:
            yield Item(self.data, 0, self.path.name, time.perf_counter())
            return
        for i in range(n):
            row = {k: v[i] for k, v in self.data.items()} if isinstance(self.data, dict) else self.data[i]
            yield Item(row, i, f"{self.path.name}[{i}]", time.perf_counter())


SOURCES.add(
    SourceKind(
        "arrays",
        "a .npy or .npz of input arrays",
        matches=lambda spec: Path(spec).suffix.lower() in SUFFIXES and Path(spec).is_file(),
        open=ArraySource,
        produces="tensor",
    )
)
