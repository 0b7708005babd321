"""The training loop: a recipe and its dataset in; model.keras, card.json, history.json and
curves.png out."""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from edgekit.card import ModelCard, TensorSpec, now_iso, sha256_arrays
from edgekit.errors import ConfigError
from edgekit.fileio import atomic_path, check_writable, write_text
from edgekit.models.recipe import Recipe, get_recipe
from edgekit.plots import confusion_matrix, plot_confusion, plot_curves
from edgekit.runtime.datasets import HELDOUT_SEED, Dataset, Split, load_dataset
from edgekit.runtime.features import features
from edgekit.runtime.files.keras import embed_keras_card
from edgekit.runtime.metrics import class_probabilities
from edgekit.runtime.scoring import evaluate_outputs
from edgekit.runtime.tasks import get_task
from edgekit.tfutil import import_tf

OUTPUT_FILES = ("model.keras", "card.json", "history.json", "curves.png")
CONFUSION_FILE = "confusion.png"  # classifiers only
BACKUP_DIR = ".backup"  # an interrupted run's last epoch, for --resume
BEST_FILE = "best.keras"  # the best epoch on the validation part, where the recipe watches it
# Hyper-parameters every recipe takes that are not its build function's: the training step's own
# (read by `compile_model`), each with its default, which leaves the model as it was without them.
TRAINING_HPARAMS: Mapping[str, Any] = MappingProxyType({"weight_decay": 0.0})


@dataclass(frozen=True)
class TrainResult:
    model_path: Path
    card: ModelCard
    history: dict[str, list[float]]
    seconds: float
    dataset: Dataset


def model_inputs(preprocess: dict[str, Any], input_shape: tuple[int, ...], split: Split) -> np.ndarray:
    """Raw dataset items -> what the Keras model takes, through the runtime's own preprocessing."""
    return features(preprocess, split.x, input_shape)


def card_inputs(card: ModelCard, split: Split) -> np.ndarray:
    """`model_inputs` for a trained model, from its card."""
    return model_inputs(card.preprocess, tuple(card.input.shape[1:]), split)


def training_targets(recipe: Recipe, split: Split, card_like: dict[str, Any]) -> Any:
    """The split's targets as Keras trains on them (the recipe's encoding, or the class indices)."""
    return split.y if recipe.data.targets is None else recipe.data.targets(split, card_like)


def make_card(
    recipe: Recipe,
    model: Any,
    dataset: Dataset,
    hparams: dict[str, Any],
    metrics: dict,
    preprocess: dict[str, Any] | None = None,
) -> ModelCard:
    in_shape = tuple(model.inputs[0].shape[1:])  # the built model's: an hparam may change the size
    out_shape = tuple(model.outputs[0].shape)
    return ModelCard(
        task=recipe.task,
        labels=dataset.labels,
        # the built model's input dtype: int32 token ids for text models, float32 for the rest
        input=TensorSpec(
            recipe.input.name, (None, *in_shape), str(model.inputs[0].dtype), recipe.input.layout
        ),
        output=TensorSpec(recipe.output.name, out_shape, "float32", recipe.output.layout),
        preprocess=dict(recipe.input.preprocess if preprocess is None else preprocess),
        postprocess=postprocess_for(recipe),
        recipe=recipe.name,
        hparams=hparams,
        dataset=dataset.card_entry(),
        metrics=metrics,
        format="keras",
        quantization="fp32",
        weights_sha256=sha256_arrays([np.asarray(w) for w in model.get_weights()]),
        created=now_iso(),
    )


def postprocess_for(recipe: Recipe) -> dict[str, Any]:
    """The card's postprocess entry: the output activation and the recipe's decoding settings."""
    return recipe.output.card_postprocess()


def heldout_metrics(recipe: Recipe, card_like: Any, outputs: Any, y: Any) -> dict[str, float]:
    """The recipe's metrics on raw model outputs, by the same numpy code `evaluate` and export use."""
    return evaluate_outputs(card_like, outputs if isinstance(outputs, list) else [outputs], y)


def epoch_logger(keras, epochs: int):
    """One line per epoch on stderr: the progress display, kept off stdout (which is for results)."""
    started: list[float] = []

    def end(epoch: int, logs: dict | None) -> None:
        parts = [f"{k} {v:.4f}" for k, v in (logs or {}).items() if k != "learning_rate"]
        took = time.perf_counter() - started[-1]
        print(f"epoch {epoch + 1}/{epochs}  " + "  ".join(parts) + f"  ({took:.1f}s)", file=sys.stderr)

    return keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: started.append(time.perf_counter()), on_epoch_end=end
    )


STRATEGIES = ("none", "mirrored", "multiworker")
SAVE_FORMATS = ("keras", "h5")


@dataclass(frozen=True)
class TrainConfig:
    """What the caller chooses for one run, checked when it is made: a bad name or number fails in
    milliseconds, before any data is read or TensorFlow imported.

    `hparams` override the recipe's (e.g. its `tiny` set); `resume` continues a run that was
    interrupted, from its last finished epoch; `strategy` spreads training over devices; `dataset`
    replaces the recipe's own (data already in memory); `refit` trains on the whole training split,
    validation part included, with nothing watched (the tuner's final model, once the choices the
    validation part was for are made); `search` is what `edgekit tune` found, recorded in the card's
    hparams. None: the recipe's default."""

    recipe: str
    out_dir: Path
    data: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    limit: int | None = None
    seed: int = 0
    force: bool = False
    quiet: bool = False
    hparams: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    resume: bool = False
    strategy: str = "none"
    save_format: str = "keras"
    dataset: Dataset | None = None
    refit: bool = False
    search: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        object.__setattr__(self, "hparams", MappingProxyType(dict(self.hparams or {})))
        recipe = get_recipe(self.recipe)  # an unknown name fails before anything else
        if self.save_format not in SAVE_FORMATS:
            raise ConfigError(f"unknown model format {self.save_format!r}: use keras or h5")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy {self.strategy!r}: use {', '.join(STRATEGIES)}")
        if self.epochs is not None and self.epochs < 1:
            raise ConfigError("--epochs must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise ConfigError("--limit must be at least 1")
        check_hparams(recipe, dict(self.hparams))

    @property
    def recipe_entry(self) -> Recipe:
        return get_recipe(self.recipe)

    @property
    def model_path(self) -> Path:
        return self.out_dir / f"model.{self.save_format}"

    @property
    def backup(self) -> Path:
        return self.out_dir / BACKUP_DIR


@dataclass(frozen=True)
class Prepared:
    """The training data as the model will see it, before TensorFlow is imported."""

    hparams: dict[str, Any]  # the recipe's, with the run's overrides
    preprocess: dict[str, Any]  # as declared, or fitted on the training split
    card_like: CardLike
    train: Split  # limited, without the validation part (unless refit), augmented
    # the validation part: its curves, and what early stopping and the plateau schedule watch;
    # None: none (a refit)
    watch: Split | None
    watching: bool = False  # whether early stopping / the plateau schedule act on `watch`

    @property
    def build_hparams(self) -> dict[str, Any]:
        """The hparams the recipe's build function takes (without the training step's own)."""
        return {k: v for k, v in self.hparams.items() if k not in TRAINING_HPARAMS}


@dataclass(frozen=True)
class Arrays:
    """What Keras fits and scores on: (x, y) for training, held-out and the validation pair."""

    x: Any
    y: Any
    heldout_x: Any
    heldout_y: Any
    validation: tuple[Any, Any]


def train(config: TrainConfig | str, out_dir: str | Path | None = None, **options: Any) -> TrainResult:
    """Train a recipe on its dataset and write its files into the run's folder.

    Takes a `TrainConfig`, or its fields as `train("mnist-cnn", out_dir, epochs=2, ...)`, which builds
    one (the short form the tests use)."""
    if not isinstance(config, TrainConfig):
        config = TrainConfig(config, Path(out_dir) if out_dir is not None else None, **options)
    elif out_dir is not None or options:
        raise TypeError("train(config) takes nothing else: put the settings into the TrainConfig")
    recipe = config.recipe_entry
    prepare_out_dir(config, recipe)
    dataset = load_data(config, recipe)
    data = prepare_data(config, recipe, dataset)

    tf, keras = import_tf()
    keras.utils.set_random_seed(config.seed)
    scope, replicas = distribution(tf, config.strategy)
    with scope():
        model = recipe.build(num_classes=len(dataset.labels), **data.build_hparams)
    arrays = model_arrays(recipe, model, data, dataset)
    epochs = config.epochs or recipe.training.epochs
    batch_size = config.batch_size or recipe.training.batch_size
    with scope():
        compile_model(
            keras,
            recipe,
            model,
            epochs,
            steps_per_epoch=-(-len(arrays.x) // batch_size),
            weight_decay=float(data.hparams.get("weight_decay", 0.0)),
        )
    history, seconds = fit_model(keras, config, recipe, model, arrays, data, epochs, batch_size)
    raw_out, metrics = evaluate(config, recipe, model, arrays, data, dataset, history, epochs, seconds)
    run = run_hparams(config, recipe, data, epochs, batch_size, replicas)
    card = make_card(recipe, model, dataset, run, metrics, data.preprocess)
    write_outputs(config, recipe, model, card, history, dataset, data.card_like, raw_out)
    shutil.rmtree(config.backup, ignore_errors=True)  # the run is whole: nothing left to resume
    return TrainResult(config.model_path, card, history, seconds, dataset)


def output_names(config: TrainConfig, recipe: Recipe) -> list[str]:
    """The files a run of this recipe writes into its folder."""
    outputs = [config.model_path.name, *OUTPUT_FILES[1:]]
    if get_task(recipe.task).classifies:
        outputs.append(CONFUSION_FILE)
    if recipe.training.watches_slice:
        outputs.append(BEST_FILE)
    return outputs


def prepare_out_dir(config: TrainConfig, recipe: Recipe) -> None:
    """Refuse a folder that would lose files or an interrupted run, before the minutes of training;
    with --force (and no --resume), clear an old interrupted run's backup."""
    out_dir, backup = config.out_dir, config.backup
    if backup.exists() and not config.resume and not config.force:
        raise ConfigError(
            f"{out_dir} holds an interrupted run: pass --resume to continue it, or --force to start over"
        )
    if config.resume and not backup.exists():
        raise ConfigError(f"there is no interrupted run in {out_dir} to resume (no {BACKUP_DIR}/)")
    for name in output_names(config, recipe):
        check_writable(out_dir / name, force=config.force or config.resume)
    if config.force and not config.resume and backup.exists():
        shutil.rmtree(backup)


def load_data(config: TrainConfig, recipe: Recipe) -> Dataset:
    """The run's dataset (given in memory, or loaded from --data or the recipe's default)."""
    dataset = config.dataset if config.dataset is not None else load_dataset(recipe.data.dataset, config.data)
    if not config.quiet:
        print(
            f"data: {dataset.description}: {len(dataset.train)} training "
            f"({len(dataset.validation_index)} of them the validation part), "
            f"{len(dataset.heldout)} held-out samples",
            file=sys.stderr,
        )
    return dataset


def prepare_data(config: TrainConfig, recipe: Recipe, dataset: Dataset) -> Prepared:
    """Limit the training part, fit the preprocessing on it, set the validation part beside it,
    augment."""
    # Early stopping chooses the epoch whose weights are kept, so the data it watches takes part in
    # training decisions. It must not be the held-out split: that one is kept untouched for the
    # final report and for the exporter's parity and accuracy checks, which would otherwise be
    # measured on data the training was tuned on. So it watches the dataset's validation part (a
    # fixed 1/8 of the training split), kept apart before augmentation (no shifted copy of a
    # validation image is trained on). A refit trains on both parts and watches nothing.
    if config.refit:
        return prepare_split(config, recipe, dataset.labels, dataset.train.head(config.limit), None)
    return prepare_split(
        config,
        recipe,
        dataset.labels,
        dataset.fit.head(config.limit),
        dataset.validation.head(validation_limit(config.limit)),
    )


def prepare_split(
    config: TrainConfig, recipe: Recipe, labels: tuple[str, ...], train_split: Split, watch: Split | None
) -> Prepared:
    """`prepare_data` on given parts: what the weights are fitted on and what is watched (the
    validation part; a fold of cross-validation in `edgekit tune`; None: nothing)."""
    hparams = {**dict(recipe.hparams), **config.hparams}
    watching = recipe.training.watches_slice and watch is not None
    if watch is not None and len(watch) == 0:  # too few samples for a validation part
        watch = None
        if recipe.training.watches_slice:  # a slice of what there is, as before the three-way split
            train_split, watch = validation_slice(train_split, recipe.training.validation_fraction)
    preprocess = dict(recipe.input.preprocess)
    if recipe.input.fit_preprocess is not None:  # fitted on the training data only, never the held-out
        preprocess = recipe.input.fit_preprocess(train_split, preprocess, hparams)
    card_like = CardLike(recipe.task, labels, preprocess, postprocess_for(recipe))
    if recipe.data.augment is not None:
        extra = recipe.data.augment(train_split.x, np.random.default_rng(config.seed))
        train_split = Split(
            np.concatenate([train_split.x, extra]), np.concatenate([train_split.y, train_split.y])
        )
    return Prepared(hparams, preprocess, card_like, train_split, watch, watching)


def validation_limit(limit: int | None) -> int | None:
    """How much of the validation part a run limited to `limit` training samples scores on: the
    same 1:7 as the whole (a quick --limit run does not score on thousands)."""
    return None if limit is None else max(1, -(-limit // 7))


def model_arrays(recipe: Recipe, model: Any, data: Prepared, dataset: Dataset) -> Arrays:
    """The splits through the runtime's preprocessing, at the built model's input size."""
    in_shape = tuple(model.inputs[0].shape[1:])
    x = model_inputs(data.preprocess, in_shape, data.train)
    y = training_targets(recipe, data.train, data.card_like)
    xv = model_inputs(data.preprocess, in_shape, dataset.heldout)
    yv = training_targets(recipe, dataset.heldout, data.card_like)
    # the validation part's curves are drawn always, acted on only where the recipe watches them;
    # the held-out split is never fitted against (None: a refit, which has no validation part)
    validation = (
        None
        if data.watch is None
        else (
            model_inputs(data.preprocess, in_shape, data.watch),
            training_targets(recipe, data.watch, data.card_like),
        )
    )
    return Arrays(x, y, xv, yv, validation)


def compile_model(
    keras, recipe: Recipe, model: Any, epochs: int, steps_per_epoch: int, weight_decay: float = 0.0
) -> None:
    """Adam on the recipe's learning-rate schedule (with decoupled weight decay where the run's
    `weight_decay` hparam asks for it), its loss and the metrics Keras tracks."""
    lr = learning_rate(keras, recipe, epochs * steps_per_epoch, steps_per_epoch)
    training = recipe.training
    loss = training.loss() if callable(training.loss) else training.loss
    metrics = (
        list(training.keras_metrics) if training.keras_metrics is not None else [recipe.evaluation.metric]
    )
    # 0 leaves Adam as it was (no decay term at all), so the default model is unchanged
    optimizer = keras.optimizers.Adam(lr, weight_decay=weight_decay or None)
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)


def callbacks_for(
    keras, config: TrainConfig, recipe: Recipe, watching: bool, epochs: int, resumed: Resumed | None
) -> list:
    """Progress, each epoch's randomness, the watched slice's checkpoint, plateau schedule and early
    stopping, then the backup an interrupted run resumes from (last: what it saves at an epoch's
    end has seen that epoch's end everywhere else; `resumed`: what it restores)."""
    training = recipe.training
    callbacks = [] if config.quiet else [epoch_logger(keras, epochs)]
    callbacks.append(epoch_randomness(keras, config.seed))
    if watching:  # the best epoch on the watched slice (never on the held-out split)
        callbacks.append(
            keras.callbacks.ModelCheckpoint(
                str(config.out_dir / BEST_FILE), monitor="val_loss", save_best_only=True
            )
        )
    if training.schedule == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss" if watching else "loss",  # a refit has no validation part
                factor=training.decay_rate,
                patience=2,
                min_lr=training.learning_rate / 100,
            )
        )
    if watching and training.early_stopping_patience is not None:  # a plateau schedule alone: no stop
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=training.early_stopping_patience, restore_best_weights=True
            )
        )
    callbacks.append(epoch_backup(keras, config.backup, config.seed, callbacks, resumed))
    return callbacks


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


def fit_model(
    keras,
    config: TrainConfig,
    recipe: Recipe,
    model: Any,
    arrays: Arrays,
    data: Prepared,
    epochs: int,
    batch_size: int,
) -> tuple[dict[str, list[float]], float]:
    """(the history from epoch 1, resumed runs included; the seconds this fit took)."""
    resumed = resume_state(keras, config, model) if config.resume else None
    first = resumed.epoch if resumed is not None else 0
    callbacks = callbacks_for(keras, config, recipe, data.watching, epochs, resumed)
    config.out_dir.mkdir(parents=True, exist_ok=True)
    tf, _ = import_tf()
    t0 = time.perf_counter()
    fit = model.fit(
        epoch_batches(tf, arrays.x, arrays.y, batch_size, config.seed, first, epochs),
        epochs=epochs,
        initial_epoch=first,
        shuffle=False,  # the batches are already in their (seed, epoch) order
        steps_per_epoch=-(-len(tf.nest.flatten(arrays.x)[0]) // batch_size),
        validation_data=arrays.validation,
        verbose=0,
        callbacks=callbacks,
    )
    seconds = time.perf_counter() - t0
    earlier = resumed.history if resumed is not None else {}
    history = {k: earlier.get(k, []) + [float(v) for v in vs] for k, vs in fit.history.items()}
    return history, seconds


def evaluate(
    config: TrainConfig,
    recipe: Recipe,
    model: Any,
    arrays: Arrays,
    data: Prepared,
    dataset: Dataset,
    history: dict[str, list[float]],
    epochs: int,
    seconds: float,
) -> tuple[Any, dict[str, Any]]:
    """(the raw held-out outputs, the card's metrics): the recipe's metrics by the runtime's numpy
    code, the held-out loss, and how the run went."""
    raw_out = model.predict(arrays.heldout_x, verbose=0, batch_size=256)
    scores = heldout_metrics(recipe, data.card_like, raw_out, dataset.heldout.y)
    heldout_loss = model.evaluate(
        arrays.heldout_x, arrays.heldout_y, verbose=0, batch_size=256, return_dict=True
    )
    # per-class scores (a classifier's `per_class`) come along as `heldout_per_class`
    metrics: dict[str, Any] = {f"heldout_{k}": v for k, v in scores.items() if not isinstance(v, list)}
    metrics["heldout_loss"] = float(heldout_loss["loss"])
    metric = recipe.evaluation.metric
    if metric in history:
        metrics[f"train_{metric}"] = history[metric][-1]
    metrics.update(epochs=epochs, train_seconds=round(seconds, 2), seed=config.seed)
    if config.resume:
        metrics["resumed"] = True
    if data.watching:
        metrics["epochs_run"] = len(history["loss"])
        metrics["best_epoch"] = int(np.argmin(history["val_loss"])) + 1
    return raw_out, metrics


def run_hparams(
    config: TrainConfig, recipe: Recipe, data: Prepared, epochs: int, batch_size: int, replicas: int
) -> dict[str, Any]:
    """The card's hparams: the build's, then how this run trained."""
    training = recipe.training
    extra: dict[str, Any] = {}
    if training.schedule in ("exponential", "plateau"):
        extra.update(decay_rate=training.decay_rate, decay_epochs=training.decay_epochs)
    if data.watching and data.watch is not None:
        extra.update(early_stopping_patience=training.early_stopping_patience)
    if config.refit:
        extra.update(validation="none: trained on the whole training split (refit), not held-out")
    elif data.watch is not None:
        extra.update(validation=f"{len(data.watch)} training samples (the validation part), not held-out")
    if config.search is not None:
        extra.update(search=dict(config.search))
    if config.strategy != "none":
        extra.update(strategy=config.strategy, replicas=replicas)
    return {
        **data.hparams,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": training.learning_rate,
        "schedule": training.schedule,
        "augment": getattr(recipe.data.augment, "__name__", None),
        "limit": config.limit,
        **extra,
    }


def write_outputs(
    config: TrainConfig,
    recipe: Recipe,
    model: Any,
    card: ModelCard,
    history: dict[str, list[float]],
    dataset: Dataset,
    card_like: CardLike,
    raw_out: Any,
) -> None:
    """The model, its card, the history and the plots, each written whole or not at all."""
    out_dir = config.out_dir
    with atomic_path(config.model_path, keep_suffix=True) as tmp:
        model.save(tmp)
        embed_keras_card(tmp, card)  # the card travels inside model.keras too: one file is enough
    write_text(out_dir / "card.json", card.to_json(indent=2))
    write_text(out_dir / "history.json", json.dumps(history, indent=2))
    plot_curves(
        history, out_dir / "curves.png", title=f"{recipe.name} on {dataset.name}", val_label="validation"
    )
    if get_task(recipe.task).classifies:
        matrix = confusion_matrix(
            class_probabilities(card_like, first(raw_out)).argmax(1), dataset.heldout.y, len(dataset.labels)
        )
        plot_confusion(matrix, dataset.labels, out_dir / CONFUSION_FILE, title=f"{recipe.name}: held-out")


def hparam_defaults(recipe: Recipe) -> dict[str, Any]:
    """Every hyper-parameter the recipe takes, with its default (the recipe's own where it sets one,
    else the build function's; `inspect.Parameter.empty` for none): what --set and tune accept."""
    params = inspect.signature(recipe.build).parameters
    known = {n: p.default for n, p in params.items() if n != "num_classes" and p.kind is not p.VAR_KEYWORD}
    known.update(TRAINING_HPARAMS)
    known.update(recipe.hparams)
    return known


def check_hparams(recipe: Recipe, overrides: dict[str, Any]) -> dict[str, Any]:
    """Overrides whose names the recipe takes, each of its default's type; an unknown name or a
    value of the wrong type fails here, before any data is read."""
    params = inspect.signature(recipe.build).parameters
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    known = hparam_defaults(recipe)
    unknown = [n for n in overrides if n not in known]
    if unknown and not open_ended:
        takes = ", ".join(known) or "none"
        raise ConfigError(f"recipe {recipe.name} has no hyper-parameter {unknown[0]!r}: it takes {takes}")
    for name, value in overrides.items():
        check_hparam_type(recipe, name, known.get(name, inspect.Parameter.empty), value)
    return overrides


def check_hparam_type(recipe: Recipe, name: str, default: Any, value: Any) -> None:
    """A value of the default's kind: a number where a number is expected (an int where an int
    is), text where text is, true/false where a flag is. A default of None or none says nothing."""
    kinds: dict[type, tuple[type, ...]] = {bool: (bool,), int: (int,), float: (int, float), str: (str,)}
    accepted = kinds.get(type(default))
    if accepted is None:
        return
    if isinstance(value, bool) and type(default) is not bool or not isinstance(value, accepted):
        want = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}[type(default)]
        raise ConfigError(
            f"hyper-parameter {name!r} of recipe {recipe.name} takes {want} (like {default!r}), not {value!r}"
        )


STATE_FILE = "state.json"  # inside the backup: the last finished epoch, and what goes with it
# the watching callbacks' counters, saved with each epoch so a resumed run stops and lowers its
# learning rate when the run never stopped would (each resets them as it starts)
CALLBACK_STATE = ("wait", "best", "best_epoch", "cooldown_counter", "stopped_epoch")


@dataclass(frozen=True)
class Resumed:
    """What an interrupted run's backup holds: the epochs done, their history, the callbacks'
    counters in order (the keeper restores them when the fit starts)."""

    epoch: int
    history: dict[str, list[float]]
    callbacks: dict[str, dict[str, Any]]  # by the callback's class name
    best_weights: list[Any] | None  # early stopping's best so far (from best.keras), if any


def epoch_backup(keras, backup: Path, seed: int, callbacks: list, resumed: Resumed | None):
    """At each epoch's end: the weights and optimizer state into `epoch-N.weights.h5`, then (one
    atomic write, after the weights are on disk) `state.json` naming that epoch, with the history
    so far and the callbacks' counters. A kill at any moment leaves a state that names a whole
    weights file of its own epoch; the randomness and the batch order are (seed, epoch)'s."""
    history = {k: list(v) for k, v in (resumed.history if resumed is not None else {}).items()}

    def begin(logs: dict | None) -> None:
        if resumed is None:
            return
        for callback in callbacks:
            for name, value in resumed.callbacks.get(type(callback).__name__, {}).items():
                setattr(callback, name, value)
            if resumed.best_weights is not None and hasattr(callback, "best_weights"):
                callback.best_weights = resumed.best_weights

    def end(epoch: int, logs: dict | None) -> None:
        for k, v in (logs or {}).items():
            history.setdefault(k, []).append(float(v))
        backup.mkdir(parents=True, exist_ok=True)
        weights = backup / f"epoch-{epoch + 1}.weights.h5"
        keeper.model.save_weights(weights, overwrite=True)
        with weights.open("rb") as f:
            os.fsync(f.fileno())
        counters = {
            type(c).__name__: {n: _plain(getattr(c, n)) for n in CALLBACK_STATE if hasattr(c, n)}
            for c in callbacks
            if any(hasattr(c, n) for n in CALLBACK_STATE)
        }
        state = {"epoch": epoch + 1, "seed": seed, "history": history, "callbacks": counters}
        write_text(backup / STATE_FILE, json.dumps(state))
        for old in backup.glob("epoch-*.weights.h5"):
            if old != weights:
                old.unlink(missing_ok=True)

    keeper = keras.callbacks.LambdaCallback(on_train_begin=begin, on_epoch_end=end)
    return keeper


def _plain(value: Any) -> Any:
    return (
        float(value)
        if isinstance(value, float | np.floating)
        else int(value)
        if isinstance(value, np.integer)
        else value
    )


def resume_state(keras, config: TrainConfig, model: Any) -> Resumed:
    """Load an interrupted run's last finished epoch into `model` (weights and optimizer state);
    refuse a backup that is damaged or was made with another --seed."""
    backup = config.backup
    try:
        state = json.loads((backup / STATE_FILE).read_text())
        epoch, seed = int(state["epoch"]), int(state["seed"])
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)  # its variables must exist to be loaded
        model.load_weights(backup / f"epoch-{epoch}.weights.h5")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(
            f"the interrupted run in {config.out_dir} cannot be resumed: its backup is damaged or "
            f"from an older edgekit ({getattr(e, 'strerror', None) or e}); pass --force to start over"
        ) from None
    if seed != config.seed:
        raise ConfigError(
            f"the interrupted run in {config.out_dir} was started with --seed {seed}: resume it with "
            f"--seed {seed} (or pass --force to start over)"
        )
    best = config.out_dir / BEST_FILE
    best_weights = None
    if best.exists() and "EarlyStopping" in state["callbacks"]:
        best_weights = keras.saving.load_model(best, compile=False).get_weights()
    history = {k: [float(x) for x in v] for k, v in state["history"].items()}
    return Resumed(epoch, history, state["callbacks"], best_weights)


@dataclass(frozen=True)
class CardLike:
    """What metrics and target encoders read of a card, before the card itself exists."""

    task: str
    labels: tuple[str, ...]
    preprocess: dict[str, Any]
    postprocess: dict[str, Any]


def first(outputs: Any) -> np.ndarray:
    return outputs[0] if isinstance(outputs, list | tuple) else outputs


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


def distribution(tf, strategy: str) -> tuple[Callable[[], Any], int]:
    """(a function giving the scope to build and compile in, the number of replicas) for `--strategy`."""
    if strategy == "none":
        return contextlib.nullcontext, 1
    if strategy == "mirrored":
        # every GPU of this machine; with none, every logical CPU device (one unless configured)
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
        chosen = tf.distribute.MirroredStrategy(devices=devices)
    else:
        if not os.environ.get("TF_CONFIG"):
            raise ConfigError(
                "--strategy multiworker reads the cluster from the TF_CONFIG environment variable, which "
                'is not set: e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                '"task": {"type": "worker", "index": 0}}\''
            )
        try:
            json.loads(os.environ["TF_CONFIG"])
        except ValueError as e:
            raise ConfigError(f"TF_CONFIG is not valid JSON: {e}") from None
        chosen = tf.distribute.MultiWorkerMirroredStrategy()
    return chosen.scope, int(chosen.num_replicas_in_sync)


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
