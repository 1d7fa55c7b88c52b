"""gpucnn.ops._select: select and passed give numpy.where's elements bit for bit, on every dtype, broadcast."""

import numpy as np
import pytest

from gpucnn.ops._select import passed, select

DTYPES = [np.float16, np.float32, np.float64, np.longdouble, np.complex64, np.complex128, np.int8, np.uint8,
          np.int16, np.int32, np.int64, np.uint64, np.bool_]


def specials(dtype, count, rng):
    """``count`` values of ``dtype``: random ones, and for floats signed zeros, infinities and NaNs of both
    signs with payloads."""
    if np.dtype(dtype).kind == "b":
        return rng.integers(0, 2, count).astype(dtype)
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, count, endpoint=True, dtype=dtype)
    values = (rng.standard_normal(count) * 100).astype(dtype)
    if np.dtype(dtype).kind == "f":
        values[:6] = [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan]
        if np.dtype(dtype).itemsize in (4, 8):  # a NaN with a payload of its own
            bits = {4: np.uint32, 8: np.uint64}[np.dtype(dtype).itemsize]
            values[6:7].view(bits)[0] = values[4:5].view(bits)[0] | bits(3)
    return values


def same(ours, expected):
    assert ours.dtype == expected.dtype and ours.shape == expected.shape
    if ours.dtype == np.longdouble:  # its padding bytes hold whatever they held: values and signs
        assert np.array_equal(ours, expected, equal_nan=True), (ours, expected)
        assert np.array_equal(np.signbit(ours), np.signbit(expected)), (ours, expected)
    else:
        assert ours.tobytes() == expected.tobytes(), (ours, expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_select_and_passed_as_where(dtype):
    rng = np.random.default_rng(np.dtype(dtype).num)
    a, b = specials(dtype, 60, rng).reshape(3, 4, 5), specials(dtype, 60, rng).reshape(3, 4, 5)
    condition = rng.integers(0, 2, (3, 4, 5)).astype(bool)
    same(select(np, condition, a, b), np.where(condition, a, b))
    same(passed(np, condition, a), np.where(condition, a, np.zeros((), dtype)))
    out = np.empty_like(a)
    assert passed(np, condition, a, out=out) is out
    same(out, np.where(condition, a, np.zeros((), dtype)))
    # broadcast: a row of a, a column of b, a condition of one plane; 0-d
    same(select(np, condition[0], a[:1, :1], b[:, :, :1]), np.where(condition[0], a[:1, :1], b[:, :, :1]))
    same(passed(np, condition[:, :1], a[0]), np.where(condition[:, :1], a[0], np.zeros((), dtype)))
    same(select(np, condition[0, 0, 0], a[0, 0, 0], b[0, 0, 0]), np.where(condition[0, 0, 0], a[0, 0, 0], b[0, 0, 0]))


def test_select_with_numbers_takes_the_arrays_dtype():
    x = np.array([-1.5, 0.0, 2.0, np.nan], dtype=np.float32)
    same(select(np, x > 0, 1, x), np.where(x > 0, np.float32(1), x))
    same(select(np, x <= 0, x * 2, 0.25), np.where(x <= 0, x * 2, np.float32(0.25)))
    same(select(np, x > 0, np.float32(1), np.float32(0.5)), np.where(x > 0, np.float32(1), np.float32(0.5)))
