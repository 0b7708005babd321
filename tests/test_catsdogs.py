"""The cats-vs-dogs CNN: its loader, its augmentation, a tiny model trained on images these tests
draw (no cats-vs-dogs photos ship, none download), exported and run as a two-class classifier."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import DataError
from edgekit.models.recipe import get_recipe
from edgekit.runtime.datasets import load_dataset


def write_class_folders(root: Path, per_class: int = 12, seed: int = 0, classes=("cat", "dog")) -> Path:
    """Class-per-folder images: circles in the first class's folder, squares in the second's (any
    further class: lines), on noisy backgrounds."""
    import cv2

    rng = np.random.default_rng(seed)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 120, (96, 96, 3), dtype=np.uint8)
            colour = [int(v) for v in rng.integers(150, 256, 3)]
            c, r = [int(v) for v in rng.integers(30, 66, 2)], int(rng.integers(14, 28))
            if k == 0:
                cv2.circle(image, tuple(c), r, colour, -1)
            elif k == 1:
                cv2.rectangle(image, (c[0] - r, c[1] - r), (c[0] + r, c[1] + r), colour, -1)
            else:
                cv2.line(image, (0, c[1]), (95, c[0]), colour, 5)
            cv2.imwrite(str(root / name / f"{name}.{i}.jpg"), image)
    return root


@pytest.mark.runtime_only
def test_cats_dogs_without_data_names_the_layouts_to_get():
    with pytest.raises(DataError) as info:
        load_dataset("cats-dogs")
    message = str(info.value)
    assert "no cats-vs-dogs data" in message and "--data" in message
    assert "PetImages/Cat" in message and "Kaggle" in message and "cat/ and dog/" in message


@pytest.mark.runtime_only
def test_cats_dogs_reads_the_microsoft_layout_and_skips_corrupt_jpegs(tmp_path):
    pets = write_class_folders(tmp_path / "kagglecatsanddogs" / "PetImages", classes=("Cat", "Dog"))
    (pets / "Cat" / "666.jpg").write_bytes(b"\xff\xd8\xff truncated")  # the zip holds a few of these
    ds = load_dataset("cats-dogs", str(tmp_path / "kagglecatsanddogs"))  # finds PetImages/ inside
    assert (
        ds.labels == ("Cat", "Dog") and ds.skipped == 1 and "1 unreadable image(s) skipped" in ds.description
    )
    assert ds.train.x.shape[1:] == (150, 150, 3) and len(ds.train) + len(ds.heldout) == 24


@pytest.mark.runtime_only
def test_cats_dogs_needs_exactly_two_classes(tmp_path):
    root = write_class_folders(tmp_path / "three", per_class=3, classes=("cat", "dog", "fox"))
    with pytest.raises(DataError, match="one sigmoid unit.*3 class folders \\(cat, dog, fox\\): keep two"):
        load_dataset("cats-dogs", str(root))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="is empty"):
        load_dataset("cats-dogs", str(tmp_path / "empty"))


@pytest.mark.runtime_only
def test_flip_rotate_zoom_augmentation_moves_pixels_but_keeps_the_images():
    from edgekit.models.augment import random_flip_rotate_zoom

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (16, 40, 40, 3), dtype=np.uint8)
    out = random_flip_rotate_zoom(x, np.random.default_rng(1))
    assert out.shape == x.shape and out.dtype == np.uint8 and not np.array_equal(out, x)
    # with no rotation and no zoom, each image is itself or its mirror, and both happen
    flips = random_flip_rotate_zoom(x, np.random.default_rng(2), max_degrees=0, max_zoom=0)
    same = [np.array_equal(a, b) for a, b in zip(flips, x)]
    mirrored = [np.array_equal(a, b[:, ::-1]) for a, b in zip(flips, x)]
    assert all(s or m for s, m in zip(same, mirrored)) and any(same) and any(mirrored)
    again = random_flip_rotate_zoom(x, np.random.default_rng(1))
    assert np.array_equal(again, out)  # the seed decides


def test_tiny_cats_dogs_trains_exports_and_runs_as_two_classes(tmp_path):
    """Through the real training loop (augmentation on), the exporter and `edgekit run`."""
    import cv2
    from typer.testing import CliRunner

    from edgekit.cli import app
    from edgekit.models.train import train
    from edgekit.tfutil import import_tf

    recipe = get_recipe("cats-dogs-cnn")
    data = write_class_folders(tmp_path / "pets")
    result = train(
        "cats-dogs-cnn",
        tmp_path / "run",
        data=str(data),
        hparams=dict(recipe.tiny),
        epochs=2,
        batch_size=8,
        quiet=True,
    )
    card = result.card
    assert card.labels == ("cat", "dog") and card.postprocess == {"activation": "sigmoid"}
    assert card.output.shape == (None, 1) and card.input.shape == (None, 48, 48, 3)
    assert card.hparams["augment"] == "random_flip_rotate_zoom"
    assert 0.0 <= card.metrics["heldout_accuracy"] <= 1.0
    # augmentation is on the training side only: the saved model is the documented layers
    _, keras = import_tf()
    model = keras.saving.load_model(result.model_path, compile=False)
    assert [type(layer).__name__ for layer in model.layers][0] == "Conv2D"

    runner = CliRunner()
    exported = runner.invoke(app, ["export", str(result.model_path), "--to", "tflite"])
    assert exported.exit_code == 0, exported.output
    image = tmp_path / "cat.png"
    cv2.imwrite(str(image), cv2.imread(str(next((data / "cat").iterdir()))))
    ran = runner.invoke(
        app, ["run", str(tmp_path / "run" / "model.tflite"), "--source", str(image), "--json"]
    )
    assert ran.exit_code == 0, ran.output
    results = json.loads(ran.stdout.splitlines()[0])["results"]
    # one sigmoid unit, two classes: P(dog) and 1 - P(dog)
    assert sorted(r["label"] for r in results) == ["cat", "dog"]
    assert sum(r["score"] for r in results) == pytest.approx(1.0, abs=1e-5)
