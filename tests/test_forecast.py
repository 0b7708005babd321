"""The forecaster end to end: the shipped CO2 series cleaned and cut into windows in time order, a
user's CSV with its time column (sorted, gaps filled, the season from its step), the forecast task
fed live from a CSV played at its timestamps, lines on stdin and a TCP stream, with no TensorFlow,
and bad input as one sentence each. The full training run against seasonal-naive is `slow`."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.errors import ConfigError, DataError
from edgekit.runtime.datasets import load_dataset
from edgekit.runtime.files import read_card
from edgekit.runtime.series import SeriesSpec, forecast_scores, parse_time, season_of, seasonal_naive, windows

runner = CliRunner()


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


# ---- series and datasets (numpy only) -----------------------------------------------------------


@pytest.mark.runtime_only
def test_the_shipped_co2_series_is_cut_in_time_order_with_its_cleaning_said():
    ds = load_dataset("co2")
    assert ds.labels == ("co2",) and ds.source == "shipped"
    assert ds.notes == ("interpolated 59 missing values between their neighbours in row order",)
    spec = ds.preprocess
    assert (spec["window"], spec["horizon"], spec["season"], spec["step"]) == (52, 4, 52, 7 * 86_400.0)
    assert ds.train.x.shape[1] == 52 and ds.heldout.y["future"].shape[1] == 4
    # the held-out windows are the last fifth in time, and no training target reaches into them
    first_held = ds.heldout.x[0]
    last_train = ds.train.x[-1]
    n_train, n_held = len(ds.train), len(ds.heldout)
    assert n_held == round((n_train + n_held + 3) * 0.2)
    # the last training window's targets end right before the first held-out one's (3 origins apart)
    assert np.array_equal(first_held[: 52 - 4], last_train[4:])
    assert np.allclose(ds.train.y["future"][-1][-1], first_held[-1], atol=1e-4)
    # the validation part is the training windows' tail, not a random eighth among them
    assert np.array_equal(ds.validation_index, np.arange(n_train - len(ds.validation_index), n_train))
    # seasonal naive: each target's reading a year (52 weeks) before it, the window's first ones
    assert np.allclose(ds.heldout.y["naive"][0], first_held[:4], atol=1e-4)
    scores = forecast_scores(ds.heldout.y["naive"], ds.heldout.y)
    assert scores["skill"] == 0.0 and scores["mae"] == scores["naive_mae"] > 1.0


@pytest.mark.runtime_only
def test_windows_and_the_seasonal_naive_forecast_on_a_known_series():
    values = np.arange(20, dtype=np.float64) * 10
    x, y = windows(values, window=3, horizon=2, season=4)
    assert len(x) == 20 - 4 - 2 + 1  # origins 4..18: a window and a season behind each
    assert x[0].tolist() == [10, 20, 30] and y["future"][0].tolist() == [40, 50] and y["last"][0] == 30
    assert y["naive"][0].tolist() == [0, 10]  # a season (4 readings) before each target
    assert seasonal_naive(values, 10, 6, 4).tolist() == [60, 70, 80, 90, 60, 70]  # the latest season seen
    assert seasonal_naive(values, 10, 2, 1).tolist() == [90, 90]  # season 1: the last reading
    spec = SeriesSpec("v", window=3, horizon=2, scale=10.0)
    encoded = spec.encode(x[:1])
    assert encoded.shape == (1, 3, 1) and encoded.ravel().tolist() == [-2, -1, 0]
    assert spec.decode(spec.targets(y[:1]), y["last"][:1]).tolist() == [[40, 50]]
    with pytest.raises(DataError, match="too few for a window of 3, a season of 4 and 2 to forecast"):
        windows(values[:5], 3, 2, 4)


@pytest.mark.runtime_only
def test_times_and_seasons_are_read_from_the_data():
    assert parse_time("19580329") == parse_time("1958-03-29") == parse_time(19580329.0)
    assert parse_time("2024-05-01T10:00:00Z") - parse_time("2024-05-01 09:00") == 3600
    assert parse_time("12.5") == 12.5 and parse_time("soon") is None and parse_time("") is None
    assert [season_of(s) for s in (3600, 86_400, 7 * 86_400, 30 * 86_400, 7.0, None)] == [24, 7, 52, 12, 1, 1]


@pytest.mark.runtime_only
def test_a_users_csv_is_sorted_gaps_filled_and_cut_by_its_options(tmp_path):
    rows = ["stamp,temperature,humidity"]
    hours = [h for h in range(200) if h not in (50, 51, 52)]  # the logger was off for 3 hours
    for h in reversed(hours):  # written newest first
        t = f"2024-01-{1 + h // 24:02d}T{h % 24:02d}:00:00"
        value = "" if h == 100 else f"{20 + 3 * np.sin(2 * np.pi * h / 24):.3f}"
        rows.append(f"{t},{value},{40 + h % 7}")
    rows.append(rows[1])  # one row twice
    path = tmp_path / "room.csv"
    path.write_text("\n".join(rows) + "\n")
    ds = load_dataset("series", f"{path}?target=temperature&horizon=6")
    assert ds.notes == (
        "sorted the rows by stamp",
        "dropped 1 readings that repeat an earlier stamp",
        "inserted 3 missing steps where stamp skips (every 1 hour)",
        "interpolated 4 missing values between their neighbours in row order",
    )
    p = ds.preprocess
    assert (p["time"], p["season"], p["window"], p["horizon"], p["step"]) == ("stamp", 24, 24, 6, 3600.0)
    assert "every 1 hour, 200 readings after cleaning" in ds.description
    again = load_dataset(ds.name, ds.source)  # what export and evaluate read from the card
    assert np.array_equal(again.heldout.y, ds.heldout.y)
    # a stated range makes readings outside it missing, then filled
    ranged = load_dataset("series", f"{path}?target=temperature&range=temperature:18..22")
    assert any(n.endswith("readings outside 18..22 made missing") for n in ranged.notes)


@pytest.mark.runtime_only
@pytest.mark.parametrize(
    ("query", "error", "match"),
    [
        (
            "target=pressure",
            DataError,
            "has no column 'pressure' to forecast: its columns are stamp, temperature",
        ),
        ("target=temperature&features=stamp", ConfigError, "features does not apply to a series"),
        ("target=temperature&missing=drop", ConfigError, "missing readings are interpolated"),
        ("target=temperature&window=1", ConfigError, "window=1: give at least 2"),
        ("target=temperature&window=500", DataError, "too few for a window of 500"),
        ("target=temperature&time=clock", DataError, "has no time column 'clock'"),
        ("", ConfigError, "say which column of room.csv to forecast with --target"),
    ],
)
def test_bad_series_options_are_one_sentence(tmp_path, query, error, match):
    path = tmp_path / "room.csv"
    path.write_text("stamp,temperature\n" + "".join(f"{h},{20 + h % 5}\n" for h in range(100)))
    with pytest.raises(error, match=match):
        load_dataset("series", f"{path}?{query}")


@pytest.mark.runtime_only
def test_a_time_column_that_is_not_all_times_is_one_sentence(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("date,level\n2024-01-01,1\n2024-01-02,2\nyesterday,3\n")
    with pytest.raises(DataError, match="column 'date' holds 'yesterday', which is not a date"):
        load_dataset("series", f"{path}?target=level&time=date")
    text = tmp_path / "text.csv"
    text.write_text("t,level\n1,low\n2,high\n")
    with pytest.raises(DataError, match="column 'level' of .* holds text: a forecaster reads numbers"):
        load_dataset("series", f"{text}?target=level")


# ---- a tiny forecaster, exported, run live with no TensorFlow --------------------------------------


def temperatures(hours: np.ndarray) -> np.ndarray:
    """A room's temperature: a daily swing, a slow drift and a little noise (so last day's value,
    the seasonal-naive forecast, is not already perfect)."""
    noise = np.random.default_rng(0).normal(0, 0.2, len(hours))
    return 20 + 3 * np.sin(2 * np.pi * hours / 24) + 0.01 * hours + noise


@pytest.fixture(scope="module")
def forecaster(tmp_path_factory) -> Path:
    """A tiny forecaster of a clean daily-season series (window 24, horizon 3), as TFLite int8."""
    from edgekit.models.train import train

    folder = tmp_path_factory.mktemp("forecast")
    hours = np.arange(600)
    data = folder / "room.csv"
    data.write_text(
        "stamp,temperature\n" + "".join(f"{h * 3600},{t:.4f}\n" for h, t in zip(hours, temperatures(hours)))
    )
    train(
        "forecast", folder, data=f"{data}?target=temperature&horizon=3", hparams={"units": 8},
        epochs=8, quiet=True,
    )  # fmt: skip
    result = cli("export", folder / "model.keras", "--to", "tflite", "--quantize", "int8")
    assert result.exit_code == 0, result.output
    return folder / "model_int8.tflite"


def edgekit(*args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """The CLI in a process of its own (a device's, with no TensorFlow imported)."""
    return subprocess.run(
        [sys.executable, "-m", "edgekit.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def keras_forecast(artifact: Path, window: list[float]) -> np.ndarray:
    """What the Keras model the file came from forecasts after `window`, in the series' units."""
    import keras

    spec = SeriesSpec.from_dict(read_card(artifact).preprocess)
    model = keras.saving.load_model(artifact.parent / "model.keras", compile=False)
    w = np.array([window])
    return spec.decode(np.asarray(model(spec.encode(w))), w[:, -1])[0]


def forecasts(stdout: str) -> list[dict]:
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return [line for line in lines if "results" in line]


def test_lines_of_numbers_on_stdin_roll_a_window_then_forecast(forecaster):
    readings = [f"{20 + 3 * np.sin(2 * np.pi * h / 24):.4f}" for h in range(30)]
    # a garbled line is skipped and counted; a missing reading (NA) repeats the last one
    readings[27] = "NA"
    proc = edgekit(
        "run", str(forecaster), "--source", "numbers:-", "--json", stdin="\n".join(readings) + "\nbad\n"
    )
    assert proc.returncode == 0, proc.stderr
    out = forecasts(proc.stdout)
    assert len(out) == 30
    assert out[0]["results"] == [{"event": "waiting", "readings": 1, "window": 24}]
    assert out[22]["results"][0]["event"] == "waiting"
    made = [o["results"][0] for o in out[23:]]
    assert all(len(m["forecast"]) == 3 for m in made) and made[0]["name"] == "temperature"
    # the numbers Keras gives for the same window (the file is int8: within a few of its steps)
    expected = keras_forecast(forecaster, [float(r) for r in readings[:24]])
    assert (
        np.abs(np.array(made[0]["forecast"]) - expected).max()
        < 0.1 * SeriesSpec.from_dict(read_card(forecaster).preprocess).scale * 3
    )
    assert "filled" not in made[0] and made[-1]["filled"] == 1
    assert "skipped stdin line 31: 'bad' is not a number" in proc.stderr


def test_a_whole_window_on_one_line_and_one_too_short(forecaster):
    window = " ".join(f"{20 + 3 * np.sin(2 * np.pi * h / 24):.4f}" for h in range(30))
    proc = edgekit("run", str(forecaster), "--source", "numbers:-", "--json", stdin=window + "\n")
    assert proc.returncode == 0 and len(forecasts(proc.stdout)[0]["results"][0]["forecast"]) == 3
    short = edgekit("run", str(forecaster), "--source", "numbers:-", stdin="20.1, 20.5, 21\n")
    assert short.returncode == 1
    assert (
        "the window holds 3 readings, but this model forecasts from the last 24: give at least 24"
        in short.stderr
    )
    assert "Traceback" not in short.stderr


def test_a_csv_played_at_its_timestamps(forecaster, tmp_path):
    path = tmp_path / "live.csv"
    path.write_text("when,temperature\n" + "".join(f"{h * 0.02:.2f},{20 + h % 4}\n" for h in range(40)))
    t0 = time.perf_counter()
    proc = edgekit("run", str(forecaster), "--source", str(path), "--realtime", "--json")
    assert proc.returncode == 0, proc.stderr
    out = forecasts(proc.stdout)
    assert len(out) == 40 and "forecast" in out[-1]["results"][0]
    captured = [o["t_capture"] for o in out]
    assert captured[-1] - captured[0] == pytest.approx(0.78, abs=0.15)  # 39 steps of 20 ms
    assert time.perf_counter() - t0 > 0.78
    plain = edgekit("run", str(forecaster), "--source", str(path), "--json")
    assert len(forecasts(plain.stdout)) == 40  # without --realtime: as fast as it reads


def test_a_tcp_line_stream_as_a_gateway_publishes_it(forecaster):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def publish() -> None:
        conn, _ = server.accept()
        with conn:
            for h in range(30):
                conn.sendall(f'{{"temperature": {20 + h % 3}, "humidity": 40}}\n'.encode())
        server.close()

    threading.Thread(target=publish, daemon=True).start()
    proc = edgekit(
        "run", str(forecaster), "--source", f"tcp://127.0.0.1:{port}", "--reconnect", "0", "--json"
    )
    assert proc.returncode == 0, proc.stderr
    assert len(forecasts(proc.stdout)) == 30
    assert "closed the connection and did not come back" in proc.stderr


@pytest.mark.parametrize(
    ("args", "stdin", "match"),
    [
        (
            ["--source", "tcp://127.0.0.1:1"],
            None,
            "cannot connect to tcp://127.0.0.1:1 .*: check the address",
        ),
        (["--source", "tcp://nowhere"], None, "give tcp://HOST:PORT"),
        (
            ["--source", "numbers:-"],
            "humidity=40\n",
            "stdin line 1 has no 'temperature', which this model forecasts",
        ),
    ],
)
def test_bad_live_input_is_one_sentence(forecaster, args, stdin, match):
    import re

    proc = edgekit("run", str(forecaster), *args, stdin=stdin)
    assert proc.returncode == 1 and re.search(match, proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_csv_without_the_cards_column_and_one_with_no_times(forecaster, tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("when,pressure\n1,1000\n2,1001\n")
    proc = edgekit("run", str(forecaster), "--source", str(path))
    assert proc.returncode == 1
    assert (
        "other.csv line 2 has no 'temperature', which this model forecasts (it holds when, pressure)"
        in proc.stderr
    )
    untimed = tmp_path / "untimed.csv"
    untimed.write_text("place,temperature\nhall,20\n")
    proc = edgekit("run", str(forecaster), "--source", str(untimed), "--realtime")
    assert proc.returncode == 1 and "no column of its first row holds a date or time" in proc.stderr


def test_evaluate_on_device_reads_the_skill_first(forecaster):
    proc = edgekit("evaluate", str(forecaster))
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip().splitlines()[-1]
    assert line.startswith("model_int8.tflite: skill ")
    words = line.split()
    assert [words[1], words[3], words[5], words[7]] == ["skill", "mae", "rmse", "naive_mae"]
    skill, mae, naive = float(words[2]), float(words[4]), float(words[8])
    assert naive > 0 and skill == pytest.approx(1 - mae / naive, abs=1e-3)


# ---- the full run (minutes) ----------------------------------------------------------------------


@pytest.mark.slow
def test_forecast_beats_seasonal_naive_on_co2_and_every_file_keeps_it(tmp_path):
    from edgekit.models.recipe import get_recipe
    from edgekit.models.train import train

    result = train("forecast", tmp_path, quiet=True)
    m = result.card.metrics
    assert m["heldout_mae"] < m["heldout_naive_mae"]
    assert m["heldout_skill"] >= get_recipe("forecast").evaluation.bar
    proc = cli("export", tmp_path / "model.keras", "--to", "all")
    assert proc.exit_code == 0, proc.output
