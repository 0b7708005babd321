"""The quantized feed and read-back against their definition: an integer tensor with (scale,
zero_point) holds q = clip(round(x / scale) + zero_point) and means (q - zero_point) * scale; any
other tensor holds its values as they are. Every task feeds and reads through these, so a wrong
sign or a swapped condition here changes every quantized model's numbers at once."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.runtime.backends import TensorInfo
from edgekit.runtime.tensors import from_tensor, is_quantized, reader, to_tensor

pytestmark = pytest.mark.runtime_only

INT8 = TensorInfo("x", (1, 5), np.dtype(np.int8), (0.02, -3))
UINT8 = TensorInfo("x", (1, 5), np.dtype(np.uint8), (1 / 255, 128))
FLOAT = TensorInfo("x", (1, 5), np.dtype(np.float32))


def test_which_tensors_hold_codes():
    assert is_quantized(INT8) and is_quantized(UINT8)
    assert is_quantized(TensorInfo("x", (1,), np.dtype(np.int32), (0.5, 0)))  # an int32 bias-like tensor
    assert not is_quantized(TensorInfo("x", (1,), np.dtype(np.int8)))  # integers without parameters
    # a float tensor that carries (scale, zero_point) (fp16 exports, QDQ graphs' float ends) holds values
    assert not is_quantized(TensorInfo("x", (1,), np.dtype(np.float32), (0.5, 0)))


def test_to_tensor_quantizes_by_the_definition():
    x = np.array([[-1.0, -0.013, 0.0, 0.5, 3.0]], np.float32)
    q = to_tensor(x, INT8)
    assert q.dtype == np.int8
    # round(x / 0.02) - 3, clipped to [-128, 127]
    np.testing.assert_array_equal(q, [[-53, -4, -3, 22, 127]])
    u = to_tensor(np.array([0.0, 0.2, -0.6, 1.0]), UINT8)
    np.testing.assert_array_equal(u, [128, 179, 0, 255])
    assert u.dtype == np.uint8


def test_to_tensor_keeps_values_of_other_tensors():
    x = np.asfortranarray(np.array([[1.5, -2.25], [3.0, 4.0]], np.float64))
    out = to_tensor(x, FLOAT)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, x)
    ints = to_tensor(np.array([3.0, 7.0]), TensorInfo("ids", (2,), np.dtype(np.int32)))
    assert ints.dtype == np.int32 and ints.tolist() == [3, 7]  # token ids: not quantized
    half = to_tensor(x, TensorInfo("x", (2, 2), np.dtype(np.float16), (0.5, 0)))
    assert half.dtype == np.float16 and half.tolist() == x.tolist()  # a float tensor ignores quant


def test_from_tensor_dequantizes_codes_only():
    codes = np.array([-128, -3, 0, 127], np.int8)
    np.testing.assert_allclose(
        from_tensor(codes, INT8), [(-128 + 3) * 0.02, 0.0, 0.06, 130 * 0.02], rtol=1e-6
    )
    assert from_tensor(codes, INT8).dtype == np.float32
    values = np.array([0.25, -1.0], np.float32)  # a float output of a tensor with parameters
    assert from_tensor(values, INT8) is values or np.array_equal(from_tensor(values, INT8), values)
    plain = np.array([5, 6], np.int64)  # an integer output without parameters: labels, counts
    assert from_tensor(plain, TensorInfo("n", (2,), np.dtype(np.int64))).dtype == np.int64
    assert from_tensor([1, 2], FLOAT).tolist() == [1, 2]


@pytest.mark.parametrize("info", [INT8, UINT8], ids=["int8", "uint8"])
def test_reader_is_from_tensor_through_a_table(info):
    read = reader(info)
    codes = np.arange(256, dtype=np.uint8).view(info.dtype).reshape(16, 16)
    got = read(codes)
    want = (codes.astype(np.float32) - np.float32(info.quant[1])) * np.float32(info.quant[0])
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.float32 and got.shape == (16, 16)
    floats = np.array([0.5, 1.5], np.float32)  # not the tensor's codes: read as from_tensor reads them
    np.testing.assert_array_equal(read(floats), floats)
    other = np.array([1, 2], np.int16 if info.dtype == np.int8 else np.int8)
    np.testing.assert_allclose(read(other), from_tensor(other, info))


def test_reader_of_other_tensors_is_from_tensor():
    wide = TensorInfo("x", (3,), np.dtype(np.int16), (0.5, 2))
    codes = np.array([-300, 2, 400], np.int16)
    np.testing.assert_array_equal(reader(wide)(codes), [-151.0, 0.0, 199.0])
    values = np.array([0.1, 0.2], np.float32)
    np.testing.assert_array_equal(reader(FLOAT)(values), values)
    ints = np.array([1, 2], np.int8)
    assert (
        reader(TensorInfo("x", (2,), np.dtype(np.int8)))(ints).dtype == np.int8
    )  # no parameters: codes as they are
