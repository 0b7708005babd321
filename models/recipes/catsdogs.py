"""The course's cats-vs-dogs CNN: four conv/pool blocks on 150x150 RGB, Dense 512, one sigmoid unit;
trained with flips, rotations and zooms (augmentation on the training side only, never exported)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from edgekit.errors import ConfigError
from edgekit.models.augment import random_flip_rotate_zoom
from edgekit.models.recipe import (
    RECIPES,
    DataSpec,
    Evaluation,
    InputSpec,
    OutputSpec,
    Recipe,
    TrainingDefaults,
)
from edgekit.runtime.datasets.catsdogs import CATS_DOGS_SIZE
from edgekit.runtime.preprocess import ImageSpec

CATS_DOGS_PIXELS = ImageSpec(size=CATS_DOGS_SIZE, channels=3, scale=1 / 255, offset=0.0).to_dict()
CATS_DOGS_HPARAMS = {
    "size": 150,
    "filters": [32, 64, 128, 128],
    "dense": 512,
}  # lists: as JSON gives them back


def _flat_size(size: int, blocks: int) -> int:
    for _ in range(blocks):
        size = (size - 2) // 2  # a 3x3 "valid" conv, then a 2x2 pool
    return size


def build_cats_dogs_cnn(
    num_classes: int = 2, size: int = 150, filters: Any = (32, 64, 128, 128), dense: int = 512
):
    """(Conv2D 3x3 + ReLU → MaxPool) with 32, 64, 128, 128 filters → Flatten → Dense(512, relu) →
    Dense(1, sigmoid): P(the second class). `num_classes` is taken for the recipe interface; two."""
    import keras
    from keras import layers

    filters = [int(f) for f in filters]
    if _flat_size(int(size), len(filters)) < 1:
        raise ConfigError(f"cats-dogs-cnn size {size} is too small for {len(filters)} conv/pool blocks")
    blocks = []
    for f in filters:
        blocks += [layers.Conv2D(f, 3, activation="relu"), layers.MaxPooling2D()]
    return keras.Sequential(
        [
            keras.Input((int(size), int(size), 3), name="image"),
            *blocks,
            layers.Flatten(),
            layers.Dense(int(dense), activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ],
        name="cats_dogs_cnn",
    )


def cats_dogs_preprocess(split: Any, preprocess: dict[str, Any], hparams: dict[str, Any]) -> dict[str, Any]:
    """The card's image spec at the size the hparams build the model for."""
    spec = ImageSpec.from_dict(preprocess)
    size = int(hparams.get("size", spec.size[0]))
    return ImageSpec((size, size), spec.channels, spec.scale, spec.offset).to_dict()


RECIPES.add(
    Recipe(
        name="cats-dogs-cnn",
        task="classify-image",
        description="the course's cats-vs-dogs CNN: Conv 32/64/128/128 with pooling, Dense 512, one sigmoid",
        build=build_cats_dogs_cnn,
        input=InputSpec(
            "image", (*CATS_DOGS_SIZE, 3), "NHWC", MappingProxyType(CATS_DOGS_PIXELS), cats_dogs_preprocess
        ),
        output=OutputSpec(activation="sigmoid"),
        data=DataSpec("cats-dogs", augment=random_flip_rotate_zoom),
        training=TrainingDefaults(epochs=30, batch_size=32, learning_rate=5e-4, loss="binary_crossentropy"),
        # the tutorial's figure with augmentation on 2,000 training images is about 82%
        evaluation=Evaluation(metric="accuracy", bar=0.8),
        hparams=MappingProxyType(CATS_DOGS_HPARAMS),
        architecture=(
            ("Conv2D", 32),
            ("MaxPooling2D", None),
            ("Conv2D", 64),
            ("MaxPooling2D", None),
            ("Conv2D", 128),
            ("MaxPooling2D", None),
            ("Conv2D", 128),
            ("MaxPooling2D", None),
            ("Flatten", None),
            ("Dense", 512),
            ("Dense", 1),
        ),
        # 48x48 is the smallest input four valid-conv/pool blocks leave a pixel of; few filters
        tiny=MappingProxyType({"size": 48, "filters": [4, 8, 8, 8], "dense": 16}),
    ),
)
