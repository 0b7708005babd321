"""Segmentation data: an image folder with a matching mask folder.

numpy and OpenCV only (no TensorFlow), so `bench` and `evaluate` can read it on a device too."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit.errors import DataError
from edgekit.runtime.datasets import DATASETS, HELDOUT_SEED, IMAGE_SUFFIXES, Dataset, Split

MASK_LABELS = ("background", "foreground")
LAYOUT = (
    "a folder with images/ and masks/ (one mask per image with the same file name stem, any image "
    "suffix; nonzero mask pixels are foreground), or train/ and test/ folders that each hold both "
    "(or images/train, images/test beside masks/train, masks/test)"
)
MAKE_HINT = "`edgekit data make scenes --out scenes` makes one"
TEST_NAMES = ("test", "val", "valid", "validation")
LOSSY = (".jpg", ".jpeg", ".webp")  # masks saved this way ring: nonzero noise around every edge
HELDOUT_FRACTION = 0.2


@dataclass
class _Read:
    """Pairs read from one images/ + masks/ folder, and what was left out or fixed on the way."""

    images: list[np.ndarray] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)
    no_mask: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    mask_resized: list[str] = field(default_factory=list)


def _files(folder: Path) -> dict[Path, Path]:
    """Image files under `folder`, keyed by their path relative to it without the suffix."""
    found: dict[Path, Path] = {}
    for f in sorted(folder.rglob("*")):
        if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith("."):
            found.setdefault(f.relative_to(folder).with_suffix(""), f)
    return found


def read_mask(path: Path) -> np.ndarray | None:
    """A mask file -> uint8 (H, W) of 0/1 (nonzero in any channel = foreground); None if unreadable."""
    import cv2

    raw = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.size == 0:
        return None
    if raw.ndim == 3:
        raw = raw.max(axis=2)
    # a JPEG mask has faint non-zero noise beside every edge: only its bright half is foreground
    cut = raw.max() // 2 if path.suffix.lower() in LOSSY else 0
    return (raw > cut).astype(np.uint8)


def _read_pairs(images_dir: Path, masks_dir: Path) -> _Read:
    try:
        import cv2
    except ImportError:
        raise DataError("reading segmentation data needs OpenCV: run `pip install opencv-python`") from None
    out = _Read()
    masks = _files(masks_dir) if masks_dir.is_dir() else {}
    for key, f in _files(images_dir).items():
        m = masks.get(key)
        if m is None:
            out.no_mask.append(f.name)
            continue
        # np.fromfile + imdecode: non-ASCII paths work, and a corrupt file gives None, not a crash;
        # IMREAD_COLOR: gray, 16-bit and alpha images all come as 8-bit BGR, as a camera gives them
        image = cv2.imdecode(np.fromfile(f, np.uint8), cv2.IMREAD_COLOR)
        mask = read_mask(m)
        if image is None or image.size == 0 or mask is None:
            out.unreadable.append((f if image is None or image.size == 0 else m).name)
            continue
        if mask.shape != image.shape[:2]:
            h, w = image.shape[:2]
            mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
            out.mask_resized.append(m.name)
        out.images.append(image)
        out.masks.append(mask)
    return out


def _common_size(images: list[np.ndarray], masks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, int]:
    """Stack pairs at the most common image size (others resized, masks by nearest neighbour)."""
    import cv2

    (h, w), _ = Counter(im.shape[:2] for im in images).most_common(1)[0]
    resized = 0
    for i, (im, m) in enumerate(zip(images, masks)):
        if im.shape[:2] != (h, w):
            interp = cv2.INTER_AREA if im.shape[0] > h else cv2.INTER_LINEAR
            images[i] = cv2.resize(im, (w, h), interpolation=interp)
            masks[i] = cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST)
            resized += 1
    return np.stack(images), np.stack(masks), resized


def _examples(names: list[str]) -> str:
    shown = ", ".join(names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _notes(reads: list[_Read], resized: int, size: tuple[int, int]) -> tuple[str, int]:
    """(the warnings said with the dataset's description, the number of images skipped)."""
    no_mask = [n for r in reads for n in r.no_mask]
    unreadable = [n for r in reads for n in r.unreadable]
    mask_resized = [n for r in reads for n in r.mask_resized]
    notes = []
    if no_mask:
        notes.append(f"{len(no_mask)} image(s) without a mask skipped ({_examples(no_mask)})")
    if unreadable:
        notes.append(f"{len(unreadable)} unreadable file(s) skipped ({_examples(unreadable)})")
    if mask_resized:
        notes.append(
            f"{len(mask_resized)} mask(s) of another size than their image resized to it "
            f"(nearest; {_examples(mask_resized)})"
        )
    if resized:
        notes.append(f"{resized} pair(s) of another size resized to {size[0]}x{size[1]}")
    return ("; warning: " + "; ".join(notes) if notes else ""), len(no_mask) + len(unreadable)


def _parts(root: Path) -> tuple[tuple[Path, Path], tuple[Path, Path] | None]:
    """(train images, masks), (held-out images, masks) or None: the folders of one of the layouts."""
    for test in TEST_NAMES:
        if (root / "train" / "images").is_dir() and (root / test / "images").is_dir():
            return (root / "train" / "images", root / "train" / "masks"), (
                root / test / "images",
                root / test / "masks",
            )
        if (root / "images" / "train").is_dir() and (root / "images" / test).is_dir():
            return (root / "images" / "train", root / "masks" / "train"), (
                root / "images" / test,
                root / "masks" / test,
            )
    if (root / "images").is_dir():
        return (root / "images", root / "masks"), None
    raise DataError(f"{root} has no images/ folder: give --data {LAYOUT}; {MAKE_HINT}")


def load_mask_folder(path: str | Path, name: str = "masks") -> Dataset:
    """Images and their binary masks from `path` (see LAYOUT), as uint8 BGR images and uint8 0/1
    masks (N, H, W) at the most common image size. Images without a mask, unreadable files and
    masks of the wrong size are skipped, resized and counted in the description, never fatal."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"--data {root} is not a folder: give {LAYOUT}; {MAKE_HINT}")
    train_dirs, test_dirs = _parts(root)
    for images_dir, masks_dir in (train_dirs, test_dirs) if test_dirs else (train_dirs,):
        if not masks_dir.is_dir():
            raise DataError(f"{images_dir} has no masks folder beside it ({masks_dir}): give --data {LAYOUT}")
        if not _files(images_dir):
            raise DataError(f"{images_dir} holds no images ({', '.join(IMAGE_SUFFIXES[:4])}, ...): {LAYOUT}")
    reads = [_read_pairs(*train_dirs)] + ([_read_pairs(*test_dirs)] if test_dirs else [])
    for r, (images_dir, masks_dir) in zip(reads, (train_dirs, test_dirs)):
        if not r.images:
            raise DataError(
                f"none of the images in {images_dir} has a readable mask in {masks_dir} with the same "
                f"file name stem ({len(r.no_mask)} without a mask, {len(r.unreadable)} unreadable)"
            )
    n_train = len(reads[0].images)
    x, y, resized = _common_size([im for r in reads for im in r.images], [m for r in reads for m in r.masks])
    if test_dirs:
        train, heldout = Split(x[:n_train], y[:n_train]), Split(x[n_train:], y[n_train:])
    else:
        if len(x) < 2:
            raise DataError(f"{root} has one image with a mask: a held-out split needs two or more")
        # a fixed permutation: the same held-out images every run, whatever the files' order
        order = np.random.default_rng(HELDOUT_SEED).permutation(len(x))
        n_held = max(1, round(len(x) * HELDOUT_FRACTION))
        held, rest = np.sort(order[:n_held]), order[n_held:]
        train, heldout = Split(x[rest], y[rest]), Split(x[held], y[held])
    note, skipped = _notes(reads, resized, x.shape[1:3])
    split_note = "held out: its test part" if test_dirs else f"{HELDOUT_FRACTION:.0%} held out"
    return Dataset(
        name,
        str(root),
        f"{len(x)} images with masks ({x.shape[1]}x{x.shape[2]}) from {root}, {split_note}{note}",
        MASK_LABELS,
        train,
        heldout,
        skipped=skipped,
    )


@DATASETS.register("masks")
def masks(data: str | None = None) -> Dataset:
    """Images with binary masks from a folder (see LAYOUT); there is no default: give --data."""
    if data in (None, "", "auto"):
        raise DataError(f"segmentation needs --data: {LAYOUT}; {MAKE_HINT}")
    return load_mask_folder(data)
