"""avg_pool2d and adaptive_avg_pool2d against PyTorch, hand-computed divisors, gradients and argument checks."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close, check_against_torch, check_gradients, check_op
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import gpucnn
from gpucnn.ops.avgpool2d import adaptive_avg_pool2d, avg_pool2d


def torch_output_size(size, kernel, stride, pad, ceil_mode):
    """PyTorch's pooling_output_shape (aten/src/ATen/native/Pool.h), written out independently."""
    out = (size + 2 * pad - kernel + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


@settings(max_examples=150, deadline=None)
@given(
    kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    pad_fraction=st.tuples(st.floats(0, 1), st.floats(0, 1)),
    ceil_mode=st.booleans(),
    count_include_pad=st.booleans(),
    N=st.integers(0, 3),
    C=st.integers(1, 3),
    H=st.integers(1, 11),
    W=st.integers(1, 11),
    seed=st.integers(0, 2**31),
)
def test_random_configs_match_torch(kernel, stride, pad_fraction, ceil_mode, count_include_pad, N, C, H, W, seed):
    padding = tuple(int(f * (k // 2)) for f, k in zip(pad_fraction, kernel))
    assume(all(torch_output_size(s, k, st_, p, ceil_mode) >= 1 for s, k, st_, p in zip((H, W), kernel, stride, padding)))
    config = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
                  count_include_pad=count_include_pad)
    x = np.random.default_rng(seed).standard_normal((N, C, H, W)).astype(np.float32)
    check_against_torch(lambda t: avg_pool2d(t, **config), lambda t: F.avg_pool2d(t, **config), x, seed=seed)


def test_ceil_mode_divisors_by_hand():
    # 4x4 ones, kernel 3, stride 2, padding 1, ceil_mode: windows start at rows -1, 1, 3. The last one
    # covers rows 3..5 of which row 4 is padding and row 5 lies past the padded input (clipped).
    x = np.ones((1, 1, 4, 4), dtype=np.float32)
    sums = np.outer([2, 3, 1], [2, 3, 1])  # input pixels per window
    with_pad = np.outer([3, 3, 2], [3, 3, 2])  # clipped to the padded input, padding counted
    out = avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True)
    np.testing.assert_allclose(out.numpy()[0, 0], sums / with_pad, rtol=1e-6)
    out = avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
    np.testing.assert_allclose(out.numpy()[0, 0], np.ones((3, 3)), rtol=1e-6)
    expected = F.avg_pool2d(torch.from_numpy(x), 3, stride=2, padding=1, ceil_mode=True)
    assert_close(avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True), expected)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize(
    "shape, config",
    [
        ((1, 1, 5, 5), dict(kernel_size=2)),  # batch 1, odd size
        ((2, 3, 7, 5), dict(kernel_size=3, stride=1, padding=1)),  # overlapping windows
        ((2, 2, 7, 9), dict(kernel_size=2, stride=3)),  # stride > kernel
        ((1, 2, 6, 7), dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0))),
        ((2, 2, 6, 5), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
        ((1, 2, 5, 6), dict(kernel_size=(4, 2), stride=(3, 2), padding=(2, 1), ceil_mode=True)),
        ((1, 1, 2, 2), dict(kernel_size=3, stride=3, ceil_mode=True)),  # window larger than the input
    ],
)
def test_awkward_shapes_with_numerical_gradients(shape, config, count_include_pad):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    config = dict(config, count_include_pad=count_include_pad)
    check_op(lambda t: avg_pool2d(t, **config), lambda t: F.avg_pool2d(t, **config), x)


def test_window_larger_than_input_in_ceil_mode_by_hand():
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=np.float32)
    # PyTorch's rule: one output whose window is clipped to the 2x2 input, divisor 2*2
    np.testing.assert_allclose(avg_pool2d(x, 3, stride=3, ceil_mode=True).numpy(), [[[[2.5]]]])


@pytest.mark.parametrize("divisor_override", [1, 3, -2])
def test_divisor_override(divisor_override):
    x = np.random.default_rng(1).standard_normal((2, 2, 7, 6)).astype(np.float32)
    config = dict(kernel_size=3, stride=2, padding=1, divisor_override=divisor_override)
    check_op(lambda t: avg_pool2d(t, **config), lambda t: F.avg_pool2d(t, **config), x)


def test_unbatched_input():
    x = np.random.default_rng(2).standard_normal((3, 7, 6)).astype(np.float32)
    check_against_torch(lambda t: avg_pool2d(t, 3, 2, 1), lambda t: F.avg_pool2d(t, 3, 2, 1), x)
    assert avg_pool2d(x, 3, 2, 1).shape == (3, 4, 3)


def test_empty_batch():
    x = gpucnn.tensor(np.zeros((0, 3, 5, 5), dtype=np.float32), requires_grad=True)
    out = avg_pool2d(x, 2)
    assert out.shape == (0, 3, 2, 2)
    out.backward(np.zeros(out.shape, dtype=np.float32))
    assert x.grad.shape == (0, 3, 5, 5)


def test_non_contiguous_input():
    base = np.random.default_rng(3).standard_normal((2, 7, 3, 10)).astype(np.float32)
    x = base.transpose(0, 2, 1, 3)[:, :, :, ::2]
    assert not x.flags.c_contiguous
    expected = F.avg_pool2d(torch.from_numpy(np.ascontiguousarray(x)), 3, stride=2, padding=1)
    assert_close(avg_pool2d(x, 3, stride=2, padding=1), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_and_float64_matches_torch(dtype):
    x_np = np.random.default_rng(4).standard_normal((2, 3, 7, 7)).astype(dtype)
    x = gpucnn.tensor(x_np, requires_grad=True)
    out = avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
    upstream = np.random.default_rng(5).standard_normal(out.shape).astype(dtype)
    out.backward(upstream)
    assert out.dtype == dtype and x.grad.dtype == dtype
    reference = torch.tensor(x_np, requires_grad=True)
    expected = F.avg_pool2d(reference, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
    expected.backward(torch.from_numpy(upstream))
    assert_close(out, expected, name="forward")
    assert_close(x.grad, reference.grad, name="gradient")


def test_nan_and_inf_propagate_like_torch():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 2, 8, 8)).astype(np.float32)
    x.reshape(-1)[rng.choice(x.size, 6, replace=False)] = np.nan
    x.reshape(-1)[rng.choice(x.size, 6, replace=False)] = np.inf
    x.reshape(-1)[rng.choice(x.size, 3, replace=False)] = -np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # inf + -inf gives NaN silently, as in PyTorch
        out = avg_pool2d(x, 3, stride=2, padding=1)
    assert np.isnan(out.numpy()).any() and np.isinf(out.numpy()).any()
    check_against_torch(lambda t: avg_pool2d(t, 3, 2, 1), lambda t: F.avg_pool2d(t, 3, 2, 1), x)


@pytest.mark.parametrize("divisor_override", [None, 5])
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize(
    "shape, config",
    [
        ((2, 3, 4, 4), dict(kernel_size=4)),  # the ResNet head: one window per plane
        ((1, 2, 5, 3), dict(kernel_size=(5, 3), stride=2)),
        ((2, 2, 3, 3), dict(kernel_size=4, padding=1)),  # the window holds the plane and padding
        ((1, 3, 3, 2), dict(kernel_size=(4, 2), padding=(1, 0), ceil_mode=True)),
        ((1, 1, 2, 2), dict(kernel_size=3, stride=3, ceil_mode=True)),  # clipped to the input
    ],
)
def test_one_window_per_plane_matches_torch(shape, config, count_include_pad, divisor_override):
    """A single window holding every pixel of its plane sums the plane as one matrix-vector product."""
    x = np.random.default_rng(7).standard_normal(shape).astype(np.float32)
    config = dict(config, count_include_pad=count_include_pad, divisor_override=divisor_override)
    assert avg_pool2d(x, **config).shape == shape[:2] + (1, 1)
    check_op(lambda t: avg_pool2d(t, **config), lambda t: F.avg_pool2d(t, **config), x)


@pytest.mark.parametrize("config", [dict(kernel_size=8), dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1)])
def test_cpu_input_gradients_from_recycled_memory(config):
    """The cpu backward's input-sized arrays come from ops._memory, whose recycled blocks cost no page
    faults: its whole gradient where it writes one (one window a plane, or windows that do not overlap),
    as torch's."""
    from gpucnn.ops import _memory

    rng = np.random.default_rng(9)
    x = rng.standard_normal((64, 64, 8, 8)).astype(np.float32)  # 1 MiB
    upstream = rng.standard_normal(F.avg_pool2d(torch.tensor(x), **config).shape).astype(np.float32)
    tensor, reference = gpucnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    avg_pool2d(tensor, **config).backward(gpucnn.tensor(upstream))
    F.avg_pool2d(reference, **config).backward(torch.tensor(upstream))
    assert_close(tensor.grad, reference.grad, atol=1e-6)
    assert _memory.whole_block(tensor.grad.data) == ("padding" not in config)


def test_one_window_per_plane_with_nan_inf_non_contiguous_and_float64():
    rng = np.random.default_rng(8)
    base = rng.standard_normal((4, 5, 3, 6)).astype(np.float32)
    x = base.transpose(0, 2, 1, 3)[:, :, ::2, ::2]  # (4, 3, 3, 3), strided
    assert not x.flags.c_contiguous
    x[0, 0, 0, 0], x[0, 0, 1, 1] = np.inf, -np.inf  # inf + -inf: NaN
    x[1, 1, 2, 2], x[2, 2, 0, 1] = np.nan, np.inf
    x[3, 0] = np.finfo(np.float32).max  # the sum overflows to inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # silently, as in PyTorch
        out = avg_pool2d(x, 3).numpy()
    assert np.isnan(out[0, 0]) and np.isnan(out[1, 1]) and out[2, 2] == np.inf and out[3, 0] == np.inf
    check_against_torch(lambda t: avg_pool2d(t, 3), lambda t: F.avg_pool2d(t, 3), x)
    x64 = rng.standard_normal((2, 3, 4, 4))
    out = avg_pool2d(x64, 4)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.numpy()[:, :, 0, 0], x64.mean(axis=(2, 3)), rtol=1e-14)
    check_gradients(lambda t: avg_pool2d(t, 4, padding=1, count_include_pad=False), x64)


X = np.zeros((1, 2, 6, 6), dtype=np.float32)


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        ((np.zeros((6, 6), np.float32), 2), {}, ValueError, r"avg_pool2d: input must be .* got shape \(6, 6\)"),
        ((np.zeros((1, 1, 1, 6, 6), np.float32), 2), {}, ValueError, r"avg_pool2d: input .*\(1, 1, 1, 6, 6\)"),
        ((np.zeros((1, 1, 6, 6), np.int32), 2), {}, TypeError, r"avg_pool2d: input must be a floating.*int32"),
        ((np.zeros((1, 1, 6, 6), np.complex128), 2), {}, TypeError, r"avg_pool2d: input is complex"),
        ((X, 0), {}, ValueError, r"avg_pool2d: kernel_size must be at least 1, got 0"),
        ((X, (2,)), {}, TypeError, r"avg_pool2d: kernel_size must be an int or a pair of ints, got \(2,\)"),
        ((X, None), {}, TypeError, r"avg_pool2d: kernel_size must be an int or a pair"),
        ((X, 2), dict(stride=0), ValueError, r"avg_pool2d: stride must be at least 1, got 0"),
        ((X, 2), dict(stride=(True, 1)), TypeError, r"avg_pool2d: stride must be an int or a pair"),
        ((X, 2), dict(padding=-1), ValueError, r"avg_pool2d: padding must be at least 0, got -1"),
        ((X, 2), dict(padding=2), ValueError, r"avg_pool2d: padding \(2, 2\) must be at most half of kernel_size \(2, 2\)"),
        ((X, (7, 2)), {}, ValueError, r"avg_pool2d: output size \(0, 3\) is too small"),
        ((X, 8), dict(stride=1, ceil_mode=True), ValueError, r"avg_pool2d: output size \(0, 0\) is too small"),
        ((np.zeros((1, 0, 4, 4), np.float32), 2), {}, ValueError, r"avg_pool2d: input must have non-zero channels"),
        ((X, 2), dict(ceil_mode=None), TypeError, r"avg_pool2d: ceil_mode must be a bool, got None"),
        ((X, 2), dict(count_include_pad="no"), TypeError, r"avg_pool2d: count_include_pad must be a bool"),
        ((X, 2), dict(divisor_override=0), ValueError, r"avg_pool2d: divisor_override must be non-zero, got 0"),
        ((X, 2), dict(divisor_override=1.5), TypeError, r"avg_pool2d: divisor_override must be an int or None"),
    ],
)
def test_bad_arguments(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        avg_pool2d(*args, **kwargs)


# ---------------------------------------------------------------------------- adaptive_avg_pool2d
@settings(max_examples=100, deadline=None)
@given(
    N=st.integers(0, 3),
    C=st.integers(1, 3),
    H=st.integers(1, 11),
    W=st.integers(1, 11),
    output_size=st.tuples(st.one_of(st.none(), st.integers(1, 13)), st.one_of(st.none(), st.integers(1, 13))),
    seed=st.integers(0, 2**31),
)
def test_adaptive_random_sizes_match_torch(N, C, H, W, output_size, seed):
    x = np.random.default_rng(seed).standard_normal((N, C, H, W)).astype(np.float32)
    check_against_torch(
        lambda t: adaptive_avg_pool2d(t, output_size), lambda t: F.adaptive_avg_pool2d(t, output_size), x, seed=seed
    )


def test_adaptive_windows_by_hand():
    # H = 5, oH = 3: rows [0, 2), [1, 4), [3, 5) (start floor(i*5/3), end ceil((i+1)*5/3)), overlapping
    x = np.arange(5, dtype=np.float64).reshape(1, 1, 5, 1)
    out = adaptive_avg_pool2d(x, (3, 1))
    np.testing.assert_allclose(out.numpy().reshape(-1), [0.5, 2.0, 3.5])


@pytest.mark.parametrize("output_size", [1, (1, 1), (None, 1), (2, 3), (4, 4), 7, (5, None)])
def test_adaptive_with_numerical_gradients(output_size):
    x = np.random.default_rng(7).standard_normal((2, 2, 5, 4)).astype(np.float32)
    check_op(lambda t: adaptive_avg_pool2d(t, output_size), lambda t: F.adaptive_avg_pool2d(t, output_size), x)


def test_adaptive_global_pool_is_the_mean():
    x = np.random.default_rng(8).standard_normal((3, 4, 7, 5))
    out = adaptive_avg_pool2d(x, 1)
    assert out.shape == (3, 4, 1, 1) and out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), x.mean(axis=(2, 3), keepdims=True), rtol=1e-12)


def test_adaptive_unbatched_empty_non_contiguous_and_float64():
    x = np.random.default_rng(9).standard_normal((3, 7, 6)).astype(np.float32)
    check_against_torch(lambda t: adaptive_avg_pool2d(t, (2, 4)), lambda t: F.adaptive_avg_pool2d(t, (2, 4)), x)
    assert adaptive_avg_pool2d(np.zeros((0, 2, 5, 5), np.float32), 2).shape == (0, 2, 2, 2)
    strided = np.random.default_rng(10).standard_normal((2, 9, 3, 12)).transpose(0, 2, 1, 3)[..., ::3]
    expected = F.adaptive_avg_pool2d(torch.from_numpy(np.ascontiguousarray(strided)), (3, 2))
    out = adaptive_avg_pool2d(strided, (3, 2))
    assert out.dtype == np.float64
    assert_close(out, expected)
    nan_input = np.ones((1, 1, 4, 4), np.float32)
    nan_input[0, 0, 0, 0] = np.nan
    nan_input[0, 0, 3, 3] = np.inf
    nan_input[0, 0, 0, 3] = np.inf
    nan_input[0, 0, 1, 2] = -np.inf  # inf + -inf in one window: NaN, without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = adaptive_avg_pool2d(nan_input, 2)
    np.testing.assert_array_equal(out.numpy(), [[[[np.nan, np.nan], [1, np.inf]]]])


def test_adaptive_float64_numerical_gradient():
    check_gradients(lambda t: adaptive_avg_pool2d(t, (3, 2)), np.random.default_rng(11).standard_normal((1, 2, 7, 5)))


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((np.zeros((5, 5), np.float32), 1), ValueError, r"adaptive_avg_pool2d: input must be .* got shape \(5, 5\)"),
        ((np.zeros((1, 1, 5, 5), np.int64), 1), TypeError, r"adaptive_avg_pool2d: input must be a floating.*int64"),
        ((np.zeros((1, 1, 5, 5), np.complex64), 1), TypeError, r"adaptive_avg_pool2d: input is complex"),
        ((np.zeros((1, 1, 0, 5), np.float32), 1), ValueError, r"adaptive_avg_pool2d: input height and width"),
        ((X, -1), ValueError, r"adaptive_avg_pool2d: output_size must be at least 1, got -1"),
        ((X, 0), ValueError, r"adaptive_avg_pool2d: output_size must be at least 1, got 0"),
        ((X, (2, -3)), ValueError, r"adaptive_avg_pool2d: output_size must be at least 1, got \(2, -3\)"),
        ((X, (None, 0)), ValueError, r"adaptive_avg_pool2d: output_size must be at least 1, got \(None, 0\)"),
        ((X, (1, 2, 3)), TypeError, r"adaptive_avg_pool2d: output_size must be an int or a pair"),
        ((X, None), TypeError, r"adaptive_avg_pool2d: output_size must be an int or a pair .*got None"),
        ((X, 1.5), TypeError, r"adaptive_avg_pool2d: output_size must be an int or a pair"),
        ((X, (True, 2)), TypeError, r"adaptive_avg_pool2d: output_size must be an int or a pair"),
        ((X, "2"), TypeError, r"adaptive_avg_pool2d: output_size must be an int or a pair"),
    ],
)
def test_adaptive_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        adaptive_avg_pool2d(*args)
