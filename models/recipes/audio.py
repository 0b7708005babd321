"""Keyword spotting: one second of 16 kHz audio -> MFCCs (runtime/audio.py) -> a small network.

`kws` is a depthwise-separable CNN over the MFCC image (the DS-CNN of "Hello Edge: Keyword
Spotting on Microcontrollers", Zhang et al. 2017, in its small size), `kws-lstm` an LSTM over the
MFCC frames. Both train on a Speech Commands-style folder (`edgekit data make kws` writes one)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from edgekit.models.recipe import (
    RECIPES,
    DataSpec,
    Evaluation,
    InputSpec,
    OutputSpec,
    Recipe,
    TrainingDefaults,
)
from edgekit.runtime.audio import AudioSpec, fit_normalization
from edgekit.runtime.tasks.audio import DetectorSettings

SPEC = AudioSpec(sample_rate=16000, clip_seconds=1.0)  # 98 frames of 13 MFCCs (25 ms windows, 10 ms hop)
FRAMES, COEFFICIENTS = SPEC.shape


def fit_mfcc_normalization(split: Any, preprocess: dict[str, Any], hparams: dict[str, Any]) -> dict[str, Any]:
    """The card's preprocess with the per-coefficient MFCC mean and std of the training clips."""
    return fit_normalization(split.x, AudioSpec.from_dict(preprocess)).to_dict()


def build_kws(num_classes: int = 12, filters: int = 64, blocks: int = 4, dropout: float = 0.2):
    """DS-CNN: Conv2D(filters, 10x4, stride 2) -> BN -> ReLU, then `blocks` x (DepthwiseConv2D 3x3
    -> BN -> ReLU -> Conv2D(filters, 1x1) -> BN -> ReLU), Dropout, global average pool, softmax."""
    import keras
    from keras import layers

    def bn_relu() -> list:
        # momentum 0.9, not Keras' 0.99: with ~30 steps an epoch the moving statistics would
        # otherwise lag for ten epochs, and the model would score chance on held-out clips
        return [layers.BatchNormalization(momentum=0.9), layers.ReLU()]

    body = [layers.Conv2D(filters, (10, 4), strides=(2, 2), padding="same", use_bias=False), *bn_relu()]
    for _ in range(blocks):
        # no biases before a batch norm: its own shift replaces them
        body += [layers.DepthwiseConv2D(3, padding="same", use_bias=False), *bn_relu()]
        body += [layers.Conv2D(filters, 1, use_bias=False), *bn_relu()]
    return keras.Sequential(
        [
            keras.Input((FRAMES, COEFFICIENTS, 1), name="mfcc"),
            *body,
            layers.Dropout(dropout),
            layers.GlobalAveragePooling2D(),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="kws_ds_cnn",
    )


def ds_cnn_architecture(filters: int, blocks: int, classes: int) -> tuple[tuple[str, Any], ...]:
    """`build_kws`'s layers as (class, filters/units), for the recipe's documented architecture."""
    block = (
        ("DepthwiseConv2D", None),
        ("BatchNormalization", None),
        ("ReLU", None),
        ("Conv2D", filters),
        ("BatchNormalization", None),
        ("ReLU", None),
    )
    return (
        ("Conv2D", filters),
        ("BatchNormalization", None),
        ("ReLU", None),
        *block * blocks,
        ("Dropout", None),
        ("GlobalAveragePooling2D", None),
        ("Dense", classes),
    )


def build_kws_lstm(num_classes: int = 12, units: int = 64, dropout: float = 0.2):
    """LSTM(units) over the 98 MFCC frames, its outputs max-pooled over time -> Dropout ->
    Dense(classes, softmax). The exporter unrolls it over a batch of 1 for TFLite, same weights."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input((FRAMES, COEFFICIENTS), name="mfcc"),
            # the word may sit anywhere in the second: the strongest response over all frames,
            # not the last state, which has to carry a word heard 0.8 s earlier (on the 2,040
            # generated training clips: 95% held-out in 20 epochs with the max, 37% with the last)
            layers.LSTM(units, return_sequences=True),
            layers.GlobalMaxPooling1D(),
            layers.Dropout(dropout),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="kws_lstm",
    )


_COMMON = {
    "task": "classify-audio",
    # how a stream's windows become keyword events on the device (runtime/tasks/audio.py)
    "output": OutputSpec(postprocess=MappingProxyType({"keywords": DetectorSettings().to_dict()})),
    "data": DataSpec("speech-commands"),
}


def mfcc_input(shape: tuple[int, ...], layout: str) -> InputSpec:
    """The MFCC input both recipes take, normalised by the training clips' statistics."""
    return InputSpec("mfcc", shape, layout, MappingProxyType(SPEC.to_dict()), fit_mfcc_normalization)


RECIPES.add(
    Recipe(
        name="kws",
        description=(
            "keyword spotting: a DS-CNN (Conv 10x4 stride 2, four depthwise-separable blocks of 64, "
            "global average pool) over 98x13 MFCCs of one second of 16 kHz audio"
        ),
        build=build_kws,
        input=mfcc_input((FRAMES, COEFFICIENTS, 1), "NHWC"),  # time, coefficient, channel
        # 95% held-out by epoch 7 on the default 2,400 generated clips, 97% at 15
        training=TrainingDefaults(epochs=12, batch_size=64, learning_rate=3e-3),
        evaluation=Evaluation(bar=0.90),
        hparams=MappingProxyType({"filters": 64, "blocks": 4, "dropout": 0.2}),
        # 12 classes with _silence_ and _unknown_; 10 as the parametrised test builds it
        architecture=ds_cnn_architecture(64, 4, 10),
        tiny=MappingProxyType({"filters": 8, "blocks": 1}),
        **_COMMON,
    ),
)

RECIPES.add(
    Recipe(
        name="kws-lstm",
        description=(
            "keyword spotting, the RNN variant: LSTM 64 over the 98 frames of 13 MFCCs, "
            "max over time, softmax"
        ),
        build=build_kws_lstm,
        input=mfcc_input((FRAMES, COEFFICIENTS), "NTC"),  # batch, time (frames), channels (coefficients)
        training=TrainingDefaults(epochs=20, batch_size=64, learning_rate=3e-3),
        evaluation=Evaluation(bar=0.88),
        hparams=MappingProxyType({"units": 64, "dropout": 0.2}),
        architecture=(("LSTM", 64), ("GlobalMaxPooling1D", None), ("Dropout", None), ("Dense", 10)),
        tiny=MappingProxyType({"units": 8}),
        **_COMMON,
    ),
)
