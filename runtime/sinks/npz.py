"""`--save out.npz`: every output tensor of every input, as arrays named `INPUT/OUTPUT` (or the output's
name alone when there is one input), written atomically when the run ends."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.errors import ConfigError
from edgekit.fileio import atomic_path, check_writable
from edgekit.runtime.predictor import Prediction
from edgekit.runtime.sinks import SINKS, Sink, SinkContext, SinkKind
from edgekit.runtime.sources import Item


class NpzSink(Sink):
    def __init__(self, path: Path, force: bool = False) -> None:
        check_writable(path, force=force)
        self.path = path
        self.arrays: dict[str, np.ndarray] = {}
        self.items = 0

    def write(self, item: Item, prediction: Prediction) -> None:
        values = [getattr(r, "value", None) for r in prediction.results]
        if any(v is None for v in values):
            raise ConfigError("--save .npz writes output tensors: it is for models run as tensors (no card)")
        self.items += 1
        for r in prediction.results:
            self.arrays[f"{item.index}/{r.name}"] = np.asarray(r.value)

    def close(self) -> None:
        arrays = self.arrays
        if self.items == 1:  # one input: the outputs by their own names
            arrays = {k.split("/", 1)[1]: v for k, v in arrays.items()}
        with atomic_path(self.path, keep_suffix=True) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
        self.done = True

    def saved(self) -> list[str]:
        if not getattr(self, "done", False):
            return []
        return [f"{self.path} ({len(self.arrays)} output arrays of {self.items} inputs)"]


def _open(context: SinkContext, target: Path | None) -> Sink:
    return NpzSink(Path(target or "outputs.npz"), context.force)


SINKS.add(SinkKind("npz", "output tensors as arrays", _open, suffixes=(".npz",)))
