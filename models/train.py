"""The training loop: a recipe and its dataset in; model.keras, card.json, history.json and
curves.png out."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.card import ModelCard, TensorSpec, now_iso, sha256_arrays
from edgekit.errors import ConfigError
from edgekit.fileio import atomic_path, check_writable, write_text
from edgekit.models.datasets import HELDOUT_SEED, Dataset, Split, load_dataset
from edgekit.models.recipe import Recipe, get_recipe
from edgekit.runtime.preprocess import ImageSpec, normalize
from edgekit.tfutil import import_tf

OUTPUT_FILES = ("model.keras", "card.json", "history.json", "curves.png")


@dataclass(frozen=True)
class TrainResult:
    model_path: Path
    card: ModelCard
    history: dict[str, list[float]]
    seconds: float
    dataset: Dataset


def model_inputs(preprocess: dict[str, Any], input_shape: tuple[int, ...], split: Split) -> np.ndarray:
    """Dataset pixels -> what the Keras model takes, through the runtime's own preprocessing."""
    return normalize(split.x, ImageSpec.from_dict(dict(preprocess))).reshape((len(split), *input_shape))


def card_inputs(card: ModelCard, split: Split) -> np.ndarray:
    """`model_inputs` for a trained model, from its card."""
    return model_inputs(card.preprocess, tuple(card.input.shape[1:]), split)


def make_card(
    recipe: Recipe, model: Any, dataset: Dataset, hparams: dict[str, Any], metrics: dict
) -> ModelCard:
    out_shape = tuple(model.outputs[0].shape)
    return ModelCard(
        task=recipe.task,
        labels=dataset.labels,
        input=TensorSpec(recipe.input_name, (None, *recipe.input_shape), "float32", recipe.input_layout),
        output=TensorSpec("scores", out_shape, "float32", "NC"),
        preprocess=dict(recipe.preprocess),
        postprocess={"activation": recipe.output_activation},
        recipe=recipe.name,
        hparams=hparams,
        dataset=dataset.card_entry(),
        metrics=metrics,
        format="keras",
        quantization="fp32",
        weights_sha256=sha256_arrays([np.asarray(w) for w in model.get_weights()]),
        created=now_iso(),
    )


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
) -> TrainResult:
    """Train a recipe on its dataset and write its files into `out_dir`."""
    recipe = get_recipe(recipe_name)
    out_dir = Path(out_dir)
    for name in OUTPUT_FILES:  # fail before the minutes of training, not after
        check_writable(out_dir / name, force=force)
    if epochs is not None and epochs < 1:
        raise ConfigError("--epochs must be at least 1")
    if limit is not None and limit < 1:
        raise ConfigError("--limit must be at least 1")
    dataset = load_dataset(recipe.dataset, data)
    if not quiet:
        print(
            f"data: {dataset.description}: {len(dataset.train)} training, "
            f"{len(dataset.heldout)} held-out samples",
            file=sys.stderr,
        )
    train_split = dataset.train.head(limit)
    # Early stopping chooses the epoch whose weights are kept, so the data it watches takes part in
    # training decisions. It must not be the held-out split: that one is kept untouched for the
    # final report and for the exporter's parity and accuracy checks, which would otherwise be
    # measured on data the training was tuned on. So it watches a slice of the training data,
    # carved off before augmentation (no shifted copy of a validation image is trained on).
    watch = None
    if recipe.early_stopping_patience is not None:
        train_split, watch = validation_slice(train_split, recipe.validation_fraction)
    if recipe.augment is not None:
        extra = recipe.augment(train_split.x, np.random.default_rng(seed))
        train_split = Split(
            np.concatenate([train_split.x, extra]), np.concatenate([train_split.y, train_split.y])
        )
    x, y = model_inputs(recipe.preprocess, recipe.input_shape, train_split), train_split.y
    xv, yv = model_inputs(recipe.preprocess, recipe.input_shape, dataset.heldout), dataset.heldout.y
    # without early stopping the held-out curves are only drawn, never acted on
    validation = (
        (xv, yv) if watch is None else (model_inputs(recipe.preprocess, recipe.input_shape, watch), watch.y)
    )

    tf, keras = import_tf()
    keras.utils.set_random_seed(seed)
    hparams = dict(recipe.hparams)
    model = recipe.build(num_classes=len(dataset.labels), **hparams)
    epochs = epochs or recipe.epochs
    batch_size = batch_size or recipe.batch_size
    lr = recipe.learning_rate
    if recipe.schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=epochs * -(-len(y) // batch_size))
    elif recipe.schedule == "exponential":
        steps = max(1, round(recipe.decay_epochs * -(-len(y) // batch_size)))
        lr = keras.optimizers.schedules.ExponentialDecay(lr, decay_steps=steps, decay_rate=recipe.decay_rate)
    elif recipe.schedule != "constant":
        raise ConfigError(f"recipe {recipe.name} has an unknown schedule {recipe.schedule!r}")
    callbacks = [] if quiet else [epoch_logger(keras, epochs)]
    if watch is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=recipe.early_stopping_patience, restore_best_weights=True
            )
        )
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=recipe.loss, metrics=[recipe.metric])
    t0 = time.perf_counter()
    fit = model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=validation,
        verbose=0,
        callbacks=callbacks,
    )
    seconds = time.perf_counter() - t0
    history = {k: [float(v) for v in vs] for k, vs in fit.history.items()}
    loss, metric = model.evaluate(xv, yv, verbose=0, batch_size=256)
    metrics = {
        f"heldout_{recipe.metric}": float(metric),
        "heldout_loss": float(loss),
        f"train_{recipe.metric}": history[recipe.metric][-1],
        "epochs": epochs,
        "train_seconds": round(seconds, 2),
        "seed": seed,
    }
    if watch is not None:
        metrics["epochs_run"] = len(history["loss"])
        metrics["best_epoch"] = int(np.argmin(history["val_loss"])) + 1
    hparams_extra = {}
    if recipe.schedule == "exponential":
        hparams_extra.update(decay_rate=recipe.decay_rate, decay_epochs=recipe.decay_epochs)
    if watch is not None:
        hparams_extra.update(
            early_stopping_patience=recipe.early_stopping_patience,
            validation=f"{len(watch)} training samples ({recipe.validation_fraction:.0%}), not held-out",
        )
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
    )
    model_path = out_dir / "model.keras"
    with atomic_path(model_path, keep_suffix=True) as tmp:
        model.save(tmp)
    write_text(out_dir / "card.json", card.to_json(indent=2))
    write_text(out_dir / "history.json", json.dumps(history, indent=2))
    plot_curves(history, out_dir / "curves.png", title=f"{recipe.name} on {dataset.name}")
    return TrainResult(model_path, card, history, seconds, dataset)


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


def plot_curves(history: dict[str, list[float]], path: Path, title: str = "") -> Path:
    """Loss and metric, training and validation, one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [k for k in history if not k.startswith("val_") and k != "learning_rate"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for ax, name in zip(axes[0], metrics):
        epochs = range(1, len(history[name]) + 1)
        ax.plot(epochs, history[name], "o-", label="train")
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], "s--", label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path, keep_suffix=True) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path
