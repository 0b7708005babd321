"""Fashion-MNIST from its four idx files (Debian's dataset-fashion-mnist, or --data FOLDER)."""

from __future__ import annotations

import os
from pathlib import Path

from edgekit.errors import DataError
from edgekit.runtime.datasets import DATASETS, Dataset
from edgekit.runtime.datasets._files import _idx_file, _idx_pair

FASHION_LABELS = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
FASHION_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# where Debian's `dataset-fashion-mnist` puts the four files
FASHION_DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def fashion_mnist_folders() -> tuple[Path, ...]:
    """Where Fashion-MNIST is looked for with no --data: the Debian package, then the Keras cache."""
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return (FASHION_DEBIAN, keras_home / "datasets" / "fashion-mnist")


def _fashion_from(folder: Path) -> Dataset:
    files = [_idx_file(folder, stem) for stem in FASHION_FILES]
    missing = [stem for stem, f in zip(FASHION_FILES, files) if f is None]
    if missing:
        raise DataError(
            f"{folder} lacks the Fashion-MNIST idx file(s) {', '.join(missing)} (plain or .gz); "
            "run `apt-get install dataset-fashion-mnist` or give --data a folder holding all four"
        )
    n = len(FASHION_LABELS)
    train = _idx_pair(folder, files[0].name, files[1].name, n)
    heldout = _idx_pair(folder, files[2].name, files[3].name, n)  # the official 10,000 test images
    if train.x.shape[1:] != (28, 28, 1) or heldout.x.shape[1:] != (28, 28, 1):
        raise DataError(f"{folder} holds images of {train.x.shape[1:3]}, Fashion-MNIST's are 28x28")
    return Dataset(
        "fashion-mnist",
        str(folder),
        f"Fashion-MNIST from {folder} (held out: the official test set)",
        FASHION_LABELS,
        train,
        heldout,
    )


@DATASETS.register("fashion-mnist")
def fashion_mnist(data: str | None = None) -> Dataset:
    """Fashion-MNIST (Zalando, MIT): the four idx files from Debian's `dataset-fashion-mnist`, the
    Keras cache, or a folder given with --data. Held out: the official 10,000 test images."""
    if data in (None, "", "auto"):
        for folder in fashion_mnist_folders():
            if all(_idx_file(folder, stem) for stem in FASHION_FILES):
                return _fashion_from(folder)
        raise DataError(
            "Fashion-MNIST is not on this machine: run `apt-get install dataset-fashion-mnist` "
            f"(it installs the idx files under {FASHION_DEBIAN}) or give --data a folder holding "
            + ", ".join(FASHION_FILES)
        )
    folder = Path(data)
    if not folder.is_dir():
        raise DataError(
            f"--data {folder} is not a folder: give a folder holding the four Fashion-MNIST idx files, "
            "or run `apt-get install dataset-fashion-mnist`"
        )
    return _fashion_from(folder)


