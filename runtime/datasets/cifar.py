"""CIFAR-10 from its pickled batches (the Keras cache or --data FOLDER), unpickled numpy-only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import DataError
from edgekit.runtime.datasets import DATASETS, Dataset, Split
from edgekit.runtime.datasets._files import keras_download, numpy_only_load
from edgekit.runtime.datasets.images import load_image_folder

CIFAR10_LABELS = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR10_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))


def cifar10_cache_folders() -> tuple[Path, ...]:
    """Where Keras keeps CIFAR-10's pickled batches: Keras 3, then Keras 2's layout."""
    cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"
    return (cache / "cifar-10-batches-py-target" / "cifar-10-batches-py", cache / "cifar-10-batches-py")



def _unpickle_batch(path: Path) -> dict[str, Any]:
    """A CIFAR python batch: a pickled dict of numpy arrays and lists, and nothing that runs code."""
    import pickle

    try:
        with open(path, "rb") as f:
            d = numpy_only_load(f)
        d = {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}
        data = np.asarray(d["data"], dtype=np.uint8)
        labels = np.asarray(d["labels"], dtype=np.int64)
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, KeyError, TypeError, ValueError) as e:
        raise DataError(
            f"{path} is not a CIFAR-10 python batch (a pickled dict of data and labels): {e}"
        ) from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise DataError(
            f"{path} holds data of shape {data.shape} and {len(labels)} labels; expected (N, 3072), N"
        )
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{path} has labels outside 0-9")
    # planar RGB -> HWC, in BGR order as every Split holds images
    rgb = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return {"x": np.ascontiguousarray(rgb[..., ::-1]), "y": labels}


def _cifar10_batches(folder: Path, description: str, source: str) -> Dataset:
    missing = [n for n in (*CIFAR10_BATCHES, "test_batch") if not (folder / n).is_file()]
    if missing:
        raise DataError(f"{folder} lacks the CIFAR-10 batch file(s) {', '.join(missing)}")
    parts = [_unpickle_batch(folder / n) for n in CIFAR10_BATCHES]
    test = _unpickle_batch(folder / "test_batch")  # held out: the official 10,000 test images
    train = Split(np.concatenate([p["x"] for p in parts]), np.concatenate([p["y"] for p in parts]))
    return Dataset("cifar10", source, description, CIFAR10_LABELS, train, Split(test["x"], test["y"]))


@DATASETS.register("cifar10")
def cifar10(data: str | None = None) -> Dataset:
    """CIFAR-10: the Keras cache when it holds it (or `--data keras` to download it), a folder of the
    python batches, or a class-per-folder image directory (resized to 32x32 RGB)."""
    if data in (None, "", "auto"):
        for folder in cifar10_cache_folders():
            if (folder / "test_batch").is_file():
                return _cifar10_batches(folder, f"CIFAR-10 from the Keras cache ({folder})", "keras")
        raise DataError(
            "CIFAR-10 is not in the Keras cache: use --data keras to download it (170 MB), or give "
            "--data a folder of the python batches or a folder with one sub-folder of images per class"
        )
    if data == "keras":
        folder = _download_keras_cifar10()
        return _cifar10_batches(folder, f"CIFAR-10 from keras.datasets ({folder})", "keras")
    path = Path(data)
    if path.is_dir() and (path / "data_batch_1").is_file():
        return _cifar10_batches(path, f"CIFAR-10 batches from {path}", str(path))
    return load_image_folder(path, "cifar10", size=(32, 32), channels=3)


def _download_keras_cifar10() -> Path:
    keras_download(
        "cifar10", "CIFAR-10", "give --data a folder of the python batches or of class-per-folder images"
    )
    for folder in cifar10_cache_folders():
        if (folder / "test_batch").is_file():
            return folder
    raise DataError(f"Keras downloaded CIFAR-10 but its batches are not in {cifar10_cache_folders()[0]}")
