"""`edgekit tune` end to end on a tiny grid: trials recorded, the best trained again and exported,
bad input refused before any training, a killed search resumed."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys

import pytest
from said import assert_names_what_it_wrote, files_under
from typer.testing import CliRunner

from edgekit.cli import app

runner = CliRunner()
EDGEKIT = [sys.executable, "-m", "edgekit.cli"]
TINY = ["--grid", "hidden=8,16", "--grid", "activation=relu,tanh", "--epochs", "1", "--limit", "300"]


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_a_two_by_two_grid_runs_end_to_end_and_its_best_model_exports(tmp_path):
    out = tmp_path / "search"
    before = files_under(tmp_path)
    r = cli("tune", "mnist-mlp-small", *TINY, "--out", out)
    assert r.exit_code == 0, r.output
    assert_names_what_it_wrote(tmp_path, before, r)
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert len(rows) == 4 and {(x["hidden"], x["activation"]) for x in rows} == {
        ("8", "relu"),
        ("8", "tanh"),
        ("16", "relu"),
        ("16", "tanh"),
    }
    trials = json.loads((out / "trials.json").read_text())
    assert all(t["status"] == "COMPLETED" and 0 <= t["val_accuracy"] <= 1 for t in trials)
    assert (out / "scores.png").stat().st_size > 0
    assert r.stderr.count("trial ") >= 4 and "best" in r.stderr  # a progress line per trial
    card = json.loads((out / "card.json").read_text())
    best = max(trials, key=lambda t: t["val_accuracy"])
    assert card["hparams"]["search"]["trials"] == 4
    assert card["hparams"]["search"]["best_score"] == pytest.approx(best["val_accuracy"])
    assert "refit" in card["hparams"]["validation"]
    assert {"heldout_accuracy", "heldout_macro_f1", "heldout_per_class"} <= set(card["metrics"])
    exported = cli("export", out / "model.keras", "--to", "tflite")
    assert exported.exit_code == 0, exported.output
    assert (out / "model.tflite").is_file()
    shown = cli("evaluate", out / "model.tflite", "--limit", "100")
    assert shown.exit_code == 0 and "macro avg" in shown.stdout and "precision" in shown.stdout


def test_cross_validation_scores_by_folds(tmp_path):
    r = cli(
        "tune",
        "mnist-mlp-small",
        "--grid",
        "hidden=8",
        "--folds",
        "2",
        "--epochs",
        "1",
        "--limit",
        "100",
        "--metric",
        "macro_f1",
        "--out",
        tmp_path,
    )
    assert r.exit_code == 0, r.output
    trials = json.loads((tmp_path / "trials.json").read_text())
    assert len(trials) == 1 and 0 <= trials[0]["cv_macro_f1"] <= 1


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--grid", "widht=1,2"], "has no hyper-parameter 'widht': it takes"),
        (["--grid", "hidden=8,wide"], "takes a whole number"),
        (["--grid", "hidden="], "lists no values"),
        (
            ["--grid", "hidden=1,2,3,4,5", "--grid", "l2=0,1e-4,1e-3", "--max-trials", "10"],
            "more than --max-trials",
        ),
        (["--grid", "hidden=8", "--folds", "9", "--limit", "40"], "more than the smallest class"),
        (["--grid", "hidden=8", "--metric", "speed"], "cannot be scored by 'speed'"),
        (["--grid", "hidden=8", "--folds", "3", "--strategy", "hyperband"], "cannot go with"),
    ],
)
def test_bad_input_is_one_sentence_before_any_training(tmp_path, args, said):
    r = cli("tune", "mnist-mlp-small", *args, "--out", tmp_path / "out")
    assert r.exit_code == 1, r.output
    assert said in r.stderr and "Traceback" not in r.output
    assert not (tmp_path / "out" / "search").exists()  # no trial began


def test_a_killed_search_resumes_where_it_stopped(tmp_path):
    out = tmp_path / "search"
    args = ["tune", "mnist-mlp-small", *TINY, "--out", str(out)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([*EDGEKIT, *args], stderr=subprocess.PIPE, text=True, env=env)
    for line in proc.stderr:  # kill it as soon as the first trial is recorded
        if line.startswith("trial 1/4"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    first = json.loads((out / "trials.json").read_text())
    assert [t["status"] for t in first][:1] == ["COMPLETED"] and not (out / "model.keras").exists()

    again = subprocess.run([*EDGEKIT, *args], capture_output=True, text=True, env=env)
    assert again.returncode == 1 and "holds a search: pass --resume" in again.stderr

    resumed = subprocess.run([*EDGEKIT, *args, "--resume"], capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stderr
    lines = [x for x in resumed.stderr.splitlines() if x.startswith("trial ")]
    assert lines and not lines[0].startswith("trial 1/4")  # the count goes on from the kill
    trials = json.loads((out / "trials.json").read_text())
    done = [t for t in trials if t["status"] == "COMPLETED"]
    assert len(done) == 4 and done[0] == first[0]  # the first trial was not run again
    assert (out / "model.keras").is_file()


def test_a_trial_trains_exactly_as_a_run_does(tmp_path):
    """One training step for both: a trial's validation score is that of `train` with the same
    settings, scored on the same validation part (the same weights, the same batches)."""
    import keras

    from edgekit.models.step import validation_limit
    from edgekit.models.train import train
    from edgekit.models.tune import TuneConfig, tune
    from edgekit.runtime.features import card_inputs
    from edgekit.runtime.scoring import evaluate_outputs

    grid = {"hidden": (16,)}
    searched = tune(
        TuneConfig("mnist-mlp-small", tmp_path / "search", grid=grid, epochs=2, limit=300, quiet=True)
    )
    run = train("mnist-mlp-small", tmp_path / "run", hparams={"hidden": 16}, epochs=2, limit=300, quiet=True)
    model = keras.saving.load_model(run.model_path, compile=False)
    watch = run.dataset.validation.head(validation_limit(300))
    outputs = model.predict(card_inputs(run.card, watch), verbose=0, batch_size=256)
    assert searched.trials[0]["val_accuracy"] == evaluate_outputs(run.card, outputs, watch.y)["accuracy"]
