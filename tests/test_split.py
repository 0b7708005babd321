"""The three-way split: 70/10/20, fixed and stratified, the held-out part as it always was."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.runtime.datasets import Dataset, Split, load_dataset, validation_indices


@pytest.mark.runtime_only
def test_shipped_mnist_splits_70_10_20_stratified(mnist):
    assert (len(mnist.fit), len(mnist.validation), len(mnist.heldout)) == (3500, 500, 1000)
    assert len(mnist.train) == 4000  # train is still everything not held out
    # every digit in the same share in each part: 1/8 of each class of the training split
    per_class = np.bincount(mnist.train.y, minlength=10)
    assert np.bincount(mnist.validation.y, minlength=10).tolist() == [round(n / 8) for n in per_class]
    assert mnist.card_entry()["validation"] == 500


@pytest.mark.runtime_only
def test_the_split_is_the_same_every_time_and_disjoint(mnist):
    again = load_dataset("mnist", "shipped")
    assert np.array_equal(mnist.validation.x, again.validation.x)
    assert np.array_equal(mnist.heldout.x, again.heldout.x)
    seen = {d.tobytes() for d in mnist.fit.x}
    assert not any(d.tobytes() in seen for d in mnist.validation.x)
    assert not any(d.tobytes() in seen for d in mnist.heldout.x)
    assert len(mnist.fit) + len(mnist.validation) == len(mnist.train)


@pytest.mark.runtime_only
def test_uneven_classes_keep_their_shares_and_odd_targets_split_unstratified():
    y = np.array([0] * 80 + [1] * 16 + [2] * 1)
    idx = validation_indices(y)
    assert np.bincount(y[idx], minlength=3).tolist() == [10, 2, 0]  # a class of one stays in training
    assert np.array_equal(idx, validation_indices(y))
    masks = np.zeros((16, 4, 4), dtype=np.uint8)  # segmentation targets: not classes
    assert len(validation_indices(masks)) == 2
    assert len(validation_indices(np.array([1]))) == 0


def test_a_tiny_dataset_still_trains_with_nothing_left_to_watch(tmp_path):
    from edgekit.models.train import train

    x = np.random.default_rng(0).integers(0, 255, (4, 28, 28, 1), dtype=np.uint8)
    y = np.array([0, 1, 2, 3])  # one sample per class: too few to stratify, one sample all the same
    data = Dataset("mnist", "made-up", "made-up", tuple("0123456789"), Split(x, y), Split(x, y))
    assert len(data.validation) == 1 and len(data.fit) == 3
    data = Dataset("mnist", "made-up", "made-up", tuple("0123456789"), Split(x[:1], y[:1]), Split(x, y))
    assert len(data.validation) == 0 and len(data.fit) == 1  # one sample: nothing to set aside
    result = train("mnist-mlp-small", tmp_path, dataset=data, epochs=1, quiet=True, hparams={"hidden": 8})
    assert "val_loss" not in result.history and "validation" not in result.card.hparams
