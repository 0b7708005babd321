"""Keras -> ONNX with tf2onnx on a `tf.function` (tf2onnx's `from_keras` fails on Keras 3), and
onnxruntime static QDQ quantization calibrated on the recipe's own data."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.card import ModelCard
from edgekit.deps import quiet_native_stderr, require
from edgekit.errors import EdgekitError, UnsupportedError, first_line
from edgekit.export.base import EXPORTERS, Exporter, ExportOptions, Quantization
from edgekit.export.graph import export_graph, input_spec
from edgekit.export.selective import COMPARISONS, Comparison, LayerLoss, channel_loss, resolve
from edgekit.fileio import temporary_dir
from edgekit.tfutil import INSTALL_TRAIN, import_tf


class ArrayCalibrationReader:
    """onnxruntime's CalibrationDataReader over an array of inputs, one sample per call."""

    def __init__(self, input_name: str, samples: np.ndarray) -> None:
        self.input_name = input_name
        self.samples = samples if samples.dtype.kind in "iu" else samples.astype(np.float32)
        self.i = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.i >= len(self.samples):
            return None
        self.i += 1
        return {self.input_name: self.samples[self.i - 1 : self.i]}

    def rewind(self) -> None:
        self.i = 0


def _rename_output(model: Any, old: str, new: str) -> None:
    for node in model.graph.node:
        node.output[:] = [new if o == old else o for o in node.output]
        node.input[:] = [new if i == old else i for i in node.input]
    for out in model.graph.output:
        if out.name == old:
            out.name = new


def convert_fp32(model: Any, card: ModelCard, opset: int, batch: int | None = None) -> Any:
    """The float ONNX graph of the model (an LSTM becomes one fused ONNX LSTM node)."""
    tf, _ = import_tf()
    tf2onnx = require("tf2onnx", INSTALL_TRAIN)
    model = export_graph(model, unroll=False, batch=batch)
    spec = input_spec(model, card.input.name, batch)
    fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    try:
        with quiet_native_stderr():
            proto, _ = tf2onnx.convert.from_function(fn, input_signature=[spec], opset=opset)
    except Exception as e:
        raise UnsupportedError(f"ONNX conversion failed: {first_line(e)}") from None
    # tf2onnx names the output after the TF tensor ("Identity:0"); use the card's name
    if len(proto.graph.output) == 1:
        _rename_output(proto, proto.graph.output[0].name, card.output.name)
    return proto


def preprocess(fp32: bytes) -> bytes:
    """onnxruntime's pre-quantization pass (shape inference, graph fusions); its node names are the
    ones `nodes_to_exclude` and the per-layer comparison speak of."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with temporary_dir("onnx") as tmp:
        src, pre = Path(tmp, "fp32.onnx"), Path(tmp, "pre.onnx")
        src.write_bytes(fp32)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        return pre.read_bytes()


def node_names(model_bytes: bytes) -> list[str]:
    import onnx

    return [n.name for n in onnx.load_from_string(model_bytes).graph.node]


def quantize_int8(
    fp32: bytes,
    input_name: str,
    calib: np.ndarray,
    method: str = "minmax",
    float_layers: tuple[str, ...] = (),
) -> bytes:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    calibrate = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[method]
    pre_bytes = preprocess(fp32)
    exclude = list(resolve(float_layers, node_names(pre_bytes))) if float_layers else []
    with temporary_dir("onnx") as tmp:
        pre, dst = Path(tmp, "pre.onnx"), Path(tmp, "int8.onnx")
        pre.write_bytes(pre_bytes)
        with contextlib.redirect_stdout(sys.stderr):  # the entropy calibrator prints progress
            quantize_static(
                str(pre),
                str(dst),
                ArrayCalibrationReader(input_name, calib),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                per_channel=False,
                calibrate_method=calibrate,
                nodes_to_exclude=exclude,
            )
        return dst.read_bytes()


def quantize_dynamic_int8(fp32: bytes, float_layers: tuple[str, ...] = ()) -> bytes:
    """int8 weights, float activations quantized on the fly (onnxruntime dynamic quantization)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    pre_bytes = preprocess(fp32)
    exclude = list(resolve(float_layers, node_names(pre_bytes))) if float_layers else []
    with temporary_dir("onnx") as tmp:
        pre, dst = Path(tmp, "pre.onnx"), Path(tmp, "dynamic.onnx")
        pre.write_bytes(pre_bytes)
        quantize_dynamic(str(pre), str(dst), weight_type=QuantType.QInt8, nodes_to_exclude=exclude)
        return dst.read_bytes()


DEBUG_SAMPLES = 64


def compare_onnx(
    model: Any, card: ModelCard, options: ExportOptions, calib: np.ndarray
) -> tuple[list[LayerLoss], list[str]]:
    """onnxruntime's per-node outputs: in the static QDQ file, each activation before its
    QuantizeLinear against the same tensor after the DequantizeLinear that follows."""
    import onnx
    import onnxruntime as ort

    if options.quantization is not Quantization.INT8:
        raise UnsupportedError("the per-layer comparison covers static int8 (QDQ) only")
    proto = convert_fp32(model, card, options.opset, batch=1 if options.batch == "1" else None)
    if options.simplify:
        proto = simplify(proto)
    graph_input = proto.graph.input[0]
    samples = calib[:DEBUG_SAMPLES].astype(
        onnx.helper.tensor_dtype_to_np_dtype(graph_input.type.tensor_type.elem_type)
    )
    fp32 = proto.SerializeToString()
    pre = onnx.load_from_string(preprocess(fp32))
    qdq = onnx.load_from_string(
        quantize_int8(fp32, graph_input.name, samples, options.calib_method, options.float_layers)
    )
    weights = {i.name for i in qdq.graph.initializer}
    quantized_by = {n.output[0]: n.input[0] for n in qdq.graph.node if n.op_type == "QuantizeLinear"}
    pairs = {  # activation -> its dequantized copy
        quantized_by[n.input[0]]: n.output[0]
        for n in qdq.graph.node
        if n.op_type == "DequantizeLinear"
        and n.input[0] in quantized_by
        and quantized_by[n.input[0]] not in weights
    }
    pairs = {t: dq for t, dq in pairs.items() if t != graph_input.name}
    present = {o.name for o in qdq.graph.output}
    for name in [*pairs, *pairs.values()]:
        if name not in present:
            qdq.graph.output.append(onnx.ValueInfoProto(name=name))
            present.add(name)
    with quiet_native_stderr():
        session = ort.InferenceSession(qdq.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    runs = [
        dict(zip(names, session.run(None, {graph_input.name: samples[i : i + 1]}), strict=True))
        for i in range(len(samples))
    ]
    writer = {o: n for n in pre.graph.node for o in n.output}
    losses = []
    for tensor, dq in pairs.items():
        f = np.stack([np.asarray(r[tensor], np.float64) for r in runs])
        q = np.stack([np.asarray(r[dq], np.float64) for r in runs]).reshape(f.shape)
        readers = tuple(n.name for n in pre.graph.node if tensor in n.input)
        op = writer[tensor].op_type if tensor in writer else "input"
        keep = ((writer[tensor].name,) if tensor in writer else ()) + readers
        losses.append(LayerLoss(tensor, op, channel_loss(f, q), keep))
    return losses, [n.name for n in pre.graph.node]


def to_fp16(proto: Any) -> bytes:
    """fp16 weights and compute, float32 input and output so callers feed what they always fed."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16(proto, keep_io_types=True).SerializeToString()


def simplify(proto: Any) -> Any:
    """onnxslim's graph simplification (constant folding, shape-op chains folded away); the shape
    annotations it adds are dropped again, they only made the file larger."""
    onnxslim = require("onnxslim", INSTALL_TRAIN)
    try:
        with quiet_native_stderr(), contextlib.redirect_stdout(sys.stderr):
            slim = onnxslim.slim(proto)
    except Exception as e:  # a graph it cannot handle: say so and keep the original
        print(f"note: ONNX simplification skipped ({first_line(e)})", file=sys.stderr)
        return proto
    del slim.graph.value_info[:]
    return slim


def convert_onnx(model: Any, card: ModelCard, options: ExportOptions, calib: np.ndarray | None) -> bytes:
    """ONNX bytes (no card yet) for one quantization mode."""
    import onnx

    proto = convert_fp32(model, card, options.opset, batch=1 if options.batch == "1" else None)
    if options.simplify:
        proto = simplify(proto)
    q = options.quantization
    if q is Quantization.FP16:
        return to_fp16(proto)
    data = proto.SerializeToString()
    try:
        if q is Quantization.DYNAMIC:
            return quantize_dynamic_int8(data, options.float_layers)
        if q is Quantization.INT8:
            if calib is None or not len(calib):
                raise UnsupportedError("static int8 ONNX needs calibration samples: pass --data")
            graph_input = proto.graph.input[0]
            # the calibration samples in the graph's own input type (int32 token ids stay integers)
            dtype = onnx.helper.tensor_dtype_to_np_dtype(graph_input.type.tensor_type.elem_type)
            return quantize_int8(
                data, graph_input.name, calib.astype(dtype), options.calib_method, options.float_layers
            )
    except EdgekitError:
        raise
    except Exception as e:  # onnxruntime's quantizer raises bare exceptions on graphs it cannot handle
        raise UnsupportedError(f"ONNX {q.value} quantization failed: {first_line(e)}") from None
    return data


EXPORTERS.add(
    Exporter(
        format="onnx",
        suffix=".onnx",
        modes=(Quantization.FP32, Quantization.FP16, Quantization.DYNAMIC, Quantization.INT8),
        convert=convert_onnx,
        rank=1,
        description="ONNX (dynamic batch), for onnxruntime on CPU and GPU",
    ),
)

COMPARISONS.add(
    Comparison(
        "onnx",
        compare_onnx,
        "onnxruntime per-node outputs: each activation of the QDQ file before its QuantizeLinear and "
        "after its DequantizeLinear, relative error per channel",
    )
)
