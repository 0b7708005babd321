"""`edgekit tune`: a search over a recipe's hyper-parameters, run by Keras Tuner (its grid, random and
Hyperband searches), scored on the dataset's validation part (or by stratified K-fold
cross-validation of the training split), never on the held-out split the reports use. The best
setting is then trained again on the whole training split through `train`, so it is an ordinary
run folder with a card (which records the search), ready for `edgekit export`.

Every check a user can fail is made when the `TuneConfig` is made, or once the data is loaded,
before the first trial trains."""

from __future__ import annotations

import contextlib
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
from edgekit.models.config import RunConfig, check_hparams, hparam_defaults
from edgekit.models.recipe import Recipe
from edgekit.models.step import Prepared, Step, run_parts
from edgekit.models.train import TrainConfig, TrainResult, output_names, train
from edgekit.models.trials import SCORES_PNG, TRIALS_CSV, TRIALS_JSON, trial_rows, write_trials
from edgekit.runtime.datasets import Dataset, Split, load_dataset
from edgekit.runtime.scoring import evaluate_outputs
from edgekit.runtime.tasks import get_task
from edgekit.tfutil import import_tf

STRATEGIES = ("grid", "random", "hyperband")
SEARCH_DIR = "search"  # Keras Tuner's own state inside the output folder: what --resume reads
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
class TuneConfig(RunConfig):
    """One search, checked when it is made (with what `RunConfig` checks for every run and search):
    names, types, sizes and the output folder fail here in milliseconds, before any data is read or
    TensorFlow imported.

    `grid`: hyper-parameter -> values to try (empty: the recipe's `search` ranges); `random`: that
    many random trials; `folds`: score by stratified K-fold cross-validation of the training split
    instead of the validation part; `metric`: what is maximised (`loss`: minimised); `epochs`: each
    trial's."""

    grid: Mapping[str, tuple[Any, ...]] = field(default_factory=lambda: MappingProxyType({}))
    strategy: str = "grid"
    random: int | None = None
    folds: int | None = None
    metric: str | None = None
    max_trials: int = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        recipe = self.recipe_entry
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
    import_tf()  # first, quietly: Keras Tuner imports TensorFlow, whose C++ start-up logs go unsilenced
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
    if recipe.for_data(dataset).task != recipe.task:
        raise ConfigError(
            f"{recipe.name} on this data is a {recipe.for_data(dataset).task} model, but the search was "
            f"set up for {recipe.task}: tune a recipe made for it (linear-regression for numbers)"
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
    hypermodel = _hypermodel(kt, keras, config, dataset, whole, epochs)
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
    trials = trial_rows(tuner, list(config.grid), config.objective)
    if not any(t["status"] == "COMPLETED" for t in trials):
        raise ConfigError(f"no trial of the search in {config.out_dir} finished: see the messages above")
    write_trials(config.out_dir, trials, list(config.grid), config.objective, config.recipe)
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


def _hypermodel(kt, keras, config: TuneConfig, dataset: Dataset, whole: Split, epochs: int):
    """A Keras Tuner HyperModel over the recipe: `build` maps the trial's choices onto the recipe's
    hparams and builds through the training step, `fit` trains each part of the trial (the
    validation part, or each fold) through the same step and returns the score on what it watched
    (the mean over the folds)."""
    recipe = config.recipe_entry
    if config.folds:
        everything = np.arange(len(whole))
        folds = stratified_folds(np.asarray(whole.y), config.folds, config.seed)
        parts = [(whole.take(np.setdiff1d(everything, held)), whole.take(held)) for held in folds]
    else:
        parts = [run_parts(dataset, config.limit)]
    last: dict[tuple[str, int], Prepared] = {}  # the part build prepared, which fit trains on next

    def step(hp) -> Step:
        hparams = settings(hp.values)
        return Step.of(
            recipe, dataset, hparams, epochs=epochs, batch_size=config.batch_size, seed=config.seed
        )

    def prepared(trial: Step, index: int) -> Prepared:
        key = (repr(sorted(trial.hparams.items())), index)
        if key not in last:
            last.clear()
            last[key] = trial.prepare(*parts[index])
        return last[key]

    class RecipeModel(kt.HyperModel):
        def build(self, hp):
            for name, values in config.grid.items():
                hp.Choice(name, list(values))
            trial = step(hp)
            return trial.build(keras, prepared(trial, 0))

        def fit(self, hp, model, *args, **kwargs):
            trial = step(hp)
            started = time.perf_counter()
            scores = []
            for index in range(len(parts)):
                data = prepared(trial, index)
                fold_model = model if index == 0 else trial.build(keras, data)
                scores.append(score_on(trial, fold_model, data, kwargs))
            return {
                config.objective: float(np.mean(scores)),
                "seconds": time.perf_counter() - started,
            }

    def score_on(trial: Step, model, data: Prepared, kwargs) -> float:
        arrays = trial.arrays(model, data)
        # Keras Tuner's own callbacks (its checkpoint of the best epoch) first, then the step's
        callbacks = [*kwargs.get("callbacks", []), *trial.callbacks(keras, data)]
        trial.fit(
            model,
            arrays,
            callbacks,
            first=kwargs.get("initial_epoch", 0),
            epochs=kwargs.get("epochs", epochs),
        )
        xv, yv = arrays.validation
        if config.metric == "loss":
            return float(model.evaluate(xv, yv, verbose=0, batch_size=256, return_dict=True)["loss"])
        outputs = model.predict(xv, verbose=0, batch_size=256)
        return float(evaluate_outputs(data.card_like, outputs, data.watch.y)[config.metric])

    return RecipeModel()


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
            rows = trial_rows(self, list(config.grid), config.objective)
            write_trials(config.out_dir, rows, list(config.grid), config.objective, config.recipe, plot=False)
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
