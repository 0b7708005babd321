"""Read named metadata buffers from a TFLite flatbuffer with only the `flatbuffers` package.

The TFLite schema (tensorflow/compiler/mlir/lite/schema/schema.fbs) stores `metadata` as a
vector of tables {name: string, buffer: uint} indexing `buffers`, each {data: [ubyte]}.
Reading the few fields by hand keeps this working under tflite-runtime, which ships no schema.
"""

from __future__ import annotations

import flatbuffers
from flatbuffers.table import Table

from edgekit.errors import ModelFileError

TFLITE_IDENTIFIER = b"TFL3"
# field slots of the tables we read (vtable offset = 4 + 2 * field index)
_MODEL_BUFFERS, _MODEL_METADATA = 4, 6
_METADATA_NAME, _METADATA_BUFFER = 0, 1
_BUFFER_DATA = 0


def _field(tab: Table, index: int) -> int:
    return tab.Offset(4 + 2 * index)


def _vector_table(tab: Table, vector_field: int, i: int) -> Table:
    o = _field(tab, vector_field)
    x = tab.Vector(o) + i * 4
    return Table(tab.Bytes, tab.Indirect(x))


def _vector_len(tab: Table, vector_field: int) -> int:
    o = _field(tab, vector_field)
    return tab.VectorLen(o) if o else 0


def is_tflite(buf: bytes) -> bool:
    return len(buf) >= 8 and buf[4:8] == TFLITE_IDENTIFIER


def read_tflite_metadata(buf: bytes, source: str = "file") -> dict[str, bytes]:
    """Return {name: bytes} for every metadata entry whose buffer holds inline data."""
    if not is_tflite(buf):
        raise ModelFileError(f"{source} is not a TFLite model (no TFL3 identifier)")
    try:
        root = Table(buf, flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, 0))
        out: dict[str, bytes] = {}
        for i in range(_vector_len(root, _MODEL_METADATA)):
            meta = _vector_table(root, _MODEL_METADATA, i)
            name_off = _field(meta, _METADATA_NAME)
            name = meta.String(name_off + meta.Pos).decode("utf-8") if name_off else ""
            buf_off = _field(meta, _METADATA_BUFFER)
            index = meta.Get(flatbuffers.number_types.Uint32Flags, buf_off + meta.Pos) if buf_off else 0
            if index >= _vector_len(root, _MODEL_BUFFERS):
                continue
            buffer = _vector_table(root, _MODEL_BUFFERS, index)
            data_off = _field(buffer, _BUFFER_DATA)
            if data_off:
                start = buffer.Vector(data_off)
                out[name] = bytes(buf[start : start + buffer.VectorLen(data_off)])
        return out
    except Exception as e:  # a damaged flatbuffer fails in any number of ways
        raise ModelFileError(f"{source} is a damaged TFLite model: {e}") from None
