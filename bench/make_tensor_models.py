"""Model files with no edgekit card, as a user brings them: keras.applications.MobileNetV2
(weights=None, 224x224) through the TFLite converter (fp32 and full int8) and tf2onnx (fp32), plus
ONNX int8 by onnxruntime's static quantizer. For `edgekit bench` on any model file.

    python bench/make_tensor_models.py OUT_DIR [--size 224] [--alpha 1.0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--name", default="mobilenetv2")
    args = ap.parse_args()
    make(args.out, args.size, args.alpha, args.name)


def make(out: Path, size: int = 224, alpha: float = 1.0, name: str = "mobilenetv2") -> dict[str, Path]:
    import tensorflow as tf
    import tf2onnx

    out.mkdir(parents=True, exist_ok=True)
    model = tf.keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=alpha, weights=None)
    rng = np.random.default_rng(0)
    calib = [rng.uniform(-1, 1, (1, size, size, 3)).astype(np.float32) for _ in range(8)]
    fn = tf.function(lambda x: model(x, training=False))
    paths = {}
    # a SavedModel freezes the variables the calibrator reads (from_concrete_functions left
    # READ_VARIABLE ops that fail during int8 calibration)
    saved = out / f"{name}_savedmodel"
    model.export(str(saved), verbose=False)
    paths["tflite-fp32"] = out / f"{name}.tflite"
    paths["tflite-fp32"].write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(saved)).convert())
    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([c] for c in calib)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    paths["tflite-int8"] = out / f"{name}_int8.tflite"
    paths["tflite-int8"].write_bytes(conv.convert())
    paths["onnx-fp32"] = out / f"{name}.onnx"
    tf2onnx.convert.from_function(
        fn, input_signature=[tf.TensorSpec((1, size, size, 3), tf.float32, name="input")], opset=17,
        output_path=str(paths["onnx-fp32"]),
    )
    from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{"input": c} for c in calib])

        def get_next(self):
            return next(self.it, None)

    paths["onnx-int8"] = out / f"{name}_int8.onnx"
    quantize_static(str(paths["onnx-fp32"]), str(paths["onnx-int8"]), Reader(),
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    for k, p in paths.items():
        print(k, p, p.stat().st_size)
    return paths


if __name__ == "__main__":
    main()
