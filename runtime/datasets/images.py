"""Images in class-per-folder directories, read at the model's size in OpenCV's BGR order."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.errors import DataError
from edgekit.runtime.datasets import IMAGE_SUFFIXES, Dataset, Split, split_off, stratified_heldout


def _read_class_folders(root: Path, size: tuple[int, int], channels: int) -> tuple[list, list, list, int]:
    from edgekit.runtime.preprocess import ImageSpec, fit_image

    try:
        import cv2
    except ImportError:
        raise DataError("reading an image folder needs OpenCV: run `pip install opencv-python`") from None
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{root} holds no class folders: give --data a folder with one sub-folder per class")
    spec = ImageSpec(size=size, channels=channels)
    xs, ys, skipped = [], [], 0
    for label, name in enumerate(classes):
        files = sorted(
            p for p in (root / name).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise DataError(
                f"class folder {root / name} has no images ({', '.join(IMAGE_SUFFIXES[:4])}, ...): "
                "add some or remove the folder"
            )
        kept = 0
        for f in files:
            # np.fromfile + imdecode: non-ASCII paths work, and a corrupt file gives None, not a crash
            image = cv2.imdecode(np.fromfile(f, np.uint8), cv2.IMREAD_UNCHANGED)
            if image is None or image.size == 0:
                skipped += 1
                continue
            if image.dtype != np.uint8:  # 16-bit PNG/TIFF: keep the top 8 bits
                image = (image >> 8).astype(np.uint8) if image.dtype == np.uint16 else None
                if image is None:
                    skipped += 1
                    continue
            xs.append(fit_image(image, spec))
            ys.append(label)
            kept += 1
        if kept == 0:
            raise DataError(f"class folder {root / name} has no readable images ({len(files)} corrupt)")
    return xs, ys, classes, skipped


def load_image_folder(
    path: str | Path, name: str, size: tuple[int, int], channels: int = 3, heldout_fraction: float = 0.2
) -> Dataset:
    """Images in one sub-folder per class, decoded with OpenCV and resized to `size` (BGR or gray).

    A folder with `train/` and `test/` (or `val/`) sub-folders uses that split; otherwise a fixed,
    stratified `heldout_fraction` of each class is held out. Unreadable images are skipped and counted."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist or is not a folder")
    if not any(root.iterdir()):
        raise DataError(f"image folder {root} is empty: it needs one sub-folder of images per class")
    test_dir = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    if (root / "train").is_dir() and test_dir is not None:
        xs, ys, classes, skipped = _read_class_folders(root / "train", size, channels)
        xt, yt, test_classes, skipped_test = _read_class_folders(test_dir, size, channels)
        if test_classes != classes:
            raise DataError(f"{test_dir} has classes {test_classes}, {root / 'train'} has {classes}")
        train, heldout = (
            Split(np.stack(xs), np.asarray(ys, np.int64)),
            Split(np.stack(xt), np.asarray(yt, np.int64)),
        )
        skipped += skipped_test
    else:
        xs, ys, classes, skipped = _read_class_folders(root, size, channels)
        y = np.asarray(ys, np.int64)
        counts = np.bincount(y, minlength=len(classes))
        if counts.min() < 2:
            few = classes[int(counts.argmin())]
            raise DataError(f"class {few!r} in {root} has one image: each class needs two or more")
        per_class = max(1, int(counts.min() * heldout_fraction))
        train, heldout = split_off(np.stack(xs), y, stratified_heldout(y, per_class))
    note = f", {skipped} unreadable image(s) skipped" if skipped else ""
    return Dataset(
        name,
        str(root),
        f"{len(classes)} classes of images from {root}{note}",
        tuple(classes),
        train,
        heldout,
        skipped=skipped,
    )


