"""A tensor's storage <-> float values, written once: an integer tensor with (scale, zero_point)
holds quantized codes; every other tensor holds its values as they are.

Tasks feed their inputs through `to_tensor` and read their outputs through `from_tensor`; scoring
and the detection formats' batch decoders read outputs the same way, so a quantized model's
numbers mean the same on every path."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgekit.runtime.backends import TensorInfo
from edgekit.runtime.preprocess import dequantize, quantize


def is_quantized(info: TensorInfo) -> bool:
    """True when the tensor holds integer codes of float values (int8/uint8 with scale and zero point)."""
    return info.quant is not None and info.dtype.kind in "iu"


def to_tensor(x: np.ndarray, info: TensorInfo) -> np.ndarray:
    """Float model input values -> what the tensor takes: quantized codes, or the values in its dtype."""
    if is_quantized(info):
        return quantize(x, *info.quant, info.dtype)
    return np.ascontiguousarray(x, dtype=info.dtype)


def from_tensor(value: np.ndarray, info: TensorInfo) -> np.ndarray:
    """A model output -> its float values where it holds quantized codes; anything else as it is."""
    value = np.asarray(value)
    if info.quant is not None and value.dtype.kind in "iu":
        return dequantize(value, *info.quant)
    return value


def random_tensor(shape: Sequence[int], dtype: np.dtype, rng: np.random.Generator) -> np.ndarray:
    """Values spread over the dtype's range (floats in [-1, 1], as most normalised inputs are)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = max(int(info.min), -(2**31)), min(int(info.max), 2**31 - 1)
        return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)
    return rng.uniform(-1.0, 1.0, size=shape).astype(dtype)
