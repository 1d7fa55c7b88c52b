"""dropout: statistics of the mask, scaling, gradient = mask * scale, reproducibility, bad input.

PyTorch draws its mask from its own generator, so values are not compared with torch; the
statistics and the identities y = x * mask * scale and dx = dy * mask * scale are.
"""

import math

import numpy as np
import pytest
from helpers import assert_close, check_gradients
from hypothesis import given, settings
from hypothesis import strategies as st

import gpucnn
from gpucnn.ops.dropout import dropout


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_fraction_dropped_and_scale(p):
    gpucnn.manual_seed(0)
    n = 200_000
    y = dropout(np.ones(n, dtype=np.float32), p).numpy()
    dropped = float(np.mean(y == 0))
    # Binomial standard deviation of the dropped fraction; 6 sigma never fails by chance in practice.
    assert abs(dropped - p) < 6 * math.sqrt(p * (1 - p) / n)
    kept = y[y != 0]
    assert_close(kept, np.full(kept.shape, 1 / (1 - p), dtype=np.float32))
    assert abs(y.mean() - 1.0) < 6 * math.sqrt(p / (1 - p) / n)  # inverted dropout keeps the expectation


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple), p=st.floats(0.05, 0.95),
       seed=st.integers(0, 2**16))
def test_output_and_gradient_are_mask_times_scale(shape, p, seed):
    rng = np.random.default_rng(seed)
    x = gpucnn.tensor(rng.uniform(0.5, 2.0, shape).astype(np.float32), requires_grad=True)
    gpucnn.manual_seed(seed)
    y = dropout(x, p)
    mask = y.numpy() != 0  # x is never 0, so y is 0 exactly where dropped
    scale = np.float32(1 / (1 - p))
    assert_close(y, x.numpy() * mask * scale)
    upstream = rng.standard_normal(shape).astype(np.float32)
    y.backward(upstream)
    assert_close(x.grad, upstream * mask * scale)


def test_numerical_gradient_with_a_fixed_mask():
    def fixed_mask_dropout(x):
        gpucnn.manual_seed(7)  # the same mask on every call
        return dropout(x, 0.3)

    check_gradients(fixed_mask_dropout, np.random.default_rng(1).standard_normal((3, 4, 5)))


def test_same_seed_same_mask_and_fresh_masks_otherwise():
    x = np.ones((64, 64), dtype=np.float32)
    gpucnn.manual_seed(123)
    first, second = dropout(x).numpy(), dropout(x).numpy()
    gpucnn.manual_seed(123)
    again = dropout(x).numpy()
    assert np.array_equal(first, again)
    assert not np.array_equal(first, second)


def test_p_one_gives_zeros_and_p_zero_or_eval_gives_the_input():
    x = gpucnn.tensor(np.arange(1.0, 7.0).reshape(2, 3), requires_grad=True)
    y = dropout(x, 1.0)
    assert y.tolist() == [[0.0] * 3] * 2
    y.sum().backward()
    assert x.grad.tolist() == [[0.0] * 3] * 2
    assert dropout(x, 0.0) is x
    assert dropout(x, 0.5, training=False) is x
    assert dropout(x, 1, False) is x


def test_eval_mode_accepts_array_likes_unchanged():
    assert dropout([[1.0, -2.0]], 0.5, training=False).tolist() == [[1.0, -2.0]]


def test_keeps_dtype():
    for dtype in (np.float32, np.float64):
        x = gpucnn.tensor(np.ones((4, 5), dtype=dtype), requires_grad=True)
        y = dropout(x, 0.5)
        y.sum().backward()
        assert y.dtype == dtype and x.grad.dtype == dtype


def test_empty_batch():
    x = gpucnn.tensor(np.zeros((0, 3, 2, 2), dtype=np.float32), requires_grad=True)
    assert dropout(x, 0.5).shape == (0, 3, 2, 2)


def test_non_contiguous_input():
    base = np.random.default_rng(2).uniform(1.0, 2.0, (6, 8, 4)).astype(np.float32)
    x = base.transpose(2, 0, 1)[:, ::2, 1:]
    assert not x.flags.c_contiguous
    gpucnn.manual_seed(3)
    y = dropout(x, 0.25).numpy()
    mask = y != 0
    assert y.shape == x.shape
    assert_close(y, x * mask * np.float32(1 / 0.75))


def test_nan_and_inf_stay_nan_where_dropped():
    """As PyTorch (x * mask): a dropped NaN or inf gives NaN, a kept one stays NaN or inf."""
    x = np.array([np.nan, np.inf] * 500, dtype=np.float32)
    gpucnn.manual_seed(4)
    y = dropout(x, 0.5).numpy()
    assert np.isnan(y[0::2]).all()
    inf_results = y[1::2]
    assert (np.isnan(inf_results) | (inf_results == np.inf)).all()
    assert np.isnan(inf_results).any() and (inf_results == np.inf).any()
    assert np.isnan(dropout(np.array([np.inf]), 1.0).numpy()).all()


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan"), float("inf")])
def test_p_out_of_range(p):
    with pytest.raises(ValueError, match=r"dropout: probability p has to be between 0 and 1, but got"):
        dropout(np.ones(3), p)


@pytest.mark.parametrize("p", ["0.5", None, True, [0.5]])
def test_p_not_a_number(p):
    with pytest.raises(TypeError, match=r"dropout: p must be a real number in \[0, 1\], got"):
        dropout(np.ones(3), p)


def test_integer_input_is_rejected_and_inplace_overwrites_where_nothing_records():
    with pytest.raises(TypeError, match=r"dropout: input must be a floating-point tensor, got dtype int64 \(shape \(3,\)"):
        dropout(np.array([1, 2, 3]))
    x = gpucnn.ones(1000)
    assert dropout(x, 0.5, inplace=True) is x
    assert set(np.unique(x.numpy())) == {0.0, 2.0} and x._version[0] == 1
    with pytest.raises(TypeError, match=r"dropout: inplace=True needs a Tensor input to overwrite"):
        dropout(np.ones(3), inplace=True)
