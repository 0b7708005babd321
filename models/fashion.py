"""Fashion-MNIST: the course's MNIST CNN on Zalando's clothing images (28x28 gray, ten classes)."""

from __future__ import annotations

from types import MappingProxyType

from edgekit.models.mnist import MNIST_PIXELS, build_mnist_cnn
from edgekit.models.recipe import RECIPES, Recipe


def build_fashion_cnn(num_classes: int = 10):
    """The MNIST CNN, unchanged, under its own name."""
    return build_mnist_cnn(num_classes, name="fashion_cnn")


RECIPES.add(
    "fashion-cnn",
    Recipe(
        name="fashion-cnn",
        task="classify-image",
        description="the MNIST CNN on Fashion-MNIST: two conv/pool blocks, Dense 64, softmax over 10 kinds",
        build=build_fashion_cnn,
        dataset="fashion-mnist",
        preprocess=MappingProxyType(MNIST_PIXELS),
        input_name="image",
        input_shape=(28, 28, 1),
        input_layout="NHWC",
        epochs=10,
        batch_size=64,
        bar=0.90,
        architecture=(
            ("Conv2D", 32),
            ("MaxPooling2D", None),
            ("Conv2D", 64),
            ("MaxPooling2D", None),
            ("Flatten", None),
            ("Dense", 64),
            ("Dense", 10),
        ),
    ),
)
