"""One training step: a recipe's data prepared, its model built and compiled, the callbacks that
watch the validation part, each epoch's randomness and batch order, and the fit.

`train` (one run: its config, resume, outputs and card) and `tune` (a search: each trial, each
fold) both train through a `Step`, so a trial trains exactly as the final run does: the same
preprocessing fitted on the training part only, the same learning-rate schedule over the same
number of steps, the same early stopping, the same batches in the same order for the same seed."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from edgekit.errors import ConfigError
from edgekit.models.recipe import Recipe
from edgekit.runtime.datasets import HELDOUT_SEED, Dataset, Split
from edgekit.runtime.features import model_inputs
from edgekit.tfutil import import_tf

# Hyper-parameters every recipe takes that are not its build function's: the training step's own
# (read by `Step.compile`), each with its default, which leaves the model as it was without them.
TRAINING_HPARAMS: Mapping[str, Any] = MappingProxyType({"weight_decay": 0.0})


@dataclass(frozen=True)
class CardLike:
    """What metrics and target encoders read of a card, before the card itself exists."""

    task: str
    labels: tuple[str, ...]
    preprocess: dict[str, Any]
    postprocess: dict[str, Any]


@dataclass(frozen=True)
class Prepared:
    """The training data as the model will see it, before TensorFlow is imported."""

    preprocess: dict[str, Any]  # as declared, or fitted on the training part
    card_like: CardLike
    train: Split  # what the weights are fitted on, augmented
    # what is watched: the validation part (a fold in `edgekit tune --folds`), for its curves and
    # for early stopping and the plateau schedule; None: nothing (a refit)
    watch: Split | None
    watching: bool = False  # whether early stopping / the plateau schedule act on `watch`


@dataclass(frozen=True)
class Arrays:
    """What Keras fits and scores on: (x, y) for training, the validation pair and, for a run's
    report, the held-out pair (None in a search's trials, which never look at it)."""

    x: Any
    y: Any
    validation: tuple[Any, Any] | None
    heldout_x: Any = None
    heldout_y: Any = None


def postprocess_for(recipe: Recipe) -> dict[str, Any]:
    """The card's postprocess entry: the output activation and the recipe's decoding settings."""
    return recipe.output.card_postprocess()


def training_targets(recipe: Recipe, split: Split, card_like: CardLike) -> Any:
    """The split's targets as Keras trains on them (the recipe's encoding, or the class indices)."""
    return split.y if recipe.data.targets is None else recipe.data.targets(split, card_like)


def validation_limit(limit: int | None) -> int | None:
    """How much of the validation part a run limited to `limit` training samples scores on: the
    same 1:7 as the whole (a quick --limit run does not score on thousands)."""
    return None if limit is None else max(1, -(-limit // 7))


def run_parts(dataset: Dataset, limit: int | None, refit: bool = False) -> tuple[Split, Split | None]:
    """(what the weights are fitted on, what is watched) of a run or a trial on `dataset`.

    Early stopping chooses the epoch whose weights are kept, so the data it watches takes part in
    training decisions. It must not be the held-out split: that one is kept untouched for the
    final report and for the exporter's parity and accuracy checks, which would otherwise be
    measured on data the training was tuned on. So it watches the dataset's validation part (a
    fixed 1/8 of the training split), kept apart before augmentation (no shifted copy of a
    validation image is trained on). A refit trains on both parts and watches nothing."""
    if refit:
        return dataset.train.head(limit), None
    return dataset.fit.head(limit), dataset.validation.head(validation_limit(limit))


def validation_slice(split: Split, fraction: float) -> tuple[Split, Split]:
    """(the rest, a fixed `fraction` of `split`) for early stopping; the same samples every run."""
    if not 0 < fraction < 1:
        raise ConfigError(f"validation_fraction must be between 0 and 1, not {fraction}")
    n = max(1, round(len(split) * fraction))
    if len(split) - n < 1:
        raise ConfigError(f"{len(split)} training samples are too few to keep {n} aside for early stopping")
    # a fixed permutation rather than the tail: some loaders keep their files' order (class-sorted folders)
    order = np.random.default_rng(HELDOUT_SEED + 2).permutation(len(split))
    rest, watch = np.sort(order[n:]), np.sort(order[:n])
    return Split(split.x[rest], split.y[rest]), Split(split.x[watch], split.y[watch])


@dataclass(frozen=True)
class Step:
    """A recipe trained one way: its hyper-parameters (the recipe's, with the overrides), epochs,
    batch size and seed. `train` makes one per run, `tune` one per trial."""

    recipe: Recipe
    labels: tuple[str, ...]
    hparams: Mapping[str, Any]
    epochs: int
    batch_size: int
    seed: int = 0
    # what the data says about its inputs (a table's units and cleaning choices), over the
    # recipe's declared preprocess, before it is fitted
    given: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of(
        cls,
        recipe: Recipe,
        dataset: Dataset,
        overrides: Mapping[str, Any] | None = None,
        *,
        epochs: int | None = None,
        batch_size: int | None = None,
        seed: int = 0,
    ) -> Step:
        """The step of `recipe` (as it adapts to the data) on `dataset`, with `overrides` over the
        recipe's hparams; None: the recipe's epochs and batch size."""
        recipe = recipe.for_data(dataset)
        return cls(
            recipe,
            tuple(dataset.labels),
            MappingProxyType({**dict(recipe.hparams), **dict(overrides or {})}),
            epochs or recipe.training.epochs,
            batch_size or recipe.training.batch_size,
            seed,
            MappingProxyType(dict(dataset.preprocess)),
        )

    @property
    def build_hparams(self) -> dict[str, Any]:
        """The hparams the recipe's build function takes (without the training step's own)."""
        return {k: v for k, v in self.hparams.items() if k not in TRAINING_HPARAMS}

    # -- data ----------------------------------------------------------------------------------

    def prepare(self, train_split: Split, watch: Split | None) -> Prepared:
        """Fit the preprocessing on the training part (never on what is watched or held out), set
        the watched part beside it, augment."""
        recipe = self.recipe
        watching = recipe.training.watches_slice and watch is not None
        if watch is not None and len(watch) == 0:  # too few samples for a validation part
            watch = None
            if recipe.training.watches_slice:  # a slice of what there is, as before the three-way split
                train_split, watch = validation_slice(train_split, recipe.training.validation_fraction)
        preprocess = {**recipe.input.preprocess, **self.given}
        if recipe.input.fit_preprocess is not None:  # fitted on the training data only
            preprocess = recipe.input.fit_preprocess(train_split, preprocess, dict(self.hparams))
        card_like = CardLike(recipe.task, self.labels, preprocess, postprocess_for(recipe))
        if recipe.data.augment is not None:
            extra = recipe.data.augment(train_split.x, np.random.default_rng(self.seed))
            train_split = Split(
                np.concatenate([train_split.x, extra]), np.concatenate([train_split.y, train_split.y])
            )
        return Prepared(preprocess, card_like, train_split, watch, watching)

    def arrays(self, model: Any, data: Prepared, heldout: Split | None = None) -> Arrays:
        """The parts through the runtime's preprocessing, at the built model's input size."""
        in_shape = tuple(model.inputs[0].shape[1:])

        def pair(split: Split) -> tuple[Any, Any]:
            x = model_inputs(data.preprocess, in_shape, split)
            return x, training_targets(self.recipe, split, data.card_like)

        x, y = pair(data.train)
        # the validation part's curves are drawn always, acted on only where the recipe watches
        # them; the held-out split is never fitted against (None: a refit, which has none)
        validation = None if data.watch is None else pair(data.watch)
        heldout_x, heldout_y = pair(heldout) if heldout is not None else (None, None)
        return Arrays(x, y, validation, heldout_x, heldout_y)

    # -- model ---------------------------------------------------------------------------------

    def build(self, keras, data: Prepared, scope: Callable[[], Any] = contextlib.nullcontext) -> Any:
        """The recipe's model, from the step's seed, built and compiled inside `scope` (a
        distribution strategy's), its learning-rate schedule spanning the step's batches."""
        keras.utils.set_random_seed(self.seed)
        with scope():
            model = self.recipe.build_for(data.preprocess, len(self.labels), **self.build_hparams)
            self.compile(keras, model, steps_per_epoch=-(-len(data.train) // self.batch_size))
        return model

    def compile(self, keras, model: Any, steps_per_epoch: int) -> None:
        """Adam on the recipe's learning-rate schedule (with decoupled weight decay where the
        `weight_decay` hparam asks for it), its loss and the metrics Keras tracks."""
        recipe = self.recipe
        lr = learning_rate(keras, recipe, self.epochs * steps_per_epoch, steps_per_epoch)
        training = recipe.training
        loss = training.loss() if callable(training.loss) else training.loss
        metrics = (
            list(training.keras_metrics) if training.keras_metrics is not None else [recipe.evaluation.metric]
        )
        # 0 leaves Adam as it was (no decay term at all), so the default model is unchanged
        weight_decay = float(self.hparams.get("weight_decay", 0.0))
        optimizer = keras.optimizers.Adam(lr, weight_decay=weight_decay or None)
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics)

    # -- fit -----------------------------------------------------------------------------------

    def callbacks(self, keras, data: Prepared, checkpoint: Path | None = None) -> list:
        """Each epoch's randomness, then, where the recipe watches the validation part, the best
        epoch's checkpoint (`checkpoint`: a run's best.keras), the plateau schedule and early
        stopping."""
        training = self.recipe.training
        callbacks = [epoch_randomness(keras, self.seed)]
        if data.watching and checkpoint is not None:  # the best epoch on the watched part
            callbacks.append(
                keras.callbacks.ModelCheckpoint(str(checkpoint), monitor="val_loss", save_best_only=True)
            )
        if training.schedule == "plateau":
            callbacks.append(
                keras.callbacks.ReduceLROnPlateau(
                    monitor="val_loss" if data.watching else "loss",  # a refit has no validation part
                    factor=training.decay_rate,
                    patience=2,
                    min_lr=training.learning_rate / 100,
                )
            )
        if data.watching and training.early_stopping_patience is not None:  # plateau alone: no stop
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor="val_loss", patience=training.early_stopping_patience, restore_best_weights=True
                )
            )
        return callbacks

    def fit(
        self, model: Any, arrays: Arrays, callbacks: list, first: int = 0, epochs: int | None = None
    ) -> dict[str, list[float]]:
        """Epochs `first`..`epochs`-1 (default: the step's), each in its (seed, epoch) batch order;
        the history of those epochs."""
        tf, _ = import_tf()
        epochs = self.epochs if epochs is None else epochs
        fit = model.fit(
            epoch_batches(tf, arrays.x, arrays.y, self.batch_size, self.seed, first, epochs),
            epochs=epochs,
            initial_epoch=first,
            shuffle=False,  # the batches are already in their (seed, epoch) order
            steps_per_epoch=-(-len(tf.nest.flatten(arrays.x)[0]) // self.batch_size),
            validation_data=arrays.validation,
            verbose=0,
            callbacks=callbacks,
        )
        return {k: [float(v) for v in vs] for k, vs in fit.history.items()}


def learning_rate(keras, recipe: Recipe, total_steps: int, steps_per_epoch: int):
    """The recipe's learning rate: a float, or a schedule over the run's steps."""
    training = recipe.training
    lr = training.learning_rate
    if training.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, total_steps))
    if training.schedule == "exponential":
        steps = max(1, round(training.decay_epochs * steps_per_epoch))
        return keras.optimizers.schedules.ExponentialDecay(
            lr, decay_steps=steps, decay_rate=training.decay_rate
        )
    if training.schedule in ("constant", "plateau"):  # plateau: ReduceLROnPlateau lowers it
        return lr
    raise ConfigError(f"recipe {recipe.name} has an unknown schedule {training.schedule!r}")


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """The seed of one epoch's randomness (`stream` tells its users apart): a function of the run's
    seed and the epoch alone, so an epoch after a resume draws what it would have drawn in a run
    never stopped, with no random state to save."""
    return int(np.random.default_rng([seed, epoch, stream]).integers(2**31 - 1))


def epoch_randomness(keras, seed: int):
    """At each epoch's start, every random source training draws from is set from (seed, epoch):
    Python's, numpy's and TensorFlow's global generators and the model's own seed generators
    (dropout, augmentation layers), whose state no checkpoint of Keras's keeps."""

    def begin(epoch: int, logs: dict | None) -> None:
        keras.utils.set_random_seed(epoch_seed(seed, epoch))
        for i, state in enumerate(seed_states(callback.model)):
            state.assign(np.array([epoch_seed(seed, epoch, i + 1), 0], dtype=state.dtype))

    callback = keras.callbacks.LambdaCallback(on_epoch_begin=begin)
    return callback


def seed_states(model: Any) -> list[Any]:
    """The state variables of the model's seed generators (Keras keeps them among its variables,
    outside its weights and its checkpoints)."""
    return [v for v in model.variables if v.name == "seed_generator_state"]


def epoch_batches(tf, x: Any, y: Any, batch_size: int, seed: int, first: int, epochs: int):
    """The training batches of epochs `first`..`epochs`-1, each epoch in its own order, a function
    of (seed, epoch) alone: a resumed run sees the batches the uninterrupted one saw. (Keras's own
    shuffle draws each epoch's order from a generator that starts afresh with every fit.)"""
    n = len(tf.nest.flatten(x)[0])

    def order(epoch):
        pair = tf.stack([tf.constant(seed, tf.int64), epoch])
        shuffled = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=pair)
        return tf.data.Dataset.from_tensor_slices(shuffled).batch(batch_size)

    indices = tf.data.Dataset.range(first, epochs).flat_map(order)
    data = tf.data.Dataset.from_tensors((x, y)).repeat()

    def take(index, both):
        return tf.nest.map_structure(lambda t: tf.gather(t, index), both)

    return tf.data.Dataset.zip((indices, data)).map(take, num_parallel_calls=tf.data.AUTOTUNE).prefetch(1)
