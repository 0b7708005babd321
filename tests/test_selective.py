"""Selective quantization: an int8 file that misses its bar because one activation cannot share an
int8 scale gets that activation's layers kept in float, and passes; the report names them.

The model is real and trained; then one hidden unit is scaled up 300x and the next layer's weights
from it down 300x, which leaves the function exactly as it was (Keras gives the same outputs) but
makes that activation one wide channel among narrow ones, as the outlier channels of Transformers
are. Per-tensor int8 then rounds the narrow channels to nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.export.selective import LayerLoss, channel_loss, rank, resolve, search

runner = CliRunner()
OUTLIER = 300.0


def quadrant_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """8x8 grey images: the class is the brightest of three regions (top, bottom-left, bottom-right)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.integers(0, 90, (n, 8, 8, 1))
    for i, c in enumerate(y):
        rows, cols = ((0, 4), (0, 8)) if c == 0 else ((4, 8), (0, 4) if c == 1 else (4, 8))
        x[i, rows[0] : rows[1], cols[0] : cols[1]] += 120
    return x.astype(np.uint8), y.astype(np.int64)


@pytest.fixture(scope="module")
def outlier_model(tmp_path_factory) -> tuple[Path, Path]:
    from edgekit.tfutil import import_tf

    _, keras = import_tf()
    keras.utils.set_random_seed(0)
    x, y = quadrant_images(600, 0)
    inputs = keras.Input((8, 8, 1), name="pixels")
    h = keras.layers.Dense(16, activation="relu", name="hidden")(keras.layers.Flatten()(inputs))
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(h)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    model.fit(x / 255.0, y, epochs=15, batch_size=32, verbose=0)
    before = model.predict(x / 255.0, verbose=0)
    # one unit OUTLIER x wider, the next layer reads it OUTLIER x weaker: the same function
    w, b = model.get_layer("hidden").get_weights()
    unit = int(np.argmax(np.abs(w).sum(0)))
    w[:, unit] *= OUTLIER
    b[unit] *= OUTLIER
    model.get_layer("hidden").set_weights([w, b])
    w2, b2 = model.get_layer("head").get_weights()
    w2[unit] /= OUTLIER
    model.get_layer("head").set_weights([w2, b2])
    np.testing.assert_allclose(model.predict(x / 255.0, verbose=0), before, atol=1e-4)
    folder = tmp_path_factory.mktemp("outlier")
    model.save(folder / "net.keras")
    xt, yt = quadrant_images(300, 1)
    np.savez(folder / "data.npz", x_train=x, x_test=xt, y_test=yt)
    return folder / "net.keras", folder / "data.npz"


def export(model: Path, data: Path, fmt: str, out: Path, *extra: str):
    args = ["export", str(model), "--to", fmt, "--quantize", "int8", "--task", "classify-image"]
    args += ["--labels", "top,left,right", "--normalize", "0..1", "--data", str(data), "--out", str(out)]
    return runner.invoke(app, [*args, "--report", str(out.with_suffix(".json")), *extra])


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_int8_with_an_outlier_channel_passes_only_with_its_layers_in_float(outlier_model, tmp_path, fmt):
    model, data = outlier_model
    plain = tmp_path / f"plain.{fmt}"
    result = export(model, data, fmt, plain, "--no-selective")
    assert result.exit_code == 1, result.output
    assert Path(f"{plain}.rejected").exists() and not plain.exists()
    rejected = json.loads(plain.with_suffix(".json").read_text())["artifacts"][0]
    assert rejected["report"]["accuracy_delta_points"] < -1.0
    assert "float_layers" not in rejected["report"]

    kept = tmp_path / f"kept.{fmt}"
    result = export(model, data, fmt, kept)
    assert result.exit_code == 0, result.output
    assert kept.exists()
    report = json.loads(kept.with_suffix(".json").read_text())["artifacts"][0]["report"]
    assert report["passed"] and report["accuracy_delta_points"] >= -1.0
    floats = report["float_layers"]
    assert floats["layers"] and floats["why"]
    # the culprit is the hidden layer's activation: it and the head that reads it stay float
    assert any("hidden" in name for name in floats["layers"]), floats
    assert floats["why"][0]["loss"] > 0.05  # a tenth of the signal lost at the worst activation
    assert floats["without"]["passed"] is False
    assert "float layers" in result.output


def test_float_layers_forces_the_named_layers(outlier_model, tmp_path):
    model, data = outlier_model
    out = tmp_path / "forced.onnx"
    result = export(model, data, "onnx", out, "--no-selective", "--float-layers", "hidden,head")
    assert result.exit_code == 0, result.output
    report = json.loads(out.with_suffix(".json").read_text())["artifacts"][0]["report"]
    assert report["float_layers"]["forced"] == ["hidden", "head"]
    bad = export(model, data, "onnx", tmp_path / "bad.onnx", "--float-layers", "no_such_layer")
    assert bad.exit_code == 1 and "no_such_layer" in bad.output


@pytest.mark.runtime_only
def test_channel_loss_sees_narrow_channels_a_wide_one_hides():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(200, 16))
    f[:, 0] *= 300
    step = np.abs(f).max() / 127  # one int8 scale for the whole tensor
    q = np.round(f / step) * step
    whole = np.linalg.norm(q - f) / np.linalg.norm(f)
    assert whole < 0.05  # the whole-tensor error looks fine
    assert channel_loss(f, q) > 0.5  # but 15 of 16 channels are mostly gone
    assert channel_loss(f, f) == 0.0
    # a channel with no signal (a class never likely) is not counted
    g = rng.normal(size=(200, 4))
    g[:, 3] = 1e-6
    assert channel_loss(g, g + np.where(np.arange(4) == 3, 1e-6, 0)) == 0.0


@pytest.mark.runtime_only
def test_rank_and_search_keep_the_worst_until_the_bar_passes():
    losses = [
        LayerLoss(f"t{i}", "MatMul", loss, (f"n{i}", f"r{i}")) for i, loss in enumerate([0.1, 0.9, 0.5, 0.2])
    ]
    ranked = rank([*losses, LayerLoss("t1", "MatMul", 0.7, ("n1", "r1"))])
    assert [r.tensor for r in ranked] == ["t1", "t2", "t3", "t0"] and ranked[0].loss == pytest.approx(0.8)
    tried: list[tuple[str, ...]] = []

    def attempt(layers):
        tried.append(layers)
        return set(layers) >= {"n1", "n2"}

    outcome, selection = search(ranked, attempt, bool, lambda ok: {"passed": ok}, max_share=1.0)
    assert outcome is True and tried == [("n1", "r1"), ("n1", "r1", "n2", "r2")]
    assert [c.tensor for c in selection.culprits] == ["t1", "t2"] and not selection.note
    # never more than the share of layers, and the record says it gave up
    _, capped = search(ranked, lambda layers: False, bool, lambda ok: {"passed": ok}, max_share=0.25)
    assert len(capped.culprits) == 2 and "still misses" in capped.note


@pytest.mark.runtime_only
def test_resolve_matches_exact_names_then_parts():
    nodes = ["model/hidden/MatMul;model/hidden/Relu", "model/head/MatMul", "head"]
    assert resolve(["head"], nodes) == ("head",)
    assert resolve(["hidden"], nodes) == ("model/hidden/MatMul;model/hidden/Relu",)
