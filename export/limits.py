"""Requests that cannot work, refused in milliseconds before TensorFlow is imported.

The model's layers are read from the file itself (the `config.json` inside a `.keras` zip, the
`model_config` attribute of an `.h5`), and checked against `LIMITS`: one row per (layers, format,
modes) pair that was seen to fail, with the reason. Everything not listed was converted and run
(TensorFlow 2.21, Keras 3.15, tf2onnx 1.17, onnxruntime 1.32): Conv1D/2D/3D, Conv2DTranspose,
UpSampling2D (nearest, bilinear), Concatenate, BatchNormalization, LayerNormalization,
MultiHeadAttention, Depthwise/SeparableConv2D, Resizing, Rescaling, PReLU, Embedding, LSTM
(unrolled for TFLite, fused ONNX LSTM), GRU, SimpleRNN, Bidirectional, in all eight
format × mode pairs — full-int8 TFLite and static-QDQ ONNX of an LSTM included."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from edgekit.errors import UnsupportedError
from edgekit.export.base import Quantization

RECURRENT = frozenset({"LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional"})
EVERY_MODE = tuple(q.value for q in Quantization)


@dataclass(frozen=True)
class ModelGraph:
    """What the checks need to know about a model, read without TensorFlow."""

    layers: frozenset[str]  # Keras layer class names (not looking inside Bidirectional)
    activations: frozenset[str]
    input_shape: tuple[int | None, ...] | None  # with the batch dimension

    @property
    def variable_length(self) -> bool:
        """A sequence input with no fixed length (a dimension after the batch left as None)."""
        return self.input_shape is not None and any(d is None for d in self.input_shape[1:])

    def uses(self, names: frozenset[str]) -> set[str]:
        found = {n for n in names if n in self.layers}
        found |= {n for n in names if n.startswith("activation:") and n.split(":", 1)[1] in self.activations}
        return found


@dataclass(frozen=True)
class Limit:
    """One measured failure: models using any of `layers` cannot be exported to `format` in `modes`
    (under `when`: "always", "batch dynamic", or "variable length")."""

    layers: frozenset[str]  # Keras layer classes, or "activation:NAME"
    format: str
    modes: tuple[str, ...]
    reason: str
    when: str = "always"
    hint: str = ""  # a way out that is not another format or mode
    seen: str = field(default="", compare=False)  # what happened when it was tried


LIMITS: tuple[Limit, ...] = (
    Limit(
        RECURRENT,
        "tflite",
        EVERY_MODE,
        "a Keras 3 RNN over a dynamic batch needs TensorList ops, which TFLite builtins do not have",
        when="batch dynamic",
        hint="or --batch 1, the TFLite default",
        seen="converter: 'tf.TensorListReserve' op requires element_shape to be static",
    ),
    Limit(
        RECURRENT,
        "tflite",
        EVERY_MODE,
        "an RNN is unrolled for TFLite, which needs a fixed sequence length",
        when="variable length",
        hint="or give the model's Input a fixed length, e.g. keras.Input((100,))",
        seen="not unrolled: a WHILE loop; full int8 of it crashes the converter (segmentation fault)",
    ),
    Limit(
        frozenset({"GRU", "SimpleRNN"}),
        "onnx",
        ("dynamic",),
        "tf2onnx makes a Keras 3 GRU/SimpleRNN into an ONNX Loop, which onnxruntime's dynamic "
        "quantization cannot process",
        seen="quantize_dynamic: Invalid model with unknown initializers/tensors",
    ),
    Limit(
        frozenset({"activation:gelu"}),
        "onnx",
        EVERY_MODE,
        "tf2onnx writes Keras's exact GELU as an Erfc node, which is not an ONNX operator",
        seen="onnxruntime: INVALID_GRAPH ... Erfc",
    ),
)


@dataclass(frozen=True)
class Measured:
    """A measured fact about a layer kind in one format/mode that is *not* a refusal (it exports and
    passes its bar), kept as data beside the refusals so the next model with it knows what to expect."""

    layers: frozenset[str]
    format: str
    mode: str
    fact: str
    seen: str = field(default="", compare=False)


# attention (translate-transformer, embed 64, 8 heads, 2 post-norm encoder layers, 16 tokens, softmax
# over 90 target words; TF 2.21 / Keras 3, tf2onnx, onnxruntime; 600 held-out sentences)
ATTENTION = frozenset({"MultiHeadAttention", "LayerNormalization"})
MEASURED: tuple[Measured, ...] = (
    Measured(
        ATTENTION,
        "tflite",
        "int8",
        "full-integer attention, LayerNorm and softmax pass the 1-point bar with no layer kept in float",
        seen="token accuracy -0.06 points, 671 KB vs 2446 KB fp32",
    ),
    Measured(
        ATTENTION,
        "tflite",
        "dynamic",
        "passes; p50 0.93x of fp32 in litert",
        seen="token accuracy +0.00 points, 657 KB",
    ),
    Measured(
        ATTENTION,
        "onnx",
        "int8",
        "static QDQ passes the bar with no node excluded, but runs ~6x "
        "slower than fp32 in onnxruntime on x86 (Q/DQ around every MatMul and Softmax)",
        seen="token accuracy +0.20 points, p50 1.61 ms vs 0.26 ms fp32, 784 KB",
    ),
    Measured(
        ATTENTION,
        "onnx",
        "dynamic",
        "passes; p50 level with fp32",
        seen="token accuracy +0.26 points, 681 KB",
    ),
    # the seeds' sizes (embed 256, 8 heads, 3 layers, 4 epochs, token accuracy 0.994 held out)
    Measured(
        ATTENTION,
        "tflite",
        "int8",
        "at the seeds' sizes full-integer still passes with no layer in float (selective quantization "
        "not needed); 3.8x smaller than fp32",
        seen="token accuracy -0.04 points, 4570 KB vs 17401 KB fp32; p50 7.7 ms vs 10.5 ms "
        "(shared 2-core x86)",
    ),
    Measured(
        ATTENTION,
        "onnx",
        "int8",
        "at the seeds' sizes static QDQ passes with no node excluded; dynamic loses most (-0.16 points)",
        seen="token accuracy -0.02 points, 4600 KB vs 17415 KB fp32; p50 15.7 ms vs 27.5 ms "
        "(shared 2-core x86)",
    ),
    Measured(
        frozenset({"Dense"}),
        "onnx",
        "int8",
        "an outlier channel (one unit 300x wider, the next layer's weights from it 300x smaller: the "
        "same function) loses per-tensor int8; the loss shows in the reader's output (its per-tensor "
        "weights round the small row to zero), and keeping writer and reader in float recovers it",
        seen="tests/test_selective.py: accuracy -68 points plain; 2 rounds, 4 nodes float: +0.00",
    ),
    Measured(
        frozenset({"MultiHeadAttention"}),
        "tflite",
        "fp32",
        "learned positions built with keras.ops "
        "(cumsum of ones) convert to builtins in every mode; no custom layer, no Flex op",
    ),
)


def _layer_entries(config: Any) -> Iterator[dict[str, Any]]:
    """Layer entries of a Sequential/Functional config, nested models and wrappers included."""
    if not isinstance(config, dict):
        return
    for entry in config.get("layers", []) or []:
        if not isinstance(entry, dict):
            continue
        yield entry
        inner = entry.get("config") or {}
        if entry.get("class_name") == "Bidirectional":
            continue  # what is refused for a plain GRU converts inside Bidirectional
        yield from _layer_entries(inner)
        wrapped = inner.get("layer") if isinstance(inner, dict) else None
        if isinstance(wrapped, dict):  # TimeDistributed and friends
            yield wrapped
            yield from _layer_entries(wrapped.get("config") or {})


def graph_from_config(model_config: dict[str, Any]) -> ModelGraph:
    """The layer classes, activations and input shape of a Keras model config."""
    layers, activations, shape = set(), set(), None
    for entry in _layer_entries(model_config.get("config") or {}):
        name = entry.get("class_name")
        if isinstance(name, str):
            layers.add(name)
        cfg = entry.get("config") or {}
        act = cfg.get("activation") if isinstance(cfg, dict) else None
        if isinstance(act, str):
            activations.add(act)
        if name == "InputLayer" and shape is None:
            dims = cfg.get("batch_shape") or cfg.get("batch_input_shape")
            shape = tuple(dims) if isinstance(dims, list) else None
    return ModelGraph(frozenset(layers), frozenset(activations), shape)


def refusal(graph: ModelGraph, fmt: str, mode: str, batch: str | None) -> tuple[Limit, set[str]] | None:
    """The first limit that refuses (fmt, mode) for this model, with the layers that trip it."""
    condition = {
        "always": True,
        "batch dynamic": batch == "dynamic",
        "variable length": graph.variable_length,
    }
    for limit in LIMITS:
        if limit.format == fmt and mode in limit.modes and condition[limit.when]:
            found = graph.uses(limit.layers)
            if found:
                return limit, found
    return None


def check_pair(graph: ModelGraph, fmt: str, mode: str, batch: str | None, formats: dict[str, tuple]) -> None:
    """Raise `UnsupportedPair` naming the reason and what would work instead (`formats`: format ->
    its modes)."""
    hit = refusal(graph, fmt, mode, batch)
    if hit is None:
        return
    limit, found = hit
    works = [
        f"{f} {m}"
        for f, modes in formats.items()
        for m in modes
        if (f, m) != (fmt, mode) and refusal(graph, f, m, batch) is None
    ]
    instead = f"use {', '.join(works)}" if works else "no format/mode pair works for it"
    if limit.hint:
        instead += f" ({limit.hint})" if works else f"; {limit.hint}"
    what = ", ".join(sorted(n.replace("activation:", "activation ") for n in found))
    raise UnsupportedPair(f"{fmt} {mode} cannot export a model with {what}: {limit.reason}; {instead}")


class UnsupportedPair(UnsupportedError):
    """A (model, format, mode) pair in `LIMITS`: `--to all` skips it instead of failing."""
