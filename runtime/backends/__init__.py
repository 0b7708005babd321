"""Backends: one per library that can run a model file. Chosen by file suffix, then by what is
installed, in registration order (the preferred library first). A backend runs an opened
`edgekit.runtime.files.ModelFile`: the file's kind reads its card and bytes, the backend runs it,
and what differs between libraries (the devices they run on, taking a new batch size, their own
profilers) is asked of the backend or its session, never branched on by the caller."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.card import ModelCard
from edgekit.deps import installed
from edgekit.errors import ConfigError, MissingDependencyError, ModelFileError, UnsupportedError
from edgekit.registry import Registry
from edgekit.runtime.files import ModelFile


@dataclass(frozen=True)
class TensorInfo:
    """A tensor as the backend sees it; `quant` is (scale, zero_point) for integer tensors."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype
    quant: tuple[float, int] | None = None


DEVICES = ("auto", "cpu", "cuda", "tensorrt")  # what `--device` may name (each backend takes some)


@dataclass(frozen=True)
class SessionOptions:
    """How a backend opens a file. `batch` fixes a dynamic batch dimension at that size for the
    session (None: the backend decides; the ONNX backend fixes it at 1 on a GPU, where fixed shapes
    buy a CUDA graph or one TensorRT engine, and leaves it open on the CPU); `cuda_graph` False
    keeps the ONNX backend to IO binding on CUDA (to measure what the graph gains)."""

    threads: int | None = None  # None: the library's default
    device: str = "auto"
    batch: int | None = None
    cuda_graph: bool = True

    def __post_init__(self) -> None:
        if self.batch is not None and self.batch < 1:
            raise ConfigError(f"a batch must be at least 1, got {self.batch}")


def check_shapes(path: Path, inputs: Sequence[TensorInfo], shapes: Sequence[Sequence[int]]) -> None:
    """One sentence where `shapes` do not fit the inputs' sizes (a free dimension, None, takes any)."""
    for info, shape in zip(inputs, shapes, strict=False):
        if len(info.shape) != len(shape) or any(
            d is not None and d != s for d, s in zip(info.shape, shape, strict=True)
        ):
            shown = "x".join("?" if d is None else str(d) for d in info.shape)
            raise ConfigError(
                f"{path.name} takes a fixed shape (input {info.name} is {shown}): it cannot take "
                f"{'x'.join(map(str, shape))}"
            )


class Session:
    """An opened model. Backends subclass it; use it as a context manager."""

    backend: str = ""
    device: str = "cpu"
    concurrent: bool = False  # run() may be called from several threads at once

    def __init__(self, file: ModelFile) -> None:
        self.file = file
        self.path = file.path
        self.card: ModelCard | None = file.card
        self.inputs: list[TensorInfo] = []
        self.outputs: list[TensorInfo] = []

    def run(self, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run one inference; `feeds` are in the order of `inputs`."""
        raise NotImplementedError

    def resize(self, shapes: Sequence[Sequence[int]]) -> None:
        """Take inputs of these shapes from now on (a batch of 8 where the file says 1 or ?); one
        sentence where the model's sizes are fixed. Backends whose library must be told override it."""
        check_shapes(self.path, self.inputs, shapes)

    def profile(self, feeds: Sequence[np.ndarray], runs: int = 50) -> dict[str, Any]:
        """Where the time of one inference goes, from the library's own profiler: {"ops": [...]}
        (op, share of the time, and what each backend can say), or {"note": why not}."""
        return {"note": f"{self.backend} has no profiler edgekit reads"}

    @property
    def execution(self) -> dict[str, Any]:
        """How inferences run here, for a benchmark row (providers, IO binding, notes); {} if plain."""
        return {}

    def close(self) -> None:
        """Release the interpreter or session."""

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@dataclass(frozen=True)
class Backend:
    name: str
    suffixes: tuple[str, ...]
    module: str  # what must be importable for the backend to work
    install: str  # the command that makes it work
    open: Callable[[ModelFile, SessionOptions], Session]
    note: str = ""
    extra_check: Callable[[], bool] = field(default=lambda: True)
    # the devices `--device` may name for it; a backend that runs on the CPU alone takes `cpu` only
    devices: tuple[str, ...] = ("cpu",)
    # the device `auto` means here (`first_device("auto")`); the CPU unless the backend says
    first_device_for: Callable[[str], str] | None = None

    def available(self) -> bool:
        return installed(self.module) and self.extra_check()

    def runs_on(self, device: str) -> bool:
        """Whether a row of this backend on `device` is a row of its own (`auto` always is)."""
        return device == "auto" or device in self.devices

    def first_device(self, device: str) -> str:
        """The device a session opened for `device` tries first here: `auto` resolved."""
        if device != "auto":
            return device
        return self.first_device_for(device) if self.first_device_for is not None else "cpu"


# each module of this package registers its backends, in the order of preference for a suffix;
# none imports its library at import time
BACKENDS: Registry[Backend] = Registry("backend", package=__name__)


def backends_for(path: Path | ModelFile) -> list[Backend]:
    """The backends that open this kind of file, the preferred first."""
    suffix = Path(getattr(path, "path", path)).suffix.lower()
    return [b for b in BACKENDS if suffix in b.suffixes]


def select_backend(path: Path | ModelFile, name: str | None = None) -> Backend:
    """The backend named, or the first installed one that opens this kind of file."""
    path = Path(getattr(path, "path", path))
    if name:
        backend = BACKENDS.get(name)
        if Path(path).suffix.lower() not in backend.suffixes:
            raise ModelFileError(
                f"backend {name} opens {', '.join(backend.suffixes)} files, not {Path(path).name}"
            )
        if not backend.available():
            raise MissingDependencyError(f"backend {name} is not installed: run `{backend.install}`")
        return backend
    candidates = backends_for(path)
    if not candidates:
        known = sorted({s for b in BACKENDS for s in b.suffixes})
        raise ModelFileError(
            f"{Path(path).name} is not a model file edgekit can run (known: {', '.join(known)})"
        )
    suffix = path.suffix.lower()
    chosen = BACKENDS.first(lambda b: suffix in b.suffixes and b.available())
    if chosen is not None:
        return chosen
    raise MissingDependencyError(
        f"no backend for {Path(path).suffix} files is installed: run `{candidates[0].install}`"
    )


def open_model(
    path: str | Path | ModelFile, backend: str | None = None, threads: int | None = None, device: str = "auto"
) -> Session:
    """Open a model file (a path, or a `ModelFile` already opened) with the best backend installed
    (or the one named). The file's card is checked against the digest export sealed it with."""
    if threads is not None and threads < 1:
        raise ConfigError("--threads must be at least 1 (leave it out for the library's default)")
    if device not in DEVICES:
        raise ConfigError(f"unknown --device {device!r}: use {', '.join(DEVICES)}")
    file = ModelFile.open(path)
    chosen = select_backend(file, backend)
    if not chosen.runs_on(device):  # never a quiet CPU run where a GPU was asked for
        raise UnsupportedError(
            f"the {chosen.name} backend runs on --device auto, {', '.join(chosen.devices)}, not {device!r} "
            f"({file.name} is a {file.kind.name} file)"
        )
    return chosen.open(file, SessionOptions(threads=threads, device=device))
