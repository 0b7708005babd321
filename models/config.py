"""What a training run and a search are given, checked when it is made: a bad recipe name, number
or hyper-parameter fails in milliseconds, before any data is read or TensorFlow imported.

`RunConfig` holds what `edgekit train` and `edgekit tune` share (the recipe, the folder, the data,
epochs, batch size, limit and seed); `TrainConfig` and `TuneConfig` add their own. Hyper-parameters
are checked by the recipe's own names and its defaults' types, for `--set` and `--grid` alike."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.errors import ConfigError
from edgekit.models.recipe import Recipe, get_recipe
from edgekit.models.step import TRAINING_HPARAMS
from edgekit.runtime.datasets import Dataset


@dataclass(frozen=True)
class RunConfig:
    """The settings a run and a search share. `data`: --data (None: the recipe's own dataset);
    `dataset`: data already in memory, used instead; `epochs`, `batch_size`: None for the recipe's;
    `limit`: train on the first N training samples; `force`: replace an earlier run's files;
    `resume`: continue an interrupted one; `quiet`: no progress on stderr."""

    recipe: str
    out_dir: Path
    data: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    limit: int | None = None
    seed: int = 0
    force: bool = False
    resume: bool = False
    quiet: bool = False
    dataset: Dataset | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        get_recipe(self.recipe)  # an unknown name fails before anything else
        for name in ("epochs", "batch_size", "limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")

    @property
    def recipe_entry(self) -> Recipe:
        return get_recipe(self.recipe)


def hparam_defaults(recipe: Recipe) -> dict[str, Any]:
    """Every hyper-parameter the recipe takes, with its default (the recipe's own where it sets one,
    else the build function's; `inspect.Parameter.empty` for none): what --set and tune accept."""
    params = inspect.signature(recipe.build).parameters
    known = {n: p.default for n, p in params.items() if n != "num_classes" and p.kind is not p.VAR_KEYWORD}
    known.update(TRAINING_HPARAMS)
    known.update(recipe.hparams)
    if recipe.input.data_args is not None:  # set by the data, not by --set
        for name in recipe.input.data_args(recipe.input.preprocess):
            known.pop(name, None)
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
