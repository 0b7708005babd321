"""A conditional DCGAN (003's GAN): latent noise and the wanted digit -> a 28x28 digit, trained on
the shipped MNIST digits (the shape of the keras.io conditional GAN, as a DCGAN).

The model a run keeps, saves and exports is the generator: one input, `[noise (64), one-hot digit
(10)]`, one output, a 28x28 image in tanh's -1..1. The discriminator lives only in training: the
recipe's train step (`adversarial_steps`, run by Keras's `fit` in place of the generator's own)
makes it, sees the digit as ten extra image channels beside each real or generated image, and
updates it and the generator in turn, each with its own Adam (beta_1 0.5, as DCGAN), on fresh
noise every step. Both losses are on the curves; after each epoch a grid of the same 100 requests
(ten of each digit) is written into the run's `samples/` folder, so the run shows its progress.

The held-out metric is the read-back rate: the share of generated digits the project's own MNIST
CNN reads as the digit asked for (`runtime/tasks/generate.py`)."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from edgekit.models.recipe import (
    RECIPES,
    DataSpec,
    Evaluation,
    InputSpec,
    OutputSpec,
    Recipe,
    TrainingDefaults,
)

LATENT, CLASSES = 64, 10
SAMPLES = "samples"  # the run's folder of per-epoch grids
BETA_1 = 0.5  # DCGAN's Adam: the default 0.9 makes the two players oscillate


def build_generator(num_classes: int = CLASSES, latent: int = LATENT, filters: int = 64):
    """Dense(7x7x2f) -> BN -> LeakyReLU -> Conv2DTranspose(f, 4, stride 2) -> BN -> LeakyReLU ->
    Conv2DTranspose(1, 4, stride 2, tanh): [noise, one-hot digit] -> a 28x28 image."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input((latent + num_classes,), name="noise_and_label"),
            layers.Dense(7 * 7 * 2 * filters, use_bias=False),  # no bias: the batch norm's shift
            layers.BatchNormalization(),
            layers.LeakyReLU(0.2),
            layers.Reshape((7, 7, 2 * filters)),
            layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.LeakyReLU(0.2),
            layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="tanh"),
        ],
        name="cgan_generator",
    )


def build_discriminator(classes: int, filters: int, shape: tuple[int, ...]):
    """(image, one-hot digit) -> one logit: real or generated, for that digit. The digit is ten
    constant image channels beside the pixels: Conv(f, 4, stride 2) -> LeakyReLU -> Conv(2f, 4,
    stride 2) -> LeakyReLU -> Flatten -> Dropout 0.3 -> Dense(1)."""
    import keras
    from keras import layers

    image = keras.Input(shape, name="image")
    label = keras.Input((classes,), name="label")
    planes = layers.UpSampling2D(shape[:2])(layers.Reshape((1, 1, classes))(label))
    h = layers.Concatenate()([image, planes])
    h = layers.LeakyReLU(0.2)(layers.Conv2D(filters, 4, strides=2, padding="same")(h))
    h = layers.LeakyReLU(0.2)(layers.Conv2D(2 * filters, 4, strides=2, padding="same")(h))
    out = layers.Dense(1)(layers.Dropout(0.3)(layers.Flatten()(h)))
    return keras.Model([image, label], out, name="cgan_discriminator")


class _Adversary:
    """What the train step keeps to itself (a plain object: nothing of it is saved with the
    generator): the discriminator and its optimizer."""

    def __init__(self, discriminator: Any, optimizer: Any) -> None:
        self.discriminator = discriminator
        self.optimizer = optimizer


def adversarial_steps(keras, generator: Any) -> dict[str, Any]:
    """The generator's train and test steps against a discriminator made here. A batch is
    (requests [noise, one-hot digit], real images of those digits); the requests' noise is drawn
    afresh each step (a fixed noise per sample would let the generator learn the training set)."""
    import tensorflow as tf

    shape = tuple(generator.outputs[0].shape[1:])
    width = int(generator.inputs[0].shape[-1])
    classes = CLASSES
    latent = width - classes
    filters = max(8, int(generator.layers[-1].input.shape[-1]))
    optimizer = generator.optimizer
    optimizer.beta_1 = BETA_1
    d_optimizer = type(optimizer).from_config(optimizer.get_config())
    adversary = _Adversary(build_discriminator(classes, filters, shape), d_optimizer)
    d_optimizer.build(adversary.discriminator.trainable_variables)
    generator._adversary = adversary  # a plain attribute: Keras neither tracks nor saves it
    # Keras resets the model's metrics at each epoch's start: the logs are the epoch's running means
    generator.d_loss = keras.metrics.Mean(name="d_loss")
    generator.g_loss = keras.metrics.Mean(name="g_loss")
    # the compiled loss's tracker, which `evaluate` reports as "loss": here the generator's loss
    loss = next(m for m in generator.metrics if m.name == "loss")
    bce = keras.losses.BinaryCrossentropy(from_logits=True)

    def losses(requests: Any, real: Any, training: bool) -> tuple[Any, Any, Any]:
        onehot = requests[:, latent:]
        n = tf.shape(requests)[0]
        noise = tf.random.normal((n, latent)) if training else requests[:, :latent]
        fake = generator(tf.concat([noise, onehot], axis=1), training=training)
        d = adversary.discriminator
        real_logit = d([tf.cast(real, fake.dtype), onehot], training=training)
        fake_logit = d([fake, onehot], training=training)
        # one-sided label smoothing (real = 0.9) keeps the discriminator from saturating
        d_loss = bce(tf.fill(tf.shape(real_logit), 0.9), real_logit) + bce(
            tf.zeros_like(fake_logit), fake_logit
        )
        g_loss = bce(tf.ones_like(fake_logit), fake_logit)
        return d_loss, g_loss, onehot

    def train_step(data: Any) -> dict[str, Any]:
        requests, real = data
        with tf.GradientTape() as tape:
            d_loss, _, onehot = losses(requests, real, training=True)
        d_vars = adversary.discriminator.trainable_variables
        d_optimizer.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars))
        with tf.GradientTape() as tape:
            _, g_loss, _ = losses(requests, real, training=True)
        g_vars = generator.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars))
        generator.d_loss.update_state(d_loss)
        generator.g_loss.update_state(g_loss)
        return {"d_loss": generator.d_loss.result(), "g_loss": generator.g_loss.result()}

    def test_step(data: Any) -> dict[str, Any]:
        requests, real = data
        d_loss, g_loss, _ = losses(requests, real, training=False)
        generator.d_loss.update_state(d_loss)
        generator.g_loss.update_state(g_loss)
        loss.update_state(g_loss)  # what a run reports as the held-out loss: the generator's
        return {
            "loss": loss.result(),
            "d_loss": generator.d_loss.result(),
            "g_loss": generator.g_loss.result(),
        }

    return {"train_step": train_step, "test_step": test_step}


def sample_grids(keras, folder: Path) -> list:
    """After each epoch, the same 100 requests (ten of each digit, fixed noise) as one grid image
    in the run's `samples/epoch-NN.png`."""
    from edgekit.fileio import atomic_path
    from edgekit.runtime.inputs.labels import LabelsSpec, Request

    def end(epoch: int, logs: dict | None) -> None:
        import cv2

        model = callback.model
        width = int(model.inputs[0].shape[-1])
        spec = LabelsSpec(width - CLASSES, CLASSES)
        x = np.stack([spec.vector(Request(k % CLASSES, 10_000_000 + k)) for k in range(100)])
        images = np.asarray(model(x, training=False))
        pixels = np.clip((images + 1.0) * 127.5, 0, 255).astype(np.uint8)[..., 0]
        h, w = pixels.shape[1:3]
        # column k: digit k; row r: its r-th noise
        grid = pixels.reshape(10, 10, h, w).transpose(0, 2, 1, 3).reshape(10 * h, 10 * w)
        grid = cv2.resize(grid, (20 * w, 20 * h), interpolation=cv2.INTER_NEAREST)
        path = folder / SAMPLES / f"epoch-{epoch + 1:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, keep_suffix=True) as tmp:
            cv2.imwrite(str(tmp), grid)

    callback = keras.callbacks.LambdaCallback(on_epoch_end=end)
    return [callback]


def fit_labels(train_split: Any, preprocess: dict[str, Any], hparams: dict[str, Any]) -> dict[str, Any]:
    """The card's input: noise of the build's latent size, then the data's classes one-hot."""
    return {**preprocess, "kind": "labels", "latent": int(hparams.get("latent", LATENT))}


def real_images(split: Any, card: Any) -> Any:
    """What the discriminator compares each request's result with: a real image of its digit, in
    the generator's -1..1."""
    return (split.x["image"].astype(np.float32) / 127.5 - 1.0).astype(np.float32)


RECIPES.add(
    Recipe(
        name="cgan-mnist",
        task="generate",
        description=(
            "a conditional DCGAN: 64 noise values + the wanted digit -> a 28x28 digit "
            "(Dense 7x7x128, two Conv2DTranspose), trained on the shipped MNIST digits"
        ),
        build=build_generator,
        input=InputSpec(
            "noise_and_label",
            (LATENT + CLASSES,),
            "NC",
            MappingProxyType({"kind": "labels", "latent": LATENT, "classes": CLASSES}),
            fit_preprocess=fit_labels,
        ),
        data=DataSpec("mnist-gan", targets=real_images),
        output=OutputSpec("image", "NHWC", "tanh"),
        training=TrainingDefaults(
            epochs=30,
            batch_size=64,
            learning_rate=2e-4,
            schedule="constant",
            loss="mae",  # the compiled loss is unused by the adversarial steps
            keras_metrics=(),
            steps=adversarial_steps,
            callbacks=sample_grids,
        ),
        evaluation=Evaluation(metric="readback", bar=0.9),
        hparams=MappingProxyType({"latent": LATENT, "filters": 64}),
        architecture=(
            ("Dense", 6272),
            ("BatchNormalization", None),
            ("LeakyReLU", None),
            ("Reshape", None),
            ("Conv2DTranspose", 64),
            ("BatchNormalization", None),
            ("LeakyReLU", None),
            ("Conv2DTranspose", 1),
        ),
        tiny=MappingProxyType({"filters": 8}),
    )
)
