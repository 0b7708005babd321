"""A model file is one object: `ModelFile.open(path)` finds the file's kind and reads the file once;
everything about it that needs no interpreter is asked of it and worked out once.

Each format is one registered `FileKind` (a module of this package: TFLite, ONNX, Keras, Darknet),
which owns what only that format knows: reading the edgekit card inside a file and putting one in,
listing the operators the graph uses, telling its quantization from its tensors, and reading the
metadata other tools write into their exports (Ultralytics' names and image size). Export writes
files through their kind, backends run a `ModelFile`, and `bench`, `info`, `evaluate` and export
validation all take one, so a file is read, verified and its card parsed once, whoever asks.

A card that records the digest export sealed the file with (`file_sha256`) is checked against the
bytes already read, the first time the card is asked for."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from edgekit.card import ModelCard
from edgekit.errors import ModelFileError, UnsupportedError
from edgekit.registry import Registry

_UNREAD: Any = object()


class FileKind:
    """One format of model file. A subclass per format registers one instance in `FILE_KINDS`;
    what a format cannot do keeps the base's answer (no card, no operators, quantization unknown)."""

    name: ClassVar[str] = ""
    suffixes: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    # export seals files of this kind with a digest of their bytes (runtime/weights_digest.py)
    sealed: ClassVar[bool] = False
    # a model made of several files or a folder (a Darknet pair, a SavedModel): no one buffer of bytes
    whole_file: ClassVar[bool] = True

    def matches(self, path: Path) -> bool:
        """Whether `path` is a file of this kind (by its suffix unless the kind says otherwise)."""
        return path.suffix.lower() in self.suffixes and not path.is_dir()

    def card(self, file: ModelFile) -> ModelCard | None:
        """The edgekit card the file carries (inside, or beside it where the format has no room)."""
        return None

    def embed(self, data: bytes, card: ModelCard) -> bytes:
        """The file's bytes with `card` inside (replacing a card already there)."""
        raise UnsupportedError(f"{self.name} files cannot carry an edgekit card inside them")

    def ops(self, file: ModelFile) -> Any:
        """An `edgekit.runtime.ops.OpReport` of the operators the graph uses (None: not listed)."""
        return None

    def quantization(self, file: ModelFile) -> str:
        """int8, dynamic, fp16 or fp32 from the file's own tensors and operators, or unknown."""
        return "unknown"

    def metadata(self, file: ModelFile) -> dict[str, Any]:
        """Metadata another tool wrote into the file (Ultralytics' exports), as that tool wrote it:
        {key: value}, values as they are stored (text in ONNX `metadata_props`)."""
        return {}

    def __repr__(self) -> str:
        return f"<{self.name} file kind>"


# one module per format; registration order is the order suffixes are tried in
FILE_KINDS: Registry[FileKind] = Registry("model file kind", package=__name__)


def kind_for(path: Path) -> FileKind | None:
    """The kind of file `path` is, or None when no kind takes it."""
    return FILE_KINDS.first(lambda kind: kind.matches(path))


def kind_of_suffix(suffix: str) -> FileKind:
    """The kind whose files (one file of bytes each) end in `suffix`: what an exporter writes."""
    kind = FILE_KINDS.first(lambda k: k.whole_file and suffix.lower() in k.suffixes)
    if kind is None:
        raise ModelFileError(f"no model file kind takes {suffix} files")
    return kind


class ModelFile:
    """One model file, opened once: its kind, its bytes (read on first use, with the stat they were
    read under), its card, operators, quantization and foreign metadata, each worked out once.

    `ModelFile.open` also accepts a `ModelFile` (returned as it is), so every function that takes a
    path takes an opened file too and nothing reads the file again. Export's trials are made in
    memory with `ModelFile.of_bytes`, their card already known."""

    def __init__(self, path: Path, kind: FileKind, data: bytes | None = None, card: Any = _UNREAD) -> None:
        self.path = Path(path)
        self.kind = kind
        self._data = data
        self._stat: os.stat_result | None = None
        self._card = card
        self._derived: dict[str, Any] = {}
        # the structure of the bytes was checked (a TFLite verifier pass, or a cached verdict on them)
        self.checked = False
        # made in this process (a converter's output being validated), not a file from elsewhere: a
        # backend verifies its structure but need not try it in a child process first
        self.made_here = False

    @classmethod
    def open(cls, path: str | Path | ModelFile) -> ModelFile:
        """The file at `path`, its kind chosen by `FILE_KINDS`; one sentence when it is missing or no
        kind takes it."""
        if isinstance(path, ModelFile):
            return path
        path = Path(path)
        if not path.exists():
            raise ModelFileError(f"model file {path} does not exist")
        kind = kind_for(path)
        if kind is None:
            if path.is_dir():
                raise ModelFileError(f"{path} is a folder, not a model file")
            known = sorted({s for k in FILE_KINDS for s in k.suffixes})
            raise ModelFileError(
                f"{path.name} is not a model file edgekit can read (known: {', '.join(known)})"
            )
        return cls(path, kind)

    @classmethod
    def of_bytes(cls, path: Path, data: bytes, card: ModelCard | None = _UNREAD) -> ModelFile:
        """A file this process made, held in memory (to be written at `path`), with its card when the
        caller knows it: export validates its trials so, before anything is written."""
        path = Path(path)
        file = cls(path, kind_of_suffix(path.suffix), data, card)
        file.made_here = True
        return file

    # -- the bytes -----------------------------------------------------------------------------

    @property
    def data(self) -> bytes:
        """The whole file, read once (its stat taken from the same open file)."""
        if self._data is None:
            if not self.kind.whole_file:
                raise UnsupportedError(f"a {self.kind.name} model is not one file of bytes")
            try:
                with open(self.path, "rb") as f:
                    self._stat, self._data = os.fstat(f.fileno()), f.read()
            except OSError as e:
                raise ModelFileError(f"cannot read {self.path}: {e.strerror or e}") from None
        return self._data

    @property
    def stat(self) -> os.stat_result | None:
        """The stat the bytes were read under (None for a file held only in memory)."""
        if self._stat is None and self._data is None and self.kind.whole_file:
            self.data  # noqa: B018 (reads the bytes and the stat together)
        return self._stat

    @property
    def size(self) -> int:
        if self._data is not None:
            return len(self._data)
        try:
            return self.path.stat().st_size
        except OSError as e:
            raise ModelFileError(f"cannot read {self.path}: {e.strerror or e}") from None

    @property
    def name(self) -> str:
        return self.path.name

    # -- what is read from it ----------------------------------------------------------------------

    @property
    def card(self) -> ModelCard | None:
        """The card the file carries (None: none), read once; a file changed since export (its bytes
        do not match the digest sealed into the card) is refused here."""
        if self._card is _UNREAD:
            card = self.kind.card(self)
            if card is not None and card.file_sha256 and self.kind.whole_file:
                from edgekit.runtime.weights_digest import check_digest

                check_digest(self, card.file_sha256)
            self._card = card
        return self._card

    def _once(self, key: str, make: Any) -> Any:
        if key not in self._derived:
            self._derived[key] = make(self)
        return self._derived[key]

    @property
    def ops(self) -> Any:
        """The operators the graph uses (`OpReport`), or None where the format lists none."""
        return self._once("ops", self.kind.ops)

    @property
    def quantization(self) -> str:
        """What the tensors say: int8, dynamic, fp16, fp32 (unknown when they cannot be read)."""
        return self._once("quantization", self.kind.quantization)

    @property
    def metadata(self) -> dict[str, Any]:
        """Metadata another tool wrote into the file (Ultralytics), {} for none."""
        return self._once("metadata", self.kind.metadata)

    def __repr__(self) -> str:
        return f"ModelFile({str(self.path)!r}, {self.kind.name})"


def read_card(path: str | Path | ModelFile) -> ModelCard | None:
    """The card a model file carries (None when it has none), without running it."""
    return ModelFile.open(path).card
