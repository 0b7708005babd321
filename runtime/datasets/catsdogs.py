"""Cats vs dogs: two classes of photos in a class-per-folder directory (none ships, none downloads)."""

from __future__ import annotations

from pathlib import Path

from edgekit.errors import DataError
from edgekit.runtime.datasets import DATASETS, Dataset
from edgekit.runtime.datasets.images import load_image_folder

CATS_DOGS_SIZE = (150, 150)
CATS_DOGS_LAYOUT = (
    "give --data a folder with one sub-folder of images per class, two classes: Microsoft's "
    "kagglecatsanddogs zip unpacked (PetImages/Cat, PetImages/Dog; its corrupt JPEGs are skipped), "
    "Kaggle's dogs-vs-cats train.zip (cat.0.jpg, dog.0.jpg, ...) sorted into cat/ and dog/, or the "
    "tutorial's cats_and_dogs_small (train/ and test/, each with cats/ and dogs/)"
)


@DATASETS.register("cats-dogs")
def cats_dogs(data: str | None = None) -> Dataset:
    """Two classes of images in a class-per-folder directory (see CATS_DOGS_LAYOUT), at 150x150 BGR."""
    if data in (None, "", "auto"):
        raise DataError(
            f"there is no cats-vs-dogs data on this machine (none ships, none downloads): {CATS_DOGS_LAYOUT}"
        )
    root = Path(data)
    if (root / "PetImages").is_dir():  # the Microsoft zip, unpacked where it was downloaded
        root = root / "PetImages"
    dataset = load_image_folder(root, "cats-dogs", size=CATS_DOGS_SIZE, channels=3)
    if len(dataset.labels) != 2:
        raise DataError(
            f"cats-dogs-cnn has one sigmoid unit, so it tells two classes apart, but {root} has "
            f"{len(dataset.labels)} class folders ({', '.join(dataset.labels)}): keep two"
        )
    return dataset
