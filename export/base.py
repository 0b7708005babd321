"""Export formats and quantization modes: one registry (`EXPORTERS`, one module per format in
`export/formats/`) and the targets derived from it (`targets()`: every format × its modes), which
the CLI's choices and help, `edgekit list`, `--to all`, the quickstart, the benchmark and the tests
all read."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from edgekit.card import ModelCard
from edgekit.errors import ConfigError, UnsupportedError
from edgekit.registry import Registry


class Quantization(str, enum.Enum):
    FP32 = "fp32"
    FP16 = "fp16"
    DYNAMIC = "dynamic"  # int8 weights, float activations
    INT8 = "int8"  # full integer, calibrated on representative data

    @classmethod
    def parse(cls, value: str) -> Quantization:
        try:
            return cls(value)
        except ValueError:
            raise ConfigError(
                f"unknown quantization {value!r}: use one of {', '.join(q.value for q in cls)}"
            ) from None


@dataclass(frozen=True)
class Bar:
    """What an artifact must meet against Keras on held-out data."""

    max_abs_diff: float | None = None  # on the model's float outputs
    # on the task's headline metric (accuracy, IoU, mAP), in points (1.0 = one percentage point)
    max_metric_drop: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return {"max_abs_diff": self.max_abs_diff, "max_metric_drop_points": self.max_metric_drop}


DEFAULT_BARS = {
    Quantization.FP32: Bar(max_abs_diff=1e-4),
    Quantization.FP16: Bar(max_abs_diff=1e-2),
    Quantization.DYNAMIC: Bar(max_metric_drop=1.0),
    Quantization.INT8: Bar(max_metric_drop=1.0),
}


IO_TYPES = ("int8", "uint8", "float")
CALIB_METHODS = ("minmax", "entropy", "percentile")
# tf2onnx 1.17 writes opsets up to 18; below 13 onnxruntime's QDQ quantization loses per-axis support
OPSETS = range(13, 19)


@dataclass(frozen=True)
class ExportOptions:
    """Checked before TensorFlow is touched, so a bad request fails in milliseconds."""

    format: str
    quantization: Quantization
    out: Path
    force: bool = False
    calib_samples: int = 200
    max_drop: float | None = None  # points; overrides the mode's default bar
    opset: int = 17
    io: str = "int8"  # TFLite full-integer models: the input/output type (int8, uint8, float)
    calib_method: str = "minmax"  # ONNX static int8: minmax, entropy, percentile
    batch: str | None = None  # "1" or "dynamic"; None: the format's default
    simplify: bool = True  # ONNX: simplify the graph (onnxslim) before saving
    data: str | None = None  # --data: calibration and held-out samples (default: the card's dataset)
    hints: Any = None  # an `edgekit.export.describe.CardHints`: --task/--labels/--normalize
    float_layers: tuple[str, ...] = ()  # --float-layers: nodes kept in float in an int8/dynamic file
    selective: bool = True  # a quantized file that misses its bar retries with its worst layers in float

    def __post_init__(self) -> None:
        if self.io not in IO_TYPES:
            raise ConfigError(f"unknown --io {self.io!r}: use one of {', '.join(IO_TYPES)}")
        if self.calib_method not in CALIB_METHODS:
            raise ConfigError(
                f"unknown --calib-method {self.calib_method!r}: use one of {', '.join(CALIB_METHODS)}"
            )
        if self.batch not in (None, "1", "dynamic"):
            raise ConfigError(f"--batch must be 1 or dynamic, not {self.batch!r}")
        if self.calib_samples < 1:
            raise ConfigError("--calib-samples must be at least 1")
        if self.opset not in OPSETS:
            raise ConfigError(f"--opset {self.opset} is not supported: use {OPSETS[0]} to {OPSETS[-1]}")

    def bar(self) -> Bar:
        """The mode's default bar; --max-drop sets the metric bar (fp32/fp16 keep their abs-diff bar)."""
        default = DEFAULT_BARS[self.quantization]
        if self.max_drop is None:
            return default
        return dataclasses.replace(default, max_metric_drop=self.max_drop)


# (keras model, card, options, calibration inputs or None) -> file bytes, no card
Converter = Callable[[Any, ModelCard, ExportOptions, "np.ndarray | None"], bytes]


@dataclass(frozen=True)
class Exporter:
    """One export format: what it converts a Keras model to. The file it writes is of the kind that
    takes its suffix (`edgekit.runtime.files`), which puts the card inside it."""

    format: str
    suffix: str
    modes: tuple[Quantization, ...]
    convert: Converter
    description: str = ""
    # where the format stands in tables and `--to all` (lower first): the device format leads
    rank: int = 0

    @property
    def name(self) -> str:
        return self.format

    def check(self, q: Quantization) -> None:
        if q not in self.modes:
            raise UnsupportedError(
                f"{self.format} export does not support {q.value}: use one of "
                f"{', '.join(m.value for m in self.modes)}"
            )

    @property
    def kind(self) -> Any:
        """The model file kind (`edgekit.runtime.files.FileKind`) of the files this format writes."""
        from edgekit.runtime.files import kind_of_suffix

        return kind_of_suffix(self.suffix)

    def embed(self, data: bytes, card: ModelCard) -> bytes:
        """The converted bytes with the card inside, as the file kind of this format writes it."""
        return self.kind.embed(data, card)

    def default_path(self, model_path: Path, q: Quantization) -> Path:
        tag = "" if q is Quantization.FP32 else f"_{q.value}"
        return model_path.with_name(f"{model_path.stem}{tag}{self.suffix}")


EXPORTERS: Registry[Exporter] = Registry("export format", package="edgekit.export.formats")


def get_exporter(name: str) -> Exporter:
    return EXPORTERS.get(name)


def exporter_names() -> list[str]:
    """The formats, by rank (the device format first)."""
    return [e.name for e in sorted(EXPORTERS, key=lambda e: e.rank)]


class Target(NamedTuple):
    """One artifact kind edgekit can write: a format and one of its quantization modes."""

    exporter: Exporter
    quantization: Quantization

    @property
    def format(self) -> str:
        return self.exporter.format

    def default_path(self, model_path: Path) -> Path:
        return self.exporter.default_path(model_path, self.quantization)

    def __str__(self) -> str:
        return f"{self.format} {self.quantization.value}"


# what `edgekit quickstart` writes: the float reference and the smallest file, of every format
QUICKSTART_MODES = (Quantization.FP32, Quantization.INT8)


def targets(modes: tuple[Quantization, ...] | None = None) -> list[Target]:
    """Every (format, mode) the registry holds, formats by rank, each format's modes in its own
    order (fp32 first); `modes` keeps only those."""
    exporters = sorted(EXPORTERS, key=lambda e: e.rank)
    return [Target(e, q) for e in exporters for q in e.modes if modes is None or q in modes]


def quickstart_targets() -> list[Target]:
    return targets(QUICKSTART_MODES)
