"""File formats and downloads that several loaders share: idx files, numpy-only unpickling, the
Keras dataset cache."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import DataError
from edgekit.runtime.datasets import Split


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

