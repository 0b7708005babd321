"""Tables end to end: the shipped tables read offline, the course's cleaning as reported steps fitted
on the training part and applied the same on the device, a large CSV read with bounded memory, bad
input as one sentence, the regressions against least squares and scikit-learn, and a CSV run
through an exported file with no TensorFlow."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from conftest import run_python
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.errors import DataError
from edgekit.runtime.datasets import load_dataset

runner = CliRunner()


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.runtime_only
def test_the_shipped_tables_load_offline_with_their_cleaning_said():
    votes = load_dataset("anes96")
    assert votes.labels == ("0", "1") and len(votes.train) + len(votes.heldout) == 943
    assert votes.notes == ("dropped 1 duplicate rows",)  # anes96 repeats one respondent's row
    assert votes.train.x.dtype["educ"] is np.dtype(object)  # declared categorical: one-hot in the card
    invest = load_dataset("grunfeld")
    assert invest.labels == ("invest",) and invest.train.y.dtype == np.float32
    assert invest.card_entry()["source"].endswith(
        "grunfeld.csv?target=invest&features=value,capital&units=invest:million+USD,value:million+USD,capital:million+USD"
    )
    again = load_dataset(invest.name, invest.source)  # what export reads from the card
    assert np.array_equal(again.heldout.y, invest.heldout.y)


@pytest.mark.runtime_only
def test_the_co2_series_has_missing_weeks_that_the_same_cleaning_fills():
    from edgekit.runtime.cleaning import drop_duplicates, interpolate
    from edgekit.runtime.datasets.tabular import shipped_table
    from edgekit.runtime.table import read_table

    series = read_table(shipped_table("co2"))
    assert len(series) == 2284 and int(series.missing("co2").sum()) == 59
    cleaned = interpolate(drop_duplicates(series), ["co2"])
    assert not cleaned.missing("co2").any()
    assert cleaned.notes == ("interpolated 59 missing values between their neighbours in row order",)
    values = cleaned.columns["co2"]
    assert values.min() >= 313 and values.max() < 380 and np.all(np.diff(cleaned.columns["date"]) > 0)


def _csv(path, text):
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.mark.runtime_only
def test_cleaning_steps_are_fitted_on_the_training_part_and_stored_in_the_card(tmp_path):
    from edgekit.models.recipe import get_recipe
    from edgekit.models.step import Step, run_parts
    from edgekit.runtime.datasets.tabular import TableSource, load_table
    from edgekit.runtime.features import features

    rng = np.random.default_rng(0)
    n = 200
    temp = rng.normal(21, 2, n).round(2)
    humidity = rng.uniform(20, 60, n).round(1)
    room = rng.choice(["hall", "office", "lab"], n)
    y = 2 * temp + 0.1 * humidity + (room == "lab") * 3 + rng.normal(0, 0.1, n)
    rows = [f"{t},{h},{r},{v:.3f}" for t, h, r, v in zip(temp, humidity, room, y)]
    rows[5] = rows[4]  # a duplicate
    rows[7] = f",{humidity[7]},{room[7]},{y[7]:.3f}"  # a missing temperature: filled by the mean
    rows[9] = f"{temp[9]},140.0,{room[9]},{y[9]:.3f}"  # humidity out of its physical range
    rows[11] = f"95.0,{humidity[11]},{room[11]},{y[11]:.3f}"  # an outlier
    path = _csv(tmp_path / "rooms.csv", "temp,humidity,room,comfort\n" + "\n".join(rows) + "\n")
    spec = f"{path}?target=comfort&missing=median&range=humidity:0..100&outliers=iqr&scale=minmax&units=comfort:points"
    ds = load_table(TableSource.parse(spec))
    said = " | ".join(ds.notes)
    assert "dropped 1 duplicate rows" in said and "outside 0..100" in said
    assert "1 missing values (temp 1) filled by --missing median" in said
    assert "outside Q1 - 1.5 IQR .. Q3 + 1.5 IQR of the training rows" in said
    assert ds.card_entry()["cleaning"] == list(ds.notes) and ds.labels == ("comfort",)
    step = Step.of(get_recipe("tabular-mlp"), ds)
    assert step.recipe.task == "regress"  # the MLP follows its target: a number
    data = step.prepare(*run_parts(ds, None))
    columns = {c["name"]: c for c in data.preprocess["columns"]}
    fit = data.train.x  # min-max and the median from the training part only, never the held-out
    assert columns["temp"]["center"] == pytest.approx(np.nanmin(fit["temp"]))
    assert columns["temp"]["fill"] == pytest.approx(np.nanmedian(fit["temp"]))
    assert columns["room"]["vocabulary"] == ["hall", "lab", "office"] and data.preprocess["width"] == 5
    assert data.preprocess["target"]["unit"] == "points"
    # the device's one-row path gives what training computed for the whole batch
    x = features(data.preprocess, ds.heldout.x)
    one = {name: str(ds.heldout.x[0][name]) for name in ("temp", "humidity", "room")}
    from edgekit.runtime.table_features import TableSpec

    assert np.allclose(TableSpec.from_dict(data.preprocess).encode_row(one), x[0], atol=1e-6)


@pytest.mark.runtime_only
@pytest.mark.parametrize(
    ("content", "args", "said"),
    [
        ("a,b\n1,2\n3,4\n", ["--target", "price"], "has no column 'price' to predict: its columns are a, b"),
        ("a,b\n1,2\nwarm,4\n3,5\n", ["--target", "b"], "line 3: column 'a' holds 'warm' among numbers"),
        ("", ["--target", "b"], "is empty: it needs a header row"),
        ("a,b\n", ["--target", "b"], "has a header row but no rows of values"),
        ("a,b\n1,2\n3,4\n", ["--target", "b", "--missing", "guess"], "--missing 'guess' is not a rule"),
        (
            "a,b\n1,x\n3,y\n5,x\n7,y\n9,x\n2,y\n",
            ["--target", "b"],
            "linear-regression predicts a number, but",
        ),
    ],
)
def test_bad_tables_are_one_sentence_and_nothing_is_written(tmp_path, content, args, said):
    data = tmp_path / "bad.csv"
    data.write_text(content)
    out = tmp_path / "run"
    r = cli("train", "linear-regression", "--data", data, *args, "--out", out)
    assert r.exit_code == 1, r.output
    assert said in r.stderr and "Traceback" not in r.output
    assert [line.startswith("error:") for line in r.stderr.strip().splitlines()].count(True) == 1
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.runtime_only
def test_a_large_csv_is_read_in_chunks_with_bounded_memory(tmp_path):
    """~30 MB of rows read with a 20,000-row sample and 5,000-row chunks: the process grows by a
    fraction of the file (read whole into Python it would take several times the file's size)."""
    path = tmp_path / "big.csv"
    rng = np.random.default_rng(1)
    with path.open("w") as f:
        f.write("t,h,light,co2\n")
        for _ in range(20):
            block = rng.uniform(0, 1000, (40_000, 4))
            f.write("\n".join(",".join(f"{v:.4f}" for v in row) for row in block) + "\n")
    size_mb = path.stat().st_size / 2**20
    code = f"""
import resource, json
from edgekit.runtime.table import read_table
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
table = read_table({str(path)!r}, max_rows=20_000, chunk_rows=5_000)
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps({{"rows": len(table), "read": table.rows_read, "grown_mb": grown, "notes": table.notes}}))
"""
    proc = run_python(code, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["read"] == 800_000 and got["rows"] == 20_000 and "sampled 20,000" in got["notes"][0]
    assert size_mb > 25 and got["grown_mb"] < 20, got


def _sklearn():
    return pytest.importorskip("sklearn", reason="scikit-learn is the tests' reference only (test extra)")


def test_linear_regression_agrees_with_least_squares_and_scikit_learn(tmp_path):
    """Keras's Dense(1) on the standardised Grunfeld table against the closed form on the same
    rows: every standardised coefficient within 0.01."""
    _sklearn()
    import keras
    from sklearn.linear_model import LinearRegression

    from edgekit.models.train import train
    from edgekit.runtime.features import card_inputs

    result = train("linear-regression", tmp_path, quiet=True)
    ds, card = result.dataset, result.card
    x = card_inputs(card, ds.fit)  # what the weights were fitted on: the training part
    target = card.preprocess["target"]
    y = (ds.fit.y - target["center"]) / target["scale"]
    closed = np.linalg.lstsq(np.hstack([x, np.ones((len(x), 1))]), y, rcond=None)[0]
    reference = LinearRegression().fit(x, y)
    assert np.allclose(closed[:-1], reference.coef_, atol=1e-6)
    kernel, bias = keras.saving.load_model(result.model_path, compile=False).layers[-1].get_weights()
    assert np.abs(kernel.ravel() - closed[:-1]).max() <= 0.01
    assert abs(float(bias[0]) - closed[-1]) <= 0.01
    assert card.task == "regress" and card.metrics["heldout_r2"] > 0.8


@pytest.mark.parametrize("target", ["vote", pytest.param("PID", marks=pytest.mark.slow)])
def test_logistic_regression_is_within_a_point_of_scikit_learn(tmp_path, target):
    """Binary (Clinton/Dole vote) and 7-class (party identification; slow: 80 epochs to settle on
    the optimum, 72 s here) on the same split and the same standardised features: held-out
    accuracy within 1 point of LogisticRegression."""
    _sklearn()
    from sklearn.linear_model import LogisticRegression

    from edgekit.models.train import train
    from edgekit.runtime.features import card_inputs

    data = f"shipped?target={target}" + (
        "&features=popul,TVnews,selfLR,ClinLR,DoleLR,age,educ,income" if target == "PID" else ""
    )
    # the same objective on both sides: scikit-learn's default L2 penalty (C=1) as Keras's l2 on
    # the mean loss over the n training rows, 1 / (2 C n)
    n = len(load_dataset("anes96", data).fit)
    result = train(
        "logistic-regression",
        tmp_path,
        data=data,
        hparams={"l2": 1 / (2 * n)},
        epochs=80 if target == "PID" else None,
        quiet=True,
    )
    ds, card = result.dataset, result.card
    reference = LogisticRegression(C=1.0, max_iter=5000).fit(card_inputs(card, ds.fit), ds.fit.y)
    theirs = float((reference.predict(card_inputs(card, ds.heldout)) == ds.heldout.y).mean())
    ours = card.metrics["heldout_accuracy"]
    print(f"{target}: edgekit {ours:.4f}, scikit-learn {theirs:.4f}")
    assert len(card.labels) == (2 if target == "vote" else 7)
    assert abs(ours - theirs) <= 0.01


def test_a_csv_runs_through_the_exported_file_without_tensorflow(tmp_path):
    from edgekit.runtime.datasets.tabular import shipped_table

    r = cli(
        "train", "tabular-mlp", "--data", shipped_table("grunfeld"), "--target", "invest",
        "--features", "value,capital,firm", "--unit", "invest=million USD", "--epochs", "5", "--out", tmp_path,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "held-out r2" in r.stdout
    r = cli("export", tmp_path / "model.keras", "--to", "tflite", "--quantize", "int8")
    assert r.exit_code == 0, r.output
    rows = tmp_path / "rows.csv"
    rows.write_text("value,capital,firm\n3078.5,2.8,General Motors\n100.0,50.0,IBM\nlots,3.0,IBM\n")
    code = f"""
import json, subprocess, sys
from typer.testing import CliRunner
from edgekit.cli import app
r = CliRunner().invoke(app, ["run", {str(tmp_path / "model_int8.tflite")!r}, "--source", {str(rows)!r}, "--json"])
heavy = [m for m in ("tensorflow", "keras") if m in sys.modules]
print(json.dumps({{"code": r.exit_code, "out": r.stdout, "err": r.stderr, "heavy": heavy}}))
"""
    proc = run_python(code, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["heavy"] == [] and got["code"] == 0, got
    lines = [json.loads(x) for x in got["out"].splitlines() if x.startswith('{"source"')]
    assert len(lines) == 2  # the row with text where a number goes failed alone, said in one line
    value = lines[0]["results"][0]
    assert value["name"] == "invest" and value["unit"] == "million USD" and value["value"] > 0
    assert "column 'value' holds 'lots', which is not a number" in got["err"]
    missing = tmp_path / "missing.csv"
    missing.write_text("value,firm\n3078.5,IBM\n")
    r = cli("run", tmp_path / "model_int8.tflite", "--source", missing)
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "missing.csv line 2 has no column 'capital', which the model needs" in r.stderr
    source = json.loads((tmp_path / "card.json").read_text())["dataset"]["source"]
    shown = cli("evaluate", tmp_path / "model_int8.tflite", "--data", source)  # a file outside: named
    assert shown.exit_code == 0 and "r2" in shown.stdout, shown.output


@pytest.mark.runtime_only
def test_a_header_only_or_empty_csv_source_is_one_sentence(tmp_path):
    from edgekit.errors import SourceError
    from edgekit.runtime.sources import open_source

    (tmp_path / "head.csv").write_text("a,b\n")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(SourceError, match="has a header row but no rows"):
        open_source(str(tmp_path / "head.csv"))
    with pytest.raises(DataError, match="is empty"):
        open_source(str(tmp_path / "empty.csv"))
