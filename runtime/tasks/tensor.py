"""Any model, as tensors: the task of a model that has no edgekit task (a GRU over sensor windows,
a Conv1D over token ids, a backbone with no labels). Arrays in as they are, the outputs out.

The card says `task: "tensor"` and `preprocess: {"kind": "tensor", ...}` with the input's shape,
dtype and value range (for generated inputs: see `runtime/inputs/tensor.py`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgekit.errors import DataError
from edgekit.runtime.tasks import TASKS, Task


@dataclass(frozen=True)
class TensorOutput:
    """One output tensor of one inference."""

    name: str
    value: np.ndarray

    def __str__(self) -> str:
        v = self.value
        stats = ""
        if v.size and v.dtype.kind in "fiub":
            f = v.astype(np.float64)
            stats = f" min {f.min():.4g} max {f.max():.4g} mean {f.mean():.4g}"
        return f"{self.name} {list(v.shape)} {v.dtype.name}{stats}"


@TASKS.register()
class TensorTask(Task):
    """Feeds in, tensors out: no pre- or post-processing beyond checking what is fed (and
    quantizing float values for an int8 input tensor, dequantizing int8 outputs)."""

    name = "tensor"
    accepts = "tensor"

    def preprocess(self, raw: Any) -> list[np.ndarray]:
        """An array (one-input models), a list in input order, or a mapping by input name (an .npz)."""
        if isinstance(raw, Mapping):
            missing = [i.name for i in self.inputs if i.name not in raw]
            if missing and len(raw) == len(self.inputs):  # arr_0, arr_1 from np.savez: by position
                raw = list(raw.values())
            elif missing:
                raise DataError(f"the input has no array for {', '.join(missing)} (it has {', '.join(raw)})")
            else:
                raw = [raw[i.name] for i in self.inputs]
        arrays = [raw] if isinstance(raw, np.ndarray) else list(raw)
        if len(arrays) != len(self.inputs):
            raise DataError(f"the model takes {len(self.inputs)} inputs, got {len(arrays)} arrays")
        feeds = []
        for index, (info, x) in enumerate(zip(self.inputs, arrays, strict=True)):
            x = np.asarray(x)
            if x.ndim == len(info.shape) - 1:  # one item without its batch dimension
                x = x[None]
            if x.ndim != len(info.shape) or any(
                s is not None and s != d for s, d in zip(info.shape, x.shape, strict=True)
            ):
                shown = "x".join("?" if s is None else str(s) for s in info.shape)
                raise DataError(
                    f"input {info.name} is {shown}, got an array of shape {'x'.join(map(str, x.shape))}"
                )
            # float values -> int8 codes where the tensor is quantized; integer ids stay as they are
            feeds.append(self.feed(x, index) if x.dtype.kind == "f" else np.ascontiguousarray(x, info.dtype))
        return feeds

    def postprocess(self, outputs: Sequence[np.ndarray]) -> list[TensorOutput]:
        return [
            TensorOutput(info.name, np.asarray(self.output(outputs, i)))
            for i, info in enumerate(self.outputs[: len(outputs)])
        ]
