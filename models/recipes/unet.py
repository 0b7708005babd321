"""The classic U-Net (Ronneberger et al., 2015) as the course builds it in Keras: a binary mask per
image, with "same" padding so the mask has the input's size."""

from __future__ import annotations

import functools
from types import MappingProxyType
from typing import Any

import numpy as np

from edgekit.errors import ConfigError
from edgekit.models.recipe import (
    RECIPES,
    DataSpec,
    Evaluation,
    InputSpec,
    OutputSpec,
    Recipe,
    TrainingDefaults,
)
from edgekit.runtime.preprocess import ImageSpec
from edgekit.runtime.tasks.segment import resize_masks

UNET_PIXELS = ImageSpec(size=(256, 256), channels=1, scale=1 / 255, offset=0.0).to_dict()
UNET_HPARAMS = {"size": 256, "channels": 1, "base_filters": 64, "depth": 4}


def _side(size: Any) -> tuple[int, int]:
    """`size` as (height, width): an int for a square, or [height, width]."""
    try:
        h, w = (int(size), int(size)) if isinstance(size, int | float | str) else (int(v) for v in size)
    except (TypeError, ValueError):
        raise ConfigError(f"unet size must be an int or [height, width], not {size!r}") from None
    return h, w


def build_unet(
    num_classes: int = 2, size: Any = 256, channels: int = 1, base_filters: int = 64, depth: int = 4
):
    """U-Net: `depth` levels of two Conv 3x3 + ReLU then MaxPool (base_filters doubling per level, 64
    to 512), a 1024-filter bottleneck, then per level Conv2DTranspose 2x2 up, concatenation with the
    level's skip and two Conv 3x3; a 1x1 Conv with a sigmoid gives the mask (N, H, W, 1).

    `num_classes` is taken for the recipe interface and ignored: the mask is binary (foreground)."""
    import keras
    from keras import layers

    h, w = _side(size)
    if depth < 1 or base_filters < 1 or channels not in (1, 3):
        raise ConfigError("unet needs depth >= 1, base_filters >= 1 and channels 1 or 3")
    if h % 2**depth or w % 2**depth:
        raise ConfigError(
            f"unet size {h}x{w} must be a multiple of {2**depth} (2 ** depth) to pool {depth} times"
        )

    def double_conv(x, filters: int):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", kernel_initializer="he_normal")(x)
        return layers.Conv2D(filters, 3, padding="same", activation="relu", kernel_initializer="he_normal")(x)

    inputs = keras.Input((h, w, channels), name="image")
    x, skips = inputs, []
    for level in range(depth):
        x = double_conv(x, base_filters * 2**level)
        skips.append(x)
        x = layers.MaxPooling2D()(x)
    x = double_conv(x, base_filters * 2**depth)
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same")(x)
        x = layers.Concatenate()([skips[level], x])
        x = double_conv(x, filters)
    outputs = layers.Conv2D(1, 1, activation="sigmoid", name="mask")(x)
    return keras.Model(inputs, outputs, name="unet")


@functools.cache
def _bce_dice_class():
    import keras

    @keras.saving.register_keras_serializable(package="edgekit")
    class BceDice(keras.losses.Loss):
        """Binary cross-entropy plus soft Dice loss, per image: cross-entropy alone lets a model
        that paints everything background look good when the foreground is small; Dice does not."""

        def __init__(self, smooth: float = 1.0, name: str = "bce_dice", **kwargs: Any) -> None:
            super().__init__(name=name, **kwargs)
            self.smooth = smooth

        def call(self, y_true, y_pred):
            ops = keras.ops
            y_true = ops.cast(y_true, y_pred.dtype)
            bce = ops.mean(keras.losses.binary_crossentropy(y_true, y_pred), axis=(1, 2))
            inter = ops.sum(y_true * y_pred, axis=(1, 2, 3))
            total = ops.sum(y_true, axis=(1, 2, 3)) + ops.sum(y_pred, axis=(1, 2, 3))
            return bce + 1.0 - (2.0 * inter + self.smooth) / (total + self.smooth)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "smooth": self.smooth}

    return BceDice


def bce_dice_loss():
    """The U-Net's loss: binary cross-entropy + Dice (a Keras loss object, registered for reloading)."""
    return _bce_dice_class()()


def unet_preprocess(split: Any, preprocess: dict[str, Any], hparams: dict[str, Any]) -> dict[str, Any]:
    """The card's image spec at the size and channel count the hparams build the model for."""
    spec = ImageSpec.from_dict(preprocess)
    size = _side(hparams.get("size", spec.size[0]))
    return ImageSpec(size, int(hparams.get("channels", spec.channels)), spec.scale, spec.offset).to_dict()


def mask_targets(split: Any, card_like: Any) -> np.ndarray:
    """The split's 0/1 masks at the model's input size (nearest), as float (N, H, W, 1)."""
    size = tuple(int(v) for v in card_like.preprocess["size"])
    return (resize_masks(split.y, size) > 0).astype(np.float32)[..., None]


def unet_architecture(base: int = 64, depth: int = 4) -> tuple[tuple[str, Any], ...]:
    """The (layer class, filters) sequence `build_unet` makes for these hparams."""
    down: list[tuple[str, Any]] = [("InputLayer", None)]
    for level in range(depth):
        down += [("Conv2D", base * 2**level)] * 2 + [("MaxPooling2D", None)]
    down += [("Conv2D", base * 2**depth)] * 2
    for level in reversed(range(depth)):
        f = base * 2**level
        down += [("Conv2DTranspose", f), ("Concatenate", None), ("Conv2D", f), ("Conv2D", f)]
    return (*down, ("Conv2D", 1))


RECIPES.add(
    Recipe(
        name="unet",
        task="segment",
        description="the classic U-Net: 64-1024 filters, skip connections, a sigmoid mask (256x256x1)",
        build=build_unet,
        input=InputSpec("image", (256, 256, 1), "NHWC", MappingProxyType(UNET_PIXELS), unet_preprocess),
        output=OutputSpec(
            name="mask",
            layout="NHWC",  # (N, H, W, 1): P(foreground) per pixel
            activation="sigmoid",
            postprocess=MappingProxyType({"threshold": 0.5}),
        ),
        data=DataSpec("masks", targets=mask_targets),
        training=TrainingDefaults(
            epochs=20,
            batch_size=8,
            learning_rate=1e-3,
            loss=bce_dice_loss,
            keras_metrics=("binary_accuracy",),
        ),
        evaluation=Evaluation(metric="iou", bar=0.8),
        hparams=MappingProxyType(UNET_HPARAMS),
        # written out rather than computed, so a change to the builder cannot move both at once
        architecture=(
            ("InputLayer", None),
            ("Conv2D", 64),
            ("Conv2D", 64),
            ("MaxPooling2D", None),
            ("Conv2D", 128),
            ("Conv2D", 128),
            ("MaxPooling2D", None),
            ("Conv2D", 256),
            ("Conv2D", 256),
            ("MaxPooling2D", None),
            ("Conv2D", 512),
            ("Conv2D", 512),
            ("MaxPooling2D", None),
            ("Conv2D", 1024),
            ("Conv2D", 1024),
            ("Conv2DTranspose", 512),
            ("Concatenate", None),
            ("Conv2D", 512),
            ("Conv2D", 512),
            ("Conv2DTranspose", 256),
            ("Concatenate", None),
            ("Conv2D", 256),
            ("Conv2D", 256),
            ("Conv2DTranspose", 128),
            ("Concatenate", None),
            ("Conv2D", 128),
            ("Conv2D", 128),
            ("Conv2DTranspose", 64),
            ("Concatenate", None),
            ("Conv2D", 64),
            ("Conv2D", 64),
            ("Conv2D", 1),
        ),
        # 32x32, 4 to 64 filters: the same shape, four levels deep, for the parametrised tests
        tiny=MappingProxyType({"size": 32, "base_filters": 4}),
    ),
)
