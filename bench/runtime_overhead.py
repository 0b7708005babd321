"""How much edgekit's runtime adds over calling the interpreter yourself.

For mnist-cnn int8 TFLite and fp32 ONNX, on the same file with the same thread count, in one
process, interleaved call by call (so machine load falls on every variant alike), the p50 of:

- raw:        the library by hand on a prepared tensor (litert set_tensor/invoke/get_tensor;
              onnxruntime session.run with the input name bound once);
- session:    edgekit's backend session on the same tensor (the Predictor's inference stage),
              paired with raw: the runtime's own overhead;
- predictor:  edgekit's Predictor on a raw 28x28 image (preprocess, inference, postprocess),
              paired with raw: what a user pays over the bare invoke, pre/post-processing included;
- by hand:    the same three stages called in a row with no Predictor around them, paired with
              the Predictor: the Predictor's own cost (taking a worker, timing, the finite check,
              the result object), with a second by-hand call on another interpreter as its control
              (how far apart two identical calls come out here);
- preprocess, postprocess: the task's two stages alone, to show where the rest goes;
- script:     what a user writes instead of edgekit, the 15-line script: the digit normalised with
              numpy (/255, quantized for an int8 input), the bare interpreter, the output dequantized
              and its argmax; paired with the Predictor on the same image (which also checks the
              frame's polarity and gives five labelled classes): the goal is within 5% of it.

Models come from --models DIR (model_int8.tflite and model.onnx); with none there, a tiny
mnist-cnn is trained and exported into DIR first, the way a user does it (`edgekit train`,
`edgekit export --to all`). Prints a table; saves JSON to bench/results/runtime_overhead.json.

    python bench/runtime_overhead.py --models /tmp/cnn --runs 3000 --threads 1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("model_int8.tflite", "model.onnx")


def ensure_models(folder: Path) -> None:
    """Train and export a tiny mnist-cnn into `folder` unless its files are already there."""
    if all((folder / m).exists() for m in MODELS):
        return
    edgekit = [sys.executable, "-m", "edgekit.cli"]
    # from a folder outside the checkout: `-m` puts the working folder first on sys.path, and the
    # checkout's edgekit/ is not the installed package (pyproject maps runtime/ into that)
    outside, folder = tempfile.gettempdir(), folder.resolve()
    print(f"training a tiny mnist-cnn into {folder} ...", file=sys.stderr)
    subprocess.run(
        [*edgekit, "train", "mnist-cnn", "--epochs", "1", "--limit", "2000", "--out", str(folder), "--force"],
        check=True,
        cwd=outside,
    )
    subprocess.run(
        [*edgekit, "export", str(folder / "model.keras"), "--to", "all", "--force"], check=True, cwd=outside
    )


def raw_call(path: Path, feeds: list[np.ndarray], threads: int) -> Callable[[], object]:
    """The library by hand, with everything a careful user would bind once bound once."""
    if path.suffix == ".tflite":
        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_path=str(path), num_threads=threads)
        it.allocate_tensors()
        index_in = it.get_input_details()[0]["index"]
        index_out = it.get_output_details()[0]["index"]
        x = feeds[0]

        def tflite() -> object:
            it.set_tensor(index_in, x)
            it.invoke()
            return it.get_tensor(index_out)

        return tflite
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    bound = {sess.get_inputs()[0].name: feeds[0]}
    return lambda: sess.run(None, bound)


def script_call(path: Path, image: np.ndarray, threads: int) -> Callable[[], object]:
    """The whole job by hand, as a user's script does it without edgekit: normalise, quantize for
    an int8 input, invoke, dequantize, argmax (the scale and zero points read once, as a user would
    copy them from the interpreter)."""
    if path.suffix == ".tflite":
        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_path=str(path), num_threads=threads)
        it.allocate_tensors()
        inp, out = it.get_input_details()[0], it.get_output_details()[0]
        (s_in, z_in), (s_out, z_out) = inp["quantization"], out["quantization"]
        index_in, index_out, shape = inp["index"], out["index"], inp["shape"]

        def tflite() -> int:
            x = image.astype(np.float32) / 255.0
            q = np.clip(np.round(x / s_in) + z_in, -128, 127).astype(np.int8).reshape(shape)
            it.set_tensor(index_in, q)
            it.invoke()
            scores = (it.get_tensor(index_out).astype(np.float32) - z_out) * s_out
            return int(np.argmax(scores))

        return tflite
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name, shape = sess.get_inputs()[0].name, [1, *image.shape]

    def onnx() -> int:
        x = (image.astype(np.float32) / 255.0).reshape(shape)
        return int(np.argmax(sess.run(None, {name: x})[0]))

    return onnx


def interleaved(calls: dict[str, Callable[[], object]], runs: int, warmup: int) -> dict[str, float]:
    """p50 in µs of each call, the calls interleaved (`edgekit.runtime.timing.interleaved`)."""
    from edgekit.runtime.timing import interleaved as timed

    return {name: float(np.median(t)) * 1e6 for name, t in timed(calls, runs, warmup).items()}


def measure(path: Path, image: np.ndarray, runs: int, warmup: int, threads: int) -> dict[str, object]:
    """The figures for one model file. Each comparison is its own interleaved pair, and each side
    has its own interpreter called once per round, so neither finds the other's weights in cache."""
    from edgekit.runtime.predictor import Predictor

    def opened() -> Predictor:
        return Predictor(path, threads=threads)

    with opened() as a, opened() as b, opened() as c, opened() as d, opened() as e:
        feeds = a.task.preprocess(image)
        outputs = a.session.run(feeds)
        pre, run, post = c.task.preprocess, c.session.run, c.task.postprocess
        pre_e, run_e, post_e = e.task.preprocess, e.session.run, e.task.postprocess
        # a second raw interpreter is the control: how far apart two identical calls come out here
        inference = interleaved(
            {
                "raw": raw_call(path, feeds, threads),
                "session": lambda: a.session.run(feeds),
                "raw_again": raw_call(path, feeds, threads),
            },
            runs,
            warmup,
        )
        pipeline = interleaved(
            {"raw": raw_call(path, feeds, threads), "predictor": lambda: b(image)}, runs, warmup
        )
        own = interleaved(
            {
                "by_hand": lambda: post(run(pre(image))),
                "predictor": lambda: d(image),
                "by_hand_again": lambda: post_e(run_e(pre_e(image))),
            },
            runs,
            warmup,
        )
        script = interleaved(
            {"script": script_call(path, image, threads), "predictor": lambda: b(image)}, runs, warmup
        )
        stages = interleaved(
            {
                "preprocess": lambda: a.task.preprocess(image),
                "postprocess": lambda: a.task.postprocess(outputs),
            },
            runs,
            warmup,
        )
        backend = a.session.backend

    def pct(x: float, base: float) -> float:
        return round(100 * (x - base) / base, 2)

    def us(d: dict[str, float]) -> dict[str, float]:
        return {k: round(v, 2) for k, v in d.items()}

    return {
        "model": path.name,
        "backend": backend,
        "threads": threads,
        "runs": runs,
        "p50_us": {
            "inference": us(inference),
            "pipeline": us(pipeline),
            "own": us(own),
            "script": us(script),
            "stages": us(stages),
        },
        # edgekit's inference stage (Session.run) against the interpreter by hand, same tensor
        "session_overhead_pct": pct(inference["session"], inference["raw"]),
        "control_pct": pct(inference["raw_again"], inference["raw"]),  # the noise floor
        # the whole Predictor on a raw image (with pre/post-processing) against the bare invoke
        "predictor_overhead_pct": pct(pipeline["predictor"], pipeline["raw"]),
        # the Predictor on a raw image against a user's 15-line script doing the same job: the goal
        "predictor_vs_script_pct": pct(script["predictor"], script["script"]),
        # the Predictor against its own three stages called by hand: timing, the result object
        "predictor_own_us": round(own["predictor"] - own["by_hand"], 2),
        "predictor_own_control_us": round(own["by_hand_again"] - own["by_hand"], 2),  # noise floor
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, help="folder with model_int8.tflite and model.onnx")
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "runtime_overhead.json")
    args = parser.parse_args()

    from edgekit.benchmark.results import machine
    from edgekit.fileio import write_text
    from edgekit.runtime.datasets import load_dataset

    folder = args.models or Path(tempfile.mkdtemp(prefix="edgekit-overhead-"))
    folder.mkdir(parents=True, exist_ok=True)
    ensure_models(folder)
    image = load_dataset("mnist", "shipped").heldout.x[0]  # a real 28x28 digit, as a camera would give
    rows = [measure(folder / m, image, args.runs, args.warmup, args.threads) for m in MODELS]

    print(f"p50 in µs, {args.runs} interleaved runs per pair, {args.threads} thread(s)")
    head = ("model", "raw", "session", "+%", "control %", "raw", "predictor", "+%", "by hand", "own µs")
    head += ("ctl µs", "pre", "post", "script", "predictor", "+%")
    print("  ".join(f"{h:>10}" for h in head))
    for r in rows:
        p = r["p50_us"]
        cells = (r["model"], p["inference"]["raw"], p["inference"]["session"], r["session_overhead_pct"])
        cells += (r["control_pct"],)
        cells += (p["pipeline"]["raw"], p["pipeline"]["predictor"], r["predictor_overhead_pct"])
        cells += (
            p["own"]["by_hand"],
            r["predictor_own_us"],
            r["predictor_own_control_us"],
            p["stages"]["preprocess"],
            p["stages"]["postprocess"],
            p["script"]["script"],
            p["script"]["predictor"],
            r["predictor_vs_script_pct"],
        )
        print("  ".join(f"{c:>10}" for c in cells))
    doc = {"machine": machine(), "results": rows}
    write_text(args.out, json.dumps(doc, indent=2))
    print(f"saved {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
