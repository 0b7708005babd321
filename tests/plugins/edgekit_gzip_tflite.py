"""A whole new model format from one module, as a user adds one: gzip-compressed TFLite
(`.tflgz`, a smaller file to ship over the air). It registers the three parts a format needs
and nothing else: the file kind (how its card is read and written), the exporter (how a Keras model
becomes one) and the backend (how it runs). Loaded by `EDGEKIT_PLUGINS=edgekit_gzip_tflite`."""

from __future__ import annotations

import gzip
from typing import Any

from edgekit.card import ModelCard
from edgekit.export.base import EXPORTERS, Exporter, Quantization
from edgekit.export.formats.tflite import convert_tflite
from edgekit.runtime.backends import BACKENDS, Backend, SessionOptions
from edgekit.runtime.backends.tflite import TFLiteSession
from edgekit.runtime.files import FILE_KINDS, FileKind, ModelFile, kind_of_suffix

SUFFIX = ".tflgz"


def unpacked(file: ModelFile) -> ModelFile:
    """The TFLite file inside, held in memory, its card the outer file's (read once)."""
    inner = file._once(
        "unpacked", lambda f: ModelFile.of_bytes(f.path.with_suffix(".tflite"), gzip.decompress(f.data))
    )
    inner.made_here = False  # unpacked from a file that came from elsewhere: checked as one
    return inner


class GzipTFLiteKind(FileKind):
    name = "tflite-gz"
    suffixes = (SUFFIX,)
    description = "gzip-compressed TFLite (a plugin: tests/plugins/edgekit_gzip_tflite.py)"
    sealed = False  # the card's text is compressed in the file: no digest can be sealed into it

    def card(self, file: ModelFile) -> ModelCard | None:
        return kind_of_suffix(".tflite").card(unpacked(file))

    def embed(self, data: bytes, card: ModelCard) -> bytes:
        inner = kind_of_suffix(".tflite").embed(gzip.decompress(data), card)
        return gzip.compress(inner, mtime=0)  # the same bytes for the same model: a stable digest

    def ops(self, file: ModelFile) -> Any:
        return unpacked(file).ops

    def quantization(self, file: ModelFile) -> str:
        return unpacked(file).quantization


FILE_KINDS.add(GzipTFLiteKind())


def convert(model: Any, card: ModelCard, options: Any, calib: Any) -> bytes:
    return gzip.compress(convert_tflite(model, card, options, calib), mtime=0)


EXPORTERS.add(
    Exporter(
        format="tflite-gz",
        suffix=SUFFIX,
        modes=(Quantization.FP32, Quantization.INT8),
        convert=convert,
        description="gzip-compressed TFLite (plugin)",
        rank=5,
    )
)


def open_gz(file: ModelFile, options: SessionOptions) -> TFLiteSession:
    inner = unpacked(file)
    _ = file.card  # the outer file's digest checked before anything runs
    session = TFLiteSession(inner, options, "ai_edge_litert.interpreter", "litert-gz")
    session.file, session.path = file, file.path
    return session


BACKENDS.add(
    Backend(
        name="litert-gz",
        suffixes=(SUFFIX,),
        module="ai_edge_litert",
        install="pip install ai-edge-litert",
        open=open_gz,
        note="a plugin: gzip-compressed TFLite",
    )
)
