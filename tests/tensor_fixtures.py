"""Model files with no edgekit card, made as a user makes them: a Keras model through the TFLite
converter and through tf2onnx (a fixed input signature, as DESIGN.md says works with Keras 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def make_tensor_models(out: Path, width: int = 16, name: str = "net") -> dict[str, Path]:
    """A small dense network (8 inputs -> `width` -> 4) as `name.tflite` and `name.onnx`; a larger
    `width` makes a larger file (and a larger resident set)."""
    import tensorflow as tf
    import tf2onnx

    out.mkdir(parents=True, exist_ok=True)
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential(
        [tf.keras.Input((8,), batch_size=1), tf.keras.layers.Dense(width, activation="relu"), tf.keras.layers.Dense(4)]
    )
    spec = tf.TensorSpec((1, 8), tf.float32, name="x")
    fn = tf.function(lambda x: model(x, training=False))
    # from_keras_model, not from_concrete_functions: the latter keeps Keras 3 weights as resource
    # variables the interpreter never initialises (a tiny file whose outputs are NaN)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    tflite = out / f"{name}.tflite"
    tflite.write_bytes(conv.convert())
    onnx = out / f"{name}.onnx"
    tf2onnx.convert.from_function(fn, input_signature=[spec], opset=17, output_path=str(onnx))
    return {"tflite": tflite, "onnx": onnx}


def onnx_model_bytes(graph: Any) -> bytes:
    """An ONNX graph built by hand as a checked model file's bytes: opset 17, IR version 8 (old
    enough for any onnxruntime the runtime supports)."""
    import onnx

    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()
