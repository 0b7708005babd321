"""A conditional DCGAN (003's GAN): latent noise and the wanted digit -> a 28x28 digit, trained on
the shipped MNIST digits (the shape of the keras.io conditional GAN, as a DCGAN).

The model a run keeps, saves and exports is the generator: one input, `[noise (64), one-hot digit
(10)]`, one output, a 28x28 image in tanh's -1..1. The discriminator lives only in training: the
recipe's train step (`adversarial_steps`, run by Keras's `fit` in place of the generator's own)
makes it (a projection discriminator: the digit asked for weighs its real-or-generated verdict),
and updates it and the generator in turn, each with its own Adam (beta_1 0.5, as DCGAN), on fresh
noise every step. Two additions make it learn readable digits from 3,500 in a few minutes: a digit
head on the discriminator (AC-GAN's auxiliary classifier: it learns the digits from the real
images only, never sees the digit asked for, and the generator is held to the one asked for), and
DiffAugment's random shifts and holes on everything the discriminator sees, so it cannot learn the
few real digits by heart. Both losses are on the curves; after each epoch a grid of the same 100
requests (ten of each digit) is written into the run's `samples/` folder, so the run shows its
progress, and the epoch the reader reads best (on 500 requests of their own) is the one kept. The
reader only chooses among epochs: no gradient ever comes from it.

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
# seeds of the grid's requests and of those the kept epoch is chosen on (the held-out ones start at
# 1,000,000: runtime/datasets/mnist_gan.py)
GRID_SEEDS, CHOICE_SEEDS = 10_000_000, 20_000_000
BETA_1 = 0.5  # DCGAN's Adam: the default 0.9 makes the two players oscillate
SHIFT, HOLE = 2, 7  # the discriminator's augmentation: pixels moved each way, the hole's side
DROPOUT = 0.0  # the discriminator's, before its heads
D_RATE = 1.0  # the discriminator's learning rate, as a multiple of the generator's
AUX_WEIGHT = 1.0  # the discriminator's digit head (AC-GAN's auxiliary classifier), in both losses


def build_generator(num_classes: int = CLASSES, latent: int = LATENT, filters: int = 64):
    """Dense(7x7x2f) -> BN -> LeakyReLU -> Conv2DTranspose(f, 4, stride 2) -> BN -> LeakyReLU ->
    Conv2DTranspose(f/2, 4, stride 2) -> BN -> LeakyReLU -> Conv2D(1, 5, tanh): [noise, one-hot
    digit] -> a 28x28 image. The last convolution at full size smooths the transposed ones'
    checkerboard (with a transposed convolution straight to one channel the strokes came out
    broken into dots, and the reader misread them)."""
    import keras
    from keras import layers

    def up(units: int, name: str) -> list:
        # no bias before a batch norm: its own shift replaces it
        return [
            layers.Conv2DTranspose(units, 4, strides=2, padding="same", use_bias=False, name=name),
            layers.BatchNormalization(),
            layers.LeakyReLU(0.2),
        ]

    return keras.Sequential(
        [
            keras.Input((latent + num_classes,), name="noise_and_label"),
            layers.Dense(7 * 7 * 2 * filters, use_bias=False),
            layers.BatchNormalization(),
            layers.LeakyReLU(0.2),
            layers.Reshape((7, 7, 2 * filters)),
            *up(filters, "up1"),
            *up(max(1, filters // 2), "up2"),
            layers.Conv2D(1, 5, padding="same", activation="tanh", name="pixels"),
        ],
        name="cgan_generator",
    )


def build_discriminator(classes: int, filters: int, shape: tuple[int, ...]):
    """(image, one-hot digit) -> [a real-or-generated logit for that digit, ten digit logits]. The
    convolutions see the image alone: Conv(f, 4, stride 2) -> LeakyReLU -> Conv(2f, 4, stride 2) ->
    LeakyReLU -> Flatten. The digit enters only the first head, as a projection discriminator's
    (Miyato & Koyama 2018): a plain Dense(1) plus the features' dot product with the digit's own
    learned vector. The digit head (AC-GAN's) sees the features alone: had the trunk seen the digit
    (as ten image channels, as it first did), the head would read the answer off its input, its loss
    would fall to zero, and it would teach the generator nothing."""
    import keras
    from keras import layers

    image = keras.Input(shape, name="image")
    label = keras.Input((classes,), name="label")
    h = layers.LeakyReLU(0.2)(layers.Conv2D(filters, 4, strides=2, padding="same")(image))
    h = layers.LeakyReLU(0.2)(layers.Conv2D(2 * filters, 4, strides=2, padding="same")(h))
    h = layers.Flatten()(h)
    if DROPOUT:
        h = layers.Dropout(DROPOUT)(h)
    projection = layers.Dot(axes=1)([layers.Dense(h.shape[-1], use_bias=False)(label), h])
    real = layers.Add(name="real")([layers.Dense(1)(h), projection])
    outputs = [real, layers.Dense(classes, name="digit")(h)]
    return keras.Model([image, label], outputs, name="cgan_discriminator")


class _Adversary:
    """What the train step keeps to itself (a plain object: nothing of it is saved with the
    generator): the discriminator and its optimizer."""

    def __init__(self, discriminator: Any, optimizer: Any) -> None:
        self.discriminator = discriminator
        self.optimizer = optimizer


def _scaled(rate: Any, factor: float) -> Any:
    """A learning rate (a number, or a serialised schedule of one) times `factor`."""
    if isinstance(rate, dict):
        config = dict(rate["config"])
        config["initial_learning_rate"] = config["initial_learning_rate"] * factor
        return {**rate, "config": config}
    return float(rate) * factor


def augment(images: Any, shift: int, hole: int) -> Any:
    """DiffAugment's translation and cutout (Zhao et al. 2020), differentiable, each image its own:
    moved by up to `shift` pixels each way (the border filled with the ground, -1), and a
    `hole`-pixel square of it set to the ground. With 3,500 real digits a discriminator learns them
    by heart within a few epochs and its gradients stop meaning anything to the generator (the
    read-back rate then falls back); seen through these, real and generated alike, it does not."""
    import tensorflow as tf

    n, h, w = tf.shape(images)[0], images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [shift, shift], [shift, shift], [0, 0]], constant_values=-1.0)
    dy = tf.random.uniform((n, 1), 0, 2 * shift + 1, dtype=tf.int32)
    dx = tf.random.uniform((n, 1), 0, 2 * shift + 1, dtype=tf.int32)
    moved = tf.gather(padded, dy + tf.range(h)[None], axis=1, batch_dims=1)
    moved = tf.gather(moved, dx + tf.range(w)[None], axis=2, batch_dims=1)
    if not hole:
        return moved
    cy = tf.random.uniform((n, 1, 1, 1), 0, h, dtype=tf.int32)
    cx = tf.random.uniform((n, 1, 1, 1), 0, w, dtype=tf.int32)
    rows = tf.range(h)[None, :, None, None]
    cols = tf.range(w)[None, None, :, None]
    inside = (tf.abs(rows - cy) <= hole // 2) & (tf.abs(cols - cx) <= hole // 2)
    return tf.where(inside, tf.constant(-1.0, images.dtype), moved)


def adversarial_steps(keras, generator: Any) -> dict[str, Any]:
    """The generator's train and test steps against a discriminator made here. A batch is
    (requests [noise, one-hot digit], real images of those digits); the requests' noise is drawn
    afresh each step (a fixed noise per sample would let the generator learn the training set)."""
    import tensorflow as tf

    shape = tuple(generator.outputs[0].shape[1:])
    width = int(generator.inputs[0].shape[-1])
    classes = CLASSES
    latent = width - classes
    filters = max(8, int(generator.get_layer("up1").filters))  # the discriminator's width follows
    optimizer = generator.optimizer
    optimizer.beta_1 = BETA_1
    d_optimizer = type(optimizer).from_config(
        {**optimizer.get_config(), "learning_rate": _scaled(optimizer.get_config()["learning_rate"], D_RATE)}
    )
    adversary = _Adversary(build_discriminator(classes, filters, shape), d_optimizer)
    d_optimizer.build(adversary.discriminator.trainable_variables)
    generator._adversary = adversary  # a plain attribute: Keras neither tracks nor saves it
    # Keras resets the model's metrics at each epoch's start: the logs are the epoch's running means
    generator.d_loss = keras.metrics.Mean(name="d_loss")
    generator.g_loss = keras.metrics.Mean(name="g_loss")
    # the compiled loss's tracker, which `evaluate` reports as "loss": here the generator's loss
    loss = next(m for m in generator.metrics if m.name == "loss")
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    cce = keras.losses.CategoricalCrossentropy(from_logits=True)

    def losses(requests: Any, real: Any, training: bool) -> tuple[Any, Any, Any]:
        onehot = requests[:, latent:]
        n = tf.shape(requests)[0]
        noise = tf.random.normal((n, latent)) if training else requests[:, :latent]
        fake = generator(tf.concat([noise, onehot], axis=1), training=training)
        d = adversary.discriminator
        real = tf.cast(real, fake.dtype)
        if training:  # the discriminator sees both through the same kind of random shifts and holes
            real, fake = augment(real, SHIFT, HOLE), augment(fake, SHIFT, HOLE)
        real_logit, real_digit = d([real, onehot], training=training)
        fake_logit, fake_digit = d([fake, onehot], training=training)
        # one-sided label smoothing (real = 0.9) keeps the discriminator from saturating; its digit
        # head learns the digits from the real images and holds the generator to the one asked for
        d_loss = (
            bce(tf.fill(tf.shape(real_logit), 0.9), real_logit)
            + bce(tf.zeros_like(fake_logit), fake_logit)
            + AUX_WEIGHT * cce(onehot, real_digit)
        )
        g_loss = bce(tf.ones_like(fake_logit), fake_logit) + AUX_WEIGHT * cce(onehot, fake_digit)
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


def requests(model: Any, n: int, first_seed: int) -> np.ndarray:
    """`n` requests for the model (digits in turn, seeds from `first_seed`) as its input vectors."""
    from edgekit.runtime.inputs.labels import LabelsSpec, Request

    spec = LabelsSpec(int(model.inputs[0].shape[-1]) - CLASSES, CLASSES)
    return np.stack([spec.vector(Request(k % CLASSES, first_seed + k)) for k in range(n)])


def pixels(model: Any, x: np.ndarray) -> np.ndarray:
    """The model's images for inputs `x`, as uint8 pixels."""
    return np.clip((np.asarray(model(x, training=False)) + 1.0) * 127.5, 0, 255).astype(np.uint8)


def run_callbacks(keras, folder: Path) -> list:
    """A run's own callbacks: after each epoch, the same 100 requests (ten of each digit, fixed
    noise) as one grid image in `samples/epoch-NN.png`; and the epoch whose samples the reader reads
    best is the one kept, as early stopping keeps the epoch with the best validation loss (a GAN's
    losses say little of how good its images are, and its quality comes and goes from epoch to
    epoch). It is chosen on 500 requests of their own, never the held-out ones, so the held-out
    read-back rate the run reports is measured on requests the choice never saw."""
    from edgekit.fileio import atomic_path
    from edgekit.runtime.tasks.generate import read_back

    grid_requests, choice_requests = {}, {}
    best: dict[str, Any] = {"rate": -1.0, "weights": None, "epoch": 0}

    def end(epoch: int, logs: dict | None) -> None:
        import cv2

        model = callback.model
        if not grid_requests:
            grid_requests["x"] = requests(model, 100, GRID_SEEDS)
            choice_requests["x"] = requests(model, 500, CHOICE_SEEDS)
        grid = pixels(model, grid_requests["x"])[..., 0]
        h, w = grid.shape[1:3]
        # column k: digit k; row r: its r-th noise
        grid = grid.reshape(10, 10, h, w).transpose(0, 2, 1, 3).reshape(10 * h, 10 * w)
        grid = cv2.resize(grid, (20 * w, 20 * h), interpolation=cv2.INTER_NEAREST)
        path = folder / SAMPLES / f"epoch-{epoch + 1:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, keep_suffix=True) as tmp:
            cv2.imwrite(str(tmp), grid)
        read, _ = read_back(pixels(model, choice_requests["x"]))
        rate = float((read == np.arange(len(read)) % CLASSES).mean())
        if logs is not None:
            logs["sample_readback"] = rate  # on the curves and in the history
        if rate > best["rate"]:
            best.update(rate=rate, weights=model.get_weights(), epoch=epoch + 1)

    def done(logs: dict | None) -> None:
        if best["weights"] is not None:
            callback.model.set_weights(best["weights"])

    callback = keras.callbacks.LambdaCallback(on_epoch_end=end, on_train_end=done)
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
            "(Dense 7x7x128, Conv2DTranspose 64 and 32, Conv2D 5x5), trained on the shipped MNIST digits"
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
            epochs=15,  # read-back 0.91 after 5, 0.99 after 12 (the best epoch is kept)
            batch_size=64,
            learning_rate=2e-4,
            schedule="constant",
            loss="mae",  # the compiled loss is unused by the adversarial steps
            keras_metrics=(),
            steps=adversarial_steps,
            callbacks=run_callbacks,
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
            ("Conv2DTranspose", 32),
            ("BatchNormalization", None),
            ("LeakyReLU", None),
            ("Conv2D", 1),
        ),
        tiny=MappingProxyType({"filters": 8}),
    )
)
