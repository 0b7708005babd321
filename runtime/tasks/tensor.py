"""Any model file, as tensors: the task of a `.tflite` or `.onnx` that has no edgekit card.

Its inputs are made from the file's own tensor shapes and dtypes (random values in the dtype's
range; a dynamic dimension takes its size from `--shape name=1x3x224x224`, else 1), its outputs are
returned as tensors. So `bench`, `info` and `run` work on what the TFLite converter or tf2onnx wrote,
as `benchmark_model` and `onnxruntime_perf_test` do, with no card to write first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgekit.card import ModelCard, TensorSpec
from edgekit.errors import ConfigError, DataError
from edgekit.runtime.backends import Session, TensorInfo
from edgekit.runtime.tasks import TASKS, Task
from edgekit.runtime.tensors import random_tensor

INFERRED = "tensor shapes: the file has no edgekit card"


@dataclass(frozen=True)
class TensorOutput:
    """One output tensor of one inference, summarised for people and kept whole for `--save`."""

    name: str
    value: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        v = self.value
        d: dict[str, Any] = {"name": self.name, "shape": list(v.shape), "dtype": v.dtype.name}
        if v.size and v.dtype.kind in "fiub":
            f = v.astype(np.float64)
            d.update(min=float(f.min()), max=float(f.max()), mean=round(float(f.mean()), 6))
            if v.ndim >= 1 and v.shape[-1] > 1 and v.dtype.kind == "f":
                d["argmax"] = int(np.argmax(v.reshape(-1, v.shape[-1])[0]))
        return d

    def __str__(self) -> str:
        d = self.to_dict()
        stats = f" min {d['min']:.4g} max {d['max']:.4g} mean {d['mean']:.4g}" if "min" in d else ""
        return f"{self.name} {d['shape']} {d['dtype']}{stats}"


def parse_shapes(specs: Sequence[str] | None) -> dict[str, list[int]]:
    """`--shape name=1x3x224x224` (repeatable; `name=` may be left out when the model has one input)
    -> {name: dims}; a malformed one is one sentence."""
    out: dict[str, list[int]] = {}
    for spec in specs or ():
        name, _, dims = spec.rpartition("=")
        try:
            shape = [int(d) for d in dims.lower().split("x")]
        except ValueError:
            shape = []
        if not shape or any(d < 1 for d in shape):
            raise ConfigError(f"--shape {spec!r}: give name=1x3x224x224 (positive sizes joined by x)")
        out[name] = shape
    return out


def resolve_shape(info: TensorInfo, given: Sequence[int] | None, batch: int | None = None) -> tuple[int, ...]:
    """The concrete shape of one input: `given` where it fits the tensor (same rank, the fixed sizes
    kept), else the tensor's own with each dynamic size 1 (or `batch` for the first)."""
    if given is not None:
        if len(given) != len(info.shape) or any(
            s is not None and s != g for s, g in zip(info.shape, given, strict=True)
        ):
            shown = "x".join("?" if s is None else str(s) for s in info.shape)
            raise ConfigError(
                f"--shape {info.name}={'x'.join(map(str, given))} does not fit the input {info.name}, "
                f"which is {shown} (? is free)"
            )
        return tuple(int(g) for g in given)
    dims = [1 if s is None else int(s) for s in info.shape]
    if batch is not None and dims and (info.shape[0] is None or info.shape[0] == 1):
        dims[0] = batch
    return tuple(dims)


def shapes_for(
    inputs: Sequence[TensorInfo], shapes: Mapping[str, Sequence[int]], batch: int | None = None
) -> list[tuple[int, ...]]:
    """Each input's concrete shape; a `--shape` name the model does not have is refused by name."""
    names = [i.name for i in inputs]
    given = dict(shapes)
    if "" in given:  # a bare `--shape 1x3x224x224`: the one input
        if len(inputs) != 1:
            raise ConfigError(f"--shape needs name= here: the model has inputs {', '.join(names)}")
        given[names[0]] = given.pop("")
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ConfigError(
            f"--shape names {', '.join(unknown)}, but the model's inputs are {', '.join(names)}"
        )
    return [resolve_shape(i, given.get(i.name), batch) for i in inputs]


def _spec(t: TensorInfo) -> TensorSpec:
    return TensorSpec(t.name, tuple(t.shape), t.dtype.name)


def tensor_card(session: Session, shapes: Mapping[str, Sequence[int]] | None = None) -> ModelCard:
    """The card of a file that carries none and is no known detector: its tensors, said to be inferred
    (its quantization read from the file's own tensors)."""
    path = session.path
    if not session.inputs or not session.outputs:
        raise DataError(f"{path.name} has no inputs or no outputs to run")
    shapes = {k: list(v) for k, v in (shapes or {}).items()}
    return ModelCard(
        task="tensor",
        labels=(),
        input=_spec(session.inputs[0]),
        output=_spec(session.outputs[0]),
        # every input as it will be fed (dynamic dimensions resolved), for made-up and blank inputs
        preprocess={
            "kind": "tensor",
            "shapes": shapes,
            "inputs": [
                {"name": i.name, "shape": list(s), "dtype": i.dtype.name}
                for i, s in zip(session.inputs, shapes_for(session.inputs, shapes), strict=True)
            ],
        },
        postprocess={"inferred_from": INFERRED},
        recipe="",
        format=path.suffix.lstrip(".").lower(),
        quantization=session.file.quantization,
    )


def is_inferred(card: ModelCard) -> bool:
    """Whether a card was made by edgekit from the file rather than read from it."""
    return "inferred_from" in card.postprocess


@TASKS.register()
class TensorTask(Task):
    """Feeds in, tensors out: no pre- or post-processing beyond checking what is fed."""

    name = "tensor"
    accepts = "tensor"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shapes = shapes_for(self.inputs, self.card.preprocess.get("shapes", {}))

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
            if len(x.shape) != len(info.shape) or any(
                s is not None and s != d for s, d in zip(info.shape, x.shape, strict=True)
            ):
                shown = "x".join("?" if s is None else str(s) for s in info.shape)
                raise DataError(
                    f"input {info.name} is {shown}, got an array of shape {'x'.join(map(str, x.shape))}"
                )
            # float values -> int8 codes where the tensor is quantized; integer ids stay as they are
            feeds.append(self.feed(x, index) if x.dtype.kind == "f" else np.ascontiguousarray(x, info.dtype))
        return feeds

    def wrong_source_hint(self, gives: str) -> str:
        shape = "x".join("N" if s is None else str(s) for s in self.inputs[0].shape) if self.inputs else ""
        hint = f"give it a .npy of its input array ({shape}, one sample a row) or an .npz of its inputs"
        if gives == "image":  # a photo for a model with no card: make the card that reads images
            hint += (
                "; or, for an image model, export it from Keras with --task (e.g. --task "
                "classify-image --labels a,b,c) so its card says how to read images, or pass --card card.json"
            )
        return hint

    def postprocess(self, outputs: Sequence[np.ndarray]) -> list[TensorOutput]:
        # int8 outputs as the float values they stand for (the file's own scale and zero point)
        return [
            TensorOutput(info.name, np.asarray(self.output(outputs, i)))
            for i, info in enumerate(self.outputs[: len(outputs)])
        ]

    def blank_input(self) -> list[np.ndarray]:
        rng = np.random.default_rng(0)
        return [random_tensor(s, i.dtype, rng) for i, s in zip(self.inputs, self.shapes, strict=True)]
