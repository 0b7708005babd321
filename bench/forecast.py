"""The forecaster's figures: its training time and held-out metrics on the shipped CO2 series, the
same held-out forecasts of the seasonal-naive and last-value baselines and of statsmodels' ETS
(Holt-Winters, additive trend and 52-week season, fitted on the training part only), every export
mode's skill, and the per-call latency of the forecast task through edgekit's Predictor against
the bare interpreter.

ETS: fitted once on the readings before the first held-out target, then run over the whole series
with those parameters (no refit, as the model is not refitted either), each held-out origin's
forecast made from the states filtered up to it: l + h b + s (the additive Holt-Winters forecast).
The recursion is checked against statsmodels' own one-step fitted values on the training part.

Latency as `bench/tabular.py` measures it (one process, calls interleaved, p50 µs): raw (the
library on the prepared window), session (edgekit's backend session on it), predictor (a window of
readings -> relative, scaled -> model -> readings in ppm), a reading (one number onto the rolling
window, then the same), preprocess alone, and script: what a user writes instead of edgekit (the
window made relative and scaled with numpy, quantized for an int8 input, the bare interpreter, the
output turned back into ppm), paired with the predictor.

    python bench/forecast.py --out /tmp/forecast --runs 3000
Saves bench/results/forecast.json. Needs statsmodels (the test extra)."""

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
from tabular import cpu_flags  # noqa: E402


def series() -> tuple[np.ndarray, dict]:
    """The cleaned CO2 readings and the held-out origins, as the `co2` dataset cuts them."""
    from edgekit.runtime.datasets.series import CO2, order_and_clean
    from edgekit.runtime.table import read_table

    table = read_table(CO2.path).select(["date", "co2"])
    values, _, _ = order_and_clean(table, CO2, "date")
    first = max(CO2.window, CO2.season)
    origins = np.arange(first, len(values) - CO2.horizon + 1)
    held = max(1, round(len(origins) * 0.2))
    return values, {"origins": origins[-held:], "horizon": CO2.horizon, "season": CO2.season}


def ets_forecasts(
    values: np.ndarray, origins: np.ndarray, horizon: int, season: int
) -> tuple[np.ndarray, dict]:
    """Holt-Winters (additive trend and season) fitted on the readings before the first held-out
    origin, its h-step forecasts at each held-out origin from the states filtered up to it."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    train = values[: origins[0]]
    t0 = time.perf_counter()
    fit = ExponentialSmoothing(
        train, trend="add", seasonal="add", seasonal_periods=season, initialization_method="estimated"
    ).fit()
    seconds = time.perf_counter() - t0
    p = fit.params
    a, b, g = p["smoothing_level"], p["smoothing_trend"], p["smoothing_seasonal"]
    level, trend = p["initial_level"], p["initial_trend"]
    seasons = list(np.asarray(p["initial_seasons"], np.float64))  # seasons[j]: s at time j - season
    one_step = np.empty(len(values))
    states = {}
    for t, y in enumerate(values):
        s_old = seasons[t]  # s_{t-m}
        one_step[t] = level + trend + s_old
        prev_level, prev_trend = level, trend
        level = a * (y - s_old) + (1 - a) * (prev_level + prev_trend)
        trend = b * (level - prev_level) + (1 - b) * prev_trend
        seasons.append(g * (y - prev_level - prev_trend) + (1 - g) * s_old)
        states[t + 1] = (level, trend)  # after seeing readings 0..t
    out = np.empty((len(origins), horizon))
    for i, t in enumerate(origins):  # readings 0..t-1 seen; forecast t-1+h from s_{t-1+h-m}
        level, trend = states[t]
        out[i] = [level + h * trend + seasons[t - 1 + h] for h in range(1, horizon + 1)]
    check = float(np.abs(one_step[: len(train)] - fit.fittedvalues).max())
    info = {
        "fit_seconds": round(seconds, 2),
        "params": {"alpha": float(a), "beta": float(b), "gamma": float(g)},
        "recursion_vs_statsmodels_max_abs": check,
    }
    return out, info


def baselines(out: Path) -> dict:
    """MAE of every forecaster on the same held-out origins (ppm), and their skill."""
    from edgekit.runtime.datasets import load_dataset
    from edgekit.runtime.series import forecast_scores

    values, held = series()
    origins, horizon, season = held["origins"], held["horizon"], held["season"]
    ds = load_dataset("co2")
    y = ds.heldout.y
    assert np.allclose(y["future"][0], values[origins[0] : origins[0] + horizon])
    ets, ets_info = ets_forecasts(values, origins, horizon, season)
    last = np.repeat(y["last"][:, None], horizon, axis=1)
    rows = {
        "seasonal_naive": forecast_scores(y["naive"], y),
        "last_value": forecast_scores(last, y),
        "ets_statsmodels": {**forecast_scores(ets, y), **ets_info},
    }
    for name, row in rows.items():
        print(name, {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    return rows


def train_and_export(out: Path) -> dict:
    from edgekit.models.train import train

    t0 = time.perf_counter()
    result = train("forecast", out, force=True, quiet=True)
    m = result.card.metrics
    row = {
        "train_seconds": m["train_seconds"],
        "wall_seconds": round(time.perf_counter() - t0, 2),
        "epochs_run": m.get("epochs_run", m["epochs"]),
        "heldout": {k: v for k, v in m.items() if k.startswith("heldout_")},
    }
    print("forecast", row, flush=True)
    report = out / "report.json"
    subprocess.run([sys.executable, "-m", "edgekit.cli", "export", str(out / "model.keras"), "--to", "all",
                    "--force", "--report", str(report)], check=True, capture_output=True)  # fmt: skip
    row["exports"] = {
        Path(a["path"]).name: {
            "skill": a["report"]["skill"],
            "skill_keras": a["report"]["skill_keras"],
            "mae": a["report"]["metrics"]["mae"],
            "max_abs_diff": a["report"]["max_abs_diff"],
            "size_bytes": a["size_bytes"],
            "passed": a["report"]["passed"],
        }
        for a in json.loads(report.read_text())["artifacts"]
    }
    for name, e in row["exports"].items():
        print(" ", name, e, flush=True)
    return row


def script_call(path: Path, window: np.ndarray, scale: float, threads: int):
    """The forecast by hand, as a user's script does it without edgekit: the window relative to its
    last reading over the card's scale, quantized for an int8 input, the bare interpreter, the
    output dequantized and turned back into readings."""
    n = len(window)
    if path.suffix == ".tflite":
        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_path=str(path), num_threads=threads)
        it.allocate_tensors()
        inp, out = it.get_input_details()[0], it.get_output_details()[0]
        (s_in, z_in), (s_out, z_out) = inp["quantization"], out["quantization"]
        quantized = inp["dtype"] == np.int8

        def tflite() -> np.ndarray:
            x = ((window - window[-1]) / scale).astype(np.float32).reshape(1, n, 1)
            if quantized:
                x = np.clip(np.round(x / np.float32(s_in)) + z_in, -128, 127).astype(np.int8)
            it.set_tensor(inp["index"], x)
            it.invoke()
            y = it.get_tensor(out["index"])
            if quantized:
                y = (y.astype(np.float32) - z_out) * s_out
            return y.reshape(-1) * scale + window[-1]

        return tflite
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name

    def onnx() -> np.ndarray:
        x = ((window - window[-1]) / scale).astype(np.float32).reshape(1, n, 1)
        return sess.run(None, {name: x})[0].reshape(-1) * scale + window[-1]

    return onnx


def latency(out: Path, runs: int, threads: int) -> dict:
    from edgekit.runtime.datasets import load_dataset
    from edgekit.runtime.predictor import Predictor

    window = load_dataset("co2").heldout.x[0].astype(np.float64)  # 52 weeks of ppm
    results = {}
    for path in (out / "model.tflite", out / "model_int8.tflite", out / "model.onnx"):
        with (
            Predictor(path, threads=threads) as a,
            Predictor(path, threads=threads) as b,
            Predictor(path, threads=threads) as c,
        ):
            for r in window:  # c's rolling window full: each reading is one forecast
                c(float(r))
            feeds = a.task.preprocess(window)
            session = b.session.run
            reading = float(window[-1])
            timed = interleaved(
                {
                    "raw": raw_call(path, feeds, threads),
                    "session": lambda session=session, feeds=feeds: session(feeds),
                    "predictor": lambda a=a: a(window),
                    "predictor_reading": lambda c=c, reading=reading: c(reading),
                    "preprocess": lambda a=a: a.task.preprocess(window),
                    "script": script_call(path, window, a.task.spec.scale, threads),
                },
                runs,
                200,
            )
        timed = {k: round(v, 2) for k, v in timed.items()}
        timed["session_over_raw"] = round(timed["session"] / timed["raw"], 3)
        timed["predictor_over_raw"] = round(timed["predictor"] / timed["raw"], 3)
        timed["reading_over_raw"] = round(timed["predictor_reading"] / timed["raw"], 3)
        timed["predictor_over_script"] = round(timed["predictor"] / timed["script"], 3)
        results[path.name] = timed
        print(path.name, timed, flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp") / "edgekit-forecast")
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="use the model and exports already in --out")
    args = parser.parse_args()
    doc: dict = {"machine": {"cpu_flags": cpu_flags(), "python": platform.python_version()}}
    doc["baselines"] = baselines(args.out)
    if not args.reuse:
        doc["forecast"] = train_and_export(args.out)
    doc["latency_us_p50"] = latency(args.out, args.runs, args.threads)
    target = ROOT / "bench" / "results" / "forecast.json"
    if args.reuse and target.exists():  # keep the training figures of the run that made the files
        doc = {**json.loads(target.read_text()), **doc}
    target.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
