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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.card import ModelCard, TensorSpec, now_iso, sha256_arrays
from edgekit.errors import ConfigError
from edgekit.fileio import atomic_path, check_writable, write_text
from edgekit.models.recipe import Recipe, get_recipe
from edgekit.plots import confusion_matrix, plot_confusion, plot_curves
from edgekit.runtime.datasets import HELDOUT_SEED, Dataset, Split, load_dataset
from edgekit.runtime.features import features
from edgekit.runtime.metrics import class_probabilities
from edgekit.runtime.scoring import evaluate_outputs
from edgekit.runtime.tasks import get_task
from edgekit.tfutil import import_tf

OUTPUT_FILES = ("model.keras", "card.json", "history.json", "curves.png")
CONFUSION_FILE = "confusion.png"  # classifiers only
BACKUP_DIR = ".backup"  # an interrupted run's last epoch, for --resume
BEST_FILE = "best.keras"  # the best epoch on the watched slice, where the recipe watches one


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
    return split.y if recipe.targets is None else recipe.targets(split, card_like)


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
            recipe.input_name, (None, *in_shape), str(model.inputs[0].dtype), recipe.input_layout
        ),
        output=TensorSpec(recipe.output_name, out_shape, "float32", recipe.output_layout),
        preprocess=dict(recipe.preprocess if preprocess is None else preprocess),
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
    return {"activation": recipe.output_activation, **dict(recipe.postprocess)}


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


def train(
    recipe_name: str,
    out_dir: Path,
    *,
    data: str | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    limit: int | None = None,
    seed: int = 0,
    force: bool = False,
    quiet: bool = False,
    hparams: dict[str, Any] | None = None,
    resume: bool = False,
    strategy: str = "none",
    save_format: str = "keras",
    dataset: Dataset | None = None,
) -> TrainResult:
    """Train a recipe on its dataset and write its files into `out_dir`.

    `hparams` override the recipe's (e.g. its `tiny` set); `resume` continues a run that was
    interrupted, from its last finished epoch; `strategy` spreads training over devices; `dataset`
    replaces the recipe's own (data already in memory)."""
    recipe = get_recipe(recipe_name)
    out_dir = Path(out_dir)
    if save_format not in ("keras", "h5"):
        raise ConfigError(f"unknown model format {save_format!r}: use keras or h5")
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {strategy!r}: use {', '.join(STRATEGIES)}")
    model_path = out_dir / f"model.{save_format}"
    outputs = [model_path.name, *OUTPUT_FILES[1:]]
    if get_task(recipe.task).classifies:
        outputs.append(CONFUSION_FILE)
    if recipe.early_stopping_patience is not None or recipe.schedule == "plateau":
        outputs.append(BEST_FILE)
    backup = out_dir / BACKUP_DIR
    if backup.exists() and not resume and not force:
        raise ConfigError(
            f"{out_dir} holds an interrupted run: pass --resume to continue it, or --force to start over"
        )
    if resume and not backup.exists():
        raise ConfigError(f"there is no interrupted run in {out_dir} to resume (no {BACKUP_DIR}/)")
    for name in outputs:  # fail before the minutes of training, not after
        check_writable(out_dir / name, force=force or resume)
    if epochs is not None and epochs < 1:
        raise ConfigError("--epochs must be at least 1")
    if limit is not None and limit < 1:
        raise ConfigError("--limit must be at least 1")
    if force and not resume and backup.exists():
        shutil.rmtree(backup)
    dataset = dataset if dataset is not None else load_dataset(recipe.dataset, data)
    if not quiet:
        print(
            f"data: {dataset.description}: {len(dataset.train)} training, "
            f"{len(dataset.heldout)} held-out samples",
            file=sys.stderr,
        )
    hparams = {**dict(recipe.hparams), **check_hparams(recipe, hparams or {})}
    train_split = dataset.train.head(limit)
    preprocess = dict(recipe.preprocess)
    if recipe.fit_preprocess is not None:  # fitted on the training data only, never the held-out
        preprocess = recipe.fit_preprocess(train_split, preprocess, hparams)
    card_like = CardLike(recipe.task, dataset.labels, preprocess, postprocess_for(recipe))
    # Early stopping chooses the epoch whose weights are kept, so the data it watches takes part in
    # training decisions. It must not be the held-out split: that one is kept untouched for the
    # final report and for the exporter's parity and accuracy checks, which would otherwise be
    # measured on data the training was tuned on. So it watches a slice of the training data,
    # carved off before augmentation (no shifted copy of a validation image is trained on).
    watch = None
    if recipe.early_stopping_patience is not None or recipe.schedule == "plateau":
        train_split, watch = validation_slice(train_split, recipe.validation_fraction)
    if recipe.augment is not None:
        extra = recipe.augment(train_split.x, np.random.default_rng(seed))
        train_split = Split(
            np.concatenate([train_split.x, extra]), np.concatenate([train_split.y, train_split.y])
        )

    tf, keras = import_tf()
    keras.utils.set_random_seed(seed)
    scope, replicas = distribution(tf, strategy)
    with scope():
        model = recipe.build(num_classes=len(dataset.labels), **hparams)
    in_shape = tuple(model.inputs[0].shape[1:])
    x, y = model_inputs(preprocess, in_shape, train_split), training_targets(recipe, train_split, card_like)
    xv = model_inputs(preprocess, in_shape, dataset.heldout)
    yv = training_targets(recipe, dataset.heldout, card_like)
    # without early stopping the held-out curves are only drawn, never acted on
    validation = (
        (xv, yv)
        if watch is None
        else (model_inputs(preprocess, in_shape, watch), training_targets(recipe, watch, card_like))
    )
    epochs = epochs or recipe.epochs
    batch_size = batch_size or recipe.batch_size
    steps_per_epoch = -(-len(x) // batch_size)
    lr = learning_rate(keras, recipe, epochs * steps_per_epoch, steps_per_epoch)
    callbacks = [] if quiet else [epoch_logger(keras, epochs)]
    # an interrupted run restarts from its last finished epoch; the folder goes when the fit ends
    # (double: a kill while the weights are being written leaves the epoch before intact)
    callbacks.append(
        keras.callbacks.BackupAndRestore(str(backup), delete_checkpoint=True, double_checkpoint=True)
    )
    earlier = resumed_history(backup) if resume else {}
    callbacks.append(history_keeper(keras, backup, earlier))
    out_dir.mkdir(parents=True, exist_ok=True)
    if watch is not None:  # the best epoch on the watched slice (never on the held-out split)
        callbacks.append(
            keras.callbacks.ModelCheckpoint(str(out_dir / BEST_FILE), monitor="val_loss", save_best_only=True)
        )
    if recipe.schedule == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=recipe.decay_rate, patience=2, min_lr=recipe.learning_rate / 100
            )
        )
    if watch is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=recipe.early_stopping_patience, restore_best_weights=True
            )
        )
    loss = recipe.loss() if callable(recipe.loss) else recipe.loss
    metrics = list(recipe.keras_metrics) if recipe.keras_metrics is not None else [recipe.metric]
    with scope():
        model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss, metrics=metrics)
    t0 = time.perf_counter()
    try:
        fit = model.fit(
            x,
            y,
            epochs=epochs,
            batch_size=batch_size,
            validation_data=validation,
            verbose=0,
            callbacks=callbacks,
        )
    except OSError as e:
        if not resume:
            raise
        raise ConfigError(
            f"the interrupted run in {out_dir} cannot be resumed: its backup is damaged ({e.strerror or e}); "
            "pass --force to start over"
        ) from None
    seconds = time.perf_counter() - t0
    history = {k: earlier.get(k, []) + [float(v) for v in vs] for k, vs in fit.history.items()}
    raw_out = model.predict(xv, verbose=0, batch_size=256)
    scores = heldout_metrics(recipe, card_like, raw_out, dataset.heldout.y)
    heldout_loss = model.evaluate(xv, yv, verbose=0, batch_size=256, return_dict=True)["loss"]
    metrics = {f"heldout_{k}": v for k, v in scores.items() if not isinstance(v, list)}
    metrics["heldout_loss"] = float(heldout_loss)
    if recipe.metric in history:
        metrics[f"train_{recipe.metric}"] = history[recipe.metric][-1]
    metrics.update(epochs=epochs, train_seconds=round(seconds, 2), seed=seed)
    if resume:
        metrics["resumed"] = True
    if watch is not None:
        metrics["epochs_run"] = len(history["loss"])
        metrics["best_epoch"] = int(np.argmin(history["val_loss"])) + 1
    hparams_extra: dict[str, Any] = {}
    if recipe.schedule in ("exponential", "plateau"):
        hparams_extra.update(decay_rate=recipe.decay_rate, decay_epochs=recipe.decay_epochs)
    if watch is not None:
        hparams_extra.update(
            early_stopping_patience=recipe.early_stopping_patience,
            validation=f"{len(watch)} training samples ({recipe.validation_fraction:.0%}), not held-out",
        )
    if strategy != "none":
        hparams_extra.update(strategy=strategy, replicas=replicas)
    card = make_card(
        recipe,
        model,
        dataset,
        {
            **hparams,
            "epochs": epochs,
            "batch_size": batch_size,
            "learning_rate": recipe.learning_rate,
            "schedule": recipe.schedule,
            "augment": getattr(recipe.augment, "__name__", None),
            "limit": limit,
            **hparams_extra,
        },
        metrics,
        preprocess,
    )
    with atomic_path(model_path, keep_suffix=True) as tmp:
        model.save(tmp)
    write_text(out_dir / "card.json", card.to_json(indent=2))
    write_text(out_dir / "history.json", json.dumps(history, indent=2))
    plot_curves(history, out_dir / "curves.png", title=f"{recipe.name} on {dataset.name}")
    if get_task(recipe.task).classifies:
        matrix = confusion_matrix(
            class_probabilities(card_like, first(raw_out)).argmax(1), dataset.heldout.y, len(dataset.labels)
        )
        plot_confusion(matrix, dataset.labels, out_dir / CONFUSION_FILE, title=f"{recipe.name}: held-out")
    return TrainResult(model_path, card, history, seconds, dataset)


def check_hparams(recipe: Recipe, overrides: dict[str, Any]) -> dict[str, Any]:
    """Overrides whose names the recipe's build function takes; an unknown name fails here."""
    params = inspect.signature(recipe.build).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return overrides
    known = [n for n in params if n != "num_classes"]
    unknown = [n for n in overrides if n not in known]
    if unknown:
        raise ConfigError(
            f"recipe {recipe.name} has no hyper-parameter {unknown[0]!r}: it takes {', '.join(known) or 'none'}"
        )
    return overrides


HISTORY_SO_FAR = "edgekit_history.json"  # inside the backup folder, beside Keras's own state


def history_keeper(keras, backup: Path, earlier: dict[str, list[float]]):
    """Keeps the history so far beside the backup at each epoch's end, so a resumed run's curves
    start at epoch 1, not at the epoch it resumed from."""
    so_far = {k: list(v) for k, v in earlier.items()}

    def end(epoch: int, logs: dict | None) -> None:
        for k, v in (logs or {}).items():
            so_far.setdefault(k, []).append(float(v))
        if backup.is_dir():
            write_text(backup / HISTORY_SO_FAR, json.dumps(so_far))

    return keras.callbacks.LambdaCallback(on_epoch_end=end)


def resumed_history(backup: Path) -> dict[str, list[float]]:
    """The history of an interrupted run up to the epoch Keras's backup will resume from."""
    try:
        so_far = json.loads((backup / HISTORY_SO_FAR).read_text())
        epoch = int(json.loads((backup / "training_metadata.json").read_text())["epoch"])
    except (OSError, ValueError, KeyError):
        return {}
    return {k: [float(x) for x in v[:epoch]] for k, v in so_far.items()}


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
    lr = recipe.learning_rate
    if recipe.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, total_steps))
    if recipe.schedule == "exponential":
        steps = max(1, round(recipe.decay_epochs * steps_per_epoch))
        return keras.optimizers.schedules.ExponentialDecay(
            lr, decay_steps=steps, decay_rate=recipe.decay_rate
        )
    if recipe.schedule in ("constant", "plateau"):  # plateau: ReduceLROnPlateau lowers it
        return lr
    raise ConfigError(f"recipe {recipe.name} has an unknown schedule {recipe.schedule!r}")


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
