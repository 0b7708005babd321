"""Backends: one per library that can run a model file. Chosen by file suffix, then by what is
installed, in registration order (the preferred library first)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.card import ModelCard
from edgekit.deps import installed
from edgekit.errors import MissingDependencyError, ModelFileError
from edgekit.registry import Registry


@dataclass(frozen=True)
class TensorInfo:
    """A tensor as the backend sees it; `quant` is (scale, zero_point) for integer tensors."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype
    quant: tuple[float, int] | None = None


@dataclass(frozen=True)
class SessionOptions:
    threads: int | None = None  # None: the library's default
    device: str = "auto"


class Session:
    """An opened model. Backends subclass it; use it as a context manager."""

    backend: str = ""
    device: str = "cpu"
    concurrent: bool = False  # run() may be called from several threads at once

    def __init__(self, path: Path, card: ModelCard | None) -> None:
        self.path = path
        self.card = card
        self.inputs: list[TensorInfo] = []
        self.outputs: list[TensorInfo] = []

    def run(self, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run one inference; `feeds` are in the order of `inputs`."""
        raise NotImplementedError

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
    open: Callable[[Path, SessionOptions], Session]
    read_card: Callable[[Path], ModelCard | None]
    note: str = ""
    extra_check: Callable[[], bool] = field(default=lambda: True)

    def available(self) -> bool:
        return installed(self.module) and self.extra_check()


# each module of this package registers its backends, in the order of preference for a suffix;
# none imports its library at import time
BACKENDS: Registry[Backend] = Registry("backend", package=__name__)


def check_model_file(path: Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file {path} does not exist")
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder, not a model file")
    return path


def backends_for(path: Path) -> list[Backend]:
    suffix = Path(path).suffix.lower()
    return [b for _, b in BACKENDS.items() if suffix in b.suffixes]


def select_backend(path: Path, name: str | None = None) -> Backend:
    """The backend named, or the first installed one that opens this kind of file."""
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
        known = sorted({s for _, b in BACKENDS.items() for s in b.suffixes})
        raise ModelFileError(
            f"{Path(path).name} is not a model file edgekit can run (known: {', '.join(known)})"
        )
    for backend in candidates:
        if backend.available():
            return backend
    raise MissingDependencyError(
        f"no backend for {Path(path).suffix} files is installed: run `{candidates[0].install}`"
    )


def open_model(
    path: str | Path, backend: str | None = None, threads: int | None = None, device: str = "auto"
) -> Session:
    """Open a model file with the best backend installed (or the one named)."""
    path = check_model_file(Path(path))
    chosen = select_backend(path, backend)
    session = chosen.open(path, SessionOptions(threads=threads, device=device))
    try:
        _check_digest(path, session.card)
    except BaseException:
        session.close()
        raise
    return session


def read_card(path: str | Path) -> ModelCard | None:
    """The card embedded in a model file (None when the file has none), without running it."""
    path = check_model_file(Path(path))
    candidates = backends_for(path)
    if not candidates:
        raise ModelFileError(f"{path.name} is not a model file edgekit can read")
    card = candidates[0].read_card(path)
    _check_digest(path, card)
    return card


def _check_digest(path: Path, card: ModelCard | None) -> None:
    """Refuse a file changed since export (a weight, a scale, the card): export sealed it with a
    digest in its card. Files exported before, and files with no card (BlazeFace), pass."""
    if card is not None and card.file_sha256:
        from edgekit.runtime.weights_digest import check_file_digest

        check_file_digest(path, card.file_sha256)
