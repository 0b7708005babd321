"""A tensor's storage <-> float values, written once: an integer tensor with (scale, zero_point)
holds quantized codes; every other tensor holds its values as they are.

Tasks feed their inputs through `to_tensor` and read their outputs through `from_tensor`; scoring
and the detection formats' batch decoders read outputs the same way, so a quantized model's
numbers mean the same on every path."""

from __future__ import annotations

from collections.abc import Callable, Sequence

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


def reader(info: TensorInfo) -> Callable[[np.ndarray], np.ndarray]:
    """`from_tensor` for one tensor, made once: an 8-bit quantized output is read through a table of
    its 256 codes' values (one lookup per frame instead of a convert, a subtract and a multiply: the
    same float32 numbers, computed by `dequantize` itself), anything else as `from_tensor` reads it."""
    if info.quant is None:  # values already: what from_tensor gives them back as, with no call around it
        return np.asarray
    if info.dtype not in (np.int8, np.uint8):
        return lambda value: from_tensor(value, info)
    codes = np.arange(256, dtype=np.uint8).view(info.dtype)
    table = dequantize(codes, *info.quant)
    expected = info.dtype

    def read(value: np.ndarray) -> np.ndarray:
        value = np.asarray(value)
        if value.dtype != expected:  # not the codes the tensor holds: as from_tensor reads them
            return from_tensor(value, info)
        return table[value.view(np.uint8)]

    return read


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
