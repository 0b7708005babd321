"""The course's CIFAR-10 CNN: three conv layers on 32x32 RGB, Dense 64, softmax over ten classes."""

from __future__ import annotations

from types import MappingProxyType

from edgekit.models.recipe import RECIPES, DataSpec, Evaluation, InputSpec, Recipe, TrainingDefaults
from edgekit.runtime.preprocess import ImageSpec

CIFAR_PIXELS = ImageSpec(size=(32, 32), channels=3, scale=1 / 255, offset=0.0).to_dict()


def build_cifar10_cnn(num_classes: int = 10):
    """Conv2D(32,3) → MaxPool → Conv2D(64,3) → MaxPool → Conv2D(64,3) → Flatten → Dense(64) → Dense(10)."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input((32, 32, 3), name="image"),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="cifar10_cnn",
    )


RECIPES.add(
    Recipe(
        name="cifar10-cnn",
        task="classify-image",
        description="the course's CIFAR-10 CNN: Conv 32/64/64 with pooling, Dense 64, softmax over 10",
        build=build_cifar10_cnn,
        input=InputSpec("image", (32, 32, 3), "NHWC", MappingProxyType(CIFAR_PIXELS)),
        data=DataSpec("cifar10"),
        # halve the learning rate when the loss on a 10% slice of the training data stalls
        training=TrainingDefaults(epochs=10, batch_size=64, schedule="plateau", decay_rate=0.5),
        evaluation=Evaluation(bar=0.65),  # the tutorial's figure is about 70% after 10 epochs on the full set
        architecture=(
            ("Conv2D", 32),
            ("MaxPooling2D", None),
            ("Conv2D", 64),
            ("MaxPooling2D", None),
            ("Conv2D", 64),
            ("Flatten", None),
            ("Dense", 64),
            ("Dense", 10),
        ),
    ),
)
