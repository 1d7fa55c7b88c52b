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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("slope", [0.01, 0.2, 0.0, 1.0, 1.5, -0.5, -0.0])
def test_leaky_relu_bit_for_bit_as_torch(slope, dtype):
    """Values and gradients on the cpu equal torch's bit for bit (signs of zero and NaN included): signed
    zeros, infinities, NaNs of both signs, subnormals, with inf and NaN upstream gradients, and a 0-d input."""
    tiny = np.finfo(dtype).smallest_subnormal
    big = np.finfo(dtype).max / 2
    values = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, tiny, -tiny, 2.5, -3.0, big, -big], dtype=dtype)
    upstream = np.resize(np.array([1.5, np.inf, -np.inf, np.nan, -2.0], dtype=dtype), values.shape)
    for data, grad in ((values, upstream), (values[9], upstream[1])):
        x = gpucnn.tensor(data, requires_grad=True)
        reference = torch.tensor(data, requires_grad=True)
        with np.errstate(all="ignore"):
            y = leaky_relu(x, slope)
            y.backward(np.array(grad))
        expected = torch_F.leaky_relu(reference, slope)
        expected.backward(torch.tensor(grad))
        for ours, theirs in ((y.numpy(), expected.detach().numpy()), (x.grad.numpy(), reference.grad.numpy())):
            assert ours.dtype == dtype and ours.shape == theirs.shape
            assert np.array_equal(ours.view(f"u{ours.itemsize}"), theirs.view(f"u{theirs.itemsize}")), (ours, theirs)


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


@pytest.mark.parametrize("device", gpucnn.devices())
def test_inplace_as_torchs(device):
    """Where autograd records nothing, inplace=True overwrites the input and returns it, as torch's, and a
    backward that needed the old values fails; where autograd records the op, the result is a new tensor with
    torch's gradient and the input is left as it was. A non-tensor input cannot be overwritten."""
    data = np.float32([[-1.5, 0.0, 2.0], [3.0, -0.5, np.nan]])
    for ours_op, torch_op in ((lambda x, i: relu(x, inplace=i), lambda x, i: torch.relu_(x) if i else x.relu()),
                              (lambda x, i: leaky_relu(x, 0.1, i),
                               lambda x, i: torch.nn.functional.leaky_relu(x, 0.1, i))):
        x = gpucnn.tensor(data, device=device)
        assert ours_op(x, True) is x
        assert_close(x, torch_op(torch.tensor(data), True))
        weight = gpucnn.tensor(data, device=device, requires_grad=True)
        product = weight * 2
        kept = product * gpucnn.tensor(data, device=device)  # its backward reads product's values
        with gpucnn.no_grad():
            ours_op(product, True)
        with pytest.raises(RuntimeError, match="changed in place after the forward"):
            kept.sum().backward()
        x = gpucnn.tensor(data, device=device, requires_grad=True)
        hidden = x * 1.0
        result = ours_op(hidden, True)
        assert result is not hidden and np.array_equal(hidden.numpy(), data, equal_nan=True)
        reference = torch.tensor(data, requires_grad=True)
        torch_result = torch_op(reference * 1.0, True)
        assert_close(result, torch_result.detach())
        result.backward(gpucnn.ones(2, 3, device=device))
        torch_result.backward(torch.ones(2, 3))
        assert_close(x.grad, reference.grad)
    with pytest.raises(TypeError, match=r"relu: inplace=True needs a Tensor input to overwrite, got ndarray"):
        relu(np.array([1.0]), inplace=True)


# ---------------------------------------------------------------------------- the cpu's fast paths


def special_values(rng, shape, dtype=np.float32):
    """Standard normal values with NaNs of both signs, infinities, signed zeros and subnormals."""
    x = rng.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    specials = [np.nan, np.copysign(np.nan, -1), np.inf, -np.inf, 0.0, -0.0, np.finfo(dtype).smallest_subnormal,
                -np.finfo(dtype).smallest_subnormal]
    positions = rng.choice(flat.size, 4 * len(specials), replace=False)
    flat[positions] = np.repeat(np.array(specials, dtype=dtype), 4)
    return x


def assert_same_bits(actual, expected):
    """Equal values, NaN where NaN, and the same sign (of zeros too)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual, expected)
    np.testing.assert_array_equal(np.signbit(actual[~np.isnan(actual)]), np.signbit(expected[~np.isnan(expected)]))


def relu_against_torch(x, upstream, device="cpu"):
    """gpucnn's (on ``device``) and PyTorch's ReLU output and input gradient for ``x`` and ``upstream``
    (any float dtype the device takes)."""
    t = gpucnn.tensor(x, device=device, requires_grad=True)
    y = relu(t)
    y.backward(upstream)
    reference = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_()
    expected = torch_F.relu(reference)
    expected.backward(torch.from_numpy(np.ascontiguousarray(upstream)))
    return (y.numpy(), t.grad.numpy()), (expected.detach().numpy(), reference.grad.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_special_values_bit_for_bit_like_torch(dtype):
    """NaN of either sign passes forward and passes the gradient back; -0.0 stays -0.0 as in torch.relu;
    at 0, -0.0 and -inf the gradient is 0 even when the upstream gradient is inf or NaN."""
    rng = np.random.default_rng(11)
    x = special_values(rng, (3, 4, 5, 7), dtype)
    upstream = special_values(rng, x.shape, dtype)
    (y, grad), (expected_y, expected_grad) = relu_against_torch(x, upstream)
    assert_same_bits(y, expected_y)
    np.testing.assert_array_equal(grad, expected_grad)


@pytest.fixture
def fresh_formulations(monkeypatch):
    """gpucnn.ops.relu's forward formulations, to replace, with their choice per dtype made afresh."""
    from gpucnn.ops import relu as module

    module._forward_formulation.cache_clear()
    yield module
    monkeypatch.undo()
    module._forward_formulation.cache_clear()


def test_forward_takes_the_first_formulation_with_torchs_signs(monkeypatch, fresh_formulations):
    """A formulation that turns -0.0 into +0.0 (clip before NumPy 2.1) is passed over for the next."""
    module = fresh_formulations

    def plus_zero(x, out):  # maximum(x, 0), then + 0: -0.0 + 0.0 is +0.0 whatever maximum gave
        return np.add(np.maximum(x, np.zeros((), x.dtype), out=out), 0, out=out)

    def exact(x, out):
        return module._relu_where(x, out)

    monkeypatch.setattr(module, "_FORWARD_FORMULATIONS", (plus_zero, exact))
    for dtype in (np.float16, np.float32, np.float64):
        assert module._forward_formulation(np.dtype(dtype)) is exact
        x = special_values(np.random.default_rng(3), (4, 9), dtype)
        (y, _), (expected_y, _) = relu_against_torch(x, np.ones_like(x))
        assert_same_bits(y, expected_y)
    monkeypatch.setattr(module, "_FORWARD_FORMULATIONS", (plus_zero,))
    module._forward_formulation.cache_clear()
    assert module._forward_formulation(np.dtype(np.float32)) is module._relu_where


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_forward_by_selection_is_bit_for_bit_like_torch(monkeypatch, fresh_formulations, dtype):
    """The formulation that decides, and serves where no fast one keeps torch's signs."""
    monkeypatch.setattr(fresh_formulations, "_FORWARD_FORMULATIONS", ())
    x = special_values(np.random.default_rng(15), (3, 5, 7), dtype)
    (y, _), (expected_y, _) = relu_against_torch(x, np.ones_like(x))
    assert_same_bits(y, expected_y)
    (y, _), (expected_y, _) = relu_against_torch(x[:, ::2, 1:], np.ones_like(x[:, ::2, 1:]))
    assert_same_bits(y, expected_y)


@pytest.mark.parametrize("device", gpucnn.devices())
def test_special_values_bit_for_bit_on_every_device(device):
    """The kernels too keep -0.0 and NaN forward and stop the gradient at 0, -0.0 and -inf."""
    rng = np.random.default_rng(14)
    x = special_values(rng, (5, 3, 11, 13))
    upstream = special_values(rng, x.shape)
    (y, grad), (expected_y, expected_grad) = relu_against_torch(x, upstream, device)
    assert_same_bits(y, expected_y)
    np.testing.assert_array_equal(grad, expected_grad)


@pytest.mark.parametrize("device", gpucnn.devices())
def test_inf_and_nan_upstream_gradient_is_stopped_where_x_is_not_positive(device):
    x = np.array([0.0, -0.0, -np.inf, -1.0, np.nan, np.copysign(np.nan, -1), 1.0, np.inf], dtype=np.float32)
    upstream = np.array([np.inf, np.nan, np.inf, -np.inf, 5.0, -6.0, np.nan, -np.inf], dtype=np.float32)
    (_, grad), (_, expected_grad) = relu_against_torch(x, upstream, device)
    np.testing.assert_array_equal(grad, [0.0, 0.0, 0.0, 0.0, 5.0, -6.0, np.nan, -np.inf])
    np.testing.assert_array_equal(grad, expected_grad)
    assert not np.signbit(grad[:4]).any()  # +0.0, as threshold_backward writes


@pytest.mark.parametrize("size", [2 * 16 + 5, 10 * 16 + 3])
@pytest.mark.parametrize("threaded", [True, False])
def test_forward_and_backward_in_pieces_match_torch(monkeypatch, size, threaded):
    """From ReLU.THREADED elements on both split the flat arrays into pieces on all cores (the forward
    into pieces of ReLU.FORWARD_PIECE), below it the backward into pieces of ReLU.CACHED one after the
    other; odd sizes leave uneven pieces."""
    from gpucnn.ops.relu import ReLU

    monkeypatch.setattr(ReLU, "THREADED", 32 if threaded else 10**9)
    monkeypatch.setattr(ReLU, "FORWARD_PIECE", 8)
    monkeypatch.setattr(ReLU, "CACHED", 16)
    rng = np.random.default_rng(size)
    x = special_values(rng, (size,))
    upstream = special_values(rng, (size,))
    (y, grad), (expected_y, expected_grad) = relu_against_torch(x, upstream)
    assert_same_bits(y, expected_y)
    np.testing.assert_array_equal(grad, expected_grad)


def test_forward_and_backward_in_pieces_at_full_size():
    """The real threshold (about a million elements), float32 and float64."""
    from gpucnn.ops.relu import ReLU

    for dtype in (np.float32, np.float64):
        rng = np.random.default_rng(12)
        x = special_values(rng, (2, ReLU.THREADED // 2 + 7), dtype)
        upstream = rng.standard_normal(x.shape).astype(dtype)
        (y, grad), (expected_y, expected_grad) = relu_against_torch(x, upstream)
        assert_same_bits(y, expected_y)
        np.testing.assert_array_equal(grad, expected_grad)


def test_non_contiguous_input_and_gradient_in_pieces(monkeypatch):
    from gpucnn.ops.relu import ReLU

    monkeypatch.setattr(ReLU, "THREADED", 32)
    rng = np.random.default_rng(13)
    x = special_values(rng, (9, 8, 7)).transpose(2, 0, 1)[:, ::2]
    upstream = special_values(rng, (8, 10, 7)).transpose(2, 1, 0)[:, ::2]
    assert not x.flags.c_contiguous and not upstream.flags.c_contiguous and x.shape == upstream.shape
    (y, grad), (expected_y, expected_grad) = relu_against_torch(x, upstream)
    assert_same_bits(y, expected_y)
    np.testing.assert_array_equal(grad, expected_grad)


def test_long_double_takes_the_plain_where():
    """No integer type has long double's size: the backward falls back to where, same result."""
    x = np.array([-1.0, 0.0, -0.0, 2.0, np.nan, -np.inf, np.inf], dtype=np.longdouble)
    upstream = np.array([np.inf, np.nan, 3.0, 4.0, 5.0, np.nan, 6.0], dtype=np.longdouble)
    t = gpucnn.tensor(x, requires_grad=True)
    y = relu(t)
    y.backward(upstream)
    assert y.dtype == np.longdouble and t.grad.dtype == np.longdouble
    np.testing.assert_array_equal(y.numpy(), [0.0, 0.0, -0.0, 2.0, np.nan, 0.0, np.inf])
    np.testing.assert_array_equal(t.grad.numpy(), [0.0, 0.0, 0.0, 4.0, 5.0, 0.0, 6.0])
