"""The conditional GAN's figures: its training time and held-out read-back rate (the share of
generated digits the project's MNIST CNN reads as the digit asked for, on the 1,000 held-out
requests), every export mode's read-back rate beside Keras's (TFLite and ONNX; each file scored
by the reader through the edgekit runtime, no TensorFlow), and the per-call latency of the
generate task through edgekit's Predictor against the bare interpreter.

Latency as `bench/tabular.py` measures it (one process, calls interleaved, p50 µs): raw (the
library on a prepared [noise, one-hot] vector), session (edgekit's backend session on it),
predictor (a request -> its noise drawn from its seed, one-hot -> model -> uint8 image), and
preprocess alone (drawing the noise is most of it).

    python bench/cgan.py --out /tmp/cgan --runs 2000
Saves bench/results/cgan.json."""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from runtime_overhead import interleaved, raw_call  # noqa: E402
from tabular import cpu_flags  # noqa: E402


def train_and_export(out: Path, epochs: int | None) -> dict:
    from edgekit.models.train import train

    t0 = time.perf_counter()
    result = train("cgan-mnist", out, force=True, quiet=True, epochs=epochs)
    m = result.card.metrics
    row = {
        "epochs": m["epochs"],
        "train_seconds": m["train_seconds"],
        "wall_seconds": round(time.perf_counter() - t0, 2),
        "heldout": {k: v for k, v in m.items() if k.startswith("heldout_")},
    }
    print("cgan-mnist", row, flush=True)
    report = out / "report.json"
    subprocess.run([sys.executable, "-m", "edgekit.cli", "export", str(out / "model.keras"), "--to", "all",
                    "--force", "--report", str(report)], check=True, capture_output=True)  # fmt: skip
    row["exports"] = {}
    for a in json.loads(report.read_text())["artifacts"]:
        r = a.get("report") or {}
        row["exports"][Path(a["path"]).name] = {
            "written": a["written"],
            "readback": r.get("readback"),
            "readback_keras": r.get("readback_keras"),
            "delta_points": r.get("readback_delta_points"),
            "worst_class": (r.get("metrics") or {}).get("readback_worst_class"),
            "max_abs_diff": r.get("max_abs_diff"),
            "size_bytes": a.get("size_bytes"),
            "error": a.get("error"),
        }
        print(" ", Path(a["path"]).name, row["exports"][Path(a["path"]).name], flush=True)
    return row


def latency(out: Path, runs: int, threads: int) -> dict:
    from edgekit.runtime.inputs.labels import Request
    from edgekit.runtime.predictor import Predictor

    request = Request(7, 12345)
    results = {}
    for name in ("model.tflite", "model_int8.tflite", "model.onnx"):
        path = out / name
        if not path.exists():
            continue
        with Predictor(path, threads=threads) as a, Predictor(path, threads=threads) as b:
            feeds = a.task.preprocess(request)
            session = b.session.run
            timed = interleaved(
                {
                    "raw": raw_call(path, feeds, threads),
                    "session": lambda session=session, feeds=feeds: session(feeds),
                    "predictor": lambda a=a: a(request),
                    "preprocess": lambda a=a: a.task.preprocess(request),
                },
                runs,
                100,
            )
        timed = {k: round(v, 2) for k, v in timed.items()}
        timed["session_over_raw"] = round(timed["session"] / timed["raw"], 3)
        timed["predictor_over_raw"] = round(timed["predictor"] / timed["raw"], 3)
        results[name] = timed
        print(name, timed, flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp") / "edgekit-cgan")
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--reuse", action="store_true", help="use the model and exports already in --out")
    args = parser.parse_args()
    doc: dict = {"machine": {"cpu_flags": cpu_flags(), "python": platform.python_version()}}
    if not args.reuse:
        doc["cgan"] = train_and_export(args.out, args.epochs)
    doc["latency_us_p50"] = latency(args.out, args.runs, args.threads)
    target = ROOT / "bench" / "results" / "cgan.json"
    if args.reuse and target.exists():
        doc = {**json.loads(target.read_text()), **doc}
    target.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
