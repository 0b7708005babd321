"""ONNX files: the card is one entry of the model's `metadata_props`, read, with the operators the
graph uses, straight from the protobuf: the graph is skipped or walked by its lengths, never parsed
into objects, so a device needs neither the `onnx` package nor a session to read a file's card.
Writing a card goes through the `onnx` package (a host-side extra)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from edgekit.card import CARD_KEY, ModelCard
from edgekit.errors import ModelFileError
from edgekit.runtime.files import FILE_KINDS, FileKind, ModelFile

# ModelProto: graph = 7, metadata_props = 14 (StringStringEntryProto {key = 1, value = 2});
# GraphProto: node = 1, initializer = 5; NodeProto: op_type = 4, domain = 7; TensorProto:
# data_type = 2 (FLOAT = 1, FLOAT16 = 10) (onnx/onnx.proto)
_MODEL_GRAPH, _MODEL_METADATA_PROPS = 7, 14
_GRAPH_NODE, _GRAPH_INITIALIZER = 1, 5
_TENSOR_DATA_TYPE, _FLOAT, _FLOAT16 = 2, 1, 10
_NODE_OP_TYPE, _NODE_DOMAIN = 4, 7
_STANDARD_DOMAINS = ("", "ai.onnx", "com.microsoft")
# operators that compute on integers: a statically quantized (QDQ or QOperator) or dynamic graph
_INTEGER_OPS = {"QLinearConv", "QLinearMatMul", "QuantizeLinear", "ConvInteger", "MatMulInteger"}


def _varint(buf: Any, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("a varint longer than 10 bytes")


def _walk(buf: Any, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, a, b) of each field at one level of a protobuf message, in order:
    a varint's value as `a`, a length-delimited field's bytes as `a:b`; fixed-size ones skipped."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, wire, value, pos
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            size, pos = _varint(buf, pos)
            yield number, wire, pos, pos + size
            pos += size
        else:
            raise ValueError(f"wire type {wire}")
    if pos > end:
        raise ValueError("the last field runs past the end of the file (a cut file?)")


def protobuf_fields(buf: Any, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int, int]]:
    """(field number, start, end) of each length-delimited field at one level of a protobuf
    message; fields of other wire types are skipped. A field that runs past `end` is an error."""
    end = len(buf) if end is None else end
    for number, wire, first, last in _walk(buf, start, end):
        if wire == 2:
            if last > end:
                raise ValueError("a field runs past the end of its message (a cut file?)")
            yield number, first, last


def _varint_field(buf: Any, start: int, end: int, number: int) -> int | None:
    """The first varint field `number` of one protobuf message (None: absent); the walk stops there,
    so a tensor's data after its type is never read."""
    for field, wire, value, _ in _walk(buf, start, end):
        if wire == 0 and field == number:
            return value
    return None


def _strings(buf: Any, start: int, end: int) -> dict[int, bytes]:
    return {n: bytes(buf[s:e]) for n, s, e in protobuf_fields(buf, start, end)}


def metadata_props(buf: bytes, source: str = "file") -> dict[str, str]:
    """Every `metadata_props` entry of an ONNX model as {key: value}. Protobuf strings are UTF-8: a
    file whose metadata is not is damaged, and said so (onnxruntime raised UnicodeDecodeError)."""
    try:
        props = {}
        for number, start, end in protobuf_fields(buf):
            if number == _MODEL_METADATA_PROPS:
                entry = _strings(buf, start, end)
                props[entry.get(1, b"").decode("utf-8")] = entry.get(2, b"").decode("utf-8")
        return props
    except UnicodeDecodeError:
        raise ModelFileError(f"{source} is damaged: its metadata is not valid UTF-8") from None
    except (ValueError, IndexError) as e:
        raise ModelFileError(f"{source} is not a valid ONNX model: {e}") from None


def embed_onnx(buf: bytes, card: ModelCard) -> bytes:
    """Set the `edgekit_card` entry of the ONNX model's metadata_props."""
    import onnx

    model = onnx.load_from_string(buf)
    props = [p for p in model.metadata_props if p.key != CARD_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(props)
    onnx.helper.set_model_props(model, {**{p.key: p.value for p in props}, CARD_KEY: card.to_json()})
    return model.SerializeToString()


class OnnxKind(FileKind):
    name = "onnx"
    suffixes = (".onnx",)
    description = "ONNX model (onnxruntime)"
    sealed = True

    def _props(self, file: ModelFile) -> dict[str, str]:
        return file._once("props", lambda f: metadata_props(f.data, str(f.path)))

    def card(self, file: ModelFile) -> ModelCard | None:
        text = self._props(file).get(CARD_KEY)
        return None if text is None else ModelCard.from_json(text, source=f"card in {file.path}")

    def embed(self, data: bytes, card: ModelCard) -> bytes:
        return embed_onnx(data, card)

    def ops(self, file: ModelFile) -> Any:
        from edgekit.runtime.ops import OpReport

        buf = file.data
        used: Counter[str] = Counter()
        custom: set[str] = set()
        try:
            for number, start, end in protobuf_fields(buf):
                if number != _MODEL_GRAPH:
                    continue
                for field, s, e in protobuf_fields(buf, start, end):
                    if field != _GRAPH_NODE:
                        continue
                    node = _strings(buf, s, e)
                    op = node.get(_NODE_OP_TYPE, b"").decode("utf-8", "replace")
                    used[op] += 1
                    if node.get(_NODE_DOMAIN, b"").decode("utf-8", "replace") not in _STANDARD_DOMAINS:
                        custom.add(op)
        except (ValueError, IndexError) as e:
            raise ModelFileError(f"{file.path} is not a valid ONNX model: {e}") from None
        return OpReport(dict(used), (), tuple(sorted(custom)))

    def quantization(self, file: ModelFile) -> str:
        try:
            ops = set(file.ops.ops)
        except ModelFileError:
            return "unknown"
        if ops & _INTEGER_OPS:
            return "dynamic" if "DynamicQuantizeLinear" in ops else "int8"
        return "fp16" if self._half_weights(file) else "fp32"

    def _half_weights(self, file: ModelFile) -> bool:
        """Whether most float weights are half floats (an fp16 export keeps a few in float32)."""
        buf, kinds = file.data, Counter()
        try:
            for number, start, end in protobuf_fields(buf):
                if number != _MODEL_GRAPH:
                    continue
                for field, s, e in protobuf_fields(buf, start, end):
                    if field == _GRAPH_INITIALIZER:
                        kinds[_varint_field(buf, s, e, _TENSOR_DATA_TYPE)] += 1
        except (ValueError, IndexError):
            return False
        return kinds[_FLOAT16] > kinds[_FLOAT]

    def metadata(self, file: ModelFile) -> dict[str, Any]:
        try:
            props = self._props(file)
        except ModelFileError:
            return {}
        return {k: v for k, v in props.items() if k != CARD_KEY}


FILE_KINDS.add(OnnxKind())
