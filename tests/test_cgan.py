"""The conditional GAN end to end: the `digits:` source and its bad input, requests whose noise is a
function of their seed, the reader that scores a generator reading real digits as written, a run
that trains through the shared step with both losses on the curves and a grid of samples per
epoch, and `edgekit run ... --source digits:0123456789 --save grid.png --seed N` on an exported
file with no TensorFlow. The full training run to the read-back bar (minutes) is `slow`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.errors import SourceError

runner = CliRunner()


def cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def edgekit(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The CLI in a process of its own (a device's, with no TensorFlow imported)."""
    return subprocess.run(
        [sys.executable, "-m", "edgekit.cli", *args], capture_output=True, text=True, timeout=timeout
    )


# ---- runtime (numpy only) --------------------------------------------------------------------------


@pytest.mark.runtime_only
def test_the_digits_source_gives_one_request_per_digit_and_refuses_the_rest():
    from edgekit.runtime.inputs.labels import Request
    from edgekit.runtime.sources import open_source, source_kind

    assert source_kind("digits:0123456789").produces == "labels"
    with open_source("digits:0123456789") as source:
        items = list(source)
    assert [i.data for i in items] == [Request(d, d) for d in range(10)]
    assert source.tiles  # --save grid.png tiles the run's images
    with pytest.raises(
        SourceError, match=r"'digits:x' holds 'x': give the digits to generate, such as digits:0123456789"
    ):
        open_source("digits:x")
    with pytest.raises(SourceError, match="names no digit"):
        open_source("digits:")


@pytest.mark.runtime_only
def test_a_requests_noise_is_a_function_of_its_seed():
    from edgekit.runtime.features import features
    from edgekit.runtime.inputs.labels import Request

    preprocess = {"kind": "labels", "latent": 8, "classes": 10}
    x = features(preprocess, [Request(3, 5), Request(3, 5), Request(3, 6), Request(9, 5)])
    assert x.shape == (4, 18) and x.dtype == np.float32
    assert np.array_equal(x[0], x[1]) and not np.array_equal(x[0, :8], x[2, :8])
    assert np.array_equal(x[0, :8], x[3, :8])  # the same seed, the same noise, whatever the digit
    assert x[0, 8 + 3] == 1 and x[3, 8 + 9] == 1 and x[:, 8:].sum() == 4


@pytest.mark.runtime_only
def test_the_reader_is_the_projects_mnist_cnn_and_reads_real_digits_as_written():
    from edgekit.runtime.datasets import load_dataset
    from edgekit.runtime.files import read_card
    from edgekit.runtime.tasks.generate import READER, readback_scores
    from edgekit.runtime.tasks.generate import Generate as task

    card = read_card(READER)
    assert card.recipe == "mnist-cnn" and card.quantization == "int8" and card.dataset["source"] == "shipped"
    assert card.metrics["heldout_accuracy"] > 0.97 and card.parity["passed"]
    held = load_dataset("mnist", "shipped").heldout
    pick = np.arange(0, len(held), 5)  # 200 digits, 20 of each
    as_generated = held.x[pick].astype(np.float32) / 127.5 - 1.0  # tanh's range
    generator = type("Card", (), {"labels": tuple("0123456789"), "postprocess": {"activation": "tanh"}})
    scores = readback_scores(generator, as_generated, held.y[pick])
    assert scores["readback"] >= 0.95 and scores["readback_worst_class"] >= 0.8
    assert task.headline_bar == 3.0  # a quantized generator may lose 3 points of it


# ---- a tiny cGAN run, its files, and generation on a device ---------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A tiny cGAN (8 filters) trained two epochs on 256 digits, exported to int8 TFLite."""
    from edgekit.models.train import train

    folder = tmp_path_factory.mktemp("cgan")
    train("cgan-mnist", folder, hparams={"filters": 8}, epochs=2, limit=256, quiet=True)
    result = cli(
        "export", folder / "model.keras", "--to", "tflite", "--quantize", "int8", "--max-drop", "100"
    )
    assert result.exit_code == 0, result.output
    return folder


def test_a_run_trains_through_the_shared_step_and_keeps_the_generator_alone(run):
    from edgekit.card import ModelCard
    from edgekit.tfutil import import_tf

    history = json.loads((run / "history.json").read_text())
    assert {"d_loss", "g_loss", "val_d_loss", "val_g_loss"} <= set(history)
    assert len(history["d_loss"]) == 2 and all(np.isfinite(history["g_loss"]))
    # each epoch's samples read back on requests of their own: the best epoch is the one kept
    assert len(history["sample_readback"]) == 2 and all(0.0 <= r <= 1.0 for r in history["sample_readback"])
    # a grid of the same 100 requests after each epoch: ten digits across, ten noises down
    grids = sorted(p.name for p in (run / "samples").iterdir())
    assert grids == ["epoch-01.png", "epoch-02.png"]
    import cv2

    assert cv2.imread(str(run / "samples" / "epoch-02.png"), cv2.IMREAD_GRAYSCALE).shape == (560, 560)
    card = ModelCard.load(run / "card.json")
    assert (
        card.task == "generate" and card.input.shape == (None, 74) and card.output.shape == (None, 28, 28, 1)
    )
    assert card.preprocess == {"kind": "labels", "latent": 64, "classes": 10}
    assert 0.0 <= card.metrics["heldout_readback"] <= 1.0 and np.isfinite(card.metrics["heldout_loss"])
    _, keras = import_tf()
    model = keras.saving.load_model(run / "model.keras", compile=False)
    assert model.layers[-1].name == "pixels"  # the generator's last layer: no discriminator
    assert len(model.inputs) == 1


def test_a_gan_run_cannot_be_resumed_and_says_so():
    """What its own train step keeps (the discriminator) is not in an epoch's backup: a resumed run
    would not be the run that was interrupted, so it is refused in one sentence."""
    from edgekit.errors import ConfigError
    from edgekit.models.recipe import get_recipe
    from edgekit.models.step import Step
    from edgekit.runtime.datasets import load_dataset

    step = Step.of(get_recipe("cgan-mnist"), load_dataset("mnist-gan"), epochs=2)
    with pytest.raises(ConfigError, match="cgan-mnist run cannot be resumed: .* pass --force to start over"):
        step.fit(None, None, [], first=1)


def test_generate_saves_a_seeded_grid_of_the_digits_asked_for(run, tmp_path):
    import cv2

    model = run / "model_int8.tflite"
    grid = tmp_path / "grid.png"
    proc = edgekit(
        "run", str(model), "--source", "digits:0123456789", "--save", str(grid), "--seed", "7", "--json"
    )
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line)["results"][0] for line in proc.stdout.splitlines() if '"results"' in line]
    assert [r["label"] for r in results] == list("0123456789")
    assert results[3] == {
        "event": "generated",
        "index": 3,
        "label": "3",
        "seed": [7, 3],
        "shape": [28, 28, 1],
    }
    image = cv2.imread(str(grid))
    assert image.shape == (56, 560, 3) and image.std() > 0
    again = tmp_path / "again.png"
    assert (
        edgekit(
            "run", str(model), "--source", "digits:0123456789", "--save", str(again), "--seed", "7"
        ).returncode
        == 0
    )
    assert np.array_equal(cv2.imread(str(again)), image)  # the same seed, the same digits
    other = tmp_path / "other.png"
    assert (
        edgekit(
            "run", str(model), "--source", "digits:0123456789", "--save", str(other), "--seed", "8"
        ).returncode
        == 0
    )
    assert not np.array_equal(cv2.imread(str(other)), image)
    # twelve digits: two rows of the grid
    assert (
        edgekit(
            "run", str(model), "--source", "digits:777777777777", "--save", str(tmp_path / "sevens.png")
        ).returncode
        == 0
    )
    assert cv2.imread(str(tmp_path / "sevens.png")).shape == (112, 560, 3)


def test_bad_generation_requests_are_one_sentence(run, tmp_path):
    model = run / "model_int8.tflite"
    proc = edgekit("run", str(model), "--source", "digits:x")
    assert proc.returncode == 1 and "'digits:x' holds 'x': give the digits to generate" in proc.stderr
    assert "Traceback" not in proc.stderr
    text = edgekit("run", str(model), "--text", "a three please")
    assert text.returncode == 1 and "takes labels" in text.stderr and "Traceback" not in text.stderr
    assert not (tmp_path / "grid.png").exists()


# ---- the full run (many minutes) -------------------------------------------------------------------


@pytest.mark.slow
def test_the_trained_generator_makes_digits_its_reader_reads_and_int8_keeps_them(tmp_path):
    """TF-GAN's classifier-based check: the project's MNIST CNN reads the digit asked for in at least
    90% of the generated samples, and every quantized file keeps that within 3 points."""
    from edgekit.models.train import train

    result = train("cgan-mnist", tmp_path, quiet=True)
    assert result.card.metrics["heldout_readback"] >= 0.9
    report = tmp_path / "report.json"
    proc = cli("export", tmp_path / "model.keras", "--to", "all", "--report", report)
    assert proc.exit_code == 0, proc.output
    for artifact in json.loads(report.read_text())["artifacts"]:
        parity = artifact["report"]
        assert artifact["written"] and parity["passed"], artifact
        assert parity["readback"] >= 0.87 and parity["readback_delta_points"] >= -3.0
