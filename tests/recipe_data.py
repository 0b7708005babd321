"""Tiny datasets for any recipe, for the tests parametrised over the recipe registry."""

from __future__ import annotations

import dataclasses

import numpy as np

from edgekit.errors import DataError
from edgekit.models.recipe import Recipe, get_recipe, recipe_names
from edgekit.runtime.datasets import Dataset, Split, load_dataset
from edgekit.runtime.inputs import input_kind
from edgekit.runtime.tasks import get_task


def made_up_dataset(name: str, n: int = 24) -> Dataset:
    """A tiny dataset for a recipe, by its task and input kind: real where this machine has the
    recipe's data or a generator makes it, else its input kind's generated raw inputs (enough to
    build, train a step and round-trip; nothing here is about accuracy)."""
    recipe = get_recipe(name)
    try:
        full = load_dataset(recipe.data.dataset)
        # the same data, fewer samples (a table's columns and cleaning choices kept)
        return dataclasses.replace(full, train=full.train.head(n), heldout=full.heldout.head(n))
    except DataError:
        pass
    rng = np.random.default_rng(0)
    labels = ("a", "b", "c")
    x = input_kind(recipe.input.preprocess).generate(recipe.input.preprocess, 2 * n)
    if recipe.task == "segment":
        y = (rng.random((2 * n, *x.shape[1:3])) > 0.5).astype(np.uint8)
        labels = ("background", "foreground")
    elif recipe.task == "detect":
        y = np.empty(2 * n, dtype=object)
        for i in range(2 * n):
            k = int(rng.integers(1, 3))
            y[i] = np.column_stack(
                [rng.integers(0, 3, k), rng.uniform(0.3, 0.7, (k, 2)), rng.uniform(0.1, 0.3, (k, 2))]
            ).astype(np.float32)
    else:
        if recipe.output.activation == "sigmoid":
            labels = ("neg", "pos")
        y = rng.integers(0, len(labels), size=2 * n)
    return Dataset(name, "made-up", "made-up samples", labels, Split(x[:n], y[:n]), Split(x[n:], y[n:]))


def kind_example(kind: str, *, tiny: bool = False, n: int = 24) -> tuple[Recipe, dict, dict, Dataset]:
    """For an input kind: the classifier recipe with the smallest input that reads it (any recipe
    that does, where no classifier does: a forecaster's windows, a generator's labels), its hparams
    (the `tiny` ones if asked), the card's preprocess fitted as training fits it, and the tiny
    dataset it was fitted on."""
    reading = [
        get_recipe(r) for r in recipe_names() if get_recipe(r).input.preprocess.get("kind", "image") == kind
    ]
    readers = [r for r in reading if get_task(r.task).classifies] or reading
    if not readers:
        raise AssertionError(f"no recipe reads {kind!r} inputs: give the tests one to build")
    recipe = min(readers, key=lambda r: int(np.prod(r.input.shape)))
    hparams = {**recipe.hparams, **(recipe.tiny if tiny else {})}
    data = made_up_dataset(recipe.name, n)
    preprocess = dict(recipe.input.preprocess)
    if recipe.input.fit_preprocess is not None:
        preprocess = recipe.input.fit_preprocess(data.train, preprocess, hparams)
    return recipe, hparams, preprocess, data
