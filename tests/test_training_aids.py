"""Training aids through the real training loop: resume after a kill, --set, --strategy, .h5,
the confusion matrix, the best checkpoint and `edgekit evaluate`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from edgekit.cli import app

runner = CliRunner()
EDGEKIT = [sys.executable, "-m", "edgekit.cli"]


def cli(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.runtime_only
def test_unknown_hyper_parameter_is_one_sentence(tmp_path):
    r = cli("train", "mnist-mlp-small", "--set", "widht=3", "--out", tmp_path / "run", "--epochs", "1")
    assert r.exit_code == 1
    assert "has no hyper-parameter 'widht'" in r.stderr and "Traceback" not in r.output
    r = cli("train", "mnist-mlp-small", "--set", "nonsense", "--out", tmp_path / "run")
    assert r.exit_code == 1 and "NAME=VALUE" in r.stderr


def test_hyper_parameters_override_the_recipe(tmp_path):
    r = cli(
        "train", "mnist-mlp", "--set", "dropout=0.5", "--epochs", "1", "--limit", "300", "--out", tmp_path
    )
    assert r.exit_code == 0, r.output
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["hparams"]["dropout"] == 0.5


def test_a_killed_run_resumes_to_the_weights_of_a_run_never_killed(tmp_path):
    """Kill at the end of epoch 2, resume: the same weights, bit for bit, as one uninterrupted run
    with the same --seed (mnist-mlp has dropout, so the per-epoch randomness is restored too)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

    def args(out):
        return ["train", "mnist-mlp", "--epochs", "4", "--limit", "600", "--seed", "3", "--out", str(out)]

    whole, out = tmp_path / "whole", tmp_path / "run"
    subprocess.run([*EDGEKIT, *args(whole)], check=True, capture_output=True, env=env)
    proc = subprocess.Popen([*EDGEKIT, *args(out)], stderr=subprocess.PIPE, text=True, env=env)
    for line in proc.stderr:  # kill it as soon as the second epoch has finished
        if line.startswith("epoch 2/4"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert (out / ".backup").is_dir() and not (out / "model.keras").exists()

    again = subprocess.run([*EDGEKIT, *args(out)], capture_output=True, text=True, env=env)
    assert again.returncode == 1 and "holds an interrupted run: pass --resume" in again.stderr
    other_seed = [*args(out)[:-4], "--out", str(out), "--resume"]  # without --seed: seed 0
    refused = subprocess.run([*EDGEKIT, *other_seed], capture_output=True, text=True, env=env)
    assert refused.returncode == 1 and "--seed 3" in refused.stderr and "Traceback" not in refused.stderr

    resumed = subprocess.run([*EDGEKIT, *args(out), "--resume"], capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stderr
    # the resumed fit ran only the epochs left; its first line is the epoch after the last backup
    first = next(line for line in resumed.stderr.splitlines() if line.startswith("epoch "))
    assert first.startswith(("epoch 2/4", "epoch 3/4"))
    history = json.loads((out / "history.json").read_text())
    assert history["loss"] == json.loads((whole / "history.json").read_text())["loss"]
    card = json.loads((out / "card.json").read_text())
    assert card["metrics"]["resumed"] is True
    assert card["metrics"]["heldout_accuracy"] == json.loads((whole / "card.json").read_text())["metrics"]["heldout_accuracy"]
    assert not (out / ".backup").exists()
    import keras

    a, b = (keras.saving.load_model(d / "model.keras", compile=False).get_weights() for d in (whole, out))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))

    nothing = cli("train", "mnist-mlp-small", "--resume", "--out", tmp_path / "fresh")
    assert nothing.exit_code == 1 and "no interrupted run" in nothing.stderr


def test_mirrored_strategy_over_two_logical_cpu_devices(tmp_path):
    """MirroredStrategy really splits each batch over two replicas (two logical CPUs, as a user
    without GPUs would configure them), and the model still learns."""
    code = f"""
import json, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from edgekit.models.train import train
r = train("mnist-mlp-small", {str(tmp_path)!r}, data="shipped", epochs=2, limit=1000, quiet=True,
          strategy="mirrored")
print(json.dumps({{"replicas": r.card.hparams["replicas"], "acc": r.card.metrics["heldout_accuracy"]}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["replicas"] == 2 and got["acc"] > 0.8


def test_multiworker_strategy_reads_tf_config(tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    r = cli("train", "mnist-mlp-small", "--strategy", "multiworker", "--out", tmp_path / "a")
    assert r.exit_code == 1 and "TF_CONFIG" in r.stderr and "Traceback" not in r.output
    monkeypatch.setenv("TF_CONFIG", "{not json")
    r = cli("train", "mnist-mlp-small", "--strategy", "multiworker", "--out", tmp_path / "b")
    assert r.exit_code == 1 and "TF_CONFIG is not valid JSON" in r.stderr
    r = cli("train", "mnist-mlp-small", "--strategy", "bogus", "--out", tmp_path / "c")
    assert r.exit_code == 1 and "unknown strategy" in r.stderr


def test_h5_save_reload_export_and_evaluate(tmp_path):
    r = cli(
        "train", "mnist-mlp-small", "--format", "h5", "--epochs", "2", "--limit", "1000", "--out", tmp_path
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / "model.h5").is_file() and not (tmp_path / "model.keras").exists()
    assert (tmp_path / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    r = cli("export", tmp_path / "model.h5", "--to", "tflite", "--quantize", "int8")
    assert r.exit_code == 0, r.output
    tflite = next(tmp_path.glob("*.tflite"))
    r = cli("evaluate", tflite, "--json", "--confusion", tmp_path / "c.png")
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    card = json.loads((tmp_path / "card.json").read_text())
    assert got["samples"] == 1000 and got["task"] == "classify-image"
    # the int8 file on the same 1,000 held-out digits: within a point of the Keras model
    assert abs(got["metrics"]["accuracy"] - card["metrics"]["heldout_accuracy"]) <= 0.01
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    r = cli("evaluate", tmp_path / "model.h5", "--limit", "200")
    assert r.exit_code == 0 and "accuracy" in r.stdout and "200 samples" in r.stdout


@pytest.mark.runtime_only
def test_confusion_matrix_counts():
    from edgekit.plots import confusion_matrix

    m = confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), 3)
    assert m.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]


@pytest.mark.runtime_only
def test_evaluate_bad_input(tmp_path):
    r = cli("evaluate", tmp_path / "missing.tflite")
    assert r.exit_code == 1 and "Traceback" not in r.output
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    r = cli("evaluate", bad)
    assert r.exit_code == 1 and "Traceback" not in r.output


def test_plateau_schedule_watches_a_training_slice_and_keeps_the_best_epoch(tmp_path):
    from recipe_data import made_up_dataset

    from edgekit.models.recipe import get_recipe
    from edgekit.models.train import train

    assert get_recipe("cifar10-cnn").training.schedule == "plateau"
    result = train("cifar10-cnn", tmp_path, dataset=made_up_dataset("cifar10-cnn", 40), epochs=2, quiet=True)
    assert (tmp_path / "best.keras").is_file()
    assert "val_loss" in result.history and "not held-out" in result.card.hparams["validation"]
