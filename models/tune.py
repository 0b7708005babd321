"""`edgekit tune`: a search over a recipe's hyper-parameters, run by Keras Tuner (its grid, random and
Hyperband searches), scored on the dataset's validation part (or by stratified K-fold
cross-validation of the training split), never on the held-out split the reports use. The best
setting is then trained again on the whole training split through `train`, so it is an ordinary
run folder with a card (which records the search), ready for `edgekit export`.

Every check a user can fail is made when the `TuneConfig` is made, or once the data is loaded,
before the first trial trains."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from edgekit.deps import require
from edgekit.errors import ConfigError, EdgekitError
from edgekit.fileio import check_writable, write_text
from edgekit.models.recipe import Recipe, get_recipe
from edgekit.models.train import (
    TRAINING_HPARAMS,
    TrainConfig,
    TrainResult,
    check_hparams,
    compile_model,
    hparam_defaults,
    model_inputs,
    output_names,
    prepare_split,
    train,
    training_targets,
)
from edgekit.runtime.datasets import Dataset, Split, load_dataset
from edgekit.runtime.scoring import evaluate_outputs
from edgekit.runtime.tasks import get_task
from edgekit.tfutil import import_tf

STRATEGIES = ("grid", "random", "hyperband")
SEARCH_DIR = "search"  # Keras Tuner's own state inside the output folder: what --resume reads
TRIALS_CSV, TRIALS_JSON, SCORES_PNG = "trials.csv", "trials.json", "scores.png"
# searched when a recipe declares no range and the user gives no --grid: every recipe takes it
DEFAULT_SPACE: Mapping[str, tuple[Any, ...]] = MappingProxyType({"weight_decay": (0.0, 1e-4, 1e-3)})
CLASSIFIER_METRICS = (
    "accuracy",
    "macro_precision",
    "macro_recall",
    "macro_f1",
    "weighted_precision",
    "weighted_recall",
    "weighted_f1",
)


@dataclass(frozen=True)
class TuneConfig:
    """One search, checked when it is made: names, types, sizes and the output folder fail here in
    milliseconds, before any data is read or TensorFlow imported.

    `grid`: hyper-parameter -> values to try (empty: the recipe's `search` ranges); `random`: that
    many random trials; `folds`: score by stratified K-fold cross-validation of the training split
    instead of the validation part; `metric`: what is maximised (`loss`: minimised)."""

    recipe: str
    out_dir: Path
    grid: Mapping[str, tuple[Any, ...]] = field(default_factory=lambda: MappingProxyType({}))
    strategy: str = "grid"
    random: int | None = None
    folds: int | None = None
    metric: str | None = None
    max_trials: int = 20
    force: bool = False
    resume: bool = False
    data: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    limit: int | None = None
    seed: int = 0
    quiet: bool = False
    dataset: Dataset | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        recipe = get_recipe(self.recipe)
        if self.random is not None:
            if self.random < 1:
                raise ConfigError("--random must be at least 1")
            if self.strategy == "grid":
                object.__setattr__(self, "strategy", "random")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown search strategy {self.strategy!r}: use {', '.join(STRATEGIES)}")
        if self.random is not None and self.strategy != "random":
            raise ConfigError(f"--random N is a random search; it cannot go with --strategy {self.strategy}")
        if self.max_trials < 1:
            raise ConfigError("--max-trials must be at least 1")
        if self.epochs is not None and self.epochs < 1:
            raise ConfigError("--epochs must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise ConfigError("--limit must be at least 1")
        if self.folds is not None:
            if self.folds < 2:
                raise ConfigError("--folds must be at least 2 (one part to score on, the rest to train on)")
            if self.strategy == "hyperband":
                raise ConfigError(
                    "--folds cannot go with --strategy hyperband (it resumes one model across rounds): "
                    "use grid or random"
                )
        object.__setattr__(self, "grid", MappingProxyType(search_space(recipe, dict(self.grid))))
        metric = self.metric or recipe.evaluation.metric
        known = metric_names(recipe)
        if metric not in known:
            raise ConfigError(f"recipe {recipe.name} cannot be scored by {metric!r}: use {', '.join(known)}")
        object.__setattr__(self, "metric", metric)
        if self.strategy == "grid" and self.trials > self.max_trials and not self.force:
            raise ConfigError(
                f"the grid has {self.trials} trials, more than --max-trials {self.max_trials}: narrow "
                "--grid, raise --max-trials, use --random N, or pass --force to run them all"
            )
        check_out_dir(self, recipe)

    @property
    def recipe_entry(self) -> Recipe:
        return get_recipe(self.recipe)

    @property
    def trials(self) -> int:
        """How many trials the search runs at most (Hyperband: as many as its brackets need, up to
        the grid's size)."""
        size = math.prod(len(v) for v in self.grid.values())
        if self.strategy == "random":
            return min(size, self.random or self.max_trials)
        return size

    @property
    def objective(self) -> str:
        """The name Keras Tuner records the score under."""
        return f"{'cv' if self.folds else 'val'}_{self.metric}"

    @property
    def direction(self) -> str:
        return "min" if self.metric == "loss" else "max"


def metric_names(recipe: Recipe) -> tuple[str, ...]:
    """What a search may maximise for this recipe (and `loss`, minimised)."""
    if get_task(recipe.task).classifies:
        return (*CLASSIFIER_METRICS, "loss")
    return (recipe.evaluation.metric, "loss")


def search_space(recipe: Recipe, grid: dict[str, tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
    """The values each hyper-parameter takes in the search: the user's grid, else the recipe's
    declared ranges; every name known, every value of the default's type (ints where the default is
    a float become floats: Keras Tuner's choices hold one type), none repeated, none empty."""
    space = dict(grid) or dict(recipe.search) or dict(DEFAULT_SPACE)
    defaults = hparam_defaults(recipe)
    check_hparams(recipe, {name: values[0] for name, values in space.items() if values})
    out: dict[str, tuple[Any, ...]] = {}
    for name, values in space.items():
        if not values:
            raise ConfigError(f"--grid {name}= lists no values: give one or more, e.g. {name}=1,2")
        if isinstance(defaults.get(name), float):
            values = tuple(float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in values)
        for v in values:
            check_hparams(recipe, {name: v})
        if len(set(values)) != len(values):
            raise ConfigError(f"--grid {name} lists a value twice: {', '.join(map(str, values))}")
        kinds = {type(v) for v in values}
        if len(kinds) > 1:
            raise ConfigError(f"--grid {name} mixes kinds of value ({', '.join(map(str, values))}): use one")
        out[name] = tuple(values)
    return out


def parse_grid(pairs: list[str]) -> dict[str, tuple[Any, ...]]:
    """`["hidden=64,128", "activation=relu,tanh"]` -> {"hidden": (64, 128), "activation": ("relu",
    "tanh")}: each value read as JSON where it parses, else kept as text."""
    grid: dict[str, tuple[Any, ...]] = {}
    for pair in pairs:
        name, sep, values = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(f"--grid takes NAME=V1,V2,..., not {pair!r}")
        if name in grid:
            raise ConfigError(f"--grid {name} is given twice: list every value once, {name}=V1,V2")
        grid[name] = tuple(_value(v.strip()) for v in values.split(",") if v.strip())
        if not grid[name]:
            raise ConfigError(f"--grid {name}= lists no values: give one or more, e.g. {name}=1,2")
    return grid


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def check_out_dir(config: TuneConfig, recipe: Recipe) -> None:
    """Refuse a folder that holds an earlier search (unless resumed or forced) or files the final
    model would overwrite, before the minutes of searching."""
    search = config.out_dir / SEARCH_DIR
    if config.resume and not search.is_dir():
        raise ConfigError(f"there is no search in {config.out_dir} to resume (no {SEARCH_DIR}/)")
    if search.is_dir() and not (config.resume or config.force):
        raise ConfigError(
            f"{config.out_dir} holds a search: pass --resume to continue it, or --force to start over"
        )
    final = TrainConfig(config.recipe, config.out_dir, force=True)
    for name in [*output_names(final, recipe), TRIALS_CSV, TRIALS_JSON, SCORES_PNG]:
        check_writable(config.out_dir / name, force=config.force or config.resume)


def stratified_folds(y: np.ndarray, k: int, seed: int = 0) -> list[np.ndarray]:
    """K disjoint index sets over `y`, each holding every class in (nearly) equal shares, the same
    every time: a class's samples, shuffled once, dealt out in turn, continuing where the previous
    class stopped so the folds' sizes differ by one at most."""
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    turn = 0
    for c in np.unique(y):
        for i in rng.permutation(np.flatnonzero(y == c)):
            folds[turn % k].append(int(i))
            turn += 1
    return [np.sort(np.array(f, dtype=np.int64)) for f in folds]


def check_folds(config: TuneConfig, train_split: Split) -> None:
    """`--folds` no larger than the smallest class, so every fold scores every class."""
    if config.folds is None:
        return
    y = np.asarray(train_split.y)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ConfigError("--folds needs class labels to stratify by; this recipe's targets are not classes")
    counts = np.bincount(y)
    counts = counts[counts > 0]
    if config.folds > counts.min():
        raise ConfigError(
            f"--folds {config.folds} is more than the smallest class has samples ({counts.min()}): "
            f"use --folds {max(2, int(counts.min()))} or fewer"
        )


@dataclass(frozen=True)
class TuneResult:
    best: dict[str, Any]  # the best trial's hyper-parameters
    score: float  # its validation (or cross-validation) score
    trials: list[dict[str, Any]]  # every trial's settings and scores, as trials.csv holds them
    seconds: float  # the search's wall time (this run's, a resumed one's only)
    final: TrainResult  # the best setting trained on the whole training split


def tune(config: TuneConfig) -> TuneResult:
    """Search, write every trial's settings and scores and their plot, then train the best."""
    kt = require("keras_tuner", "pip install 'edgekit[train]' (or pip install keras-tuner)")
    recipe = config.recipe_entry
    dataset = config.dataset if config.dataset is not None else load_dataset(recipe.data.dataset, config.data)
    base = TrainConfig(
        config.recipe,
        config.out_dir,
        data=config.data,
        epochs=config.epochs,
        batch_size=config.batch_size,
        limit=config.limit,
        seed=config.seed,
        force=True,
        quiet=True,
        dataset=dataset,
    )
    whole = dataset.train.head(config.limit)
    check_folds(config, whole)
    if not config.quiet:
        scored = f"{config.folds}-fold cross-validation of" if config.folds else "the validation part of"
        print(
            f"tune {recipe.name}: {config.strategy} search, up to {config.trials} trials, "
            f"{config.objective} on {scored} {dataset.description}",
            file=sys.stderr,
        )
    _, keras = import_tf()
    epochs = config.epochs or recipe.training.epochs
    hypermodel = _hypermodel(kt, keras, config, base, dataset, whole, epochs)
    t0 = time.perf_counter()
    # Keras Tuner prints its own tables to stdout, which is for results: send them to stderr
    with contextlib.redirect_stdout(sys.stderr if not config.quiet else io.StringIO()):
        tuner = _tuner(kt, config, hypermodel, epochs)
        try:
            tuner.search(epochs=epochs, verbose=0)
        except RuntimeError as e:  # Keras Tuner's own stop after a failed trial (its error printed above)
            raise EdgekitError(
                f"the search in {config.out_dir} stopped: {e} (the trial's error is above)"
            ) from None
    seconds = time.perf_counter() - t0
    trials = trial_rows(tuner, config)
    if not any(t["status"] == "COMPLETED" for t in trials):
        raise ConfigError(f"no trial of the search in {config.out_dir} finished: see the messages above")
    write_trials(config, trials)
    best_trial = tuner.oracle.get_best_trials(1)[0]
    best = settings(best_trial.hyperparameters.values)
    score = float(best_trial.score)
    record = {
        "strategy": config.strategy,
        "objective": config.objective,
        "folds": config.folds,
        "trials": sum(t["status"] == "COMPLETED" for t in trials),
        "best_score": score,
        "space": {k: list(v) for k, v in config.grid.items()},
        "folder": str(config.out_dir),
    }
    if not config.quiet:
        shown = " ".join(f"{k}={v}" for k, v in best.items())
        print(
            f"best: {shown}  {config.objective} {score:.4f}; training it on the whole training split",
            file=sys.stderr,
        )
    # the search's own settings, now on the whole training split with the best hyper-parameters
    final = train(replace(base, quiet=config.quiet, hparams=best, refit=True, search=record))
    return TuneResult(best, score, trials, seconds, final)


def settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's hyper-parameters without Keras Tuner's own bookkeeping (Hyperband's `tuner/...`)."""
    return {k: v for k, v in values.items() if not k.startswith("tuner/")}


def _hypermodel(
    kt, keras, config: TuneConfig, base: TrainConfig, dataset: Dataset, whole: Split, epochs: int
):
    """A Keras Tuner HyperModel over the recipe: `build` maps the trial's choices onto the recipe's
    build hparams, `fit` trains through train.py's own data preparation and compile step and returns
    the score on the validation part (or the mean over the folds)."""
    recipe = config.recipe_entry
    batch_size = config.batch_size or recipe.training.batch_size
    folds = stratified_folds(np.asarray(whole.y), config.folds, config.seed) if config.folds else None
    trained_on = len(dataset.fit.head(config.limit)) if folds is None else len(whole) - len(folds[0])

    class RecipeModel(kt.HyperModel):
        def build(self, hp):
            choices = {name: hp.Choice(name, list(values)) for name, values in config.grid.items()}
            hparams = {**dict(recipe.hparams), **choices}
            keras.utils.set_random_seed(config.seed)
            model = recipe.build(
                num_classes=len(dataset.labels),
                **{k: v for k, v in hparams.items() if k not in TRAINING_HPARAMS},
            )
            # the learning-rate schedule spans the trial's steps, as `train` computes them
            steps = -(-trained_on * (2 if recipe.data.augment is not None else 1) // batch_size)
            weight_decay = float(hparams.get("weight_decay", 0.0))
            compile_model(keras, recipe, model, epochs, steps, weight_decay=weight_decay)
            return model

        def fit(self, hp, model, *args, **kwargs):
            hparams = settings(hp.values)
            started = time.perf_counter()
            if folds is None:
                data = prepared(hparams, dataset.fit.head(config.limit), dataset.validation)
                scores = [score_on(model, data, kwargs)]
            else:
                scores = []
                for i, held in enumerate(folds):
                    rest = np.setdiff1d(np.arange(len(whole)), held)
                    data = prepared(hparams, whole.take(rest), whole.take(held))
                    scores.append(score_on(model if i == 0 else self.build(hp), data, kwargs))
            return {
                config.objective: float(np.mean(scores)),
                "seconds": time.perf_counter() - started,
            }

    def prepared(hparams: dict[str, Any], train_part: Split, validation: Split):
        from edgekit.models.train import validation_limit

        watch = validation if config.folds else validation.head(validation_limit(config.limit))
        return prepare_split(
            TrainConfig(**{**base.__dict__, "hparams": hparams}), recipe, dataset.labels, train_part, watch
        )

    def score_on(model, data, kwargs) -> float:
        in_shape = tuple(model.inputs[0].shape[1:])
        x = model_inputs(data.preprocess, in_shape, data.train)
        y = training_targets(recipe, data.train, data.card_like)
        xv = model_inputs(data.preprocess, in_shape, data.watch)
        yv = training_targets(recipe, data.watch, data.card_like)
        callbacks = list(kwargs.get("callbacks", [])) + watch_callbacks(keras, recipe)
        model.fit(
            x,
            y,
            epochs=kwargs.get("epochs", epochs),
            initial_epoch=kwargs.get("initial_epoch", 0),
            batch_size=batch_size,
            validation_data=(xv, yv),
            callbacks=callbacks,
            verbose=0,
        )
        if config.metric == "loss":
            return float(model.evaluate(xv, yv, verbose=0, batch_size=256, return_dict=True)["loss"])
        outputs = model.predict(xv, verbose=0, batch_size=256)
        return float(evaluate_outputs(data.card_like, outputs, data.watch.y)[config.metric])

    return RecipeModel()


def watch_callbacks(keras, recipe: Recipe) -> list:
    """The recipe's own plateau schedule and early stopping, on the validation part, as in `train`."""
    training = recipe.training
    callbacks = []
    if training.schedule == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss",
                factor=training.decay_rate,
                patience=2,
                min_lr=training.learning_rate / 100,
            )
        )
    if training.early_stopping_patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=training.early_stopping_patience, restore_best_weights=True
            )
        )
    return callbacks


def _tuner(kt, config: TuneConfig, hypermodel, epochs: int):
    """Keras Tuner's search of the strategy, in the output folder (`overwrite=False` on --resume:
    it reloads the finished trials and goes on with the rest), printing a line per trial."""
    objective = kt.Objective(config.objective, direction=config.direction)
    where = dict(directory=str(config.out_dir), project_name=SEARCH_DIR, overwrite=not config.resume)
    if config.strategy == "hyperband":
        return _progress_class(kt.Hyperband, config)(
            hypermodel=hypermodel,
            objective=objective,
            seed=config.seed,
            max_consecutive_failed_trials=1,
            max_epochs=epochs,
            factor=3,
            **where,
        )
    kind = kt.oracles.GridSearchOracle if config.strategy == "grid" else kt.oracles.RandomSearchOracle
    oracle = _resumable(kt, kind)(
        objective=objective, max_trials=config.trials, seed=config.seed, max_consecutive_failed_trials=1
    )
    return _progress_class(kt.Tuner, config)(oracle=oracle, hypermodel=hypermodel, **where)


def _resumable(kt, oracle_class: type) -> type:
    """Keras Tuner's grid or random oracle, made to resume after a kill at any moment (keras-tuner
    1.4.8 does not): a finished trial the saved state still lists as running is not run again, a
    trial begun after the last save is, and the grid's order of tried settings, which Keras Tuner
    keeps in memory only (its next trial fails with a KeyError in `populate_space`), is rebuilt
    from the reloaded trials. The search itself is still Keras Tuner's."""
    from functools import cmp_to_key

    from keras_tuner.src.tuners.gridsearch import LinkedList

    done, running = kt.engine.trial.TrialStatus.COMPLETED, kt.engine.trial.TrialStatus.RUNNING

    class Resumable(oracle_class):
        def reload(self):
            super().reload()
            order = sorted(self.trials, key=int)
            self._retry_queue = [t for t in self._retry_queue if self.trials[t].status != done]
            for trial_id in order:
                if self.trials[trial_id].status == running and trial_id not in self._retry_queue:
                    self._retry_queue.append(trial_id)
                if trial_id not in self.start_order:
                    self.start_order.append(trial_id)
            if hasattr(self, "_ordered_ids"):  # the grid's
                self._ordered_ids = LinkedList()
                for trial_id in sorted(order, key=cmp_to_key(self._compare_trials)):
                    self._ordered_ids.insert(trial_id)
                # every tried setting's successor is looked at again; tried ones are skipped
                self._populate_next = list(order)

        def _compare_trials(self, a: str, b: str) -> int:
            return self._compare(self.trials[a].hyperparameters.values, self.trials[b].hyperparameters.values)

    return Resumable


def _progress_class(base: type, config: TuneConfig) -> type:
    """The tuner class with a line per finished trial on stderr, and trials.csv/json kept current,
    so a killed search leaves its trials readable."""

    class Progress(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            _atomic_saves(self.oracle)

        def save(self):
            # whole or not at all (Keras Tuner writes in place: a kill mid-write leaves an empty
            # file that no --resume can read)
            write_text(Path(self._get_tuner_fname()), json.dumps(self.get_state()))

        def _configure_tensorboard_dir(self, callbacks, trial, execution=0):
            # Keras Tuner imports tensorboard for every trial on the TensorFlow backend, only to
            # patch TensorBoard callbacks; edgekit passes none, and tensorboard may not be installed
            if any(type(c).__name__ == "TensorBoard" for c in callbacks):
                super()._configure_tensorboard_dir(callbacks, trial, execution)

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            rows = trial_rows(self, config)
            write_trials(config, rows, plot=False)
            if config.quiet:
                return
            done = [r for r in rows if r["status"] == "COMPLETED"]
            best = self.oracle.get_best_trials(1)
            score = trial.score
            shown = " ".join(f"{k}={v}" for k, v in settings(trial.hyperparameters.values).items())
            line = f"trial {len(done)}/{config.trials if config.strategy != 'hyperband' else '?'}: {shown}  "
            line += f"{config.objective} {score:.4f}" if score is not None else "failed"
            if best:
                line += f"  (best {best[0].score:.4f}, trial {int(best[0].trial_id) + 1})"
            print(line, file=sys.stderr, flush=True)

    return Progress


def _atomic_saves(oracle) -> None:
    """The oracle's state and each trial's written whole or not at all, so a search killed at any
    moment can be resumed (Keras Tuner writes them in place)."""

    def save() -> None:
        write_text(Path(oracle._get_oracle_fname()), json.dumps(oracle.get_state()))

    def save_trial(trial) -> None:
        folder = Path(oracle._get_trial_dir(trial.trial_id))
        folder.mkdir(parents=True, exist_ok=True)
        write_text(folder / "trial.json", json.dumps(trial.get_state()))

    oracle.save, oracle._save_trial = save, save_trial


def trial_rows(tuner, config: TuneConfig) -> list[dict[str, Any]]:
    """Every trial so far, in order: its number, status, settings, score and seconds."""
    rows = []
    for trial_id, trial in sorted(tuner.oracle.trials.items(), key=lambda kv: int(kv[0])):
        values = trial.hyperparameters.values
        row: dict[str, Any] = {"trial": int(trial_id) + 1, "status": str(trial.status)}
        row.update({name: values.get(name) for name in config.grid})
        if "tuner/epochs" in values:
            row["epochs"] = values["tuner/epochs"]
        row[config.objective] = None if trial.score is None else float(trial.score)
        seconds = trial.metrics.get_best_value("seconds") if trial.metrics.exists("seconds") else None
        row["seconds"] = None if seconds is None else round(float(seconds), 2)
        rows.append(row)
    return rows


def write_trials(config: TuneConfig, rows: list[dict[str, Any]], plot: bool = True) -> None:
    """trials.csv and trials.json (one row per trial), and scores.png (the score against each
    hyper-parameter) once the search is over."""
    out = config.out_dir
    write_text(out / TRIALS_JSON, json.dumps(rows, indent=2))
    columns = list(dict.fromkeys(k for r in rows for k in r))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(out / TRIALS_CSV, text.getvalue())
    if plot:
        plot_scores(rows, list(config.grid), config.objective, out / SCORES_PNG, config.recipe)


def plot_scores(rows: list[dict[str, Any]], names: list[str], objective: str, path: Path, title: str) -> Path:
    """One panel per hyper-parameter: every finished trial's score at its value (values as
    categories, in the order searched), the best trial ringed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgekit.fileio import atomic_path

    done = [r for r in rows if r.get(objective) is not None]
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(3.2 * max(1, len(names)), 3.2), squeeze=False)
    best = max(done, key=lambda r: r[objective]) if done and not objective.endswith("loss") else None
    if done and objective.endswith("loss"):
        best = min(done, key=lambda r: r[objective])
    for ax, name in zip(axes[0], names, strict=False):
        values = list(dict.fromkeys(str(r[name]) for r in done))
        xs = [values.index(str(r[name])) for r in done]
        ax.scatter(xs, [r[objective] for r in done], alpha=0.7)
        if best is not None:
            ax.scatter(
                [values.index(str(best[name]))], [best[objective]], s=120, facecolors="none", edgecolors="red"
            )
        ax.set_xticks(range(len(values)), values)
        ax.set_xlabel(name)
        ax.set_ylabel(objective)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{title}: {len(done)} trials")
    fig.tight_layout()
    with atomic_path(path, keep_suffix=True) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path
