"""Everyday use (issue 15): a copied model file carries its card, exports go where asked, any Keras
model converts, exit codes, quickstart reruns."""

from __future__ import annotations

import shutil
import zipfile

import numpy as np
import pytest
from typer.testing import CliRunner

from edgekit.cli import app

runner = CliRunner()


def cli(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


# ---- 1. a copied .keras file exports alone ------------------------------------------------------


def test_trained_keras_file_carries_its_card(trained, tmp_path):
    from edgekit.runtime.files import read_card
    from edgekit.runtime.files.keras import CARD_ENTRY, load_keras_model

    with zipfile.ZipFile(trained) as z:
        assert CARD_ENTRY in z.namelist()
    alone = tmp_path / "copied" / "digits.keras"
    alone.parent.mkdir()
    shutil.copy(trained, alone)  # the file only, no card.json beside it
    card = read_card(alone)
    assert card is not None and card.recipe == "mnist-cnn"
    assert load_keras_model(alone).output_shape == (None, 10)  # Keras ignores the extra entry

    result = cli("export", alone, "--to", "onnx")
    assert result.exit_code == 0, result.output
    assert (alone.parent / "digits.onnx").exists()


def test_card_beside_the_file_wins(trained, tmp_path):
    from edgekit.card import ModelCard
    from edgekit.runtime.files import read_card

    copy = tmp_path / "model.keras"
    shutil.copy(trained, copy)
    beside = ModelCard.load(trained.with_name("card.json"))
    edited = beside.replace(labels=tuple(f"d{i}" for i in range(10)))
    (tmp_path / "card.json").write_text(edited.to_json())
    assert read_card(copy).labels[0] == "d0"


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


# ---- 3. any Keras model converts, as a plain tensor model ---------------------------------------


def _keras():
    from edgekit.tfutil import import_tf

    return import_tf()[1]


def gru_model():
    keras = _keras()
    i = keras.Input((20, 8))
    return keras.Model(i, keras.layers.Dense(3)(keras.layers.GRU(16)(i)))


def conv1d_model():
    keras = _keras()
    i = keras.Input((50,), dtype="int32")
    x = keras.layers.Conv1D(16, 3, activation="relu")(keras.layers.Embedding(1000, 16)(i))
    return keras.Model(i, keras.layers.Dense(2, activation="sigmoid")(keras.layers.GlobalMaxPooling1D()(x)))


def small_mobilenet():
    """MobileNetV2's pieces (strided conv, BN, ReLU6, depthwise, residual add), no labels."""
    keras = _keras()
    i = keras.Input((32, 32, 3))
    x = keras.layers.ReLU(6.0)(keras.layers.BatchNormalization()(keras.layers.Conv2D(8, 3, 2, "same")(i)))
    y = keras.layers.Conv2D(8, 1)(keras.layers.DepthwiseConv2D(3, padding="same")(x))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Add()([x, y]))
    return keras.Model(i, keras.layers.Dense(5, activation="softmax")(x))


def test_gru_converts_with_no_card_and_no_task(tmp_path):
    from edgekit.card import ModelCard
    from edgekit.runtime.files import read_card
    from edgekit.runtime.predictor import Predictor

    path = tmp_path / "sensor.keras"
    model = gru_model()
    model.save(path)
    for fmt in ("tflite", "onnx"):
        result = cli("export", path, "--to", fmt)
        assert result.exit_code == 0, result.output
        assert "generated inputs" in result.output
    card: ModelCard = read_card(tmp_path / "sensor.tflite")
    assert card.task == "tensor" and list(card.input.shape) == [None, 20, 8]
    window = np.random.default_rng(1).normal(size=(1, 20, 8)).astype(np.float32)
    with Predictor(tmp_path / "sensor.onnx") as predictor:
        (out,) = predictor(window).results
    np.testing.assert_allclose(out.value, np.asarray(model(window)), atol=1e-4)


def test_token_id_model_int8_from_npz(tmp_path):
    from edgekit.runtime.files import read_card

    path = tmp_path / "text.keras"
    conv1d_model().save(path)
    ids = np.random.default_rng(0).integers(0, 1000, (80, 50)).astype(np.int32)
    np.savez(tmp_path / "ids.npz", ids)  # by position: arr_0
    result = cli("export", path, "--to", "tflite", "--quantize", "int8", "--data", tmp_path / "ids.npz")
    assert result.exit_code == 0, result.output
    assert "on 80 samples of --data" in result.output
    card = read_card(tmp_path / "text_int8.tflite")
    assert card.input.dtype == "int32" and card.preprocess["sample"]["range"] == [0, 999]
    assert card.parity["max_abs_diff"] < 0.05


def test_int8_of_a_tensor_model_needs_data(tmp_path):
    path = tmp_path / "backbone.keras"
    small_mobilenet().save(path)
    result = cli("export", path, "--to", "onnx", "--quantize", "int8")
    assert result.exit_code == 1 and "an .npz of its input arrays" in result.stderr


def test_wrong_npz_shape_is_one_sentence(tmp_path):
    path = tmp_path / "sensor.keras"
    gru_model().save(path)
    np.savez(tmp_path / "bad.npz", x=np.zeros((10, 8, 20), np.float32))
    result = cli("export", path, "--to", "onnx", "--data", tmp_path / "bad.npz")
    assert result.exit_code == 1 and "the model takes 20x8" in result.stderr


def test_to_all_out_folder_with_a_backbone(tmp_path):
    """--to all --out DIR: every artifact in DIR (made on first use), int8 calibrated on --data."""
    path = tmp_path / "backbone.keras"
    small_mobilenet().save(path)
    np.savez(tmp_path / "x.npz", input=np.random.default_rng(0).uniform(-1, 1, (40, 32, 32, 3)).astype("f4"))
    out = tmp_path / "artifacts"
    result = cli("export", path, "--to", "all", "--out", out, "--data", tmp_path / "x.npz")
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in out.iterdir())
    assert {"backbone_int8.tflite", "backbone_int8.onnx", "backbone.onnx"} <= set(written)
    assert not list(tmp_path.glob("backbone*.tflite"))  # nothing beside the model


# ---- 6. exit codes: 2 for usage (typer's), 1 for a user's error --------------------------------


@pytest.mark.runtime_only
def test_usage_errors_exit_2_and_user_errors_exit_1(tmp_path):
    missing_source = runner.invoke(app, ["run", str(tmp_path / "m.tflite")])
    assert missing_source.exit_code == 2 and "--source" in missing_source.output
    unknown_option = runner.invoke(app, ["info", "--no-such-flag", "x.tflite"])
    assert unknown_option.exit_code == 2
    missing_file = runner.invoke(app, ["run", str(tmp_path / "m.tflite"), "--source", str(tmp_path)])
    assert missing_file.exit_code == 1 and missing_file.stderr.startswith("error: ")
    assert "Traceback" not in missing_file.output


# ---- 9. small things a user sees ----------------------------------------------------------------


def test_training_curves_have_whole_epoch_ticks_and_say_held_out():
    from edgekit.plots import curves_figure

    history = {"loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.7, 0.5]}
    fig = curves_figure(history)
    fig.canvas.draw()
    (ax,) = fig.axes
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "held-out"]


@pytest.mark.runtime_only
def test_list_says_which_sources_work_here():
    result = cli("list")
    lines = [line for line in result.stdout.splitlines() if "works here:" in line]
    assert any(line.split()[0] == "image" and "works here: yes" in line for line in lines)
    assert len(lines) >= 8  # every source, each with its answer


def test_info_shows_an_int8_file_input_as_the_tensor_it_is(artifacts):
    path = artifacts[("tflite", "int8")]
    out = cli("info", path).stdout
    (line,) = [x for x in out.splitlines() if x.strip().startswith("input ")]
    assert "int8" in line and "[1, 28, 28, 1]" in line and "float32 values, quantized" in line


@pytest.mark.runtime_only
def test_text_runs_count_lines_not_frames():
    from edgekit.runtime.run_stats import RunSummary, describe_summary

    summary = RunSummary(3, 3, 0, 0, 0, 0.1, None, {"p50": None, "p99": None}, unit="lines")
    assert describe_summary(summary.to_dict()).startswith("3 lines in, 3 processed")
    assert RunSummary(3, 3, 0, 0, 0, 0.1, None, {"p50": None}).describe().startswith("3 frames in")


# ---- 5. the MNIST demo reads digits on paper ----------------------------------------------------


@pytest.mark.runtime_only
def test_mnist_preprocessing_leaves_mnist_digits_as_they_are(mnist):
    from edgekit.runtime.preprocess import ImageSpec, fit_image

    spec = ImageSpec((28, 28), 1, polarity="light-on-dark", crop="centre-of-mass")
    x = mnist.heldout.x[:200].reshape(-1, 28, 28, 1)
    out = np.stack([fit_image(d, spec) for d in x])
    np.testing.assert_array_equal(out, x)  # MNIST's own digits are in that form already: untouched


@pytest.mark.runtime_only
def testlight_ground_is_np_medians_answer_on_any_border():
    """The per-frame polarity test sorts the border instead of calling np.median (a tenth of the
    cost): the same answer on every frame shape, odd and even borders, and at the 127/128 edge."""
    from edgekit.runtime.preprocess import light_ground

    rng = np.random.default_rng(0)
    answers = []
    for i in range(3000):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        near = np.array([126, 127, 128, 129], np.uint8)
        g = rng.choice(near, (h, w)) if i % 2 else rng.integers(0, 256, (h, w)).astype(np.uint8)
        median = np.median(np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]]))
        assert light_ground(g) == (median > 127), (g.shape, median)
        answers.append(median > 127)
    assert 0.2 < np.mean(answers) < 0.8  # both answers were tested


@pytest.mark.runtime_only
def test_light_border_counts_the_border_that_light_ground_reads():
    """The classifier's per-frame test counts light border pixels on the frame's bytes: the count of
    the border `light_ground` gathers, on every frame shape, as H x W and H x W x 1, contiguous or
    not (a crop of a larger frame)."""
    from edgekit.runtime.preprocess import border_indices, light_border

    rng = np.random.default_rng(1)
    for _ in range(2000):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        big = rng.integers(0, 256, (h + 3, w + 5), dtype=np.uint8)
        for g in (big[:h, :w].copy(), big[1 : h + 1, 2 : w + 2], big[:h, :w, None].copy()):
            edge = np.ascontiguousarray(g).reshape(-1)[border_indices((h, w))]
            expected = int(np.count_nonzero(edge > 127))
            assert light_border(g) == expected, (g.shape, g.flags.c_contiguous)


def test_paper_digits_are_read_where_they_were_read_as_zero(trained, mnist):
    """A trained mnist-cnn reads photos of dark digits on light, unevenly lit paper (noise, blur,
    tilt). Without the card's polarity and crop, the same model reads almost none of them."""
    from paper_digits import paper_digits

    from edgekit.card import ModelCard
    from edgekit.runtime.predictor import Predictor

    card = ModelCard.load(trained.with_name("card.json"))
    assert card.preprocess["polarity"] == "light-on-dark" and card.preprocess["crop"] == "centre-of-mass"
    # six of each digit (the held-out split is ordered by class: its first 60 are all zeros)
    pick = np.concatenate([np.flatnonzero(mnist.heldout.y == c)[:6] for c in range(10)])
    photos, labels = paper_digits(mnist.heldout.x[pick]), mnist.heldout.y[pick]
    with Predictor(trained) as predictor:
        read = np.mean([predictor(p).results[0].index == y for p, y in zip(photos, labels, strict=True)])
    plain = {k: v for k, v in card.preprocess.items() if k not in ("polarity", "crop")}
    with Predictor(trained, card=card.replace(preprocess=plain)) as predictor:
        before = np.mean([predictor(p).results[0].index == y for p, y in zip(photos, labels, strict=True)])
    print(f"paper digits read: {read:.2f} (without polarity/crop: {before:.2f})")
    assert read >= 0.7 and before <= 0.3


@pytest.mark.runtime_only
def test_the_tensor_input_kind_generates_within_the_inputs_range_and_passes_arrays_as_they_are():
    from edgekit.runtime.features import features
    from edgekit.runtime.inputs import input_kind

    pre = {"kind": "tensor", "sample": {"shape": [50], "dtype": "int32", "range": [0, 999]}}
    raw = input_kind(pre).generate(pre, 16)
    assert raw.shape == (16, 1, 50) and raw.dtype == np.int32 and raw.min() >= 0 and raw.max() <= 999
    x = features(pre, raw, (50,))
    assert x.shape == (16, 50) and x.dtype == np.int32 and len({r.tobytes() for r in x}) == 16
    np.testing.assert_array_equal(features(pre, input_kind(pre).generate(pre, 16), (50,)), x)  # seeded
    blank = input_kind(pre).blank(pre)
    assert blank.shape == (1, 50) and features(pre, [blank], (50,)).shape == (1, 50)
