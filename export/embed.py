"""Putting the model card inside the exported file, so the file alone is enough to run it."""

from __future__ import annotations

import numpy as np

from edgekit.card import CARD_KEY, ModelCard
from edgekit.errors import ModelFileError
from edgekit.runtime.metadata import TFLITE_IDENTIFIER, is_tflite


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


def _name(meta) -> str:
    name = meta.name
    return name.decode("utf-8") if isinstance(name, bytes) else str(name)


def embed_onnx(buf: bytes, card: ModelCard) -> bytes:
    """Set the `edgekit_card` entry of the ONNX model's metadata_props."""
    import onnx

    model = onnx.load_from_string(buf)
    props = [p for p in model.metadata_props if p.key != CARD_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(props)
    onnx.helper.set_model_props(model, {**{p.key: p.value for p in props}, CARD_KEY: card.to_json()})
    return model.SerializeToString()
