"""Makes `runtime/assets/mnist_reader.tflite`, the MNIST classifier that reads a generator's digits
back (the `generate` task's read-back rate, as TF-GAN's MNIST example scores a generator with a
classifier trained apart from it): the project's own `mnist-cnn` trained on the shipped digits with
its recipe's defaults (seed 0), as `edgekit quickstart` trains it, exported to int8 TFLite and
validated against Keras as every export is. The card inside the file says how it was made.

    python bench/make_mnist_reader.py --out /tmp/reader
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSET = ROOT / "runtime" / "assets" / "mnist_reader.tflite"


def main() -> None:
    from edgekit.export.api import export_model, plan_export
    from edgekit.models.train import train

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs") / "mnist-reader")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = train("mnist-cnn", args.out, data="shipped", seed=args.seed, force=True)
    print(
        f"mnist-cnn: held-out accuracy {result.card.metrics['heldout_accuracy']:.4f} ({result.seconds:.0f} s)"
    )
    options = plan_export(result.model_path, "tflite", "int8", args.out / "reader_int8.tflite", force=True)
    exported = export_model(result.model_path, options)
    report = exported.report
    print(
        f"int8: accuracy {report['accuracy']:.4f} (Keras {report['accuracy_keras']:.4f}), {exported.size} bytes"
    )
    shutil.copyfile(exported.path, ASSET)
    print(f"wrote {ASSET}")


if __name__ == "__main__":
    main()
