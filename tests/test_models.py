"""Datasets and recipes: real data, real Keras."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from edgekit.errors import DataError
from edgekit.models.datasets import load_dataset
from edgekit.models.recipe import get_recipe, recipe_names


def test_shipped_mnist_is_5000_real_digits_with_a_fixed_stratified_heldout(mnist):
    assert len(mnist.train) + len(mnist.heldout) == 5000
    assert mnist.train.x.shape[1:] == (28, 28, 1) and mnist.train.x.dtype == np.uint8
    assert np.bincount(mnist.heldout.y).tolist() == [100] * 10
    # real handwriting: mostly background, a stroke of bright pixels, no two digits alike
    ink = (mnist.train.x > 128).mean()
    assert 0.05 < ink < 0.25
    assert len({d.tobytes() for d in mnist.heldout.x}) == len(mnist.heldout)
    again = load_dataset("mnist", "shipped")
    assert np.array_equal(again.heldout.x, mnist.heldout.x), "the held-out split must not move"
    assert "shipped" in mnist.description and mnist.card_entry()["size"] == 5000


def test_mnist_from_a_users_csv_and_its_errors(tmp_path, mnist):
    rows = np.hstack([mnist.heldout.x.reshape(-1, 784), mnist.heldout.y[:, None]])
    good = tmp_path / "digits.csv.gz"
    with gzip.open(good, "wt") as f:
        np.savetxt(f, rows, fmt="%d", delimiter=",")
    ds = load_dataset("mnist", str(good))
    assert len(ds.train) + len(ds.heldout) == 1000
    bad = tmp_path / "bad.csv"
    np.savetxt(bad, rows[:, :100], fmt="%d", delimiter=",")
    with pytest.raises(DataError, match="has 100 columns per row"):
        load_dataset("mnist", str(bad))
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("mnist", str(tmp_path / "missing.npz"))


@pytest.mark.parametrize("name", recipe_names())
def test_recipe_builds_the_documented_architecture_and_round_trips(name, tmp_path, mnist):
    from edgekit.models.train import model_inputs
    from edgekit.tfutil import import_tf

    _, keras = import_tf()
    recipe = get_recipe(name)
    model = recipe.build(num_classes=10, **recipe.hparams)
    layers = [
        (type(layer).__name__, getattr(layer, "filters", getattr(layer, "units", None)))
        for layer in model.layers
    ]
    assert tuple(layers) == recipe.architecture
    assert tuple(model.inputs[0].shape[1:]) == recipe.input_shape
    model.compile(optimizer="adam", loss=recipe.loss, metrics=[recipe.metric])
    x = model_inputs(recipe.preprocess, recipe.input_shape, mnist.train.head(32))
    model.fit(x, mnist.train.y[:32], epochs=1, batch_size=32, verbose=0)  # one step
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_training_writes_model_card_history_and_curves(trained):
    from edgekit.card import ModelCard
    from edgekit.tfutil import import_tf

    folder = trained.parent
    card = ModelCard.load(folder / "card.json")
    _, keras = import_tf()
    model = keras.saving.load_model(trained)
    assert list(card.input.shape) == [None, *model.inputs[0].shape[1:]]
    assert card.recipe == "mnist-cnn" and card.labels == tuple("0123456789")
    assert card.dataset["source"] == "shipped" and card.dataset["train"] == 4000
    assert card.metrics["heldout_accuracy"] > 0.8  # 2 epochs on 1,000 digits
    history = json.loads((folder / "history.json").read_text())
    assert len(history["loss"]) == 2 and "val_accuracy" in history
    png = (folder / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert len(card.weights_sha256) == 64


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnist-cnn", "mnist-mlp"])
def test_full_training_reaches_the_recipe_bar(name, tmp_path):
    from edgekit.models.train import train

    result = train(name, tmp_path, data="shipped", quiet=True)
    acc = result.card.metrics["heldout_accuracy"]
    print(f"{name}: held-out accuracy {acc:.4f} in {result.seconds:.1f}s")
    assert acc >= get_recipe(name).bar
