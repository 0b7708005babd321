"""A training run: a recipe and its dataset in; model.keras, card.json, history.json and
curves.png out.

The run owns its configuration, its folder (what it may overwrite, the backup an interrupted run
resumes from), the distribution strategy, the held-out report and the card; the training itself is
one `Step` (`models/step.py`), the same that each of `edgekit tune`'s trials runs."""

from __future__ import annotations

import contextlib
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
from edgekit.models.config import RunConfig, check_hparams
from edgekit.models.recipe import Recipe
from edgekit.models.resume import epoch_backup, resume_state
from edgekit.models.step import Arrays, CardLike, Prepared, Step, postprocess_for, run_parts
from edgekit.plots import confusion_matrix, plot_confusion, plot_curves
from edgekit.runtime.datasets import Dataset, load_dataset
from edgekit.runtime.files.keras import embed_keras_card
from edgekit.runtime.metrics import class_probabilities
from edgekit.runtime.scoring import evaluate_outputs
from edgekit.runtime.tasks import get_task
from edgekit.tfutil import import_tf

OUTPUT_FILES = ("model.keras", "card.json", "history.json", "curves.png")
CONFUSION_FILE = "confusion.png"  # classifiers only
BACKUP_DIR = ".backup"  # an interrupted run's last epoch, for --resume
BEST_FILE = "best.keras"  # the best epoch on the validation part, where the recipe watches it
STRATEGIES = ("none", "mirrored", "multiworker")
SAVE_FORMATS = ("keras", "h5")


@dataclass(frozen=True)
class TrainResult:
    model_path: Path
    card: ModelCard
    history: dict[str, list[float]]
    seconds: float
    dataset: Dataset


@dataclass(frozen=True)
class TrainConfig(RunConfig):
    """One run, checked when it is made (with what `RunConfig` checks for every run and search).

    `hparams` override the recipe's (e.g. its `tiny` set); `resume` continues a run that was
    interrupted, from its last finished epoch; `strategy` spreads training over devices; `refit`
    trains on the whole training split, validation part included, with nothing watched (the
    tuner's final model, once the choices the validation part was for are made); `search` is what
    `edgekit tune` found, recorded in the card's hparams."""

    hparams: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    strategy: str = "none"
    save_format: str = "keras"
    refit: bool = False
    search: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "hparams", MappingProxyType(dict(self.hparams or {})))
        if self.save_format not in SAVE_FORMATS:
            raise ConfigError(f"unknown model format {self.save_format!r}: use keras or h5")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy {self.strategy!r}: use {', '.join(STRATEGIES)}")
        check_hparams(self.recipe_entry, dict(self.hparams))

    @property
    def model_path(self) -> Path:
        return self.out_dir / f"model.{self.save_format}"

    @property
    def backup(self) -> Path:
        return self.out_dir / BACKUP_DIR

    def step(self, dataset: Dataset) -> Step:
        """The training step this run takes on `dataset`."""
        return Step.of(
            self.recipe_entry,
            dataset,
            self.hparams,
            epochs=self.epochs,
            batch_size=self.batch_size,
            seed=self.seed,
        )


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
    step = config.step(dataset)
    recipe = step.recipe  # as it trains on this data
    data = step.prepare(*run_parts(dataset, config.limit, refit=config.refit))

    tf, keras = import_tf()
    scope, replicas = distribution(tf, config.strategy)
    model = step.build(keras, data, scope)
    arrays = step.arrays(model, data, dataset.heldout)
    history, seconds = fit_model(keras, config, step, model, arrays, data)
    raw_out, metrics = evaluate(config, recipe, model, arrays, data, dataset, history, step.epochs, seconds)
    run = run_hparams(config, step, data, replicas)
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
        for note in dataset.notes:  # what cleaning did to the rows (a table's)
            print(f"  {note}", file=sys.stderr)
    return dataset


def fit_model(
    keras, config: TrainConfig, step: Step, model: Any, arrays: Arrays, data: Prepared
) -> tuple[dict[str, list[float]], float]:
    """The step's fit with the run's own callbacks around it: progress first, the backup an
    interrupted run resumes from last (what it saves at an epoch's end has seen that epoch's end
    everywhere else). (the history from epoch 1, resumed runs included; the seconds this fit took)."""
    resumed = None
    if config.resume:
        best = config.out_dir / BEST_FILE
        resumed = resume_state(keras, model, config.out_dir, config.backup, best, config.seed)
    callbacks = [] if config.quiet else [epoch_logger(keras, step.epochs)]
    callbacks += step.callbacks(keras, data, checkpoint=config.out_dir / BEST_FILE)
    callbacks.append(epoch_backup(keras, config.backup, config.seed, callbacks, resumed))
    config.out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    fitted = step.fit(model, arrays, callbacks, first=resumed.epoch if resumed is not None else 0)
    seconds = time.perf_counter() - t0
    earlier = resumed.history if resumed is not None else {}
    history = {k: earlier.get(k, []) + vs for k, vs in fitted.items()}
    return history, seconds


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
    scores = heldout_metrics(data.card_like, raw_out, dataset.heldout.y)
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


def heldout_metrics(card_like: Any, outputs: Any, y: Any) -> dict[str, float]:
    """The recipe's metrics on raw model outputs, by the same numpy code `evaluate` and export use."""
    return evaluate_outputs(card_like, outputs if isinstance(outputs, list) else [outputs], y)


def run_hparams(config: TrainConfig, step: Step, data: Prepared, replicas: int) -> dict[str, Any]:
    """The card's hparams: the build's, then how this run trained."""
    recipe = step.recipe
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
        **step.hparams,
        "epochs": step.epochs,
        "batch_size": step.batch_size,
        "learning_rate": training.learning_rate,
        "schedule": training.schedule,
        "augment": getattr(recipe.data.augment, "__name__", None),
        "limit": config.limit,
        **extra,
    }


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


def first(outputs: Any) -> np.ndarray:
    return outputs[0] if isinstance(outputs, list | tuple) else outputs


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
