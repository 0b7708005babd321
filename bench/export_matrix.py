"""Export matrix: for each recipe × format × quantization mode, size, accuracy delta against Keras,
validation time and p50 latency as a ratio of the same format's fp32 file — all from one run.

    .venv/bin/python bench/export_matrix.py [--recipes mnist-cnn,mnist-mlp] [--epochs N] [--limit N]
                                            [--out bench/results/export_matrix.json]
Every recipe by default; those whose data is not on this machine (no network: CIFAR-10) are skipped
with the reason. The accuracy columns are the task's headline metric (accuracy, IoU, mAP).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipes", default="", help="comma-separated (default: every recipe)")
    ap.add_argument("--epochs", type=int, default=None, help="training epochs (default: the recipe's)")
    ap.add_argument("--limit", type=int, default=None, help="train on the first N samples only")
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--out", type=Path, default=Path("bench/results/export_matrix.json"))
    args = ap.parse_args()

    from edgekit.benchmark.results import machine
    from edgekit.benchmark.runner import Benchmark, BenchSettings
    from edgekit.errors import EdgekitError
    from edgekit.export.api import export_all
    from edgekit.models.recipe import recipe_names
    from edgekit.models.train import TrainConfig, train
    from edgekit.runtime.files import ModelFile
    from edgekit.runtime.files.keras import load_keras_model

    names = args.recipes.split(",") if args.recipes else recipe_names()
    rows, skipped = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            folder = Path(tmp, name)
            try:
                trained = train(TrainConfig(name, folder, epochs=args.epochs, limit=args.limit, quiet=True))
            except EdgekitError as e:
                skipped[name] = str(e)
                print(f"skip {name}: {e}", file=sys.stderr)
                continue
            model = load_keras_model(trained.model_path)
            print(f"{name}: held-out {trained.card.metrics}", file=sys.stderr)
            try:  # every target, fp32 first within each format: the others are measured against it
                outcomes = export_all(trained.model_path, keras_model=model)
            except EdgekitError as e:
                skipped[name] = str(e)
                print(f"skip {name}: {e}", file=sys.stderr)
                continue
            fp32_p50: dict[str, float] = {}
            for outcome in outcomes:
                fmt, mode = outcome.target.format, outcome.target.quantization.value
                if not outcome.written:
                    rows.append({"recipe": name, "format": fmt, "mode": mode, "error": str(outcome.error)})
                    continue
                res = outcome.result
                ops = ModelFile.open(res.path).ops
                bench = Benchmark([res.path], BenchSettings(runs=args.runs, warmup=50)).run().rows[0]
                fp32_p50.setdefault(fmt, bench.p50_ms)
                fp32_size = rows_size(rows, name, fmt) or res.size
                r = res.report
                metric = r["metric"]
                rows.append(
                    {
                        "recipe": name,
                        "format": fmt,
                        "mode": mode,
                        "size_bytes": res.size,
                        "size_ratio": round(res.size / fp32_size, 3),
                        "metric": metric,
                        "accuracy": r[metric],
                        "accuracy_keras": r[f"{metric}_keras"],
                        "accuracy_delta_points": r[f"{metric}_delta_points"],
                        "top1_agreement": r.get("top1_agreement"),
                        "ops": sum(ops.ops.values()) if ops else None,
                        "max_abs_diff": r["max_abs_diff"],
                        "validation_s": r["seconds"],
                        "export_s": round(res.seconds, 2),
                        "p50_ms": round(bench.p50_ms, 5),
                        "p50_ratio": round(bench.p50_ms / fp32_p50[fmt], 3),
                    }
                )
                print(_line(rows[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine(), "rows": rows, "skipped": skipped}, indent=2))
    print(f"saved {args.out}", file=sys.stderr)


def rows_size(rows: list[dict], recipe: str, fmt: str) -> int | None:
    return next(
        (r["size_bytes"] for r in rows if (r["recipe"], r["format"], r["mode"]) == (recipe, fmt, "fp32")),
        None,
    )


def _line(r: dict) -> str:
    return (
        f"{r['recipe']:<14} {r['format']:<7} {r['mode']:<8} {r['size_bytes'] / 1024:8.1f} KB "
        f"(x{r['size_ratio']:.2f})  {r['metric']} {r['accuracy']:.4f} "
        f"({r['accuracy_delta_points']:+.2f} pt)  "
        f"agree {r['top1_agreement'] or 0:.4f}  p50 {r['p50_ms']:.4f} ms (x{r['p50_ratio']:.2f})  "
        f"validate {r['validation_s']:.2f}s"
    )


if __name__ == "__main__":
    main()
