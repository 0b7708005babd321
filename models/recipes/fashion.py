"""Fashion-MNIST: the course's MNIST CNN on Zalando's clothing images (28x28 gray, ten classes)."""

from __future__ import annotations

import dataclasses

from edgekit.models.recipe import RECIPES, DataSpec
from edgekit.models.recipes.mnist import build_mnist_cnn


def build_fashion_cnn(num_classes: int = 10):
    """The MNIST CNN, unchanged, under its own name."""
    return build_mnist_cnn(num_classes, name="fashion_cnn")


# the same recipe as mnist-cnn (architecture, input, preprocessing), on 60,000 clothing images
_MNIST_CNN = RECIPES.get("mnist-cnn")
RECIPES.add(
    dataclasses.replace(
        _MNIST_CNN,
        name="fashion-cnn",
        description="the MNIST CNN on Fashion-MNIST: two conv/pool blocks, Dense 64, softmax over 10 kinds",
        build=build_fashion_cnn,
        data=DataSpec("fashion-mnist"),
        training=dataclasses.replace(_MNIST_CNN.training, epochs=10, batch_size=64),
        evaluation=dataclasses.replace(_MNIST_CNN.evaluation, bar=0.90),
    ),
)
