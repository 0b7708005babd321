"""The samples an export is calibrated and validated on: the recipe's own dataset (its held-out
split), `--data` (a class-per-folder image directory or an .npz), or, for a model with neither,
generated inputs (which can check agreement with Keras but not accuracy)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.card import ModelCard
from edgekit.errors import DataError
from edgekit.runtime.datasets import Split, load_dataset, split_off, stratified_heldout
from edgekit.runtime.datasets.images import load_image_folder
from edgekit.runtime.inputs import input_kind
from edgekit.runtime.preprocess import ImageSpec

GENERATED_SAMPLES = 100


@dataclass(frozen=True)
class EvalData:
    """Raw items as the runtime task takes them (uint8 images, strings, waveforms)."""

    heldout: Split
    calib: Split | None  # None: nothing to calibrate int8 on
    labelled: bool  # False: generated inputs, no targets to measure a metric against
    description: str
    labels: tuple[str, ...] = ()  # class names the data came with (image folders)


def has_own_data(card: ModelCard | None) -> bool:
    """A card that names the dataset its recipe trained on (which export can load again)."""
    return card is not None and bool(card.dataset.get("name"))


def eval_data(card: ModelCard, data: str | None, calib_samples: int) -> EvalData:
    """Calibration and held-out samples for `card`'s model, from `data` or the card's dataset."""
    if has_own_data(card):
        ds = load_dataset(card.dataset["name"], data or card.dataset.get("source"))
        return EvalData(ds.heldout, ds.train.head(calib_samples), True, ds.description, ds.labels)
    if data:
        return user_data(card, Path(data), calib_samples)
    kind = input_kind(card.preprocess)
    x = kind.generate(card.preprocess, GENERATED_SAMPLES)
    what = f"{GENERATED_SAMPLES} generated {kind.name} inputs"
    return EvalData(
        Split(x, np.zeros(len(x), np.int64)),
        None,
        False,
        f"{what} (no --data: agreement with Keras only, no accuracy)",
    )


def user_data(card: ModelCard, path: Path, calib_samples: int) -> EvalData:
    """`--data` for a model without a recipe: an image folder (resized as the runtime resizes camera
    frames) or an .npz of uint8 images at the model's own size."""
    if card.preprocess.get("kind") == "tensor":
        return tensor_data(card, path, calib_samples)
    if card.task == "detect" and path.is_dir():
        return detector_data(card, path, calib_samples)
    spec = ImageSpec.from_dict(dict(card.preprocess))
    if path.is_dir():
        ds = load_image_folder(path, "user", spec.size, spec.channels)
        if card.labels and len(ds.labels) != len(card.labels):
            raise DataError(
                f"{path} has {len(ds.labels)} class folders but the model has {len(card.labels)} labels"
            )
        return EvalData(ds.heldout, ds.train.head(calib_samples), True, ds.description, ds.labels)
    if path.suffix.lower() == ".npz":
        return _npz(path, spec, calib_samples)
    raise DataError(f"--data {path} is neither an image folder (one sub-folder per class) nor an .npz file")


def _npz(path: Path, spec: ImageSpec, calib_samples: int) -> EvalData:
    try:
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read {path} as an .npz: {e}") from None
    x = arrays.get("x", arrays.get("x_test"))
    y = arrays.get("y", arrays.get("y_test"))
    if x is None:
        raise DataError(
            f"{path} holds {', '.join(arrays) or 'nothing'}: it needs x (and y), or x_test/y_test"
        )
    want = (*spec.size, spec.channels)
    x = check_images(x, want, str(path))
    if y is not None and len(y) != len(x):
        raise DataError(f"{path} has {len(x)} images but {len(y)} labels")
    if "x_train" in arrays and "x_test" in arrays:
        calib = Split(check_images(arrays["x_train"], want, f"{path} x_train"), np.zeros(0, np.int64))
        calib = Split(calib.x[:calib_samples], np.zeros(min(len(calib.x), calib_samples), np.int64))
        held = Split(x, np.asarray(y if y is not None else np.zeros(len(x)), np.int64))
    elif y is not None and len(np.unique(y)) > 1 and np.bincount(np.asarray(y, np.int64)).min() >= 2:
        y = np.asarray(y, np.int64)
        train, held = split_off(x, y, stratified_heldout(y, max(1, int(np.bincount(y).min() * 0.2))))
        calib = train.head(calib_samples)
    else:  # too few labelled samples to split: calibrate and validate on the same ones
        held = Split(x, np.asarray(y if y is not None else np.zeros(len(x)), np.int64))
        calib = held.head(calib_samples)
    return EvalData(held, calib, y is not None, f"{len(held)} held-out samples from {path}")


def check_images(x: np.ndarray, want: tuple[int, int, int], where: str) -> np.ndarray:
    """uint8 images (N, H, W[, C]) at exactly `want`; one sentence naming both shapes otherwise."""
    if x.ndim == 3 and want[2] == 1:
        x = x[..., None]
    got = tuple(x.shape[1:])
    if x.dtype != np.uint8:
        raise DataError(f"{where} holds {x.dtype} values: it needs uint8 pixels (0-255), as images are")
    if got != want:
        fmt = "x".join(str(d) for d in want)
        raise DataError(
            f"{where} holds images of shape {'x'.join(str(d) for d in got)} but the model takes {fmt}: "
            "give images at the model's size, or an image folder (resized as the runtime resizes)"
        )
    return x


def tensor_data(card: ModelCard, path: Path, calib_samples: int) -> EvalData:
    """`--data x.npz` for a plain tensor model: the input's array by its name, else `x`, else the
    first array; one row per sample. Unlabelled: it calibrates int8 and checks agreement with Keras."""
    if path.suffix.lower() not in (".npz", ".npy"):
        raise DataError(f"--data {path}: a tensor model takes an .npz (or .npy) of its input arrays")
    try:
        loaded = np.load(path, allow_pickle=False)
        arrays = dict(loaded.items()) if isinstance(loaded, np.lib.npyio.NpzFile) else {"x": loaded}
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read {path} as arrays: {e}") from None
    if not arrays:
        raise DataError(f"{path} holds no arrays")
    x = arrays.get(card.input.name, arrays.get("x", next(iter(arrays.values()))))
    want = tuple(card.input.shape[1:])
    got = tuple(x.shape[1:])
    if len(got) != len(want) or any(w is not None and w != g for w, g in zip(want, got, strict=True)):
        shown = "x".join("?" if w is None else str(w) for w in want)
        raise DataError(
            f"{path} holds samples of shape {'x'.join(map(str, got))} but the model takes {shown} "
            "(one row per sample)"
        )
    if x.dtype.kind not in "fiub":
        raise DataError(f"{path} holds {x.dtype} values: the model takes numbers")
    items = np.asarray(x)[:, None]  # one inference each, with its batch of 1
    calib = Split(items[:calib_samples], np.zeros(min(len(items), calib_samples), np.int64))
    held = Split(items, np.zeros(len(items), np.int64))
    return EvalData(held, calib, False, f"{len(items)} samples from {path} (agreement with Keras)")


def detector_data(card: ModelCard, path: Path, calib_samples: int) -> EvalData:
    """`--data photos/` for a detector with no dataset of its own (an imported Darknet model): with
    YOLO label files, the `yolo` dataset's held-out split (mAP@0.5); with plain images only, every
    image at the model's size, to calibrate int8 on and to compare decoded boxes with Keras."""
    from edgekit.runtime.datasets.yolo import _images, _read_images, _stack, label_path, load_yolo_folder

    files = _images(path)
    if not files:
        raise DataError(f"--data {path} holds no images (png, jpg...) to calibrate and validate on")
    if any(label_path(f).is_file() for f in files):
        ds = load_yolo_folder(path, "user")
        if card.labels and len(ds.labels) > len(card.labels):
            raise DataError(f"{path} labels {len(ds.labels)} classes but the model has {len(card.labels)}")
        return EvalData(ds.heldout, ds.train.head(calib_samples), True, ds.description, ())
    images, kept, _ = _read_images(files)
    if not images:
        raise DataError(f"--data {path}: none of its {len(files)} images could be decoded")
    spec = ImageSpec.from_dict(dict(card.preprocess))
    x = _stack(images, spec.size)  # at the model's size: boxes compare in the same frame
    return EvalData(
        Split(x, np.zeros(len(x), np.int64)),
        Split(x[:calib_samples], np.zeros(min(len(x), calib_samples), np.int64)),
        False,
        f"{len(x)} unlabelled images from {path} (boxes compared with Keras)",
    )
