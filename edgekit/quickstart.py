"""`edgekit quickstart`: train the MNIST CNN on the shipped digits, export fp32/int8 TFLite and ONNX,
validate each against Keras, and benchmark them against Keras itself."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from edgekit.bench_table import BenchRow, bench_model, machine, table
from edgekit.fileio import check_writable, write_text

ARTIFACTS = (("tflite", "fp32"), ("tflite", "int8"), ("onnx", "fp32"), ("onnx", "int8"))


@dataclass
class QuickstartResult:
    rows: list[BenchRow]
    baseline: BenchRow
    seconds: float

    @property
    def table(self) -> str:
        return table([self.baseline, *self.rows], baseline=self.baseline)

    def save(self, path: Path) -> Path:
        doc = {
            "machine": machine(),
            "seconds": self.seconds,
            "baseline": asdict(self.baseline),
            "results": [asdict(r) for r in self.rows],
        }
        return write_text(path, json.dumps(doc, indent=2))


def run_quickstart(
    out: Path,
    *,
    epochs: int | None = None,
    runs: int = 500,
    force: bool = False,
    progress: Callable[[str], None] = print,
) -> QuickstartResult:
    from edgekit.export.api import export_model, plan_export
    from edgekit.export.base import Quantization, get_exporter
    from edgekit.models.train import TrainConfig, train
    from edgekit.runtime.backends.keras import load_keras_model

    t0 = time.perf_counter()
    out = Path(out)
    model_path = out / "model.keras"
    targets = [get_exporter(f).default_path(model_path, Quantization(q)) for f, q in ARTIFACTS]
    for path in (model_path, *targets):  # refuse before training, not after
        check_writable(path, force=force)
    progress(f"1/3 training mnist-cnn into {out}")
    train(TrainConfig("mnist-cnn", out, data="shipped", epochs=epochs, force=force))
    progress(f"2/3 exporting {len(ARTIFACTS)} artifacts and validating each against Keras")
    model = load_keras_model(model_path)
    paths = []
    for fmt, q in ARTIFACTS:
        options = plan_export(model_path, fmt, q, force=force)
        result = export_model(model_path, options, data="shipped", model=model)
        r = result.report
        progress(
            f"    {result.path.name}: {result.size / 1024:.1f} KB, agreement {r['top1_agreement']:.4f}, "
            f"accuracy {r['accuracy']:.4f} ({r['accuracy_delta_points']:+.2f} points)"
        )
        paths.append(result.path)
    progress("3/3 benchmarking against Keras model(x)")
    baseline = bench_model(model_path, runs=max(50, runs // 5), warmup=10, data="shipped")
    rows = [bench_model(p, runs=runs, warmup=50, data="shipped") for p in paths]
    return QuickstartResult(rows, baseline, time.perf_counter() - t0)
