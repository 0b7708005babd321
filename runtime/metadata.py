"""Read named metadata buffers from a TFLite flatbuffer with only the `flatbuffers` format itself.

The TFLite schema (tensorflow/compiler/mlir/lite/schema/schema.fbs) stores `metadata` as a
vector of tables {name: string, buffer: uint} indexing `buffers`, each {data: [ubyte]}.
Reading the few fields by hand keeps this working under tflite-runtime, which ships no schema;
every read is bounds-checked (`tflite_check`), so a damaged file is an error, never a crash, a
hang on a vector that claims four billion entries, or an allocation sized by a stray offset.
"""

from __future__ import annotations

import struct

from edgekit.errors import ModelFileError
from edgekit.runtime.tflite_check import _Reader

TFLITE_IDENTIFIER = b"TFL3"
# field slots of the tables we read (schema.fbs order)
_MODEL_BUFFERS, _MODEL_METADATA = 4, 6
_METADATA_NAME, _METADATA_BUFFER = 0, 1
_BUFFER_DATA = 0


def is_tflite(buf: bytes) -> bool:
    return len(buf) >= 8 and buf[4:8] == TFLITE_IDENTIFIER


def read_tflite_metadata(buf: bytes, source: str = "file") -> dict[str, bytes]:
    """Return {name: bytes} for every metadata entry whose buffer holds inline data."""
    if not is_tflite(buf):
        raise ModelFileError(f"{source} is not a TFLite model (no TFL3 identifier)")
    try:
        r = _Reader(buf)
        root = r.table(r.u32(0), "the model")
        buffers = root.tables(_MODEL_BUFFERS, "buffers")
        out: dict[str, bytes] = {}
        for i, meta in enumerate(root.tables(_MODEL_METADATA, "metadata")):
            name = meta.string(_METADATA_NAME, f"metadata[{i}].name").decode("utf-8")
            index = meta.scalar(_METADATA_BUFFER, "u32")
            if index >= len(buffers):
                continue
            start, n = buffers[index].vector(_BUFFER_DATA, 1, f"buffers[{index}].data")
            if start:
                out[name] = bytes(buf[start : start + n])
        return out
    except (ValueError, UnicodeDecodeError, struct.error) as e:
        raise ModelFileError(f"{source} is a damaged TFLite model: {e}") from None
