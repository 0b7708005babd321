"""MNIST as a conditional generator's data (`mnist-gan`): each sample a request, the digit wanted
and the seed of its noise, with a real image of that digit beside it for the discriminator to
compare against. The digits are `mnist`'s (the 5,000 shipped ones unless --data says otherwise),
split as `mnist` splits them; the seeds are fixed (a held-out request's noise is the same in
training's report, every export's validation and `evaluate`). numpy only."""

from __future__ import annotations

import dataclasses

import numpy as np

from edgekit.runtime.datasets import DATASETS, Dataset, Split
from edgekit.runtime.datasets.mnist import mnist

HELDOUT_SEEDS = 1_000_000  # held-out requests' seeds start here, apart from the training ones'


def requests(split: Split, first_seed: int) -> Split:
    """A split of digits as requests: (label, seed, image) records, the labels as targets."""
    n = len(split)
    shape = split.x.shape[1:]
    x = np.empty(n, dtype=[("label", "i8"), ("seed", "i8"), ("image", "u1", shape)])
    x["label"] = split.y
    x["seed"] = first_seed + np.arange(n)
    x["image"] = split.x
    return Split(x, split.y)


@DATASETS.register("mnist-gan")
def mnist_gan(data: str | None = None) -> Dataset:
    """`mnist`'s digits (from `data`, as `mnist` reads it) as generation requests."""
    digits = mnist(data if data is not None else "shipped")
    return dataclasses.replace(
        digits,
        name="mnist-gan",
        description=f"{digits.description}, as requests for each digit (with a real one beside it)",
        train=requests(digits.train, 0),
        heldout=requests(digits.heldout, HELDOUT_SEEDS),
        preprocess={"kind": "labels", "classes": len(digits.labels)},
    )
