"""TFLite flatbuffers: the card in a named metadata buffer, read with the `flatbuffers` format alone.

The TFLite schema (tensorflow/compiler/mlir/lite/schema/schema.fbs) stores `metadata` as a vector of
tables {name: string, buffer: uint} indexing `buffers`, each {data: [ubyte]}. Reading those few
fields by hand keeps this working under tflite-runtime, which ships no schema; every read is
bounds-checked (`tflite_check`), so a damaged file is an error, never a crash, a hang on a vector
that claims four billion entries, or an allocation sized by a stray offset. Writing a card, listing
operators and reading tensor types use the schema's object API (`ai_edge_litert.schema_py_generated`)
once the verifier has passed the bytes."""

from __future__ import annotations

import struct
from collections import Counter
from typing import Any

import numpy as np

from edgekit.card import CARD_KEY, ModelCard
from edgekit.deps import installed
from edgekit.errors import ModelFileError
from edgekit.runtime.files import FILE_KINDS, FileKind, ModelFile
from edgekit.runtime.tflite_check import _Reader, verify_tflite

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


def embed_tflite(buf: bytes, card: ModelCard) -> bytes:
    """Add (or replace) a metadata entry named `edgekit_card` whose buffer holds the card's JSON."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    if not is_tflite(buf):
        raise ModelFileError("the converter did not produce a TFLite flatbuffer")
    model = schema.ModelT.InitFromPackedBuf(bytearray(buf), 0)
    data = np.frombuffer(card.to_json().encode("utf-8"), dtype=np.uint8)
    model.metadata = model.metadata or []
    entry = next((m for m in model.metadata if _name(m) == CARD_KEY), None)
    if entry is None:
        buffer = schema.BufferT()
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = CARD_KEY
        entry.buffer = len(model.buffers) - 1
        model.metadata.append(entry)
    model.buffers[entry.buffer].data = data
    builder = flatbuffers.Builder(len(buf) + len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    return bytes(builder.Output())


def _name(meta: Any) -> str:
    name = meta.name
    return name.decode("utf-8") if isinstance(name, bytes) else str(name)


def verified(file: ModelFile) -> bytes:
    """The file's bytes, run through the structural verifier once per opened file (a backend that
    found a cached verdict on these very bytes marks the file checked instead)."""
    data = file.data
    if not file.checked:
        verify_tflite(data, source=str(file.path))
        file.checked = True
    return data


class TFLiteKind(FileKind):
    name = "tflite"
    suffixes = (".tflite",)
    description = "TFLite flatbuffer (LiteRT)"
    sealed = True

    def card(self, file: ModelFile) -> ModelCard | None:
        meta = read_tflite_metadata(verified(file), source=str(file.path))
        return (
            ModelCard.from_json(meta[CARD_KEY], source=f"card in {file.path}") if CARD_KEY in meta else None
        )

    def embed(self, data: bytes, card: ModelCard) -> bytes:
        return embed_tflite(data, card)

    def ops(self, file: ModelFile) -> Any:
        from edgekit.runtime.ops import OpReport

        if not installed("ai_edge_litert"):
            return OpReport({}, note="install ai-edge-litert to list TFLite operators")
        from ai_edge_litert import schema_py_generated as schema

        buf = verified(file)  # the schema API follows offsets unchecked: verified bytes only
        try:
            model = schema.Model.GetRootAs(buf, 0)
            names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
            codes = []
            for i in range(model.OperatorCodesLength()):
                oc = model.OperatorCodes(i)
                # old files keep the code in the deprecated slot
                code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
                custom = oc.CustomCode()
                codes.append(custom.decode() if custom else names.get(code, str(code)))
            used: Counter[str] = Counter()
            for s in range(model.SubgraphsLength()):
                graph = model.Subgraphs(s)
                for o in range(graph.OperatorsLength()):
                    used[codes[graph.Operators(o).OpcodeIndex()]] += 1
        except Exception as e:  # a damaged flatbuffer
            raise ModelFileError(f"{file.path} is a damaged TFLite model: {e}") from None
        flex = tuple(sorted(n for n in used if n.startswith("Flex")))
        custom = tuple(sorted(n for n in used if n not in names.values() and not n.startswith("Flex")))
        return OpReport(dict(used), flex, custom)

    def quantization(self, file: ModelFile) -> str:
        """int8 when an operator computes on integer tensors, dynamic when only weights are int8,
        fp16 when weights are half floats, else fp32."""
        if not installed("ai_edge_litert"):
            return "unknown"
        from ai_edge_litert import schema_py_generated as schema

        try:
            graph = schema.Model.GetRootAs(verified(file), 0).Subgraphs(0)
            T = schema.TensorType
            produced = {graph.Operators(o).Outputs(k) for o in range(graph.OperatorsLength())
                        for k in range(graph.Operators(o).OutputsLength())}  # fmt: skip
            types = {(graph.Tensors(i).Type(), i in produced) for i in range(graph.TensorsLength())}
        except Exception:  # an unreadable graph still runs; its quantization is just not known
            return "unknown"
        if any(t in (T.INT8, T.UINT8, T.INT16) and live for t, live in types):
            return "int8"
        if any(t == T.INT8 for t, _ in types):
            return "dynamic"
        if any(t == T.FLOAT16 for t, _ in types):
            return "fp16"
        return "fp32"

    def metadata(self, file: ModelFile) -> dict[str, Any]:
        """Ultralytics' TFLite exports: its exporter appends a zip holding `metadata.json` to the
        flatbuffer (`_add_tflite_metadata`), which `zipfile` finds from the end of the bytes."""
        import ast
        import io
        import json
        import zipfile

        try:
            with zipfile.ZipFile(io.BytesIO(file.data)) as zf:
                names = zf.namelist()
                if not names:
                    return {}
                text = zf.read(names[0]).decode("utf-8")
        except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, OSError, EOFError):
            return {}
        try:
            meta = json.loads(text)
        except json.JSONDecodeError:
            try:
                meta = ast.literal_eval(text)  # a Python dict literal; never eval
            except (ValueError, SyntaxError):
                return {}
        return meta if isinstance(meta, dict) else {}


FILE_KINDS.add(TFLiteKind())
