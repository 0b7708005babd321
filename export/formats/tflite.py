"""Keras -> TFLite through a SavedModel with a fixed batch of 1 (RNNs unrolled: see `graph.py`).

Why a SavedModel: a `tf.function` handed to `from_concrete_functions` keeps the weights as
resource variables (a 6 KB "model" that reads them at run time) and breaks int8 calibration
("READ_VARIABLE failed to invoke"); the SavedModel path freezes them."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.card import ModelCard
from edgekit.deps import quiet_native_stderr
from edgekit.errors import UnsupportedError, first_line
from edgekit.export.base import EXPORTERS, Exporter, ExportOptions, Quantization
from edgekit.export.embed import embed_tflite
from edgekit.export.graph import export_graph, input_spec
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


def convert_tflite(model: Any, card: ModelCard, options: ExportOptions, calib: np.ndarray | None) -> bytes:
    """TFLite bytes (no card yet) for one quantization mode."""
    tf, _ = import_tf()
    q = options.quantization
    batch = None if options.batch == "dynamic" else 1  # devices run one frame at a time
    model = export_graph(model, unroll=True, batch=batch)
    with tempfile.TemporaryDirectory(prefix="edgekit-tflite-") as tmp:
        converter = tf.lite.TFLiteConverter.from_saved_model(
            str(write_saved_model(model, card, Path(tmp), batch))
        )
        if q is not Quantization.FP32:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if q is Quantization.FP16:
            converter.target_spec.supported_types = [tf.float16]
        if q is Quantization.INT8:
            if calib is None or not len(calib):
                raise UnsupportedError("full-integer TFLite needs calibration samples: pass --data")
            # the model's own input dtype: int32 token ids stay integers
            samples = calib.astype(input_spec(model, card.input.name, 1).dtype.as_numpy_dtype)

            def representative():
                for i in range(len(samples)):
                    yield [samples[i : i + 1]]

            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            io_type = {"int8": tf.int8, "uint8": tf.uint8, "float": tf.float32}[options.io]
            converter.inference_input_type = io_type
            converter.inference_output_type = io_type
        try:
            with quiet_native_stderr():
                return converter.convert()
        except Exception as e:  # the converter raises ConverterError and friends
            raise UnsupportedError(f"TFLite conversion ({q.value}) failed: {first_line(e)}") from None


EXPORTERS.add(
        Exporter(
        format="tflite",
        suffix=".tflite",
        modes=(Quantization.FP32, Quantization.FP16, Quantization.DYNAMIC, Quantization.INT8),
        convert=convert_tflite,
        embed=embed_tflite,
        description="TensorFlow Lite flatbuffer (batch 1), for ai-edge-litert / tflite-runtime",
    ),
)
