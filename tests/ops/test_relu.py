"""relu and leaky_relu against PyTorch, central differences and hand-computed values."""

import numpy as np
import pytest
import torch
import torch.nn.functional as torch_F
from helpers import assert_close, check_against_torch, check_gradients, check_op
from hypothesis import given, settings
from hypothesis import strategies as st

import gpucnn
from gpucnn.ops.relu import leaky_relu, relu

shapes = st.lists(st.integers(1, 5), min_size=0, max_size=4).map(tuple)


def away_from_zero(rng, shape):
    """Standard normal values with |x| >= 0.1, so central differences never straddle the kink."""
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < 0.1, np.sign(x + 1e-12) * 0.1 + x, x)


def test_lecture_example():
    """ReLU of [1, -2, 3, -1] with upstream gradient [4, -1, 5, 9] passes [4, 0, 5, 0] back."""
    x = gpucnn.tensor([1.0, -2.0, 3.0, -1.0], requires_grad=True)
    y = relu(x)
    y.backward(gpucnn.tensor([4.0, -1.0, 5.0, 9.0]))
    assert y.tolist() == [1.0, 0.0, 3.0, 0.0]
    assert x.grad.tolist() == [4.0, 0.0, 5.0, 0.0]


@settings(max_examples=40, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16))
def test_relu_random_shapes_against_torch(shape, seed):
    x = np.random.default_rng(seed).standard_normal(shape)
    check_against_torch(relu, torch_F.relu, x, seed=seed)


@settings(max_examples=40, deadline=None)
@given(shape=shapes, slope=st.floats(-2.0, 2.0), seed=st.integers(0, 2**16))
def test_leaky_relu_random_shapes_and_slopes_against_torch(shape, slope, seed):
    x = np.random.default_rng(seed).standard_normal(shape)
    check_against_torch(lambda t: leaky_relu(t, slope), lambda t: torch_F.leaky_relu(t, slope), x, seed=seed)


@pytest.mark.parametrize("shape", [(1, 3, 5, 7), (2, 1, 1, 1), (17,), ()])
def test_awkward_shapes_and_numerical_gradients(shape):
    x = away_from_zero(np.random.default_rng(1), shape)
    check_op(relu, torch_F.relu, x)
    check_op(lambda t: leaky_relu(t, 0.2), lambda t: torch_F.leaky_relu(t, 0.2), x)


def test_default_negative_slope_is_0_01():
    assert_close(leaky_relu(np.array([-2.0, 3.0])), np.array([-0.02, 3.0]))


def test_gradient_at_zero_and_nan_follows_torch():
    """At exactly 0 ReLU's gradient is 0; at NaN PyTorch passes it (ReLU) or scales it (leaky)."""
    values = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 2.0, -3.0], dtype=np.float32)
    for fn, torch_fn in [(relu, torch_F.relu), (lambda t: leaky_relu(t, 0.1), lambda t: torch_F.leaky_relu(t, 0.1))]:
        check_against_torch(fn, torch_fn, values)
    x = gpucnn.tensor(values, requires_grad=True)
    relu(x).backward(np.ones(7, dtype=np.float32))
    assert x.grad.tolist() == [0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0]


def test_nan_and_inf_propagate():
    y = relu(np.array([np.nan, np.inf, -np.inf], dtype=np.float32))
    assert np.isnan(y.numpy()[0]) and y.numpy()[1] == np.inf and y.numpy()[2] == 0
    y = leaky_relu(np.array([np.nan, -np.inf], dtype=np.float32), 0.5)
    assert np.isnan(y.numpy()[0]) and y.numpy()[1] == -np.inf


@pytest.mark.parametrize("fn", [relu, lambda t: leaky_relu(t, 0.3)])
def test_float64_keeps_dtype_in_forward_and_backward(fn):
    x = gpucnn.tensor(np.array([[-1.5, 2.0], [0.5, -0.25]]), requires_grad=True)
    y = fn(x)
    y.sum().backward()
    assert y.dtype == np.float64 and x.grad.dtype == np.float64
    check_gradients(fn, away_from_zero(np.random.default_rng(2), (3, 4)))


def test_float32_keeps_dtype():
    x = gpucnn.tensor(np.array([-1.0, 2.0], dtype=np.float32), requires_grad=True)
    y = leaky_relu(x)
    y.sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


def test_empty_batch():
    x = gpucnn.tensor(np.zeros((0, 3, 4, 4), dtype=np.float32), requires_grad=True)
    y = relu(x)
    y.backward(np.zeros((0, 3, 4, 4), dtype=np.float32))
    assert y.shape == (0, 3, 4, 4) and x.grad.shape == (0, 3, 4, 4)
    assert leaky_relu(np.zeros((0, 2), dtype=np.float32)).shape == (0, 2)


def test_non_contiguous_input():
    base = np.random.default_rng(3).standard_normal((4, 6, 5)).astype(np.float32)
    x = base.transpose(2, 0, 1)[:, ::2]
    assert not x.flags.c_contiguous
    check_against_torch(relu, torch_F.relu, x)
    check_against_torch(lambda t: leaky_relu(t, 0.2), lambda t: torch_F.leaky_relu(t, 0.2), x)


def test_accepts_lists_and_tensors():
    assert relu([[-1.0, 2.0]]).tolist() == [[0.0, 2.0]]
    assert_close(leaky_relu(gpucnn.tensor([-1.0]), 0.5), torch.tensor([-0.5]))


def test_integer_input_is_rejected():
    with pytest.raises(TypeError, match=r"relu: input must be a floating-point tensor, got dtype int64"):
        relu(np.array([1, -2]))
    with pytest.raises(TypeError, match=r"leaky_relu: input must be a floating-point tensor, got dtype bool"):
        leaky_relu(np.array([True]))


def test_non_numeric_input_is_rejected():
    with pytest.raises(TypeError, match=r"relu: input must be numeric"):
        relu(["a", "b"])


@pytest.mark.parametrize("slope", ["0.1", None, True, [0.1]])
def test_bad_negative_slope(slope):
    with pytest.raises(TypeError, match=r"leaky_relu: negative_slope must be a real number, got"):
        leaky_relu(np.array([1.0]), slope)


def test_inplace_is_rejected():
    with pytest.raises(ValueError, match=r"relu: inplace=True is not supported"):
        relu(np.array([1.0]), inplace=True)
    with pytest.raises(ValueError, match=r"leaky_relu: inplace=True is not supported"):
        leaky_relu(np.array([1.0]), 0.1, True)
