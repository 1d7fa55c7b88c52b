"""linear against PyTorch, central differences and hand-computed values."""

import numpy as np
import pytest
import torch.nn.functional as torch_F
from helpers import assert_close, check_against_torch, check_op
from hypothesis import given, settings
from hypothesis import strategies as st

import gpucnn
from gpucnn.ops.linear import linear


def torch_linear(x, w, b=None):
    return torch_F.linear(x, w, b)


@settings(max_examples=40, deadline=None)
@given(
    leading=st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple),
    in_features=st.integers(1, 7),
    out_features=st.integers(1, 7),
    with_bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_random_shapes_against_torch(leading, in_features, out_features, with_bias, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(leading + (in_features,)), rng.standard_normal((out_features, in_features))]
    if with_bias:
        arrays.append(rng.standard_normal(out_features))
    check_against_torch(linear, torch_linear, *arrays, seed=seed)


def test_hand_computed():
    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    w = np.array([[1.0, 0.0], [2.0, 1.0], [0.0, -1.0]])
    b = np.array([0.5, -0.5, 1.0])
    assert_close(linear(x, w, b), np.array([[1.5, 3.5, -1.0], [3.5, 4.5, 2.0]]))


@pytest.mark.parametrize("x_shape, w_shape, with_bias", [
    ((1, 5), (3, 5), True),       # batch 1
    ((7,), (2, 7), True),         # unbatched input gives (out_features,)
    ((2, 3, 4), (5, 4), False),   # extra leading dimensions
    ((3, 1), (1, 1), True),       # one feature in and out
])
def test_awkward_shapes_with_numerical_gradients(x_shape, w_shape, with_bias):
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal(x_shape), rng.standard_normal(w_shape)]
    if with_bias:
        arrays.append(rng.standard_normal(w_shape[0]))
    check_op(linear, torch_linear, *arrays)


def test_only_needed_gradients_are_computed():
    rng = np.random.default_rng(5)
    x = gpucnn.tensor(rng.standard_normal((4, 3)))
    w = gpucnn.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    b = gpucnn.tensor(rng.standard_normal(2), requires_grad=True)
    linear(x, w, b).sum().backward()
    assert x.grad is None
    assert_close(w.grad, np.tile(x.numpy().sum(axis=0), (2, 1)))
    assert_close(b.grad, np.full(2, 4.0))


def test_float64_keeps_dtype():
    rng = np.random.default_rng(6)
    x = gpucnn.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    w = gpucnn.tensor(rng.standard_normal((2, 4)), requires_grad=True)
    y = linear(x, w)
    y.sum().backward()
    assert y.dtype == x.grad.dtype == w.grad.dtype == np.float64


def test_empty_batch():
    rng = np.random.default_rng(7)
    check_against_torch(linear, torch_linear, np.zeros((0, 3)), rng.standard_normal((2, 3)), rng.standard_normal(2))
    x = gpucnn.tensor(np.zeros((0, 3), dtype=np.float32), requires_grad=True)
    w = gpucnn.tensor(rng.standard_normal((2, 3)).astype(np.float32), requires_grad=True)
    b = gpucnn.tensor(np.zeros(2, dtype=np.float32), requires_grad=True)
    y = linear(x, w, b)
    y.backward(np.zeros((0, 2), dtype=np.float32))
    assert y.shape == (0, 2) and x.grad.shape == (0, 3)
    assert_close(w.grad, np.zeros((2, 3)))
    assert_close(b.grad, np.zeros(2))


def test_zero_features():
    """in_features = 0 gives the bias; out_features = 0 gives an empty last dimension."""
    check_against_torch(linear, torch_linear, np.ones((2, 0)), np.ones((3, 0)), np.arange(3.0))
    check_against_torch(linear, torch_linear, np.ones((2, 4)), np.ones((0, 4)), np.ones(0))


def test_non_contiguous_inputs():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((5, 3, 6)).transpose(0, 2, 1)[:, ::2]  # (5, 3, 3)
    w = rng.standard_normal((3, 4)).T  # (4, 3)
    assert not x.flags.c_contiguous and not w.flags.c_contiguous
    check_against_torch(linear, torch_linear, x, w)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_nan_and_inf_propagate():
    x = np.array([[np.nan, 1.0], [np.inf, 0.5], [1.0, 2.0]], dtype=np.float32)
    w = np.array([[1.0, 1.0], [0.5, -1.0]], dtype=np.float32)
    check_against_torch(linear, torch_linear, x, w, np.zeros(2))


def test_accepts_array_likes():
    assert linear([[1.0, 2.0]], [[3.0, 4.0]], [1.0]).tolist() == [[12.0]]


@pytest.mark.parametrize("x_shape, w_shape, b_shape, message", [
    ((), (2, 3), None, r"linear: input must have at least one dimension .*input shape \(\), weight shape \(2, 3\)"),
    ((4, 3), (3,), None, r"linear: weight must be \(out_features, in_features\), .*weight shape \(3,\)"),
    ((4, 3), (1, 2, 3), None, r"linear: weight must be .*weight shape \(1, 2, 3\)"),
    ((4, 3), (2, 4), None,
     r"linear: input has 3 features in its last dimension but weight expects 4 \(input shape \(4, 3\), "
     r"weight shape \(2, 4\)\)"),
    ((4, 3), (2, 3), (3,), r"linear: bias must be \(out_features,\) = \(2,\), .*bias shape \(3,\)"),
    ((4, 3), (2, 3), (1, 2), r"linear: bias must be .*bias shape \(1, 2\)"),
])
def test_bad_shapes(x_shape, w_shape, b_shape, message):
    bias = None if b_shape is None else np.zeros(b_shape)
    with pytest.raises(ValueError, match=message):
        linear(np.zeros(x_shape), np.zeros(w_shape), bias)


def test_bad_dtypes():
    with pytest.raises(TypeError, match=r"linear: weight has dtype float64 but input has dtype float32"):
        linear(np.zeros((2, 3), np.float32), np.zeros((4, 3), np.float64))
    with pytest.raises(TypeError, match=r"linear: bias has dtype float32 but input has dtype float64"):
        linear(np.zeros((2, 3)), np.zeros((4, 3)), np.zeros(4, np.float32))
    with pytest.raises(TypeError, match=r"linear: input must be a floating-point tensor, got dtype int64"):
        linear(np.zeros((2, 3), np.int64), np.zeros((4, 3)))
    with pytest.raises(TypeError, match=r"linear: weight must be numeric"):
        linear(np.zeros((2, 3)), "weights")
