"""Keras -> TFLite through a SavedModel with a fixed batch of 1 (RNNs unrolled: see `graph.py`).

Why a SavedModel: a `tf.function` handed to `from_concrete_functions` keeps the weights as
resource variables (a 6 KB "model" that reads them at run time) and breaks int8 calibration
("READ_VARIABLE failed to invoke"); the SavedModel path freezes them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.card import ModelCard
from edgekit.deps import quiet_native_stderr
from edgekit.errors import EdgekitError, UnsupportedError, first_line
from edgekit.export.base import EXPORTERS, Exporter, ExportOptions, Quantization
from edgekit.export.graph import export_graph, input_spec
from edgekit.export.selective import COMPARISONS, Comparison, LayerLoss, channel_loss, resolve
from edgekit.fileio import temporary_dir
from edgekit.tfutil import import_tf


def write_saved_model(model: Any, card: ModelCard, folder: Path, batch: int | None = 1) -> Path:
    """Export the model's inference function with a fixed input signature (its own input dtype)."""
    _, keras = import_tf()
    spec = input_spec(model, card.input.name, batch)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda x: model(x, training=False), input_signature=[spec])
    with quiet_native_stderr():
        archive.write_out(str(folder), verbose=False)
    return folder


def _converter(tf: Any, model: Any, card: ModelCard, options: ExportOptions, folder: Path) -> Any:
    """A TFLiteConverter over the model's SavedModel, set for the options' mode (no calibration)."""
    batch = None if options.batch == "dynamic" else 1  # devices run one frame at a time
    model = export_graph(model, unroll=True, batch=batch)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(write_saved_model(model, card, folder, batch)))
    if options.quantization is not Quantization.FP32:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if options.quantization is Quantization.FP16:
        converter.target_spec.supported_types = [tf.float16]
    return converter


def _calibrate(tf: Any, converter: Any, model: Any, card: ModelCard, calib: np.ndarray | None) -> None:
    if calib is None or not len(calib):
        raise UnsupportedError("full-integer TFLite needs calibration samples: pass --data")
    # the model's own input dtype: int32 token ids stay integers
    samples = calib.astype(input_spec(model, card.input.name, 1).dtype.as_numpy_dtype)

    def representative():
        for i in range(len(samples)):
            yield [samples[i : i + 1]]

    converter.representative_dataset = representative


def _io_type(tf: Any, options: ExportOptions) -> Any:
    return {"int8": tf.int8, "uint8": tf.uint8, "float": tf.float32}[options.io]


def convert_tflite(model: Any, card: ModelCard, options: ExportOptions, calib: np.ndarray | None) -> bytes:
    """TFLite bytes (no card yet) for one quantization mode; full int8 with `options.float_layers`
    kept in float (the converter's own selective quantization: calibrate, then quantize all but
    those nodes)."""
    tf, _ = import_tf()
    q = options.quantization
    with temporary_dir("tflite") as tmp:
        converter = _converter(tf, model, card, options, Path(tmp))
        if q is Quantization.INT8:
            _calibrate(tf, converter, model, card, calib)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = _io_type(tf, options)
            converter.inference_output_type = _io_type(tf, options)
        if q is Quantization.DYNAMIC and options.float_layers:
            raise UnsupportedError(
                "TFLite dynamic-range quantization cannot keep named layers in float: use --quantize "
                "int8 with --float-layers, or ONNX dynamic"
            )
        try:
            with quiet_native_stderr():
                if q is Quantization.INT8 and options.float_layers:
                    return _quantize_except(tf, converter, options)
                return converter.convert()
        except EdgekitError:
            raise
        except Exception as e:  # the converter raises ConverterError and friends
            raise UnsupportedError(f"TFLite conversion ({q.value}) failed: {first_line(e)}") from None


def _quantize_except(tf: Any, converter: Any, options: ExportOptions) -> bytes:
    """Full int8 with the nodes `options.float_layers` names left in float."""
    from tensorflow.lite.python import convert

    converter._experimental_calibrate_only = True  # the float graph with calibration statistics
    calibrated = converter.convert()
    keep = resolve(options.float_layers, [op.name for op in _ops(tf, calibrated)])
    return convert.mlir_quantize(
        calibrated,
        fully_quantize=True,
        input_data_type=_io_type(tf, options),
        output_data_type=_io_type(tf, options),
        denylisted_nodes=list(keep),
    )


@dataclass(frozen=True)
class _Op:
    name: str  # the op's first output tensor: what the quantizer's deny list names it by
    kind: str
    inputs: tuple[str, ...]


def _ops(tf: Any, content: bytes) -> list[_Op]:
    interpreter = tf.lite.Interpreter(model_content=content)
    tensor = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    return [
        _Op(tensor[op["outputs"][0]], op["op_name"], tuple(tensor[i] for i in op["inputs"] if i in tensor))
        for op in interpreter._get_ops_details()
        if len(op["outputs"])
    ]


DEBUG_SAMPLES = 64  # calibration samples the per-layer comparison runs (the ranking settles early)


def compare_tflite(
    model: Any, card: ModelCard, options: ExportOptions, calib: np.ndarray
) -> tuple[list[LayerLoss], list[str]]:
    """TFLite's quantization debugger: every int8 op run beside its float twin on the same
    (dequantized) inputs (NumericVerify), its output's loss measured per channel."""
    tf, _ = import_tf()
    with temporary_dir("tflite") as tmp:
        converter = _converter(tf, model, card, options, Path(tmp))
        _calibrate(tf, converter, model, card, calib[:DEBUG_SAMPLES])
        samples = calib[:DEBUG_SAMPLES].astype(
            input_spec(export_graph(model, unroll=True, batch=1), card.input.name, 1).dtype.as_numpy_dtype
        )

        def loss(f: np.ndarray, q: np.ndarray, scale: float, zero_point: int) -> float:
            return channel_loss(f, (q.astype(np.float64) - zero_point) * scale)

        with quiet_native_stderr():
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter,
                debug_dataset=lambda: ([samples[i : i + 1]] for i in range(len(samples))),
                debug_options=tf.lite.experimental.QuantizationDebugOptions(
                    layer_direct_compare_metrics={"channel_loss": loss}
                ),
            )
            calibrated_ops = _ops(tf, debugger.calibrated_model)
            if options.float_layers:  # requantized without calibrating again
                debugger.options = tf.lite.experimental.QuantizationDebugOptions(
                    layer_direct_compare_metrics={"channel_loss": loss},
                    denylisted_nodes=list(resolve(options.float_layers, [op.name for op in calibrated_ops])),
                )
            debugger.run()
    debug_model = tf.lite.Interpreter(model_content=debugger.quant_model)
    names = {t["index"]: t["name"] for t in debug_model.get_tensor_details()}
    kinds = {op.name: op.kind for op in calibrated_ops}
    losses = []
    for verify_name, metrics in debugger.layer_statistics.items():
        # "NumericVerify/<quantized tensor name>:<its index>"; the quantized copy of a float tensor
        # is named after it with one digit more
        quantized = names.get(int(verify_name.rsplit(":", 1)[1]), "")
        tensor = next((t for t in (quantized, quantized[:-1]) if t in kinds), None)
        if tensor is None:
            continue
        readers = tuple(op.name for op in calibrated_ops if tensor in op.inputs)
        losses.append(LayerLoss(tensor, kinds[tensor], float(metrics["channel_loss"]), (tensor, *readers)))
    return losses, [op.name for op in calibrated_ops]


EXPORTERS.add(
    Exporter(
        format="tflite",
        suffix=".tflite",
        modes=(Quantization.FP32, Quantization.FP16, Quantization.DYNAMIC, Quantization.INT8),
        convert=convert_tflite,
        description="TensorFlow Lite flatbuffer (batch 1), for ai-edge-litert / tflite-runtime",
    ),
)

COMPARISONS.add(
    Comparison(
        "tflite",
        compare_tflite,
        "TFLite quantization debugger (NumericVerify): each int8 op against the float op on the same "
        "inputs, relative error per channel",
    )
)
