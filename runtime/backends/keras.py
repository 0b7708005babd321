"""Keras files, for comparison in `bench` and for `run` on a host. TensorFlow is imported only when
such a file is opened, so the runtime itself stays free of it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgekit.deps import installed
from edgekit.runtime.backends import BACKENDS, Backend, Session, SessionOptions, TensorInfo
from edgekit.runtime.files import ModelFile

INSTALL = "pip install 'edgekit[train]'"


class KerasSession(Session):
    backend = "keras"

    def __init__(self, file: ModelFile, options: SessionOptions) -> None:
        super().__init__(file)
        self.model = file.kind.load(file)
        self.inputs = [
            TensorInfo(t.name, tuple(t.shape), np.dtype(t.dtype or "float32")) for t in self.model.inputs
        ]
        self.outputs = [
            TensorInfo(t.name, tuple(t.shape), np.dtype(t.dtype or "float32")) for t in self.model.outputs
        ]

    def run(self, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
        # model(x), as a user of Keras calls it, is what `bench` compares against
        out = self.model(feeds[0] if len(feeds) == 1 else list(feeds), training=False)
        outs = out if isinstance(out, (list, tuple)) else [out]
        return [np.asarray(o) for o in outs]

    def close(self) -> None:
        self.model = None


BACKENDS.add(
    Backend(
        name="keras",
        suffixes=(".keras", ".h5"),
        module="keras",
        install=INSTALL,
        open=lambda file, options: KerasSession(file, options),
        note="host only: imports TensorFlow",
        extra_check=lambda: installed("tensorflow"),
    ),
)
