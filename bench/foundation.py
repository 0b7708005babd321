"""Figures for the foundation: run `edgekit quickstart` once and derive, from that one run,
int8 vs fp32 TFLite latency and accuracy, the runtime's speed-up over Keras `model(x)`, and
the cold import time of `edgekit.runtime`.

    .venv/bin/python bench/foundation.py [--out bench/results/foundation.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def import_time(module: str, repeats: int = 7) -> float:
    """Median wall time of `python -c "import module"` in a fresh interpreter, minus bare start-up."""

    def run(code: str) -> float:
        t0 = time.perf_counter()
        # from a folder outside the checkout: `-c` puts the working folder first on sys.path, and the
        # checkout's edgekit/ is not the installed package (pyproject maps runtime/ into that)
        subprocess.run([sys.executable, "-c", code], check=True, cwd=tempfile.gettempdir())
        return time.perf_counter() - t0

    bare = statistics.median(run("pass") for _ in range(repeats))
    full = statistics.median(run(f"import {module}") for _ in range(repeats))
    return full - bare, full


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("bench/results/foundation.json"))
    ap.add_argument("--runs", type=int, default=1000)
    args = ap.parse_args()

    from edgekit.quickstart import run_quickstart

    with tempfile.TemporaryDirectory() as tmp:
        result = run_quickstart(
            Path(tmp) / "qs", runs=args.runs, progress=lambda m: print(m, file=sys.stderr)
        )
    print(result.table)
    keras = result.report.baseline
    rows = {(r.format, r.quantization): r for r in result.report.rows if r is not keras}
    fp32, int8 = rows[("tflite", "fp32")], rows[("tflite", "int8")]
    extra, with_start = import_time("edgekit.runtime")
    # what `edgekit run` imports before it opens a model: the predictor and both backends
    run_path, _ = import_time(
        "edgekit.runtime.predictor, edgekit.runtime.backends.tflite, edgekit.runtime.backends.onnxruntime"
    )
    figures = {
        "tflite_int8_accuracy_delta_points": round((int8.accuracy - keras.accuracy) * 100, 2),
        "tflite_int8_over_fp32_p50": round(int8.p50_ms / fp32.p50_ms, 3),
        "tflite_int8_over_fp32_size": round(int8.size_bytes / fp32.size_bytes, 3),
        "speedup_over_keras_p50": {
            f"{f}-{q}": round(keras.p50_ms / r.p50_ms, 1) for (f, q), r in rows.items()
        },
        "onnx_int8_over_fp32_p50": round(rows[("onnx", "int8")].p50_ms / rows[("onnx", "fp32")].p50_ms, 3),
        "import_edgekit_runtime_s": round(extra, 3),
        "import_edgekit_runtime_with_interpreter_start_s": round(with_start, 3),
        "import_runtime_predictor_and_backends_s": round(run_path, 3),
        "quickstart_seconds": round(result.seconds, 1),
    }
    print(json.dumps(figures, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result.save(args.out)
    doc = json.loads(args.out.read_text())
    doc["figures"] = figures
    args.out.write_text(json.dumps(doc, indent=2))
    print(f"saved {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
