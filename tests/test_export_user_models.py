"""Models a user brings (.keras, .h5, SavedModel) with no edgekit card, RNNs, and requests refused
before any work: real Keras models, real converters, real runtimes."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import run_python
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.export.base import Quantization, targets
from edgekit.models.recipe import get_recipe, recipe_names
from edgekit.runtime.files import read_card
from edgekit.runtime.inputs import input_kind_names

runner = CliRunner()


def _keras():
    from edgekit.tfutil import import_tf

    return import_tf()[1]


def register_scale_layer():
    """A custom layer class, registered the way a user registers theirs."""
    keras = _keras()

    @keras.saving.register_keras_serializable(package="user", name="LearnedScale")
    class LearnedScale(keras.layers.Layer):
        def build(self, input_shape):
            self.gain = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="gain")

        def call(self, x):
            return x * self.gain

    return LearnedScale


@pytest.fixture(scope="module")
def functional_model(tmp_path_factory) -> Path:
    """A two-branch functional model with user-chosen layer names and a custom layer class. One name
    has spaces: Keras builds and runs it eagerly, but TensorFlow's name scopes refuse it in every traced
    graph (fit, predict, SavedModel, tf2onnx), so its weights are the initial ones."""
    keras = _keras()
    layers = keras.layers
    scale = register_scale_layer()
    inputs = keras.Input((12, 12, 1), name="pixels")
    a = layers.Conv2D(4, 3, activation="relu", name="Branch A (3x3)")(inputs)
    a = layers.GlobalAveragePooling2D(name="pool_a")(a)
    b = layers.Conv2D(4, 5, padding="same", activation="relu", name="branch-b.5x5")(inputs)
    b = layers.GlobalMaxPooling2D(name="pool_b")(b)
    x = layers.Concatenate(name="merge")([a, b])
    x = scale(name="my scale")(x)
    outputs = layers.Dense(3, activation="softmax", name="head")(x)
    model = keras.Model(inputs, outputs, name="user_net")
    folder = tmp_path_factory.mktemp("user")
    model.save(folder / "net.keras")
    model.save(folder / "net.h5")
    return folder / "net.keras"


def test_functional_model_with_custom_names_exports_with_task_and_labels(functional_model, tmp_path):
    out = tmp_path / "net.tflite"
    result = runner.invoke(
        app,
        [
            "export",
            str(functional_model),
            "--task",
            "classify-image",
            "--labels",
            "cat,dog,fox",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    card = read_card(out)
    assert card.task == "classify-image" and card.labels == ("cat", "dog", "fox")
    assert card.preprocess["size"] == [12, 12] and card.preprocess["channels"] == 1
    assert card.preprocess["scale"] == pytest.approx(1 / 255) and card.postprocess["activation"] == "softmax"
    report = card.parity
    assert report["passed"] and not report["labelled"] and report["max_abs_diff"] < 1e-4
    assert "generated" in report["data"] and "accuracy" not in report
    assert "100 generated inputs, no labels" in result.stdout


def test_h5_model_with_an_image_folder_of_another_size_is_calibrated_and_scored(functional_model, tmp_path):
    """--data: class folders of 20x20 colour PNGs for a 12x12 grayscale model are resized and converted
    the way the runtime does it; the classes name the labels; int8 is calibrated on them."""
    import cv2

    rng = np.random.default_rng(1)
    for name in ("cat", "dog", "fox"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(6):
            cv2.imwrite(
                str(tmp_path / "data" / name / f"{i}.png"), rng.integers(0, 256, (20, 20, 3), np.uint8)
            )
    h5 = functional_model.with_suffix(".h5")
    report = tmp_path / "report.json"
    result = runner.invoke(
        app,
        [
            "export", str(h5), "--task", "classify-image", "--to", "onnx", "--quantize", "int8",
            "--data", str(tmp_path / "data"), "--normalize", "-1..1", "--out", str(tmp_path / "n.onnx"),
            "--report", str(report), "--max-drop", "100",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    card = read_card(tmp_path / "n.onnx")
    assert card.labels == ("cat", "dog", "fox") and card.preprocess["offset"] == -1.0
    assert card.parity["labelled"] and card.parity["samples"] == 3 and "accuracy_keras" in card.parity
    doc = json.loads(report.read_text())
    (entry,) = doc["artifacts"]
    assert entry["written"] and entry["report"] == card.parity and entry["quantization"] == "int8"


def test_saved_model_folder_exports(tmp_path):
    keras = _keras()
    layers = keras.layers
    inputs = keras.Input((8, 8, 3))
    x = layers.Flatten()(layers.Conv2D(2, 3, activation="relu")(inputs))
    model = keras.Model(inputs, layers.Dense(2, activation="softmax")(x))
    model.export(tmp_path / "sm", verbose=False)
    result = runner.invoke(
        app, ["export", str(tmp_path / "sm"), "--task", "classify-image", "--to", "onnx", "--unsafe"]
    )
    assert result.exit_code == 0, result.output
    card = read_card(tmp_path / "sm.onnx")
    assert card.labels == ("0", "1") and card.parity["passed"] and card.parity["max_abs_diff"] < 1e-4


def test_a_model_without_card_or_task_exports_as_tensors_and_says_how_to_add_a_task(
    functional_model, tmp_path
):
    result = runner.invoke(app, ["export", str(functional_model), "--out", str(tmp_path / "x.tflite")])
    assert result.exit_code == 0, result.output
    assert "as a tensor model" in result.stderr and "--task" in result.stderr
    assert read_card(tmp_path / "x.tflite").task == "tensor"


def test_int8_without_data_is_refused_before_tensorflow_is_imported(functional_model, tmp_path):
    code = f"""
import sys
from pathlib import Path
from edgekit.errors import UnsupportedError
from edgekit.export.api import plan_export
from edgekit.export.describe import CardHints
try:
    plan_export(Path({str(functional_model)!r}), "tflite", "int8", out=Path({str(tmp_path / "q.tflite")!r}),
                hints=CardHints(task="classify-image"))
except UnsupportedError as e:
    print("refused:", e)
print("tensorflow imported:", "tensorflow" in sys.modules)
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert (
        "refused: tflite int8 is calibrated on real samples" in proc.stdout and "pass --data" in proc.stdout
    )
    assert "tensorflow imported: False" in proc.stdout


def test_npz_of_the_wrong_shape_names_both_shapes(functional_model, tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((10, 28, 28, 3), np.uint8), y=np.zeros(10, np.int64))
    out = tmp_path / "x.tflite"
    result = runner.invoke(
        app,
        ["export", str(functional_model), "--task", "classify-image", "--data", str(tmp_path / "d.npz"),
         "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "holds images of shape 28x28x3 but the model takes 12x12x1" in result.output
    assert not out.exists() and not list(tmp_path.glob(".x.tflite*"))


def test_lambda_layer_is_refused_in_safe_mode_and_exported_with_unsafe(tmp_path):
    keras = _keras()
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(x)))
    model.save(tmp_path / "lam.keras")
    args = ["export", str(tmp_path / "lam.keras"), "--task", "classify-image", "--to", "onnx"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert (
        "contains a Lambda layer, which runs arbitrary code: pass --unsafe if you trust it" in refused.output
    )
    assert not (tmp_path / "lam.onnx").exists()
    ok = runner.invoke(app, [*args, "--unsafe"])
    assert ok.exit_code == 0, ok.output
    assert read_card(tmp_path / "lam.onnx").parity["passed"]


def test_corrupt_keras_file_is_one_sentence(tmp_path):
    bad = tmp_path / "broken.keras"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("config.json", "{not json")
    (tmp_path / "card.json").write_text("{}")
    result = runner.invoke(app, ["export", str(bad), "--to", "onnx"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "broken.keras is not a Keras model edgekit can load" in result.output
    truncated = tmp_path / "cut.keras"
    truncated.write_bytes(b"PK\x03\x04 this is not a zip")
    result = runner.invoke(app, ["export", str(truncated), "--to", "onnx", "--task", "classify-image"])
    assert result.exit_code == 1 and "cut.keras is not a Keras model edgekit can load" in result.output
    assert not list(tmp_path.glob("*.onnx"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "coreml"], "unknown export format 'coreml'"),
        (["--quantize", "int4"], "unknown quantization 'int4'"),
        (["--opset", "7"], "--opset 7 is not supported: use 13 to 18"),
        (["--normalize", "0..255"], "unknown --normalize '0..255'"),
    ],
)
def test_unknown_format_mode_or_option_is_one_sentence(functional_model, args, message):
    result = runner.invoke(app, ["export", str(functional_model), "--task", "classify-image", *args])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert message in result.output


def test_unwritable_output_or_report_is_refused_before_any_work(functional_model, tmp_path):
    """A path under a regular file cannot be written by anyone (root included, who ignores modes)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    base = ["export", str(functional_model), "--task", "classify-image"]
    for extra in (["--out", str(blocker / "m.tflite")], ["--report", str(blocker / "r.json")]):
        result = runner.invoke(app, [*base, *extra, "--force"])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert f"cannot write to {blocker}: the folder is not writable" in result.output
    assert blocker.read_text() == "x" and not functional_model.with_suffix(".tflite").exists()


# ---- recurrent models ----------------------------------------------------------------------------


def _rnn_model(path: Path, cell: str) -> Path:
    """An RNN over the 12 rows of a 12x12 image (the course's "MNIST with an LSTM"), trained a step."""
    keras = _keras()
    layers = keras.layers
    inputs = keras.Input((12, 12), name="rows")
    x = getattr(layers, cell)(8, name=f"my_{cell.lower()}")(inputs)
    model = keras.Model(inputs, layers.Dense(3, activation="softmax")(x))
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    model.fit(rng.random((32, 12, 12), dtype=np.float32), rng.integers(0, 3, 32), epochs=1, verbose=0)
    model.save(path)
    return path


def test_lstm_exports_to_tflite_builtins_unrolled_and_to_a_fused_onnx_lstm(tmp_path):
    from edgekit.runtime.files import ModelFile

    model = _rnn_model(tmp_path / "lstm.keras", "LSTM")
    rng = np.random.default_rng(2)
    np.savez(tmp_path / "d.npz", x=rng.integers(0, 256, (60, 12, 12), np.uint8), y=rng.integers(0, 3, 60))
    base = ["export", str(model), "--task", "classify-image", "--data", str(tmp_path / "d.npz")]
    for fmt, mode in (("tflite", "int8"), ("tflite", "fp32"), ("onnx", "fp32")):
        out = tmp_path / f"m_{mode}.{fmt}"
        result = runner.invoke(app, [*base, "--to", fmt, "--quantize", mode, "--out", str(out)])
        assert result.exit_code == 0, result.output
        card, ops = read_card(out), ModelFile.open(out).ops
        assert card.parity["passed"] and card.parity["labelled"] and ops.portable
        if fmt == "tflite":
            # unrolled: one FULLY_CONNECTED pair per time step, no WHILE loop, no TensorList/Flex op
            assert "WHILE" not in ops.ops and ops.ops["FULLY_CONNECTED"] >= 24
            assert not any("TensorList" in op for op in ops.ops)
        else:
            assert ops.ops.get("LSTM") == 1
        if mode == "fp32":
            assert card.parity["max_abs_diff"] < 1e-4 and card.parity["top1_agreement"] == 1.0


def test_impossible_pairs_are_refused_before_tensorflow_is_imported(tmp_path):
    """GRU + ONNX dynamic and any RNN + TFLite with a dynamic batch fail in the converters (see
    export/limits.py); they are refused from the file's own config, naming what works instead."""
    gru = _rnn_model(tmp_path / "gru.keras", "GRU")
    code = f"""
import sys
from pathlib import Path
from edgekit.errors import UnsupportedError
from edgekit.export.api import plan_export
from edgekit.export.describe import CardHints
hints = CardHints(task="classify-image")
for fmt, mode, batch in (("onnx", "dynamic", None), ("tflite", "fp32", "dynamic")):
    try:
        plan_export(Path({str(gru)!r}), fmt, mode, out=Path({str(tmp_path)!r}) / f"x.{{fmt}}", batch=batch,
                    hints=hints, data="d.npz")
        print("planned", fmt, mode)
    except UnsupportedError as e:
        print("refused:", e)
plan_export(Path({str(gru)!r}), "onnx", "int8", out=Path({str(tmp_path)!r}) / "ok.onnx", hints=hints,
            data="d.npz")
print("tensorflow imported:", "tensorflow" in sys.modules)
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("refused: onnx dynamic cannot export a model with GRU: tf2onnx makes")
    works = ", ".join(str(t) for t in targets() if str(t) != "onnx dynamic")
    assert f"use {works}" in lines[0]  # every other target of the registry
    assert lines[1].startswith("refused: tflite fp32 cannot export a model with GRU: a Keras 3 RNN")
    assert "(or --batch 1, the TFLite default)" in lines[1]
    assert lines[-1] == "tensorflow imported: False"


def test_to_all_skips_the_pairs_a_model_cannot_do_and_reports_every_artifact(tmp_path):
    gru = _rnn_model(tmp_path / "gru.keras", "GRU")
    report = tmp_path / "all.json"
    result = runner.invoke(
        app, ["export", str(gru), "--task", "classify-image", "--to", "all", "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    assert "skip: onnx dynamic cannot export a model with GRU" in result.stderr
    assert "skip: tflite int8 is calibrated on real samples" in result.stderr  # no --data
    doc = json.loads(report.read_text())
    written = {(a["format"], a["quantization"]) for a in doc["artifacts"] if a["written"]}
    # every target but int8 (nothing to calibrate on) and the one GRU pair in export/limits.py
    assert written == {
        (t.format, t.quantization.value) for t in targets() if t.quantization is not Quantization.INT8
    } - {("onnx", "dynamic")}
    for a in doc["artifacts"]:
        if a["written"]:
            assert read_card(Path(a["path"])).parity == a["report"]
    assert f"{len(written)} of {len(written)} artifacts written" in result.stderr


# ---- a model of every input kind, with its card and no data ------------------------------------


# the kinds a recipe reads (`tensor`, a model with no recipe, is tested in test_everyday.py)
RECIPE_KINDS = {get_recipe(r).input.preprocess.get("kind", "image") for r in recipe_names()}


@pytest.mark.parametrize("kind", [k for k in input_kind_names() if k in RECIPE_KINDS])
def test_a_model_with_its_card_and_no_data_exports_on_generated_inputs(kind, tmp_path):
    """A user's text, audio or image model with its edgekit card but no dataset and no --data:
    every float target is validated against Keras on inputs its kind generates (int8, which needs
    real samples to calibrate on, is refused before any work)."""
    from recipe_data import kind_example

    from edgekit.export.api import export_all
    from edgekit.models.train import make_card

    recipe, hparams, preprocess, data = kind_example(kind, tiny=True)
    model = recipe.build_for(preprocess, len(data.labels), **hparams)
    card = make_card(recipe, model, data, hparams, {}, preprocess).replace(recipe="", dataset={})
    path = tmp_path / "mine.keras"
    model.save(path)
    (tmp_path / "card.json").write_text(card.to_json(indent=2))
    outcomes = export_all(path, keras_model=model)
    assert {str(o.target) for o in outcomes if o.skipped} == {
        str(t) for t in targets() if t.quantization is Quantization.INT8
    }
    assert all("calibrated on real samples" in str(o.error) for o in outcomes if o.skipped)
    for o in outcomes:
        if not o.skipped:
            assert o.written, o.error
            report = read_card(o.result.path).parity
            assert report["passed"] and not report["labelled"] and report["samples"] == 100
            assert f"generated {kind} inputs" in report["data"]
