"""Everyday use (issue 15): a copied model file carries its card, exports go where asked, any Keras
model converts, exit codes, quickstart reruns."""

from __future__ import annotations

import shutil
import zipfile

from typer.testing import CliRunner

from edgekit.cli import app

runner = CliRunner()


def cli(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


# ---- 1. a copied .keras file exports alone ------------------------------------------------------


def test_trained_keras_file_carries_its_card(trained, tmp_path):
    from edgekit.runtime.backends.keras import CARD_ENTRY, load_keras_model, read_keras_card

    with zipfile.ZipFile(trained) as z:
        assert CARD_ENTRY in z.namelist()
    alone = tmp_path / "copied" / "digits.keras"
    alone.parent.mkdir()
    shutil.copy(trained, alone)  # the file only, no card.json beside it
    card = read_keras_card(alone)
    assert card is not None and card.recipe == "mnist-cnn"
    assert load_keras_model(alone).output_shape == (None, 10)  # Keras ignores the extra entry

    result = cli("export", alone, "--to", "onnx")
    assert result.exit_code == 0, result.output
    assert (alone.parent / "digits.onnx").exists()


def test_card_beside_the_file_wins(trained, tmp_path):
    from edgekit.card import ModelCard
    from edgekit.runtime.backends.keras import read_keras_card

    copy = tmp_path / "model.keras"
    shutil.copy(trained, copy)
    beside = ModelCard.load(trained.with_name("card.json"))
    edited = beside.replace(labels=tuple(f"d{i}" for i in range(10)))
    (tmp_path / "card.json").write_text(edited.to_json())
    assert read_keras_card(copy).labels[0] == "d0"


# ---- 2. --out takes a folder for many files, a file name for one -------------------------------


def test_out_folder_for_one_file(trained, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    result = cli("export", trained, "--to", "onnx", "--out", folder)
    assert result.exit_code == 0, result.output
    assert (folder / "model.onnx").exists()


def test_out_file_name_with_to_all_is_refused(trained, tmp_path):
    result = cli("export", trained, "--to", "all", "--out", tmp_path / "m.tflite")
    assert result.exit_code == 1
    assert "give a folder" in result.stderr and not (tmp_path / "m.tflite").exists()
