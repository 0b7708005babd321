"""The graph a converter sees: the trained model itself, or a clone of it that shares its weights and
is built the way the converter needs (recurrent layers unrolled over a fixed batch of 1, layer names
TensorFlow accepts as scope names).

Why a clone: a Keras 3 LSTM/GRU/SimpleRNN converts to TFLite as a WHILE loop at batch 1 (slower,
and full-int8 conversion of it crashes the converter) and not at all with a dynamic batch
(`TensorListReserve` needs a static element shape). Unrolled over a fixed batch of 1 it becomes
plain FULLY_CONNECTED/LOGISTIC/TANH builtins that quantize like any dense model. And a layer named
with a space ("my conv") runs eagerly but breaks every traced graph (`predict`, SavedModel, tf2onnx),
because TensorFlow name scopes refuse it."""

from __future__ import annotations

import re
from typing import Any

from edgekit.errors import UnsupportedError
from edgekit.tfutil import import_tf

_SCOPE_UNSAFE = re.compile(r"[^A-Za-z0-9_.>-]")


def _sublayers(model: Any) -> list[Any]:
    """Every layer, those of nested models included."""
    out = []
    for layer in getattr(model, "layers", []):
        out.append(layer)
        out.extend(_sublayers(layer))
    return out


def is_recurrent(layer: Any) -> bool:
    """An RNN layer (LSTM, GRU, SimpleRNN, RNN(cell), or one wrapped in Bidirectional)."""
    _, keras = import_tf()
    return isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional))


def has_recurrent_layers(model: Any) -> bool:
    return any(is_recurrent(layer) for layer in _sublayers(model))


def _needs_rename(model: Any) -> bool:
    return any(_SCOPE_UNSAFE.search(layer.name) for layer in _sublayers(model))


def single_input(model: Any) -> Any:
    """The model's one input tensor; edgekit exports models with a single input."""
    if len(model.inputs) != 1:
        raise UnsupportedError(
            f"{model.name} has {len(model.inputs)} inputs: edgekit exports models with one input "
            "(the model card describes one)"
        )
    return model.inputs[0]


def input_spec(model: Any, name: str, batch: int | None) -> Any:
    """The `tf.TensorSpec` a converter traces with: the model's own shape and dtype, this batch."""
    tf, _ = import_tf()
    tensor = single_input(model)
    return tf.TensorSpec((batch, *tensor.shape[1:]), tf.as_dtype(tensor.dtype or "float32"), name=name)


def _unroll(config: Any) -> Any:
    # every RNN-derived layer (and the one inside Bidirectional) keeps `unroll` in its config
    if isinstance(config, dict):
        return {k: True if k == "unroll" else _unroll(v) for k, v in config.items()}
    if isinstance(config, list):
        return [_unroll(v) for v in config]
    return config


def export_graph(model: Any, *, unroll: bool, batch: int | None) -> Any:
    """`model`, or a clone sharing its weights with RNNs unrolled (when `unroll`) over `batch`
    and scope-safe layer names; the original is returned when nothing needs to change."""
    recurrent = unroll and has_recurrent_layers(model)
    if not recurrent and not _needs_rename(model):
        return model
    _, keras = import_tf()
    tensor = single_input(model)
    if recurrent and any(d is None for d in tensor.shape[1:]):
        raise UnsupportedError(
            f"{model.name} runs an RNN over inputs of shape {tuple(tensor.shape)}: an RNN is unrolled "
            "for TFLite, which needs a fixed sequence length; rebuild the model with one "
            "(e.g. keras.Input((100,)) for 100 tokens), or export to onnx"
        )

    def clone(layer: Any) -> Any:
        config = layer.get_config()
        config["name"] = _SCOPE_UNSAFE.sub("_", layer.name)
        return layer.__class__.from_config(_unroll(config) if recurrent else config)

    shape = (batch if recurrent else None, *tensor.shape[1:])
    inputs = keras.Input(batch_shape=shape, dtype=tensor.dtype, name=_SCOPE_UNSAFE.sub("_", tensor.name))
    try:
        copy = keras.models.clone_model(model, input_tensors=inputs, clone_function=clone, recursive=True)
        copy.set_weights(model.get_weights())
    except Exception as e:  # a custom layer whose get_config does not rebuild it
        from edgekit.errors import first_line

        raise UnsupportedError(
            f"cannot rebuild {model.name} for export (a layer's get_config/from_config does not "
            f"round-trip): {first_line(e)}"
        ) from None
    return copy
