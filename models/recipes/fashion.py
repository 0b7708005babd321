"""Fashion-MNIST: the course's MNIST CNN on Zalando's clothing images (28x28 gray, ten classes)."""

from __future__ import annotations

import dataclasses

from edgekit.models.recipe import RECIPES
from edgekit.models.recipes.mnist import build_mnist_cnn


def build_fashion_cnn(num_classes: int = 10):
    """The MNIST CNN, unchanged, under its own name."""
    return build_mnist_cnn(num_classes, name="fashion_cnn")


# the same recipe as mnist-cnn (architecture, input, preprocessing), on 60,000 clothing images
RECIPES.add(
        dataclasses.replace(
        RECIPES.get("mnist-cnn"),
        name="fashion-cnn",
        description="the MNIST CNN on Fashion-MNIST: two conv/pool blocks, Dense 64, softmax over 10 kinds",
        build=build_fashion_cnn,
        dataset="fashion-mnist",
        epochs=10,
        batch_size=64,
        augment=None,
        bar=0.90,
    ),
)
