"""softmax and log_softmax against PyTorch, central differences and hand-computed values."""

import numpy as np
import pytest
import torch
import torch.nn.functional as torch_F
from helpers import assert_close, check_against_torch, check_gradients, check_op
from hypothesis import given, settings
from hypothesis import strategies as st

import gpucnn
from gpucnn.ops.softmax import log_softmax, softmax

PAIRS = [(softmax, torch_F.softmax), (log_softmax, torch_F.log_softmax)]


@st.composite
def shape_and_dim(draw):
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=4)))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    return shape, dim


@settings(max_examples=40, deadline=None)
@given(case=shape_and_dim(), scale=st.sampled_from([1.0, 10.0]), seed=st.integers(0, 2**16))
def test_random_shapes_and_dims_against_torch(case, scale, seed):
    shape, dim = case
    x = np.random.default_rng(seed).standard_normal(shape) * scale
    for fn, torch_fn in PAIRS:
        check_against_torch(lambda t: fn(t, dim), lambda t: torch_fn(t, dim), x, seed=seed)


@pytest.mark.parametrize("shape, dim", [((1, 7), 1), ((3, 5, 7), 0), ((2, 3, 1, 5), -2), ((9,), -1)])
def test_awkward_shapes_with_numerical_gradients(shape, dim):
    x = np.random.default_rng(1).standard_normal(shape)
    for fn, torch_fn in PAIRS:
        check_op(lambda t: fn(t, dim), lambda t: torch_fn(t, dim), x)


def test_hand_computed():
    e = np.exp([1.0, 2.0, 3.0])
    assert_close(softmax(np.array([1.0, 2.0, 3.0]), 0), e / e.sum())
    assert_close(log_softmax(np.array([[1.0, 2.0, 3.0]]), 1), np.log(e / e.sum())[None])
    assert_close(softmax(np.array([[0.0, 1.0], [0.0, 1.0]]), 0), np.full((2, 2), 0.5))


def test_large_logits_do_not_overflow():
    x = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 1e4]], dtype=np.float32)
    for fn, torch_fn in PAIRS:
        check_against_torch(lambda t: fn(t, 1), lambda t: torch_fn(t, 1), x)
    y = softmax(x, 1).numpy()
    assert np.isfinite(y).all()
    assert_close(y, np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]]))
    assert_close(log_softmax(x, 1), np.array([[0.0, -1e4, -2e4], [-np.log(3)] * 3]))


def test_nan_and_inf_match_torch():
    """A row with +inf, NaN or only -inf is NaN (inf - inf); -inf elsewhere gives probability 0."""
    x = np.array([[np.inf, 1.0], [-np.inf, -np.inf], [-np.inf, 1.0], [np.nan, 1.0], [2.0, 1.0]], dtype=np.float32)
    for fn, torch_fn in PAIRS:
        check_against_torch(lambda t: fn(t, 1), lambda t: torch_fn(t, 1), x)
    y = softmax(x, 1).numpy()
    assert np.isnan(y[[0, 1, 3]]).all() and y[2].tolist() == [0.0, 1.0]


def test_float64_keeps_dtype_and_float32_too():
    for dtype in (np.float32, np.float64):
        for fn, _ in PAIRS:
            x = gpucnn.tensor(np.ones((2, 3), dtype=dtype), requires_grad=True)
            y = fn(x, 1)
            y.backward(np.ones((2, 3), dtype=dtype))
            assert y.dtype == dtype and x.grad.dtype == dtype
    for fn, _ in PAIRS:
        check_gradients(lambda t: fn(t, -1), np.random.default_rng(2).standard_normal((3, 4)))


def test_dtype_argument_casts_first():
    x = np.array([[1.0, 2.0]], dtype=np.float32)
    assert softmax(x, 1, dtype=np.float64).dtype == np.float64
    assert log_softmax(np.array([[1, 2]]), 1, dtype=gpucnn.float32).dtype == np.float32
    assert_close(log_softmax(np.array([[1, 2]]), 1, dtype=np.float64),
                 torch_F.log_softmax(torch.tensor([[1.0, 2.0]], dtype=torch.float64), 1))


def test_zero_dimensional_input():
    for dim in (0, -1):
        assert softmax(np.array(3.0), dim).item() == 1.0
        assert log_softmax(np.array(3.0), dim).item() == 0.0
        check_against_torch(lambda t: softmax(t, dim), lambda t: torch_F.softmax(t, dim), np.array(2.0))
        check_against_torch(lambda t: log_softmax(t, dim), lambda t: torch_F.log_softmax(t, dim), np.array(2.0))


@pytest.mark.parametrize("shape, dim", [((0, 4), 1), ((0, 4), 0), ((3, 0), 1), ((2, 0, 3), -1)])
def test_empty_input(shape, dim):
    for fn, _ in PAIRS:
        x = gpucnn.tensor(np.zeros(shape, dtype=np.float32), requires_grad=True)
        y = fn(x, dim)
        y.backward(np.zeros(shape, dtype=np.float32))
        assert y.shape == shape and x.grad.shape == shape


def test_non_contiguous_input():
    x = np.random.default_rng(3).standard_normal((5, 6, 4)).transpose(2, 0, 1)[:, ::2]
    assert not x.flags.c_contiguous
    for fn, torch_fn in PAIRS:
        for dim in (0, 1, 2):
            check_against_torch(lambda t: fn(t, dim), lambda t: torch_fn(t, dim), x)


def test_accepts_lists():
    assert_close(softmax([[0.0, 0.0]], 1), np.array([[0.5, 0.5]]))


@pytest.mark.parametrize("fn", [softmax, log_softmax])
def test_dim_is_required(fn):
    with pytest.raises(TypeError, match=r"dim"):
        fn(np.ones((2, 3)))


@pytest.mark.parametrize("fn, name", [(softmax, "softmax"), (log_softmax, "log_softmax")])
def test_bad_arguments(fn, name):
    x = np.ones((2, 3), dtype=np.float32)
    message = rf"{name}: dim=2 is out of range for input of shape \(2, 3\) \(expected -2 to 1\)"
    with pytest.raises(ValueError, match=message):
        fn(x, 2)
    with pytest.raises(ValueError, match=rf"{name}: dim=-3 is out of range"):
        fn(x, -3)
    with pytest.raises(ValueError, match=rf"{name}: dim=1 is out of range for input of shape \(\)"):
        fn(np.array(1.0), 1)
    for bad_dim in (1.0, None, True, (0,)):
        with pytest.raises(TypeError, match=rf"{name}: dim must be an int, got"):
            fn(x, bad_dim)
    with pytest.raises(TypeError, match=rf"{name}: input must be a floating-point tensor, got dtype int64"):
        fn(np.array([1, 2]), 0)
    with pytest.raises(TypeError, match=rf"{name}: dtype must be a floating-point type, got int32"):
        fn(x, 0, dtype=np.int32)
