"""Datasets, as raw inputs (uint8 images, strings, waveforms) and targets with a fixed held-out split.

numpy only (no TensorFlow), so `bench` and `evaluate` can measure accuracy on a device too, and
training and export read the same splits. Each module of this package registers its loaders in
`DATASETS`; every loader says where its data came from; none downloads unless asked to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.registry import Registry

SHIPPED = Path(__file__).parent / "data"
HELDOUT_SEED = 0


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


@dataclass(frozen=True)
class Dataset:
    name: str
    source: str  # what `--data` to give to load the same data again
    description: str  # said to the user: where the data came from
    labels: tuple[str, ...]
    train: Split
    heldout: Split
    skipped: int = 0  # unreadable files left out (image folders), said in the description too

    def card_entry(self) -> dict[str, Any]:
        entry = {
            "name": self.name,
            "source": self.source,
            "description": self.description,
            "size": len(self.train) + len(self.heldout),
            "train": len(self.train),
            "heldout": len(self.heldout),
            "heldout_seed": HELDOUT_SEED,
        }
        if self.skipped:
            entry["skipped"] = self.skipped
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


def split_off(x: np.ndarray, y: np.ndarray, heldout: np.ndarray) -> tuple[Split, Split]:
    mask = np.zeros(len(y), dtype=bool)
    mask[heldout] = True
    # shuffle the training part once (fixed seed) so a --limit slice holds every class
    train_idx = np.random.default_rng(HELDOUT_SEED + 1).permutation(np.flatnonzero(~mask))
    return Split(x[train_idx], y[train_idx]), Split(x[mask], y[mask])


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
