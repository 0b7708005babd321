"""Tiny datasets for any recipe, for the tests parametrised over the recipe registry."""

from __future__ import annotations

import numpy as np

from edgekit.errors import DataError
from edgekit.models.recipe import get_recipe
from edgekit.runtime.datasets import Dataset, Split, load_dataset


def made_up_dataset(name: str, n: int = 24) -> Dataset:
    """A tiny dataset for a recipe, by its task and input kind: real where this machine has the
    recipe's data or a generator makes it, else made-up raw inputs of the right kind (enough to
    build, train a step and round-trip; nothing here is about accuracy)."""
    recipe = get_recipe(name)
    try:
        full = load_dataset(recipe.data.dataset)
        return Dataset(
            full.name, full.source, full.description, full.labels, full.train.head(n), full.heldout.head(n)
        )
    except DataError:
        pass
    rng = np.random.default_rng(0)
    kind = recipe.input.preprocess.get("kind", "image")
    labels = ("a", "b", "c")
    if kind == "text":
        words = ["good", "bad", "film", "plot", "café", "dull", "great", "actor"]
        x = np.array(
            [" ".join(rng.choice(words, size=rng.integers(3, 12))) for _ in range(2 * n)], dtype=object
        )
    elif kind == "audio":
        rate = int(recipe.input.preprocess.get("sample_rate", 16000))
        seconds = float(recipe.input.preprocess.get("clip_seconds", 1.0))
        x = np.array(
            [rng.normal(0, 0.1, int(rate * seconds)).astype(np.float32) for _ in range(2 * n)], dtype=object
        )
    else:
        h, w = recipe.input.preprocess["size"]
        x = rng.integers(0, 256, size=(2 * n, h, w, recipe.input.preprocess["channels"]), dtype=np.uint8)
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
