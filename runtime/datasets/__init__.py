"""Datasets, as raw inputs (uint8 images, strings, waveforms) and targets with a fixed held-out split.

numpy only (no TensorFlow), so `bench` and `evaluate` can measure accuracy on a device too, and
training and export read the same splits. Each module of this package registers its loaders in
`DATASETS`; every loader says where its data came from; none downloads unless asked to."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.registry import Registry

SHIPPED = Path(__file__).parent / "data"
HELDOUT_SEED = 0
VALIDATION_SEED = HELDOUT_SEED + 3
# The validation part's share of the training split: 1/8 of the 80% that is not held out gives the
# course's 70/10/20; a dataset with its own fixed test split (full MNIST, CIFAR, Fashion) gives 1/8
# of its training split too.
VALIDATION_SHARE = 1 / 8


@dataclass(frozen=True)
class Split:
    """Raw inputs as the runtime's sources give them, and the targets.

    x: images as uint8 (N, H, W, C) in OpenCV's BGR order (as a camera or file gives them), or an
    object array of strings (text) or float32 waveforms (audio). y: int64 class indices (N,), or
    what the task's metric takes (masks, an object array of boxes per image)."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def head(self, n: int | None) -> Split:
        return self if n is None else Split(self.x[:n], self.y[:n])

    def take(self, index: np.ndarray) -> Split:
        """The samples at `index`, in that order."""
        return Split(self.x[index], self.y[index])

    def __add__(self, other: Split) -> Split:
        return Split(np.concatenate([self.x, other.x]), np.concatenate([self.y, other.y]))


@dataclass(frozen=True)
class Dataset:
    """A dataset in three parts: `train` (everything not held out), which splits into `fit` (what
    the weights are fitted on, 70% of the whole) and `validation` (10%: what early stopping, the
    plateau schedule and `edgekit tune` score on), and `heldout` (20%, the test part: only reports,
    export validation and `evaluate` read it, so their numbers are never of data a choice was
    made on). `train` keeps its old meaning, so every reader of it and of `heldout` is unchanged."""

    name: str
    source: str  # what `--data` to give to load the same data again
    description: str  # said to the user: where the data came from
    labels: tuple[str, ...]
    train: Split
    heldout: Split
    skipped: int = 0  # unreadable files left out (image folders), said in the description too
    # what the data says about how its items become inputs, merged over the recipe's preprocess
    # before it is fitted on the training part (a table's columns' units, its cleaning choices)
    preprocess: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what cleaning did to the rows, in order: said to the user, kept in the card

    @cached_property
    def validation_index(self) -> np.ndarray:
        """Indices into `train` of the validation part: the same every time (fixed seed)."""
        return validation_indices(self.train.y)

    @property
    def validation(self) -> Split:
        """The validation part: a fixed, stratified 1/8 of `train` (10% of the whole)."""
        return self.train.take(self.validation_index)

    @property
    def fit(self) -> Split:
        """`train` without its validation part, in `train`'s order (70% of the whole)."""
        keep = np.ones(len(self.train), dtype=bool)
        keep[self.validation_index] = False
        return self.train.take(np.flatnonzero(keep))

    def card_entry(self) -> dict[str, Any]:
        entry = {
            "name": self.name,
            "source": self.source,
            "description": self.description,
            "size": len(self.train) + len(self.heldout),
            "train": len(self.train),
            "validation": len(self.validation_index),
            "heldout": len(self.heldout),
            "heldout_seed": HELDOUT_SEED,
        }
        if self.skipped:
            entry["skipped"] = self.skipped
        if self.notes:
            entry["cleaning"] = list(self.notes)
        return entry


DatasetLoader = Callable[[str | None], Dataset]
DATASETS: Registry[DatasetLoader] = Registry("dataset", package=__name__)


def load_dataset(name: str, data: str | None = None) -> Dataset:
    """The dataset `name` (a loader of this package), from `data` if given."""
    return DATASETS.get(name)(data)


def stratified_heldout(y: np.ndarray, per_class: int, seed: int = HELDOUT_SEED) -> np.ndarray:
    """Indices of a fixed held-out set: `per_class` samples of each class, the same every time."""
    rng = np.random.default_rng(seed)
    picks = [rng.permutation(np.flatnonzero(y == c))[:per_class] for c in np.unique(y)]
    return np.sort(np.concatenate(picks))


def validation_indices(y: Any, share: float = VALIDATION_SHARE, seed: int = VALIDATION_SEED) -> np.ndarray:
    """Sorted indices of a fixed validation part: `share` of each class (rounded; a class of one
    sample stays in training), or of the whole where the targets are not class indices (masks,
    boxes). Fewer than two samples: none."""
    y = np.asarray(y) if not isinstance(y, np.ndarray) else y
    n = len(y)
    if n < 2:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    if y.ndim != 1 or y.dtype.kind not in "iub":
        return np.sort(rng.permutation(n)[: max(1, round(n * share))])
    picks = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        k = round(len(members) * share) if len(members) > 1 else 0
        picks.append(rng.permutation(members)[:k])
    chosen = np.sort(np.concatenate(picks)).astype(np.int64)
    if chosen.size == 0:  # every class too small for its share: one sample all the same
        chosen = np.sort(rng.permutation(n)[:1])
    return chosen


def split_off(x: np.ndarray, y: np.ndarray, heldout: np.ndarray) -> tuple[Split, Split]:
    mask = np.zeros(len(y), dtype=bool)
    mask[heldout] = True
    # shuffle the training part once (fixed seed) so a --limit slice holds every class
    train_idx = np.random.default_rng(HELDOUT_SEED + 1).permutation(np.flatnonzero(~mask))
    return Split(x[train_idx], y[train_idx]), Split(x[mask], y[mask])


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
