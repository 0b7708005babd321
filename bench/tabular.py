"""The tabular recipes' figures: training time and held-out metric of each recipe on its shipped
table, linear regression's coefficients against least squares, and the per-call latency of the
regress and classify-table tasks through edgekit's Predictor against the bare interpreter.

Latency is measured as in `bench/runtime_overhead.py` (its `raw_call` and `interleaved`, one
process, calls interleaved, p50): raw (the library on a prepared feature vector), session
(edgekit's backend session on the same vector: the runtime's own cost), predictor (a CSV row's
text -> parsed, filled, scaled, one-hot -> model -> named value or label) and preprocess alone.
For a model this small the call is microseconds, so the row's preparation is most of it.

    python bench/tabular.py --out /tmp/tables --runs 3000
Saves bench/results/tabular.json."""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from runtime_overhead import interleaved, raw_call  # noqa: E402

RECIPES = ("linear-regression", "logistic-regression", "tabular-mlp")


def cpu_flags() -> list[str]:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    import re

    return sorted(set(re.findall(r"avx512[a-z_]*|avx2|vnni", text)))


def train_all(out: Path) -> dict[str, dict]:
    from edgekit.models.train import train

    rows = {}
    for name in RECIPES:
        t0 = time.perf_counter()
        result = train(name, out / name, force=True, quiet=True)
        metrics = result.card.metrics
        headline = next(k for k in metrics if k.startswith("heldout_"))
        rows[name] = {
            "data": result.card.dataset["name"],
            "task": result.card.task,
            "train_seconds": metrics["train_seconds"],
            "wall_seconds": round(time.perf_counter() - t0, 2),
            "epochs": metrics["epochs_run"] if "epochs_run" in metrics else metrics["epochs"],
            headline: metrics[headline],
            "heldout": {
                k: v for k, v in metrics.items() if k.startswith("heldout_") and not isinstance(v, dict)
            },
        }
        print(name, rows[name], flush=True)
    return rows


def coefficients(out: Path) -> dict:
    import keras

    from edgekit.card import ModelCard
    from edgekit.runtime.datasets import load_dataset
    from edgekit.runtime.features import card_inputs

    card = ModelCard.load(out / "linear-regression" / "card.json")
    ds = load_dataset(card.dataset["name"], card.dataset["source"])
    x = card_inputs(card, ds.fit)
    t = card.preprocess["target"]
    y = (ds.fit.y - t["center"]) / t["scale"]
    closed = np.linalg.lstsq(np.hstack([x, np.ones((len(x), 1))]), y, rcond=None)[0]
    kernel, bias = (
        keras.saving.load_model(out / "linear-regression" / "model.keras", compile=False)
        .layers[-1]
        .get_weights()
    )
    names = [c["name"] for c in card.preprocess["columns"]]
    return {
        "features": names,
        "keras": [float(v) for v in kernel.ravel()] + [float(bias[0])],
        "least_squares": [float(v) for v in closed],
        "max_abs_diff": float(np.abs(np.append(kernel.ravel(), bias) - closed).max()),
        "units": "standardised features and target",
    }


def latency(out: Path, runs: int, threads: int) -> dict:
    from edgekit.runtime.predictor import Predictor

    edgekit = [sys.executable, "-m", "edgekit.cli"]
    results = {}
    for name in ("linear-regression", "logistic-regression"):
        folder = out / name
        for fmt, q in (("tflite", "fp32"), ("tflite", "int8"), ("onnx", "fp32")):
            subprocess.run([*edgekit, "export", str(folder / "model.keras"), "--to", fmt, "--quantize", q, "--force"],
                           check=True, capture_output=True)  # fmt: skip
        card = json.loads((folder / "card.json").read_text())
        row = {c["name"]: str(round(c.get("center", 0.0) + 0.3 * c.get("scale", 1.0), 3))
               if c["type"] == "number" else c["vocabulary"][0] for c in card["preprocess"]["columns"]}  # fmt: skip
        for path in (folder / "model.tflite", folder / "model_int8.tflite", folder / "model.onnx"):
            with Predictor(path, threads=threads) as a, Predictor(path, threads=threads) as b:
                feeds = a.task.preprocess(row)
                raw = raw_call(path, feeds, threads)
                session = b.session.run
                pre = b.task.preprocess
                timed = interleaved(
                    {
                        "raw": raw,
                        "session": lambda session=session, feeds=feeds: session(feeds),
                        "predictor": lambda a=a, row=row: a(row),
                        "preprocess": lambda pre=pre, row=row: pre(row),
                    },
                    runs,
                    200,
                )
            key = f"{name}/{path.name}"
            timed = {k: round(v, 2) for k, v in timed.items()}
            timed["session_over_raw"] = round(timed["session"] / timed["raw"], 3)
            timed["predictor_over_raw"] = round(timed["predictor"] / timed["raw"], 3)
            results[key] = timed
            print(key, timed, flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp") / "edgekit-tables")
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    doc = {
        "machine": {"cpu_flags": cpu_flags(), "python": platform.python_version()},
        "recipes": train_all(args.out),
    }
    doc["coefficients"] = coefficients(args.out)
    print("coefficients", doc["coefficients"], flush=True)
    doc["latency_us_p50"] = latency(args.out, args.runs, args.threads)
    target = ROOT / "bench" / "results" / "tabular.json"
    target.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
