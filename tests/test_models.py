"""Datasets and recipes: real data, real Keras."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from recipe_data import made_up_dataset
from said import assert_readable_info
from typer.testing import CliRunner

from edgekit.cli import app
from edgekit.errors import DataError
from edgekit.models.recipe import get_recipe, recipe_names
from edgekit.runtime.datasets import load_dataset


@pytest.mark.runtime_only
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


@pytest.mark.runtime_only
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
def test_recipe_builds_the_documented_architecture(name):
    from edgekit.tfutil import import_tf

    import_tf()
    recipe = get_recipe(name)
    model = recipe.build(num_classes=10, **recipe.hparams)
    layers = [
        (type(layer).__name__, getattr(layer, "filters", getattr(layer, "units", None)))
        for layer in model.layers
    ]
    assert tuple(layers) == recipe.architecture
    assert tuple(model.inputs[0].shape[1:]) == recipe.input.shape


@pytest.mark.parametrize("name", recipe_names())
def test_recipe_trains_a_step_saves_reloads_and_writes_a_matching_card(name, tmp_path):
    """Through the real training loop, with the recipe's tiny hparams: every recipe trains, saves,
    reloads, predicts the same numbers, and its card's input spec matches the model."""
    from edgekit.card import ModelCard, sha256_arrays
    from edgekit.models.train import train
    from edgekit.runtime.features import card_inputs
    from edgekit.tfutil import import_tf

    _, keras = import_tf()
    recipe = get_recipe(name)
    dataset = made_up_dataset(name)
    result = train(
        name, tmp_path, dataset=dataset, hparams=dict(recipe.tiny), epochs=1, batch_size=8, quiet=True
    )
    card = ModelCard.load(tmp_path / "card.json")
    assert card == result.card and card.recipe == name and card.task == recipe.task
    model = keras.saving.load_model(result.model_path, compile=False)
    assert list(card.input.shape) == [None, *model.inputs[0].shape[1:]]
    x = card_inputs(card, dataset.heldout)
    assert x.shape[1:] == tuple(model.inputs[0].shape[1:])
    # the file holds the trained weights (the card's hash was taken from the model in memory)
    assert sha256_arrays([np.asarray(w) for w in model.get_weights()]) == card.weights_sha256
    assert np.all(np.isfinite(model.predict(x, verbose=0)))
    headline = f"heldout_{recipe.evaluation.metric}"
    assert headline in card.metrics and np.isfinite(card.metrics[headline])
    # `info` shows this recipe's card in words and rounded numbers (every field of it)
    shown = CliRunner().invoke(app, ["info", str(result.model_path)], catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    assert_readable_info(shown.stdout)


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
    assert acc >= get_recipe(name).evaluation.bar


def test_early_stopping_watches_the_validation_part_not_the_heldout(tmp_path, mnist):
    from edgekit.models.train import train
    from edgekit.runtime.features import model_inputs
    from edgekit.tfutil import import_tf

    # 500 digits in batches of 8: the loss on the 72 watched digits (500/7 of the validation part)
    # bottoms out within 30 epochs
    result = train("mnist-mlp-bn", tmp_path, data="shipped", epochs=30, limit=500, batch_size=8, quiet=True)
    hp, metrics = result.card.hparams, result.card.metrics
    assert hp["schedule"] == "exponential" and hp["early_stopping_patience"] == 5
    assert hp["validation"].startswith("72 training samples (the validation part)")
    assert metrics["epochs_run"] < 30 and len(result.history["val_loss"]) == metrics["epochs_run"]
    assert metrics["best_epoch"] == metrics["epochs_run"] - 5  # stopped after 5 epochs without a gain
    # the saved weights are the best epoch's, restored: they score that epoch's loss on the slice
    _, keras = import_tf()
    model = keras.saving.load_model(result.model_path)
    watch = mnist.validation.head(72)
    x = model_inputs(result.card.preprocess, (784,), watch)
    loss = model.evaluate(x, watch.y, verbose=0, return_dict=True)["loss"]
    assert loss == pytest.approx(min(result.history["val_loss"]), abs=1e-4)
    # the held-out report is on the full, untouched held-out split
    assert result.card.dataset["heldout"] == 1000 and metrics["heldout_accuracy"] > 0.7


@pytest.mark.runtime_only
def test_validation_slice_is_fixed_and_disjoint(mnist):
    from edgekit.models.step import validation_slice

    rest, watch = validation_slice(mnist.train, 0.1)
    again = validation_slice(mnist.train, 0.1)[1]
    assert len(watch) == 400 and len(rest) == 3600 and np.array_equal(watch.x, again.x)
    seen = {d.tobytes() for d in rest.x}
    assert not any(d.tobytes() in seen for d in watch.x)
    assert set(np.unique(watch.y)) == set(range(10))


@pytest.mark.slow
def test_mnist_mlp_bn_reaches_its_bar_with_early_stopping(tmp_path):
    from edgekit.models.train import train

    result = train("mnist-mlp-bn", tmp_path, data="shipped", quiet=True)
    m = result.card.metrics
    print(
        f"mnist-mlp-bn: held-out accuracy {m['heldout_accuracy']:.4f} in {result.seconds:.1f}s, "
        f"{m['epochs_run']} epochs (best {m['best_epoch']})"
    )
    assert m["heldout_accuracy"] >= get_recipe("mnist-mlp-bn").evaluation.bar


@pytest.mark.slow
def test_fashion_cnn_reaches_its_bar_on_the_official_test_set(tmp_path):
    from edgekit.models.train import train

    try:
        load_dataset("fashion-mnist")
    except DataError as e:
        pytest.skip(f"no Fashion-MNIST here: {e}")
    result = train("fashion-cnn", tmp_path, quiet=True)
    acc = result.card.metrics["heldout_accuracy"]
    print(f"fashion-cnn: held-out accuracy {acc:.4f} on 10,000 test images in {result.seconds:.1f}s")
    assert result.card.dataset["heldout"] == 10_000
    assert acc >= get_recipe("fashion-cnn").evaluation.bar
