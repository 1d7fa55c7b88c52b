"""max_pool2d against PyTorch, hand-computed cases, central-difference gradients and argument checks."""

import contextlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close, check_against_torch, check_gradients, check_op
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import gpucnn
from gpucnn.ops.avgpool2d import avg_pool2d
from gpucnn.ops.maxpool2d import MaxPool2d, max_pool2d


def torch_output_size(size, kernel, stride, pad, dilation, ceil_mode):
    """PyTorch's pooling_output_shape (aten/src/ATen/native/Pool.h), written out independently."""
    numerator = size + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = numerator // stride + 1  # floor division, as div_rtn
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def every_window_touches_input(size, kernel, stride, pad, dilation, out):
    """False when some window's taps all fall in the padding (PyTorch reads out of bounds there)."""
    for o in range(out):
        taps = [o * stride - pad + r * dilation for r in range(kernel)]
        if not any(0 <= t < size for t in taps):
            return False
    return True


def valid_config(H, W, kernel, stride, padding, dilation, ceil_mode):
    for size, k, s, p, d in zip((H, W), kernel, stride, padding, dilation):
        out = torch_output_size(size, k, s, p, d, ceil_mode)
        if out < 1 or not every_window_touches_input(size, k, s, p, d, out):
            return False
    return True


@st.composite
def pool_configs(draw):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    return dict(
        kernel_size=kernel,
        stride=(draw(st.integers(1, 5)), draw(st.integers(1, 5))),  # below, at and above the kernel
        padding=(draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2))),
        dilation=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        ceil_mode=draw(st.booleans()),
    )


@pytest.mark.parametrize("one_plane_blocks", [False, True])
@settings(max_examples=100, deadline=None)
@given(
    config=pool_configs(),
    N=st.integers(0, 3),
    C=st.integers(1, 3),
    H=st.integers(1, 11),
    W=st.integers(1, 11),
    seed=st.integers(0, 2**31),
)
def test_random_configs_match_torch(one_plane_blocks, config, N, C, H, W, seed):
    assume(valid_config(H, W, config["kernel_size"], config["stride"], config["padding"], config["dilation"],
                        config["ceil_mode"]))
    x = np.random.default_rng(seed).standard_normal((N, C, H, W)).astype(np.float32)
    with pytest.MonkeyPatch.context() as patch:
        if one_plane_blocks:  # the cpu's forward and backward then loop over blocks of one plane each
            patch.setattr(MaxPool2d, "BLOCK", 1)
            patch.setattr(MaxPool2d, "BACKWARD_BLOCK", 1)
        check_against_torch(lambda t: max_pool2d(t, **config), lambda t: F.max_pool2d(t, **config), x, seed=seed)
        _, indices = max_pool2d(x, return_indices=True, **config)
        _, expected = F.max_pool2d(torch.from_numpy(x), return_indices=True, **config)
    assert indices.dtype == np.int64
    np.testing.assert_array_equal(indices.numpy(), expected.numpy())


def test_lecture_example():
    x = [[[[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]]]]
    out = max_pool2d(np.asarray(x, dtype=np.float32), 2, stride=2)
    np.testing.assert_array_equal(out.numpy(), [[[[6, 8], [3, 4]]]])


def test_list_input_and_functional_name():
    out = gpucnn.nn.functional.max_pool2d([[[[1.0, 1.0, 2.0, 4.0], [5.0, 6.0, 7.0, 8.0]]]], 2)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.numpy(), [[[[6, 8]]]])


@pytest.mark.parametrize(
    "shape, config",
    [
        ((1, 1, 5, 5), dict(kernel_size=2)),  # batch 1, odd size: last row/column dropped
        ((2, 3, 7, 5), dict(kernel_size=3, stride=1, padding=1)),  # overlapping windows
        ((2, 2, 7, 9), dict(kernel_size=2, stride=3)),  # stride > kernel: pixels skipped
        ((1, 2, 6, 7), dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0))),
        ((2, 1, 9, 8), dict(kernel_size=3, stride=2, dilation=2, padding=1)),
        ((2, 2, 6, 5), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
        ((1, 1, 2, 2), dict(kernel_size=3, stride=3, ceil_mode=True)),  # window clipped to a 2x2 input
        ((1, 1, 1, 1), dict(kernel_size=1)),
    ],
)
def test_awkward_shapes_with_numerical_gradients(shape, config):
    # A permutation has no ties, so the argmax and the numerical gradient are well defined.
    x = np.random.default_rng(0).permutation(int(np.prod(shape))).reshape(shape).astype(np.float32)
    check_op(lambda t: max_pool2d(t, **config), lambda t: F.max_pool2d(t, **config), x)


def test_overlapping_windows_accumulate_gradient():
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 5.0  # the maximum of all nine 3x3 windows
    t = gpucnn.tensor(x, requires_grad=True)
    max_pool2d(t, 3, stride=1).sum().backward()
    expected = np.zeros((1, 1, 5, 5))
    expected[0, 0, 2, 2] = 9.0
    np.testing.assert_array_equal(t.grad.numpy(), expected)


def test_ties_pick_first_in_scan_order():
    x = np.array([[[[3.0, 3.0, 1.0, 3.0], [3.0, 0.0, 3.0, 3.0]]]], dtype=np.float32)
    t = gpucnn.tensor(x, requires_grad=True)
    out, indices = max_pool2d(t, (2, 4), return_indices=True)
    assert indices.numpy().item() == 0
    out.sum().backward()
    expected = np.zeros_like(x)
    expected[0, 0, 0, 0] = 1.0
    np.testing.assert_array_equal(t.grad.numpy(), expected)
    _, reference = F.max_pool2d(torch.from_numpy(x), (2, 4), return_indices=True)
    assert reference.item() == 0


def test_nan_wins_and_propagates_like_torch():
    nan = np.nan
    x = np.array([[[[nan, 1.0, nan, 2.0], [5.0, 6.0, 7.0, 8.0]]]], dtype=np.float32)
    out, indices = max_pool2d(x, (1, 4), return_indices=True)
    assert np.isnan(out.numpy()[0, 0, 0, 0]) and out.numpy()[0, 0, 1, 0] == 8.0
    # PyTorch's CPU kernel replaces the running maximum at every NaN: the last NaN wins.
    np.testing.assert_array_equal(indices.numpy(), [[[[2], [7]]]])  # h*W + w
    _, expected = F.max_pool2d(torch.from_numpy(x), (1, 4), return_indices=True)
    np.testing.assert_array_equal(indices.numpy(), expected.numpy())


def test_random_nan_and_inf_match_torch():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    x.reshape(-1)[rng.choice(x.size, 25, replace=False)] = np.nan
    x.reshape(-1)[rng.choice(x.size, 10, replace=False)] = np.inf
    x.reshape(-1)[rng.choice(x.size, 10, replace=False)] = -np.inf
    config = dict(kernel_size=3, stride=2, padding=1)
    check_against_torch(lambda t: max_pool2d(t, **config), lambda t: F.max_pool2d(t, **config), x)
    _, indices = max_pool2d(x, return_indices=True, **config)
    _, expected = F.max_pool2d(torch.from_numpy(x), return_indices=True, **config)
    np.testing.assert_array_equal(indices.numpy(), expected.numpy())


@pytest.mark.parametrize("no_grad", [False, True])
@settings(max_examples=60, deadline=None)
@given(config=pool_configs(), N=st.integers(1, 2), C=st.integers(1, 3), H=st.integers(1, 11),
       W=st.integers(1, 11), seed=st.integers(0, 2**31))
def test_forward_without_indices_matches_torch(no_grad, config, N, C, H, W, seed):
    """Where no gradient and no return_indices is asked for (an input without requires_grad, or
    no_grad), the forward keeps no indices: its maxima still match torch bit for bit, NaN, inf,
    -inf windows, padding, ceil_mode and dilation included."""
    assume(valid_config(H, W, config["kernel_size"], config["stride"], config["padding"], config["dilation"],
                        config["ceil_mode"]))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    for value in (np.nan, np.inf, -np.inf):
        x.reshape(-1)[rng.choice(x.size, x.size // 8, replace=False)] = value
    tensor = gpucnn.tensor(x, requires_grad=no_grad)
    with gpucnn.no_grad() if no_grad else contextlib.nullcontext():
        out = max_pool2d(tensor, **config)
    assert out._creator is None
    with torch.no_grad():
        expected = F.max_pool2d(torch.from_numpy(x), **config).numpy()
    np.testing.assert_array_equal(out.numpy(), expected)


def test_forward_keeps_indices_only_when_they_are_needed(monkeypatch):
    kept = []
    forward = MaxPool2d.forward_cpu
    monkeypatch.setattr(MaxPool2d, "forward_cpu", lambda self, x: kept.append(self.keep_indices) or forward(self, x))
    x = np.random.default_rng(0).standard_normal((1, 2, 6, 6)).astype(np.float32)
    max_pool2d(gpucnn.tensor(x), 2)
    max_pool2d(gpucnn.tensor(x), 2, return_indices=True)
    max_pool2d(gpucnn.tensor(x, requires_grad=True), 2)
    with gpucnn.no_grad():
        max_pool2d(gpucnn.tensor(x, requires_grad=True), 2)
    assert kept == [False, True, True, False]


def test_all_minus_inf_window_reports_first_input_pixel():
    x = np.full((1, 1, 3, 3), -np.inf, dtype=np.float32)
    out, indices = max_pool2d(x, 2, padding=1, return_indices=True)
    assert np.all(out.numpy() == -np.inf)
    np.testing.assert_array_equal(indices.numpy(), [[[[0, 1], [3, 4]]]])
    _, expected = F.max_pool2d(torch.from_numpy(x), 2, padding=1, return_indices=True)
    np.testing.assert_array_equal(indices.numpy(), expected.numpy())


def test_unbatched_input_and_indices():
    x = np.random.default_rng(1).standard_normal((3, 7, 6)).astype(np.float32)
    check_against_torch(lambda t: max_pool2d(t, 3, 2, 1), lambda t: F.max_pool2d(t, 3, 2, 1), x)
    out, indices = max_pool2d(x, 3, 2, 1, return_indices=True)
    _, expected = F.max_pool2d(torch.from_numpy(x), 3, 2, 1, return_indices=True)
    assert out.shape == (3, 4, 3) and indices.shape == (3, 4, 3)
    assert not indices.requires_grad
    np.testing.assert_array_equal(indices.numpy(), expected.numpy())


@pytest.mark.parametrize("device", ["cpu", "cudasim"])
def test_numpy_bools_as_flags(device):
    """return_indices and ceil_mode take NumPy bools as PyTorch does, on every device."""
    x = np.random.default_rng(2).standard_normal((2, 3, 5, 7)).astype(np.float32)
    out, indices = max_pool2d(gpucnn.tensor(x, device=device), 2, ceil_mode=np.bool_(True),
                              return_indices=np.bool_(True))
    expected, expected_indices = F.max_pool2d(torch.from_numpy(x), 2, ceil_mode=True, return_indices=True)
    np.testing.assert_array_equal(out.numpy(), expected.numpy())
    np.testing.assert_array_equal(indices.numpy(), expected_indices.numpy())
    alone = max_pool2d(gpucnn.tensor(x, device=device), 2, return_indices=np.bool_(False))
    np.testing.assert_array_equal(alone.numpy(), F.max_pool2d(torch.from_numpy(x), 2).numpy())


def test_empty_batch():
    x = gpucnn.tensor(np.zeros((0, 3, 5, 5), dtype=np.float32), requires_grad=True)
    out = max_pool2d(x, 2)
    assert out.shape == (0, 3, 2, 2)
    out.backward(np.zeros(out.shape, dtype=np.float32))
    assert x.grad.shape == (0, 3, 5, 5) and x.grad.dtype == np.float32


def test_non_contiguous_input():
    base = np.random.default_rng(2).standard_normal((2, 7, 3, 10)).astype(np.float32)
    x = base.transpose(0, 2, 1, 3)[:, :, :, ::2]  # (2, 3, 7, 5), strided in every axis
    assert not x.flags.c_contiguous
    out = max_pool2d(x, 2, stride=1)
    expected = F.max_pool2d(torch.from_numpy(np.ascontiguousarray(x)), 2, stride=1)
    assert_close(out, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_and_float64_matches_torch(dtype):
    x_np = np.random.default_rng(4).standard_normal((2, 3, 7, 7)).astype(dtype)
    x = gpucnn.tensor(x_np, requires_grad=True)
    out = max_pool2d(x, 3, stride=2, padding=1)
    upstream = np.random.default_rng(5).standard_normal(out.shape).astype(dtype)
    out.backward(upstream)
    assert out.dtype == dtype and x.grad.dtype == dtype
    reference = torch.tensor(x_np, requires_grad=True)
    expected = F.max_pool2d(reference, 3, stride=2, padding=1)
    expected.backward(torch.from_numpy(upstream))
    assert_close(out, expected, name="forward")
    assert_close(x.grad, reference.grad, name="gradient")


def test_float64_numerical_gradient_with_ceil_and_dilation():
    x = np.random.default_rng(6).permutation(2 * 2 * 7 * 6).reshape(2, 2, 7, 6) * 0.5
    check_gradients(lambda t: max_pool2d(t, (3, 2), stride=(2, 3), padding=1, dilation=(2, 1), ceil_mode=True), x)


# ---------------------------------------------------------------------------- argument checks
X = np.zeros((1, 2, 6, 6), dtype=np.float32)


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        ((np.zeros((6, 6), np.float32), 2), {}, ValueError, r"max_pool2d: input must be .* got shape \(6, 6\)"),
        ((np.zeros((1, 1, 1, 6, 6), np.float32), 2), {}, ValueError, r"max_pool2d: input .*\(1, 1, 1, 6, 6\)"),
        ((np.zeros((1, 1, 6, 6), np.int64), 2), {}, TypeError, r"max_pool2d: input must be a floating.*int64"),
        ((np.zeros((1, 1, 6, 6), bool), 2), {}, TypeError, r"max_pool2d: input must be a floating.*bool"),
        ((np.zeros((1, 1, 6, 6), np.complex64), 2), {}, TypeError, r"max_pool2d: input is complex"),
        ((X, 0), {}, ValueError, r"max_pool2d: kernel_size must be at least 1, got 0"),
        ((X, (2, 2, 2)), {}, TypeError, r"max_pool2d: kernel_size must be an int or a pair"),
        ((X, 2.5), {}, TypeError, r"max_pool2d: kernel_size must be an int or a pair of ints, got 2.5"),
        ((X, "2"), {}, TypeError, r"max_pool2d: kernel_size must be an int or a pair"),
        ((X, 2), dict(stride=0), ValueError, r"max_pool2d: stride must be at least 1, got 0"),
        ((X, 2), dict(stride=(1, -1)), ValueError, r"max_pool2d: stride must be at least 1, got \(1, -1\)"),
        ((X, 2), dict(dilation=0), ValueError, r"max_pool2d: dilation must be at least 1, got 0"),
        ((X, 2), dict(padding=-1), ValueError, r"max_pool2d: padding must be at least 0, got -1"),
        ((X, 3), dict(padding=2), ValueError, r"max_pool2d: padding \(2, 2\) must be at most half of kernel_size \(3, 3\)"),
        ((X, (4, 3)), dict(padding=(2, 2)), ValueError, r"padding \(2, 2\) must be at most half of kernel_size \(4, 3\)"),
        # PyTorch checks padding against the undilated kernel: 2 > 3 // 2 although the dilated window is 5
        ((X, 3), dict(padding=2, dilation=2), ValueError, r"max_pool2d: padding \(2, 2\) must be at most half"),
        ((X, 7), {}, ValueError, r"max_pool2d: output size \(0, 0\) is too small: kernel_size \(7, 7\)"),
        ((X, 3), dict(dilation=3), ValueError, r"max_pool2d: output size .* spans \(7, 7\).*\(6, 6\)"),
        ((X, (1, 4)), dict(stride=1, ceil_mode=True, dilation=(1, 2)), ValueError, r"output size \(6, 0\)"),
        # taps at -1 and 2 of a 2-row input: PyTorch reads out of bounds here, gpucnn refuses
        ((np.zeros((1, 1, 2, 2), np.float32), 2), dict(padding=1, dilation=3), ValueError,
         r"max_pool2d: output row 0 has a window \(taps \[-1, 2\]\) that lies wholly in the padding"),
        ((np.zeros((1, 0, 4, 4), np.float32), 2), {}, ValueError, r"max_pool2d: input must have non-zero channels"),
        ((np.zeros((1, 2, 0, 4), np.float32), 2), dict(padding=1), ValueError, r"non-zero channels, height and width"),
        ((X, 2), dict(ceil_mode="yes"), TypeError, r"max_pool2d: ceil_mode must be a bool, got 'yes'"),
        ((X, 2), dict(return_indices=1), TypeError, r"max_pool2d: return_indices must be a bool, got 1"),
    ],
)
def test_bad_arguments(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        max_pool2d(*args, **kwargs)


@pytest.mark.parametrize("op", [max_pool2d, avg_pool2d], ids=["max", "avg"])
@pytest.mark.parametrize("kwargs, error, match", [
    (dict(kernel_size=2.0), TypeError, "kernel_size must be an int or a pair of ints, got 2.0"),
    (dict(kernel_size=(True, 2)), TypeError, "kernel_size must be an int or a pair of ints"),
    (dict(stride=(2, 2.0)), TypeError, "stride must be an int or a pair of ints"),
    (dict(padding=False), TypeError, "padding must be an int or a pair of ints"),
    (dict(ceil_mode=0), TypeError, "ceil_mode must be a bool, got 0"),
])
def test_arguments_equal_to_a_checked_calls_are_checked_themselves(op, kwargs, error, match):
    """The pooling ops keep their geometry's checks for a layer's int and int-pair arguments; arguments that
    compare equal to those (2.0 == 2, False == 0) are checked anew, and fail as always; NumPy integers and
    lists pass, checked anew."""
    x = np.random.default_rng(3).standard_normal((2, 3, 6, 6)).astype(np.float32)
    plain = dict(kernel_size=2, stride=(2, 2), padding=0, ceil_mode=False)
    for _ in range(2):
        expected = op(x, **plain).numpy()
        with pytest.raises(error, match=match):
            op(x, **{**plain, **kwargs})
    spelled = dict(kernel_size=[2, 2], stride=np.int64(2), padding=(np.int32(0), 0), ceil_mode=np.bool_(False))
    np.testing.assert_array_equal(op(x, **spelled).numpy(), expected)


def test_geometries_of_the_same_windows_are_equal():
    """A geometry checked afresh (lists, NumPy integers) equals the kept one of the same windows, so the
    launches kept by geometry serve both, and repeated calls keep no more of them."""
    from gpucnn.ops import maxpool2d as module

    shape = (2, 3, 6, 6)
    kept = module.pool_geometry("max_pool2d", shape, 2, (2, 2), 0, 1, False)
    afresh = module.pool_geometry("max_pool2d", shape, [2, 2], np.int64(2), (np.int32(0), 0), 1, np.bool_(False))
    assert afresh is not kept and afresh == kept and hash(afresh) == hash(kept)
    assert module.pool_geometry("max_pool2d", shape, 3, 3, 0, 1, False) != kept
    assert module.pool_geometry("max_pool2d", (2, 3, 6, 8), 2, 2, 0, 1, False) != kept
    x = gpucnn.tensor(np.random.default_rng(5).standard_normal(shape).astype(np.float32), device="cudasim")
    max_pool2d(x, [2, 2], np.int64(2))
    kept_launches = module._forward_launch.cache_info().currsize
    for _ in range(3):
        max_pool2d(x, [2, 2], np.int64(2))
    assert module._forward_launch.cache_info().currsize == kept_launches


def test_stride_none_or_empty_means_kernel_size():
    x = np.random.default_rng(7).standard_normal((1, 2, 6, 6)).astype(np.float32)
    expected = F.max_pool2d(torch.from_numpy(x), 3)
    assert_close(max_pool2d(x, 3, stride=None), expected)
    assert_close(max_pool2d(x, 3, stride=()), expected)


# ---------------------------------------------------------------------------- the cpu's blocks of planes


def check_indices_against_torch(x, config):
    _, indices = max_pool2d(x, return_indices=True, **config)
    _, expected = F.max_pool2d(torch.from_numpy(np.ascontiguousarray(x)), return_indices=True, **config)
    np.testing.assert_array_equal(indices.numpy(), expected.numpy())


@pytest.mark.parametrize(
    "shape, config",
    [
        ((2, 3, 8, 8), dict(kernel_size=2)),  # the taps are the phases themselves
        ((2, 3, 7, 9), dict(kernel_size=3, stride=2, padding=1)),  # overlapping windows, as the ResNet stem
        ((1, 4, 9, 8), dict(kernel_size=3, stride=2, dilation=2, padding=1)),
        ((2, 2, 6, 5), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
        ((3, 1, 7, 9), dict(kernel_size=2, stride=3)),  # stride > kernel
        ((1, 5, 6, 7), dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 0))),
    ],
)
def test_blocks_of_planes_on_all_cores_match_torch(monkeypatch, shape, config):
    """A block of one plane each (the cpu splits large inputs into blocks, spread over the cores)."""
    monkeypatch.setattr(MaxPool2d, "BLOCK", 1)
    monkeypatch.setattr(MaxPool2d, "BACKWARD_BLOCK", 1)
    x = np.random.default_rng(8).permutation(int(np.prod(shape))).reshape(shape).astype(np.float32)
    check_against_torch(lambda t: max_pool2d(t, **config), lambda t: F.max_pool2d(t, **config), x)
    check_indices_against_torch(x, config)


def test_nan_or_minus_inf_in_one_block_takes_the_exact_scan(monkeypatch):
    monkeypatch.setattr(MaxPool2d, "BLOCK", 1)
    monkeypatch.setattr(MaxPool2d, "BACKWARD_BLOCK", 1)
    config = dict(kernel_size=3, stride=2, padding=1)
    x = np.random.default_rng(9).standard_normal((2, 3, 7, 6)).astype(np.float32)
    x[1, 2, 3, 1:4] = [np.nan, 1.0, np.nan]  # the last NaN of a window wins
    check_against_torch(lambda t: max_pool2d(t, **config), lambda t: F.max_pool2d(t, **config), x)
    check_indices_against_torch(x, config)
    x = np.random.default_rng(10).standard_normal((2, 3, 7, 6)).astype(np.float32)
    x[0, 1, :2, :2] = -np.inf  # a window of -inf and padding reports its first input pixel
    check_indices_against_torch(x, config)


@pytest.mark.parametrize("planes, plane_work, cores, expected", [
    (1024, 1024, 2, 512),  # 64x16x32x32 2x2/2: two pieces of half a block
    (512, 28224, 2, 37),  # 8x64x112x112 3x3/2 p1: pieces of at most a block
    (64, 28224, 2, 32),  # 1x64x112x112 3x3/2 p1: two pieces of 32 planes
    (768, 1024, 2, 512),  # a piece would hold under half a block: one piece (768 // 512)
    (1024, 1024, 1, 1024),  # one core: pieces of a whole block
    (3, 1 << 21, 2, 1),  # planes over a block: one a piece
])
def test_planes_a_piece(monkeypatch, planes, plane_work, cores, expected):
    from gpucnn.ops import maxpool2d as module

    monkeypatch.setattr(module, "usable_cores", lambda: cores)
    assert module._planes_a_piece(planes, plane_work, 1 << 20) == expected


def test_backward_blocks_at_full_size():
    """The real block size: enough 2x2 planes for the backward to go by blocks of planes."""
    planes = 2 * MaxPool2d.BACKWARD_BLOCK // 16 + 3
    x = np.random.default_rng(11).standard_normal((planes, 1, 4, 4)).astype(np.float32)
    config = dict(kernel_size=3, stride=1)
    check_against_torch(lambda t: max_pool2d(t, **config), lambda t: F.max_pool2d(t, **config), x)


def test_more_than_127_taps_match_torch():
    """A 12x11 window has 132 taps: the tie-break scores no longer fit int8."""
    shape = (2, 2, 15, 13)
    x = np.random.default_rng(12).permutation(int(np.prod(shape))).reshape(shape).astype(np.float32)
    x[0, 0, 4:6, 3:5] = x.max() + 1  # ties: the first in scan order wins
    config = dict(kernel_size=(12, 11), stride=(2, 1), padding=(3, 2))
    check_against_torch(lambda t: max_pool2d(t, **config), lambda t: F.max_pool2d(t, **config), x)
    check_indices_against_torch(x, config)


@pytest.mark.parametrize(
    "shape, config",
    [
        ((3, 4, 8, 8), dict(kernel_size=2)),
        ((2, 3, 7, 9), dict(kernel_size=(2, 3), padding=1, ceil_mode=True)),
        ((2, 2, 10, 7), dict(kernel_size=3, padding=1, ceil_mode=True)),
        ((1, 2, 24, 23), dict(kernel_size=(12, 11), padding=(3, 2))),  # 132 taps: int32 scores
    ],
)
def test_windows_that_tile_the_input_match_torch(shape, config):
    """kernel == stride: every tap of every window is one whole stride phase, taken in one call. Values
    from a few integers make ties in most windows: the first in scan order must win."""
    x = np.random.default_rng(13).integers(-3, 3, shape).astype(np.float32)
    check_against_torch(lambda t: max_pool2d(t, **config), lambda t: F.max_pool2d(t, **config), x)
    check_indices_against_torch(x, config)
    x[0, 0, 1, 1] = np.nan  # the exact scan: the last NaN of its window wins
    x[-1, -1, 0, :] = -np.inf
    check_against_torch(lambda t: max_pool2d(t, **config), lambda t: F.max_pool2d(t, **config), x)
    check_indices_against_torch(x, config)
