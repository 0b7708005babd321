"""The model card: the one document that ties training, export and the runtime together.

It is written by the recipe at training time, embedded by the exporter inside every artifact
(ONNX `metadata_props`, the TFLite flatbuffer's metadata table) and read back by the runtime
with no TensorFlow, so a model file alone is enough to run it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit import __version__
from edgekit.errors import ModelFileError

CARD_VERSION = 1
CARD_KEY = "edgekit_card"  # the metadata name inside TFLite and ONNX files


@dataclass(frozen=True)
class TensorSpec:
    """One input or output tensor: `shape` uses None for a dynamic dimension."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str = "float32"
    layout: str = ""  # "NHWC" for images, "NC" for flat vectors and class scores

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype, "layout": self.layout}

    @classmethod
    def from_dict(cls, d: Any, where: str) -> TensorSpec:
        _expect(d, dict, where)
        shape = _expect(d.get("shape"), list, f"{where}.shape")
        if not all(s is None or (isinstance(s, int) and s >= 0) for s in shape):
            raise ModelFileError(f"model card field {where}.shape must hold sizes or null, got {shape}")
        return cls(
            name=_expect(d.get("name"), str, f"{where}.name"),
            shape=tuple(shape),
            dtype=_expect(d.get("dtype", "float32"), str, f"{where}.dtype"),
            layout=_expect(d.get("layout", ""), str, f"{where}.layout"),
        )


@dataclass(frozen=True)
class ModelCard:
    """Everything needed to use a model file with no other input.

    `preprocess` and `postprocess` belong to the task (see `edgekit.runtime.tasks`), which
    checks them; the rest is common to every model.
    """

    task: str
    labels: tuple[str, ...]
    input: TensorSpec
    output: TensorSpec
    preprocess: dict[str, Any] = field(default_factory=dict)
    postprocess: dict[str, Any] = field(default_factory=dict)
    recipe: str = ""
    hparams: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    format: str = "keras"
    quantization: str = "fp32"
    # {"input": {"scale": s, "zero_point": z}, "output": {...}}; empty for float IO
    io_quantization: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str = ""
    edgekit_version: str = __version__
    created: str = ""
    schema_version: int = CARD_VERSION

    def replace(self, **changes: Any) -> ModelCard:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["labels"] = list(self.labels)
        d["input"] = self.input.to_dict()
        d["output"] = self.output.to_dict()
        return d

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False, default=_json_default)

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "model card") -> ModelCard:
        try:
            d = json.loads(text)
        except (ValueError, UnicodeDecodeError) as e:
            raise ModelFileError(f"{source} is not valid JSON: {e}") from None
        return cls.from_dict(d)

    @classmethod
    def from_dict(cls, d: Any) -> ModelCard:
        _expect(d, dict, "card")
        version = d.get("schema_version")
        if version != CARD_VERSION:
            raise ModelFileError(
                f"model card schema_version {version!r} is not supported by edgekit {__version__} "
                f"(it reads version {CARD_VERSION}); upgrade edgekit or re-export the model"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ModelFileError(f"model card has unknown field(s): {', '.join(unknown)}")
        labels = _expect(d.get("labels", []), list, "labels")
        if not all(isinstance(x, str) for x in labels):
            raise ModelFileError("model card field labels must be a list of strings")
        kw: dict[str, Any] = {
            "task": _expect(d.get("task"), str, "task"),
            "labels": tuple(labels),
            "input": TensorSpec.from_dict(d.get("input"), "input"),
            "output": TensorSpec.from_dict(d.get("output"), "output"),
        }
        for name in (
            "preprocess",
            "postprocess",
            "hparams",
            "dataset",
            "metrics",
            "io_quantization",
            "parity",
        ):
            kw[name] = _expect(d.get(name, {}), dict, name)
        for name in ("recipe", "format", "quantization", "weights_sha256", "edgekit_version", "created"):
            kw[name] = _expect(d.get(name, ""), str, name)
        return cls(**kw)

    @classmethod
    def load(cls, path: Path) -> ModelCard:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise ModelFileError(f"cannot read model card {path}: {e.strerror or e}") from None
        return cls.from_json(text, source=str(path))


def _expect(value: Any, kind: type, where: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        got = "missing" if value is None else type(value).__name__
        raise ModelFileError(f"model card field {where} must be {kind.__name__}, got {got}")
    return value


def _json_default(o: Any) -> Any:
    # numpy scalars and arrays sneak into metrics and hparams
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def sha256_arrays(arrays: list[Any]) -> str:
    """A content hash of a model's weights (shapes included, so a reshape changes it)."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(str(tuple(a.shape)).encode())
        h.update(memoryview(a).cast("B") if a.flags.c_contiguous else a.tobytes())
    return h.hexdigest()
