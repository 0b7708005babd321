"""The model card: the one document that ties training, export and the runtime together.

It is written by the recipe at training time, embedded by the exporter inside every artifact
(ONNX `metadata_props`, the TFLite flatbuffer's metadata table) and read back by the runtime
with no TensorFlow, so a model file alone is enough to run it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit import __version__
from edgekit.errors import ModelFileError

CARD_VERSION = 1
CARD_KEY = "edgekit_card"  # the metadata name inside TFLite and ONNX files
# A card comes from a file that came from elsewhere: bound what reading it may cost. The largest
# real cards (a text model's vocabulary) are a few hundred KB and four levels deep.
MAX_CARD_BYTES = 32 * 1024 * 1024
MAX_CARD_DEPTH = 32
MAX_IMAGE_SIDE = 16384  # an image input larger than this on a side is not an edge model


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
    file_sha256: str = ""  # the exported file's own digest (runtime/weights_digest.py); "" for none
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
        if len(text) > MAX_CARD_BYTES:
            raise ModelFileError(
                f"{source} is {len(text) / 2**20:.0f} MB: a model card holds at most "
                f"{MAX_CARD_BYTES // 2**20} MB"
            )
        try:
            d = json.loads(text)
        except RecursionError:
            d = None  # nested deeper than Python's stack: said below as too deep
        except (ValueError, UnicodeDecodeError) as e:
            raise ModelFileError(f"{source} is not valid JSON: {e}") from None
        if d is None or _depth_over(d, MAX_CARD_DEPTH):
            raise ModelFileError(f"{source} is nested more than {MAX_CARD_DEPTH} levels deep")
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
        for name in (
            "recipe",
            "format",
            "quantization",
            "weights_sha256",
            "file_sha256",
            "edgekit_version",
            "created",
        ):
            kw[name] = _expect(d.get(name, ""), str, name)
        card = cls(**kw)
        card.check_input_shape(card.input.shape, "the card's input")
        return card

    def check_input_shape(self, shape: tuple[int | None, ...], what: str = "the model's input") -> None:
        """Check the card's image preprocessing against an input shape (the card's own, then the
        model file's real tensor): a size that is not two positive sides, or that disagrees with the
        tensor (`[784, 1]` for a 28x28x1 input), would give wrong scores in silence."""
        pre = self.preprocess
        if pre.get("kind") != "image":
            return
        size, channels = pre.get("size"), pre.get("channels", 3)
        if not (
            isinstance(size, list)
            and len(size) == 2
            and all(type(v) is int and 0 < v <= MAX_IMAGE_SIDE for v in size)
        ):
            raise ModelFileError(
                f"model card field preprocess.size must be [height, width] with sides from 1 to "
                f"{MAX_IMAGE_SIDE}, got {_short(size)}"
            )
        if type(channels) is not int or channels not in (1, 3):
            raise ModelFileError(
                f"model card field preprocess.channels must be 1 or 3, got {_short(channels)}"
            )
        dims = [d if isinstance(d, int) and d > 0 else None for d in shape]
        if len(dims) != 4:
            return  # not an image tensor (a flat vector, audio): the task says what it takes
        nchw = dims[1] == channels and dims[3] != channels
        hw, c = (dims[2:4], dims[1]) if nchw else (dims[1:3], dims[3])
        wrong_size = any(a is not None and a != b for a, b in zip(hw, size, strict=True))
        if wrong_size or (c is not None and c != channels):
            raise ModelFileError(
                f"model card field preprocess says {size[0]}x{size[1]}x{channels} images, but "
                f"{what} is {[d if d is not None else '?' for d in shape]}"
            )

    @classmethod
    def load(cls, path: Path) -> ModelCard:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise ModelFileError(f"cannot read model card {path}: {e.strerror or e}") from None
        return cls.from_json(text, source=str(path))


def _depth_over(value: Any, limit: int) -> bool:
    """Whether a parsed JSON value nests deeper than `limit` (iterative: no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict | list):
            if depth > limit:
                return True
            stack.extend((x, depth + 1) for x in (v.values() if isinstance(v, dict) else v))
    return False


def _short(value: Any, most: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= most else text[: most - 3] + "..."


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
    import hashlib  # OpenSSL's load (5 ms) only where weights are hashed, not on every start

    h = hashlib.sha256()
    for a in arrays:
        h.update(str(tuple(a.shape)).encode())
        h.update(memoryview(a).cast("B") if a.flags.c_contiguous else a.tobytes())
    return h.hexdigest()
