"""conv2d against PyTorch, the lecture's worked examples, central-difference gradients and argument checks."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close, check_against_torch, check_gradients, check_op
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import gpucnn
from gpucnn.ops import _shapes, winograd
from gpucnn.ops import _conv2d_cpu, _conv2d_gpu
from gpucnn.ops._parallel import blas_threads
from gpucnn.ops._conv2d_gpu import _fill_waves
from gpucnn.ops.conv2d import Conv2d, conv2d, kernel_path

# A conv output sums C/groups*R*S products (its gradients up to N*P*Q): float32 rounding in two
# different summation orders differs by more than helpers' default atol of 1e-5.
ATOL = 1e-4


def window_fits(size, kernel, pad_begin, pad_end, dilation):
    return dilation * (kernel - 1) + 1 <= size + pad_begin + pad_end


def torch_conv(padding, input_hw, kernel_hw, stride, dilation):
    """torch's conv2d for our ``padding``: 'same' with stride > 1 (which torch rejects) pads explicitly."""
    stride_hw, dilation_hw = _shapes.pair(stride, "stride", "t", 1), _shapes.pair(dilation, "dilation", "t", 1)
    if padding == "same" and stride_hw != (1, 1):
        top, bottom, left, right = _shapes.conv_padding("same", input_hw, kernel_hw, stride_hw, dilation_hw, "t")

        def conv(x, w, b=None, groups=1):
            return F.conv2d(F.pad(x, (left, right, top, bottom)), w, b, stride, 0, dilation, groups)
    else:

        def conv(x, w, b=None, groups=1):
            return F.conv2d(x, w, b, stride, padding, dilation, groups)

    return conv


@st.composite
def conv_configs(draw):
    groups = draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    padding = draw(st.one_of(
        st.integers(0, 3),
        st.tuples(st.integers(0, 3), st.integers(0, 3)),
        st.just("same"),  # with stride 2 below: asymmetric pads, the odd pixel at the bottom/right
        st.just("valid"),
    ))
    return dict(
        N=draw(st.integers(0, 3)),
        C=groups * draw(st.integers(1, 3)),
        K=groups * draw(st.integers(1, 3)),
        groups=groups,
        H=draw(st.integers(1, 13)),
        W=draw(st.integers(1, 13)),
        kernel=kernel,
        stride=draw(st.one_of(st.integers(1, 5), st.tuples(st.integers(1, 5), st.integers(1, 5)))),  # up to > kernel
        padding=padding,
        dilation=draw(st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3)))),
        bias=draw(st.booleans()),
    )


def blocks_everywhere(patch):
    """The cpu takes the 2x2-block products (Conv2d.BLOCKED_CPU_RULE) wherever the layer allows them
    (stride 1, dilation 1, one group, finite input), whatever its kernel, channels and size."""
    patch.setattr(Conv2d, "BLOCKED_CPU_RULE", ((4.0, 1 << 30, 1, 1),))
    patch.setattr(Conv2d, "BLOCKED_CPU_MIN_MACS", 0)
    patch.setattr(Conv2d, "BY_IMAGE_ROWS_MAX", 0)


def parts_everywhere(patch, cores: int = 3):
    """The cpu's conv2d splits every batch of two or more images into parts (``Conv2d._cpu_parts``), up
    to one a core of ``cores`` (3: parts of unequal sizes, and more parts than this machine may have
    cores), however small the layer."""
    if not blas_threads().usable:
        pytest.skip("NumPy's BLAS has no thread count to set here: the cpu's conv2d takes no parts")
    patch.setattr(Conv2d, "PARTS_MIN_MACS", 1)
    patch.setattr(Conv2d, "PARTS_MIN_TILES", 1)
    patch.setattr(Conv2d, "PARTS_MIN_BLOCK_VALUES", 1)
    patch.setattr(_conv2d_cpu, "usable_cores", lambda: cores)


@pytest.mark.filterwarnings("ignore:Using padding='same'")  # torch's note on its own zero-padded copy
@pytest.mark.parametrize("parts", [False, True])
@pytest.mark.parametrize("chunks_of_one_image", [False, True])
@pytest.mark.parametrize("blocked", [False, True])
@settings(max_examples=150, deadline=None)
@given(config=conv_configs(), seed=st.integers(0, 2**31))
def test_random_configs_match_torch(parts, chunks_of_one_image, blocked, config, seed):
    N, C, K, H, W, groups = (config[k] for k in ("N", "C", "K", "H", "W", "groups"))
    (R, S), stride, padding, dilation = config["kernel"], config["stride"], config["padding"], config["dilation"]
    stride_hw, dilation_hw = _shapes.pair(stride, "", "", 1), _shapes.pair(dilation, "", "", 1)
    pads = _shapes.conv_padding(padding, (H, W), (R, S), stride_hw, dilation_hw, "")
    assume(window_fits(H, R, pads[0], pads[1], dilation_hw[0]) and window_fits(W, S, pads[2], pads[3], dilation_hw[1]))
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((N, C, H, W)), rng.standard_normal((K, C // groups, R, S))]
    if config["bias"]:
        arrays.append(rng.standard_normal(K))
    reference = torch_conv(padding, (H, W), (R, S), stride, dilation)
    with pytest.MonkeyPatch.context() as patch:
        if chunks_of_one_image:  # the cpu then goes image by image, rebuilding the columns in backward
            patch.setattr(Conv2d, "SPLIT_BYTES", 0)
            patch.setattr(Conv2d, "CHUNK_BYTES", 1)
        if blocked:
            blocks_everywhere(patch)
        if parts:
            parts_everywhere(patch)
        check_against_torch(
            lambda x, w, b=None: conv2d(x, w, b, stride, padding, dilation, groups),
            lambda x, w, b=None: reference(x, w, b, groups),
            *arrays, atol=ATOL, seed=seed,
        )


@pytest.mark.parametrize("stride, padding", [(1, 1), (2, 0), (1, 0)])
@pytest.mark.parametrize("needs", [(True, True, True), (True, False, False), (False, True, False),
                                   (False, False, True)])
def test_large_batches_go_in_chunks(monkeypatch, rng, stride, padding, needs):
    """Chunks of two images and a last one of one, each gradient alone and all together."""
    x, w, b = rng.standard_normal((5, 3, 6, 7)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    P, Q = (6 + 2 * padding - 3) // stride + 1, (7 + 2 * padding - 2) // stride + 1
    row = 7 + 2 * padding if stride == 1 else Q  # with stride 1 backward's wide columns are the larger
    monkeypatch.setattr(Conv2d, "SPLIT_BYTES", 0)
    # two images' float64 columns, and a row of ones after them
    monkeypatch.setattr(Conv2d, "CHUNK_BYTES", 2 * (3 * 3 * 2 + 1) * P * row * 8)
    tensors = [gpucnn.tensor(a, requires_grad=need) for a, need in zip((x, w, b), needs)]
    y = conv2d(*tensors, stride=stride, padding=padding)
    assert y._creator.chunk == 2
    _backward_matches_torch(y, tensors, (x, w, b), needs, rng.standard_normal(y.shape), stride=stride,
                            padding=padding)


def _backward_matches_torch(y, tensors, arrays, needs, upstream, **kwargs):
    """y = conv2d(*tensors, **kwargs), the tensors made from the float64 ``arrays`` with requires_grad
    as in ``needs``: y and, after y.backward(upstream), each gradient asked for match torch's; the
    others stay None."""
    y.backward(upstream)
    references = [torch.tensor(a, requires_grad=need) for a, need in zip(arrays, needs)]
    expected = F.conv2d(*references, **kwargs)
    expected.backward(torch.from_numpy(upstream))
    assert_close(y, expected.detach(), atol=1e-10)
    for tensor, reference in zip(tensors, references):
        if reference.requires_grad:
            assert_close(tensor.grad, reference.grad, atol=1e-10)
        else:
            assert tensor.grad is None


@pytest.mark.parametrize(
    "x_shape, w_shape, bias, kwargs",
    [
        ((2, 2, 5, 4), (3, 2, 3, 2), True, dict(stride=(2, 1), padding="same", dilation=(1, 2))),
        ((1, 4, 5, 5), (4, 2, 2, 3), False, dict(stride=2, padding=(1, 0), groups=2)),
        ((2, 3, 4, 6), (6, 1, 3, 3), True, dict(padding=1, groups=3)),  # depthwise, channel multiplier 2
        ((3, 4, 4), (2, 3, 1, 1), True, dict(stride=2)),  # unbatched 1x1 downsample
    ],
)
def test_float64_gradients_match_central_differences(rng, x_shape, w_shape, bias, kwargs):
    arrays = [rng.standard_normal(x_shape), rng.standard_normal(w_shape)]
    if bias:
        arrays.append(rng.standard_normal(w_shape[0]))
    check_gradients(lambda x, w, b=None: conv2d(x, w, b, **kwargs), *arrays)


# ---------------------------------------------------------------------------- worked examples (lecture 4)
@pytest.mark.parametrize("stride, padding, size", [(1, 0, 5), (2, 0, 3), (1, 1, 7)])
def test_lecture_7x7_input_3x3_filter(rng, stride, padding, size):
    x, w = rng.standard_normal((1, 1, 7, 7)), rng.standard_normal((1, 1, 3, 3))
    y = conv2d(x, w, stride=stride, padding=padding)
    assert y.shape == (1, 1, size, size)
    assert_close(y, F.conv2d(torch.from_numpy(x), torch.from_numpy(w), stride=stride, padding=padding))


def test_lecture_homework_conv_relu_maxpool():
    from gpucnn.nn.functional import max_pool2d, relu

    image = np.array([[1, 2, 3, 4, 5], [2, 2, 1, 1, 1], [3, 2, 1, 1, 1], [4, 1, 1, 1, 1], [5, 1, 1, 1, 1]], np.float32)
    kernel = np.array([[0, -1, 0], [1, 1, 1], [0, -1, 0]], np.float32)
    y = conv2d(image[None, None], kernel[None, None], stride=2)
    np.testing.assert_array_equal(y.numpy(), [[[[1, -2], [3, 1]]]])
    pooled = max_pool2d(relu(y), 2)
    np.testing.assert_array_equal(pooled.numpy(), [[[[3]]]])


# ---------------------------------------------------------------------------- special inputs and layouts
def test_empty_batch(rng):
    x = gpucnn.tensor(np.zeros((0, 3, 6, 5), np.float32), requires_grad=True)
    w = gpucnn.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True)
    b = gpucnn.tensor(np.ones(4, np.float32), requires_grad=True)
    y = conv2d(x, w, b, stride=2, padding=1)
    assert y.shape == (0, 4, 3, 3)
    y.sum().backward()
    assert x.grad.shape == (0, 3, 6, 5)
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros((4, 3, 3, 3)))
    np.testing.assert_array_equal(b.grad.numpy(), np.zeros(4))


def test_non_contiguous_input(rng):
    x, w, b = rng.standard_normal((2, 3, 7, 5)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    # gpucnn's transpose is a NumPy view, so conv2d sees a non-contiguous (2, 3, 5, 7) array.
    check_against_torch(
        lambda x, w, b: conv2d(x.transpose(2, 3), w, b, padding=(1, 0)),
        lambda x, w, b: F.conv2d(x.transpose(2, 3), w, b, padding=(1, 0)),
        x, w, b, atol=ATOL,
    )
    strided = np.asarray(x, np.float32)[:, ::-1, ::2]  # a NumPy view with negative and doubled strides
    expected = F.conv2d(torch.from_numpy(strided.copy()), torch.from_numpy(np.asarray(w, np.float32)))
    assert_close(conv2d(strided, w.astype(np.float32)), expected, atol=ATOL)


def test_float64_end_to_end(rng):
    x, w, b = rng.standard_normal((2, 4, 6, 6)), rng.standard_normal((6, 2, 3, 3)), rng.standard_normal(6)
    ours = [gpucnn.tensor(a, requires_grad=True) for a in (x, w, b)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    y = conv2d(*ours, stride=2, padding="same", groups=2)
    expected = F.conv2d(F.pad(theirs[0], (0, 1, 0, 1)), *theirs[1:], stride=2, groups=2)
    assert y.dtype == np.float64
    assert_close(y, expected)
    upstream = rng.standard_normal(y.shape)
    y.backward(upstream)
    expected.backward(torch.from_numpy(upstream))
    for mine, reference in zip(ours, theirs):
        assert mine.grad.dtype == np.float64
        assert_close(mine.grad, reference.grad)


def test_nan_and_inf_propagate(rng):
    x = rng.standard_normal((2, 2, 6, 6)).astype(np.float32)
    x[0, 0, 1, 1], x[1, 1, 4, 2] = np.nan, np.inf
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    y = conv2d(x, w, padding=1)
    expected = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1)
    assert np.isnan(y.numpy()).sum() > 0 and np.isinf(y.numpy()).sum() > 0
    assert_close(y, expected, atol=ATOL)
    check_against_torch(lambda x, w: conv2d(x, w, padding=1), lambda x, w: F.conv2d(x, w, padding=1), x, w, atol=ATOL)


def test_downsample_1x1_stride_2(rng):
    x, w, b = rng.standard_normal((2, 8, 9, 8)), rng.standard_normal((16, 8, 1, 1)), rng.standard_normal(16)
    check_against_torch(lambda *t: conv2d(*t, stride=2), lambda *t: F.conv2d(*t, stride=2), x, w, b, atol=ATOL)


def test_depthwise(rng):
    x, w, b = rng.standard_normal((3, 5, 9, 7)), rng.standard_normal((5, 1, 3, 3)), rng.standard_normal(5)
    check_against_torch(lambda *t: conv2d(*t, padding=1, groups=5), lambda *t: F.conv2d(*t, padding=1, groups=5),
                        x, w, b, atol=ATOL)


def test_im2col_buffers_are_reused_without_stale_data(rng):
    # cols here is 8*9 x 16*32*32 floats (4.7 MB): large enough for the buffer pool, which hands the
    # first call's buffer, released by its backward, to the second call.
    first = [rng.standard_normal(shape) for shape in ((16, 8, 32, 32), (5, 8, 3, 3), (5,))]
    second = [rng.standard_normal(shape) for shape in ((16, 8, 32, 32), (5, 8, 3, 3), (5,))]
    for arrays in (first, second, first):
        check_against_torch(lambda *t: conv2d(*t, padding=1), lambda *t: F.conv2d(*t, padding=1), *arrays, atol=1e-3)


@pytest.mark.filterwarnings("ignore:invalid value encountered in matmul:RuntimeWarning")  # inf * 0, as meant
@pytest.mark.parametrize("chunks_of_one_image", [False, True])
@pytest.mark.parametrize("stride", [1, 2])
def test_non_finite_weight_gradients(monkeypatch, rng, stride, chunks_of_one_image):
    # With stride 1 a finite weight takes the wide-row col2im; inf or NaN in it takes the plain one,
    # where the zero padding columns cannot turn into NaN (inf * 0) and reach real positions.
    # No padding: torch's oneDNN skips padding taps, so inf * (zero padding) is finite there, where
    # gpucnn, like torch on an explicitly padded input, follows IEEE and gives NaN.
    if chunks_of_one_image:
        monkeypatch.setattr(Conv2d, "SPLIT_BYTES", 0)
        monkeypatch.setattr(Conv2d, "CHUNK_BYTES", 1)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    w[0, 1, 0, 2], w[2, 0, 1, 1] = np.inf, np.nan
    x = rng.standard_normal((2, 2, 7, 6)).astype(np.float32)
    check_against_torch(lambda x, w: conv2d(x, w, stride=stride), lambda x, w: F.conv2d(x, w, stride=stride),
                        x, w, atol=ATOL)


def test_asymmetric_pads_on_the_function(rng):
    x, w = rng.standard_normal((2, 3, 5, 6)), rng.standard_normal((4, 3, 3, 2))
    pads = (0, 2, 1, 0)  # top, bottom, left, right
    check_against_torch(
        lambda x, w: Conv2d((2, 1), pads, (1, 1), 1).apply(x, w),
        lambda x, w: F.conv2d(F.pad(x, (pads[2], pads[3], pads[0], pads[1])), w, stride=(2, 1)),
        x, w, atol=ATOL,
    )


def test_only_the_needed_gradients(rng):
    x = gpucnn.tensor(rng.standard_normal((2, 3, 5, 5)).astype(np.float32))
    w = gpucnn.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True)
    b = gpucnn.tensor(np.zeros(4, np.float32))
    conv2d(x, w, b).sum().backward()
    assert x.grad is None and b.grad is None and w.grad.shape == (4, 3, 3, 3)
    b.requires_grad_()
    w.grad = None
    conv2d(x, w.detach(), b).sum().backward()
    assert_close(b.grad, np.full(4, 2 * 3 * 3, np.float32))


@pytest.mark.parametrize("device", gpucnn.devices())
def test_second_backward_through_the_same_graph_raises(rng, device):
    x = gpucnn.tensor(rng.standard_normal((1, 2, 4, 4)).astype(np.float32), device=device, requires_grad=True)
    w = gpucnn.tensor(rng.standard_normal((2, 2, 3, 3)).astype(np.float32), device=device, requires_grad=True)
    y = conv2d(x, w).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_functional_name():
    assert gpucnn.nn.functional.conv2d is conv2d


# ---------------------------------------------------------------------------- argument checks
X = np.zeros((2, 4, 6, 6), np.float32)
WEIGHT = np.zeros((6, 4, 3, 3), np.float32)
F32 = np.float32


def as_torch(value):
    """A torch tensor of ``value``'s data (torch refuses strings and Python lists itself)."""
    array = np.asarray(value)
    return torch.from_numpy(array) if array.dtype.kind in "biufc" else value


@pytest.mark.parametrize(
    "x, weight, bias, kwargs, error, message",
    [
        (np.zeros((4, 6), F32), WEIGHT, None, {}, ValueError, r"\(N, C, H, W\).*\(4, 6\)"),
        (np.zeros((1, 2, 4, 6, 6), F32), WEIGHT, None, {}, ValueError, "got shape"),
        (X, np.zeros((6, 4, 3), F32), None, {}, ValueError, "weight must be 4-D"),
        (X, np.zeros((6, 3, 3, 3), F32), None, {}, ValueError, "input has 4 channels"),
        (X, np.zeros((6, 1, 3, 3), F32), None, dict(groups=2), ValueError, "expects 2"),
        (X, WEIGHT, None, dict(groups=0), ValueError, "groups must be at least 1"),
        (X, np.zeros((6, 1, 3, 3), F32), None, dict(groups=3), ValueError, "does not divide the input"),
        (X, np.zeros((5, 2, 3, 3), F32), None, dict(groups=2), ValueError, "does not divide the weight"),
        (X, WEIGHT, None, dict(groups=1.0), TypeError, "groups must be an int"),
        (X, WEIGHT, np.zeros(5, F32), {}, ValueError, r"bias must have shape \(6,\)"),
        (X, WEIGHT, np.zeros((6, 1), F32), {}, ValueError, "bias must have shape"),
        (X, WEIGHT, None, dict(stride=0), ValueError, "stride must be at least 1"),
        (X, WEIGHT, None, dict(stride=(1, -1)), ValueError, "stride must be at least 1"),
        (X, WEIGHT, None, dict(dilation=0), ValueError, "dilation must be at least 1"),
        (X, WEIGHT, None, dict(padding=-1), ValueError, "padding must be at least 0"),
        (X, WEIGHT, None, dict(padding="full"), ValueError, "'valid' or 'same'"),
        (X, WEIGHT, None, dict(padding=(1, 1, 1)), TypeError, "pair of ints"),
        (X, WEIGHT, None, dict(padding=1.5), TypeError, "pair of ints"),
        (X, np.zeros((6, 4, 9, 3), F32), None, dict(padding=1), ValueError, r"larger than\s+the padded input"),
        (X, WEIGHT, None, dict(dilation=4), ValueError, "larger than"),
        (X.astype(np.int64), WEIGHT, None, {}, TypeError, "floating-point"),
        (X, WEIGHT.astype(np.int32), None, {}, TypeError, "weight must be a floating-point"),
        ([["a"]], WEIGHT, None, {}, TypeError, "numeric"),
        (X.astype(np.float64), WEIGHT, None, {}, TypeError, "float64 but weight has dtype float32"),
        (X, WEIGHT, np.zeros(6, np.float64), {}, TypeError, "bias has dtype float64"),
    ],
)
def test_bad_arguments_fail_before_computing(x, weight, bias, kwargs, error, message):
    with pytest.raises(error, match=message):
        conv2d(x, weight, bias, **kwargs)
    # PyTorch refuses each of these too: gpucnn is not stricter than it.
    with pytest.raises((RuntimeError, ValueError, TypeError)):
        F.conv2d(as_torch(x), as_torch(weight), None if bias is None else as_torch(bias), **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(stride=(1.0, 1.0)), "stride must be an int or a pair of ints"),
    (dict(stride=True), "stride must be an int or a pair of ints"),
    (dict(padding=(True, True)), "padding must be an int or a pair of ints"),
    (dict(dilation=(1, 1.0)), "dilation must be an int or a pair of ints"),
    (dict(groups=True), "groups must be an int"),
])
def test_arguments_equal_to_a_checked_calls_are_checked_themselves(kwargs, message):
    """conv2d keeps its checks' result for a layer's int, str and int-pair arguments; arguments that compare
    equal to those (1.0 == True == 1) are checked anew, and fail as always."""
    plain = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    plain.update({key: 1 for key, value in kwargs.items() if value is True})  # the int that True equals
    for _ in range(2):
        assert conv2d(X, WEIGHT, **plain).shape == (2, 6, 6, 6)
        with pytest.raises(TypeError, match=message):
            conv2d(X, WEIGHT, **{**plain, **kwargs})
    rng = np.random.default_rng(0)
    x, weight = rng.standard_normal(X.shape, F32), rng.standard_normal(WEIGHT.shape, F32)
    expected = conv2d(x, weight, stride=1, padding=1).numpy()  # NumPy integers and lists pass, checked anew
    assert np.array_equal(conv2d(x, weight, stride=[1, 1], padding=np.int64(1), groups=np.int32(1)).numpy(), expected)


@pytest.mark.parametrize("limit, size, kwargs, message, cpu_shape", [
    ("MAX_PLANE", 5, dict(padding=2), r"input planes of 5x5 and output planes of 7x7 \(input shape \(1, 4, 5, 5\)",
     (1, 4, 7, 7)),
    ("MAX_PLANE", 7, dict(stride=3), "input planes of 7x7 and output planes of 2x2", (1, 4, 2, 2)),
    ("MAX_GRID_YZ", 5, dict(groups=4), "run at most 3 groups, got 4", (1, 4, 3, 3)),
], ids=["output plane", "input plane", "groups"])
def test_kernel_devices_refuse_what_their_kernels_cannot_index(monkeypatch, limit, size, kwargs, message, cpu_shape):
    """On cudasim (as on cuda) a plane past Conv2d.MAX_PLANE values or more groups than Conv2d.MAX_GRID_YZ
    fail before any launch, naming the limit and the shapes, even where the same call ran before the
    limit was lowered; the cpu takes them. The limits are lowered here: to 30 values a plane (a 5x5
    input's 7x7 output with padding 2, a 7x7 input), 3 groups."""
    from gpucnn.ops.conv2d import Conv2d

    x, w = np.ones((1, 4, size, size), F32), np.ones((4, 4 // kwargs.get("groups", 1), 3, 3), F32)
    on_cudasim = gpucnn.tensor(x, device="cudasim"), gpucnn.tensor(w, device="cudasim")
    assert conv2d(*on_cudasim, **kwargs).shape == cpu_shape  # within the real limits (its launch plan kept)
    monkeypatch.setattr(Conv2d, limit, 30 if limit == "MAX_PLANE" else 3)
    with pytest.raises(ValueError, match=message):
        conv2d(*on_cudasim, **kwargs)
    assert conv2d(x, w, **kwargs).shape == cpu_shape


def test_complex_input_is_refused():
    # PyTorch convolves complex tensors; gpucnn supports real numbers only.
    with pytest.raises(TypeError, match="complex"):
        conv2d(X.astype(np.complex64), WEIGHT)


def test_kernel_path_names_are_checked_and_settings_restored():
    from gpucnn.ops.conv2d import Conv2d, kernel_path

    with pytest.raises(ValueError, match="unknown conv2d kernel path 'tile32'; choose from chosen, unsplit, split768, "
                                         "chunk64, taps_off, taps_forward, pixels_off, pixels_wide, pixels_split, "
                                         "waves_off, gather20, tile64, tile128, winograd2, winograd4"):
        with kernel_path("tile32"):
            pass
    with kernel_path("tile128"):
        assert Conv2d.FORCE_TILE == 128 and Conv2d.GATHER_MAX_CHANNELS == 0
    assert Conv2d.FORCE_TILE is None and Conv2d.GATHER_MAX_CHANNELS == 8
    names = ("WINOGRAD_GPU_TILE", "WINOGRAD_GPU_MIN_CHANNELS", "WINOGRAD_GPU_MIN_MACS", "TAP_STEP_CHANNELS",
             "TAPS_FORWARD")
    defaults = {name: getattr(Conv2d, name) for name in names}
    with kernel_path("winograd2"):
        assert (Conv2d.WINOGRAD_GPU_TILE, Conv2d.WINOGRAD_GPU_MIN_CHANNELS, Conv2d.WINOGRAD_GPU_MIN_MACS) == (2, 0, 0)
        assert Conv2d.FORCE_TILE is None
    with kernel_path("taps_off"):
        assert Conv2d.TAP_STEP_CHANNELS == 0 and Conv2d.WINOGRAD_GPU_TILE == 0
    with kernel_path("taps_forward"):
        assert Conv2d.TAPS_FORWARD and Conv2d.TAP_STEP_CHANNELS == 16 and Conv2d.WINOGRAD_GPU_TILE == 0
    with kernel_path("pixels_off"):
        assert Conv2d.PIXELS_FORWARD_MAX_REDUCTION == Conv2d.PIXELS_NARROW_CHANNELS == 0
    with kernel_path("pixels_wide"):
        assert Conv2d.PIXELS_FORWARD_MAX_REDUCTION == 160
    assert (Conv2d.PIXELS_FORWARD_MAX_REDUCTION, Conv2d.PIXELS_NARROW_CHANNELS) == (27, 32)
    assert {name: getattr(Conv2d, name) for name in names} == defaults


def test_which_products_take_the_taps_kernels():
    """On a kernel device: backward-data takes the taps kernels where 16 divides its channels, the
    forward only inside Winograd's products (Conv2d.TAPS_FORWARD) or on the kernel path that asks for
    them, and a 1x1 kernel's weight is not transposed for them (it is in their layout already)."""
    from gpucnn.ops.conv2d import kernel_path

    device = gpucnn.device("cudasim")
    launched = []
    kernel = device.kernel

    def recording(file, name):
        launched.append(name)
        return kernel(file, name)

    def launches(weight_shape, path="chosen"):
        launched.clear()
        x = gpucnn.tensor(np.ones((1, weight_shape[1], 6, 6), np.float32), device=device, requires_grad=True)
        w = gpucnn.tensor(np.ones(weight_shape, np.float32) / 100, device=device)
        with kernel_path(path):
            conv2d(x, w, padding=weight_shape[2] // 2).sum().backward()
        return [name for name in launched if name.startswith("conv2d_")]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(device, "kernel", recording)
        # 48 output channels a group: too many for the pixels kernel (Conv2d.PIXELS_NARROW_CHANNELS)
        direct = launches((48, 16, 3, 3))
        assert "conv2d_forward_64" in direct and "conv2d_backward_data_taps_64" in direct
        assert not any(name.startswith("conv2d_forward_taps") for name in direct)
        # Winograd's products reduce over the input channels: 16 would be short enough for the pixels kernel
        assert any(name.startswith("conv2d_forward_taps") for name in launches((48, 48, 3, 3), "winograd4"))
        assert "conv2d_forward_pixels" in launches((16, 16, 3, 3), "winograd4")
        assert "conv2d_forward_taps_64" in launches((48, 16, 3, 3), "taps_forward")
        one_by_one = launches((48, 48, 1, 1), "taps_forward")
        assert "conv2d_forward_taps_64" in one_by_one
        assert one_by_one.count("conv2d_transpose_weight") == 1  # backward-data's


@pytest.mark.parametrize("channels, kernel, outputs, name", [
    (3, 3, 64, "conv2d_forward_pixels"),  # an RGB stem's 3x3: 27 reduction indices
    (16, 1, 64, "conv2d_forward_pixels"),
    (27, 1, 64, "conv2d_forward_pixels"),
    (28, 1, 64, "conv2d_forward_64"),
    (32, 1, 64, "conv2d_forward_64"),  # the small ResNet's 1x1 32 -> 64 layer, slower on the pixels kernel
    (3, 7, 64, "conv2d_forward_64"),  # the Jetson 7x7 RGB stem: 147 indices, slower on the pixels kernel
    (3, 5, 16, "conv2d_forward_pixels"),  # the ConvNetJS 5x5 RGB stem: 75 indices, 16 output channels
    (16, 3, 32, "conv2d_forward_pixels"),  # the small ResNet's 16 -> 32 layer: 144 indices
    (16, 3, 33, "conv2d_forward_64"),
    (160, 1, 32, "conv2d_forward_pixels"),
    (161, 1, 32, "conv2d_forward_64"),
])
def test_the_pixels_forward_takes_short_reductions_and_narrow_layers(channels, kernel, outputs, name):
    """Forwards of at most Conv2d.PIXELS_FORWARD_MAX_REDUCTION (27) reduction indices a group take
    conv2d_forward_pixels, and so do those of at most PIXELS_NARROW_CHANNELS (32) output channels
    a group up to the kernel's PIXELS_MAX_REDUCTION (160); others the tiles."""
    conv = Conv2d((2, 2), (kernel // 2,) * 4, (1, 1), 1)
    conv.device = gpucnn.device("cudasim")
    assert conv._plan("forward", (8, channels, 16, 16), (outputs, channels, kernel, kernel))[3].name == name

@pytest.mark.parametrize("channels, outputs, kernel, stride, groups, name", [
    (8, 16, 3, 1, 1, "exact"),  # Conv2d.GATHER_MAX_CHANNELS
    (9, 16, 3, 1, 1, "pixels"),
    (16, 16, 3, 1, 1, "pixels"),  # the small ResNet's 16-channel layers: 144 reduction indices
    (32, 17, 3, 1, 1, "pixels"),  # 153
    (32, 18, 3, 1, 1, "tiled"),  # 162, past the kernel's PIXELS_MAX_REDUCTION
    (33, 16, 3, 1, 1, "tiled"),  # past Conv2d.PIXELS_NARROW_CHANNELS
    (16, 16, 3, 2, 1, "tiled"),  # stride 2
    (32, 12, 3, 1, 2, "pixels"),  # 16 channels a group, 6 * 9 indices
])
def test_backward_data_of_narrow_stride_1_layers_takes_the_pixels_kernel(channels, outputs, kernel, stride, groups,
                                                                          name):
    """Backward-data of a stride-1 layer of more than GATHER_MAX_CHANNELS and at most
    PIXELS_NARROW_CHANNELS input channels a group, K/G * R * S at most PIXELS_MAX_REDUCTION, runs on
    conv2d_forward_pixels as a forward of the upstream gradient with the weight flipped."""
    conv = Conv2d((stride, stride), (1, 1, 1, 1), (1, 1), groups)
    conv.device = gpucnn.device("cudasim")
    plan = conv._plan("data", (4, channels, 12, 12), (outputs, channels // groups, kernel, kernel))
    assert plan[0] == name
    if name == "pixels":
        assert plan[1].name == "conv2d_forward_pixels" and plan[1].arguments[-3:-1] == (1, 0)  # flipped, no padding


@pytest.mark.parametrize("x_shape, w_shape, groups, grid, span", [
    # the ConvNetJS layers at batch 32: 75 columns in one block (three lanes), 32,768 positions in 256 splits
    ((32, 3, 32, 32), (16, 3, 5, 5), 1, (1, 1, 256), 75),
    # 400 columns in two blocks of 200, 20 output channels in two chunks of 16: 4 blocks a split, 64 splits
    ((32, 16, 16, 16), (20, 16, 5, 5), 1, (2, 2, 64), 200),
    ((2, 256, 8, 8), (32, 256, 1, 1), 1, (1, 2, 1), 256),  # 256 columns, 128 positions: one block, unsplit
    # 257 columns: blocks of 129 (one lane) or 86 (two) would leave a third or more of the threads idle
    ((2, 257, 8, 8), (32, 257, 1, 1), 1, (4, 2, 1), 65),
    # 288 columns a group in three blocks of 96, two lanes each; 32 output channels a group: z = groups * splits
    ((4, 64, 8, 8), (64, 32, 3, 3), 2, (3, 2, 4), 96),
    ((4, 64, 8, 8), (33, 64, 3, 3), 1, None, None),  # past Conv2d.PIXELS_NARROW_CHANNELS: the tiles
])
def test_backward_filter_of_narrow_layers_takes_the_pixels_kernel(x_shape, w_shape, groups, grid, span):
    """Backward-filter of at most PIXELS_NARROW_CHANNELS output channels a group runs
    conv2d_backward_filter_pixels: the columns (C/G * R * S) spread evenly over blocks of at most 256, as
    many as hold a column in three quarters of their threads (in lanes), 16 output channels a block, its
    positions split as the tiles' are (SPLIT_TARGET_BLOCKS); with the kernel path pixels_off, and past 32
    channels, on the tiles."""
    conv = Conv2d((1, 1), (w_shape[2] // 2,) * 4, (1, 1), groups)
    conv.device = gpucnn.device("cudasim")
    product = conv._plan("filter", x_shape, w_shape)
    if grid is None:
        assert product.name == "conv2d_backward_filter_64"
        return
    assert (product.name, product.grid, product.splits) == ("conv2d_backward_filter_pixels", grid, grid[2] // groups)
    positions = x_shape[0] * x_shape[2] * x_shape[3]  # stride 1, 'same' padding
    chunk = product.arguments[-2]
    assert product.arguments[-1] == span and (product.splits - 1) * chunk < positions <= product.splits * chunk
    with kernel_path("pixels_off"):
        assert conv._plan("filter", x_shape, w_shape).name.startswith("conv2d_backward_filter_")
        assert conv._plan("filter", x_shape, w_shape).name != "conv2d_backward_filter_pixels"


@pytest.mark.parametrize("columns, span", [(1, 1), (9, 9), (75, 75), (144, 72), (200, 200), (256, 256), (257, 65),
                                           (288, 96), (400, 200), (1000, 250), (4096, 256)])
def test_filter_span_keeps_three_quarters_of_the_threads_on_columns(columns, span):
    """The narrow backward-filter's columns go evenly (no block more than a column short of another) to
    the fewest blocks of at most 256 whose lanes hold a column in 192 or more of their 256 threads."""
    assert _conv2d_gpu._filter_span(columns) == span
    blocks = -(-columns // span)
    assert span <= 256 and blocks * span - columns < blocks and 4 * span * (256 // span) >= 3 * 256


@pytest.mark.parametrize("count, splits, lanes", [
    (1200, 256, 32),  # the ConvNetJS stem's weight gradient: 32 lanes of 8 splits
    (8000, 64, 16),  # 16 lanes of 4 splits (128,000 threads)
    (8000, 7, 1),  # fewer than 8 splits: a thread an element
    (100_000, 256, 1),  # two lanes of 100,000 elements would pass 2^17 threads
    (65_536, 256, 2),
])
def test_split_sums_take_lanes_where_the_result_is_small(count, splits, lanes):
    """conv2d_sum_splits takes a power of two of threads an element, up to 32, while each adds four or
    more splits and the launch keeps to Conv2d.SUM_LANES_THREADS (2^17) threads."""
    assert _conv2d_gpu._sum_sizes(count, splits, 1, 1, Conv2d.SUM_LANES_THREADS)[-1] == lanes


def test_the_pixels_kernel_never_takes_more_taps_than_its_buffer_holds(monkeypatch):
    """However its thresholds are set, a forward whose kernel has more taps than the pixels kernel's shared
    buffer holds (PIXELS_MAX_REDUCTION) takes the tiles."""
    monkeypatch.setattr(Conv2d, "PIXELS_FORWARD_MAX_REDUCTION", 10**6)
    conv = Conv2d((1, 1), (6,) * 4, (1, 1), 1)
    conv.device = gpucnn.device("cudasim")
    assert conv._plan("forward", (1, 1, 20, 20), (4, 1, 13, 13))[3].name == "conv2d_forward_64"  # 169 taps
    assert conv._plan("forward", (1, 1, 20, 20), (4, 1, 12, 13))[3].name == "conv2d_forward_pixels"  # 156


@pytest.mark.parametrize("x_shape, w_shape, groups, forward, data", [
    # ConvNetJS's conv2 (16 -> 20, 5x5): 400 indices forward in splits of 6, 6 and 4 channels; 500 backward-data
    # in 6, 6, 6 and 2 of its 20
    ((32, 16, 16, 16), (20, 16, 5, 5), 1, (3, 6), (4, 6)),
    ((32, 20, 8, 8), (20, 20, 5, 5), 1, (4, 6), (4, 6)),  # conv3
    ((2, 64, 8, 8), (64, 32, 3, 3), 2, (2, 17), (2, 17)),  # 288 indices a group each way: 17 and 15 channels
    ((2, 3, 30, 30), (16, 3, 13, 13), 1, None, None),  # 169 taps: past what one channel may take
    ((2, 64, 8, 8), (33, 64, 3, 3), 1, None, None),  # past Conv2d.PIXELS_NARROW_CHANNELS
])
def test_the_pixels_split_path_takes_narrow_long_reductions_in_splits_of_whole_channels(x_shape, w_shape, groups,
                                                                                         forward, data):
    """With PIXELS_SPLIT (the kernel path pixels_split), narrow forwards and stride-1 backward-data past
    PIXELS_MAX_REDUCTION (160) indices a group take conv2d_forward_pixels in splits of the most whole
    channels that fit: (splits, channels a split), the grid's z the groups times the splits. Without it,
    the tiles."""
    conv = Conv2d((1, 1), (w_shape[2] // 2,) * 4, (1, 1), groups)
    conv.device = gpucnn.device("cudasim")
    for path, expected in (("chosen", None), ("pixels_split", forward)):
        with kernel_path(path):
            product = conv._plan("forward", x_shape, w_shape)[3]
        assert (product.name == "conv2d_forward_pixels") == (expected is not None), (path, product)
        if expected:
            assert (product.splits, product.arguments[-1], product.grid[2]) == expected + (groups * expected[0],)
    for path, expected in (("chosen", None), ("pixels_split", data)):
        with kernel_path(path):
            plan = conv._plan("data", x_shape, w_shape)
        assert (plan[0] == "pixels") == (expected is not None), (path, plan)
        if expected:
            assert (plan[1].splits, plan[1].arguments[-1], plan[1].grid[2]) == expected + (groups * expected[0],)


def test_host_constants_match_the_kernels_defines():
    """The launcher sizes grids and picks kernels by constants that cuda/conv2d.cu defines for itself."""
    import re

    from helpers import CUDA_SOURCES

    (source,) = [path.read_text() for path in CUDA_SOURCES if path.name == "conv2d.cu"]

    def define(name):
        return int(re.search(rf"^#define {name} (\d+)$", source, re.MULTILINE).group(1))

    assert _conv2d_gpu._GATHER_CHANNELS == define("GATHER_CHANNELS")
    assert _conv2d_gpu._PIXELS_CHANNELS == define("PIXELS_CHANNELS")
    # backward-filter's waves: as many 128-tile blocks a multiprocessor as its launch bounds promise, one
    # below WIDE_FILTER_CAPABILITY
    blocks = re.search(r"^#if defined\(__CUDA_ARCH__\) && __CUDA_ARCH__ < (\d+)\n#define CONV_BLOCKS_128 1\n#else\n"
                       r"#define CONV_BLOCKS_128 (\d+)\n#endif$", source, re.MULTILINE)
    assert (Conv2d.WIDE_FILTER_CAPABILITY * 10, Conv2d.WIDE_FILTER_BLOCKS) == tuple(
        int(value) for value in blocks.groups())
    assert re.search(r"__launch_bounds__\(CONV_THREADS, CONV_BLOCKS_128\) conv2d_backward_filter_128\(", source)
    assert _conv2d_gpu.PIXELS_MAX_REDUCTION == define("PIXELS_MAX_REDUCTION")
    assert Conv2d.PIXELS_FORWARD_MAX_REDUCTION <= _conv2d_gpu.PIXELS_MAX_REDUCTION


def test_launch_plans_are_made_once_per_problem_and_settings(monkeypatch):
    """On a kernel device a product's launch plan is worked out once per problem and settings: the same
    layer again reuses it, a setting changed by hand (not through kernel_path) gets a plan of its own,
    with the same result, and past Conv2d.MAX_PLANS the plans are forgotten."""
    from gpucnn.ops.conv2d import Conv2d

    made = []
    forward_plan = Conv2d._forward_plan
    monkeypatch.setattr(Conv2d, "_forward_plan", lambda self, *shapes: made.append(shapes) or forward_plan(self, *shapes))
    monkeypatch.setattr(_conv2d_gpu, "_PLANS", {})
    rng = np.random.default_rng(11)
    x = gpucnn.tensor(rng.standard_normal((2, 16, 6, 6)).astype(np.float32), device="cudasim")
    w = gpucnn.tensor(rng.standard_normal((8, 16, 3, 3)).astype(np.float32), device="cudasim")
    split = conv2d(x, w, padding=1).numpy()
    np.testing.assert_array_equal(conv2d(x, w, padding=1).numpy(), split)
    assert len(made) == 1
    monkeypatch.setattr(Conv2d, "SPLIT_TARGET_BLOCKS", 0)  # one block per tile: no splits
    assert_close(conv2d(x, w, padding=1), split, atol=1e-5)
    assert len(made) == 2
    monkeypatch.setattr(Conv2d, "MAX_PLANS", 2)
    for size in (5, 4, 3):
        conv2d(x[:, :, :size, :size], w, padding=1)
        assert len(_conv2d_gpu._PLANS) <= 2
    assert len(made) == 5


@pytest.mark.parametrize("path", ["tile64", "tile128"])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", [
    ((5, 16, 3, 3), (20, 16, 3, 3), dict(padding=1)),  # planes of 9 pixels: runs of four cross images
    ((70, 16, 1, 1), (16, 16, 1, 1), {}),  # one pixel a plane: a run of four spans four images
    ((9, 16, 3, 2), (16, 16, 2, 2), dict(padding=(1, 0))),  # outputs of 4x1, planes of 6
    ((7, 16, 5, 3), (18, 16, 3, 3), dict(stride=2, padding=1)),  # stride phases of 3x2, 3x1, 2x2 and 2x1
    ((3, 16, 4, 8), (16, 16, 3, 3), dict(padding=1)),  # planes of 32: float4 runs in the forward
])
def test_gpu_results_whose_runs_of_pixels_cross_images(rng, path, x_shape, w_shape, kwargs):
    """The tiled kernels' epilogues write a thread's results in runs of four consecutive pixels, worked out
    from the block's first pixel by increments: where a plane (the output's, or a backward-data stride
    phase's) is not a multiple of four, a run goes on into the next image, or several."""
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    with kernel_path(path):
        check_against_torch(lambda a, b: conv2d(a, b, **kwargs), lambda a, b: F.conv2d(a, b, **kwargs), x, w,
                            atol=ATOL, device="cudasim")


@pytest.mark.parametrize("w_shape, x_shape, kwargs, takes", [
    ((64, 64, 3, 3), (32, 64, 32, 32), dict(padding=1), True),  # 1.2e9 multiply-adds (CIFAR ResNet-18, batch 32)
    ((64, 64, 3, 3), (28, 64, 32, 32), dict(padding=1), False),  # 1.06e9: too few (2^30 is 1.07e9)
    ((16, 8, 3, 3), (2048, 8, 32, 32), dict(padding=1), False),  # 8 input channels
    ((8, 16, 3, 3), (2048, 16, 32, 32), dict(padding=1), False),  # 8 output channels
    ((64, 64, 3, 3), (128, 64, 32, 32), dict(padding=1, stride=2), False),
    ((64, 64, 3, 3), (128, 64, 32, 32), dict(padding=2, dilation=2), False),
    ((64, 32, 3, 3), (128, 64, 32, 32), dict(padding=1, groups=2), False),
    ((64, 64, 5, 5), (128, 64, 32, 32), dict(padding=2), False),
])
def test_gpu_winograd_rule(w_shape, x_shape, kwargs, takes):
    """F(4x4, 3x3) on the kernel devices: 3x3 at stride 1, dilation 1, one group, at least 16 channels
    in and out and 2^30 multiply-adds."""
    from gpucnn.ops.conv2d import Conv2d, kernel_path

    stride, dilation, groups = kwargs.get("stride", 1), kwargs.get("dilation", 1), kwargs.get("groups", 1)
    pad = kwargs["padding"]
    conv = Conv2d((stride, stride), (pad,) * 4, (dilation, dilation), groups)
    N, _, H, W = x_shape
    P = (H + 2 * pad - dilation * (w_shape[2] - 1) - 1) // stride + 1
    assert conv._takes_winograd(N * P * P, w_shape) == takes
    with kernel_path("winograd4"):  # wherever it applies, at any size
        assert conv._takes_winograd(1, w_shape) == (groups == stride == dilation == 1 and w_shape[2] == 3)
    with kernel_path("taps_off"):
        assert not conv._takes_winograd(N * P * P, w_shape)


@pytest.mark.parametrize("tiles, reduction, layers, expected", [
    (8, 512 * 9, 1, (36, 128)),  # batch-1 512 channels at 7x7, forward: 8 tiles of 64 become 288 blocks
    (49, 64 * 9, 1, (5, 128)),  # batch-1 64 channels at 56x56
    (100, 512 * 9, 1, (6, 768)),  # about 512 blocks before the chunks reach their floor
    (255, 128 * 9, 1, (3, 384)),
    (256, 128 * 9, 1, (1, 1152)),  # half the target's tiles: ResNet-18's 128 channels at 16x16, batch 32
    (512, 64 * 9, 1, (1, 576)),  # enough tiles already: CIFAR ResNet-18's 64 channels at 32x32, batch 32
    (2, 100, 1, (1, 112)),  # too short a reduction to split
    (1, 10**6, 65535 // 4, (4, 250000)),  # the grid's z limit (65535) over 16383 layers
    (1, 1000, 1, (8, 128)),  # chunks of whole steps (16), the last one partial
])
def test_gpu_split_rule(tiles, reduction, layers, expected):
    """Reductions split into chunks, a multiple of 16, no more than Conv2d.SPLIT_MIN_CHUNK goes into
    the reduction (rounded up), until about Conv2d.SPLIT_TARGET_BLOCKS blocks run, where the product
    makes fewer than half as many tiles; none under the kernel path "unsplit"."""
    from gpucnn.ops.conv2d import Conv2d, kernel_path

    conv = Conv2d((1, 1), (0, 0, 0, 0), (1, 1), 1)
    splits, chunk = conv._splits(tiles, reduction, layers)
    assert (splits, chunk) == expected
    assert chunk % 16 == 0 and (splits - 1) * chunk < reduction <= splits * chunk and layers * splits <= 65535
    with kernel_path("unsplit"):
        assert conv._splits(tiles, reduction, layers) == (1, -(-reduction // 16) * 16)


def test_gpu_split_paths_split_further():
    """The kernel paths "split768" (about 768 blocks) and "chunk64" (chunks down to 64 indices) on the
    forwards of ResNet-18's 128-channel 16x16 layer at batch 32 (256 tiles of 64, 1152 reduction
    indices) and of a batch-1 512-channel 7x7 layer (8 tiles, 4608 indices)."""
    from gpucnn.ops.conv2d import Conv2d, kernel_path

    conv = Conv2d((1, 1), (0, 0, 0, 0), (1, 1), 1)
    assert conv._splits(256, 1152, 1) == (1, 1152) and conv._splits(8, 4608, 1) == (36, 128)
    with kernel_path("split768"):
        assert conv._splits(256, 1152, 1) == (3, 384) and conv._splits(8, 4608, 1) == (36, 128)
    with kernel_path("chunk64"):
        assert conv._splits(256, 1152, 1) == (1, 1152) and conv._splits(8, 4608, 1) == (58, 80)


@pytest.mark.parametrize("tiles, reduction, splits, chunk, wave, expected", [
    # ResNet-18's layers at batch 32 on an H100's 132 multiprocessors, two 128-tile blocks each
    (9, 8192, 32, 256, 264, (29, 288)),  # 128 channels at 16x16: 261 blocks, one wave
    (36, 2048, 8, 256, 264, (7, 304)),  # 256 channels at 8x8: 252 blocks, one wave
    (144, 512, 2, 256, 264, (1, 512)),  # 512 channels at 4x4: one wave either way, so the fewer splits
    (144, 512, 2, 256, 132, (2, 256)),  # at one block a multiprocessor one split would take two waves of 512
    (144, 512, 2, 256, 16, (1, 512)),  # 9 waves of 512 or 18 of 256: the fewer splits
    (9, 8192, 32, 256, 108, (12, 688)),  # one wave of 108 blocks
    (4, 100, 1, 112, 264, (1, 112)),  # unsplit stays so
])
def test_backward_filter_splits_that_fill_waves(tiles, reduction, splits, chunk, wave, expected):
    """_fill_waves: the splits, at most as many as given, that take the fewest waves (of ``wave`` blocks)
    times chunk, in chunks of whole steps of 16; of equals the fewest."""
    fewer, longer = _fill_waves(tiles, reduction, splits, chunk, wave)
    assert (fewer, longer) == expected
    assert longer % 16 == 0 and (fewer - 1) * longer < reduction <= fewer * longer and fewer <= splits


def test_backward_filter_fills_waves_on_a_gpu_that_counts_its_multiprocessors(monkeypatch):
    """The plan of ResNet-18's 128-channel 16x16 layer at batch 32: the 128 tile in 57 splits of 144
    positions where the device has no multiprocessor count (cudasim) or under the kernel path
    "waves_off", 29 of 288 on 132 multiprocessors (two such blocks each: one wave of 261); at one block
    a multiprocessor too (two waves). On 72 multiprocessors, 16 of 512 at two blocks each, 8 of 1024 on
    an older GPU that holds one."""
    device = gpucnn.device("cudasim")
    conv = Conv2d((1, 1), (1, 1, 1, 1), (1, 1), 1)
    conv.device = device

    def plan():
        product = conv._plan("filter", (32, 128, 16, 16), (128, 128, 3, 3))
        return product.name, product.grid[2], int(product.arguments[-1])

    assert plan() == ("conv2d_backward_filter_128", 57, 144)
    monkeypatch.setattr(device, "multiprocessors", 132)
    assert plan() == ("conv2d_backward_filter_128", 29, 288)
    with kernel_path("waves_off"):
        assert plan() == ("conv2d_backward_filter_128", 57, 144)
    monkeypatch.setattr(Conv2d, "WIDE_FILTER_BLOCKS", 1)
    assert plan() == ("conv2d_backward_filter_128", 29, 288)
    monkeypatch.setattr(device, "multiprocessors", 72)  # 144 a wave at two blocks each: one wave of 144
    monkeypatch.setattr(Conv2d, "WIDE_FILTER_BLOCKS", 2)
    assert plan() == ("conv2d_backward_filter_128", 16, 512)
    # below compute capability 7.5 (a V100's 7.0) the kernel allows one block: a wave of 72, one of 72 blocks
    monkeypatch.setattr(device, "compute_capability", 70, raising=False)
    assert plan() == ("conv2d_backward_filter_128", 8, 1024)


def test_a_forced_wide_tile_on_an_older_gpu_says_so():
    """Below compute capability 7.0 conv2d.cu has no 128-tile kernels: forcing one names the reason."""
    from gpucnn.ops.conv2d import Conv2d, has_wide_tile, kernel_path, kernel_paths

    class OlderGpu:
        name, compute_capability = "cuda:0", 62

        def __str__(self):
            return self.name

    conv = Conv2d((1, 1), (0, 0, 0, 0), (1, 1), 1)
    conv.device = OlderGpu()
    assert not has_wide_tile(conv.device)
    assert kernel_paths(conv.device) == ["chosen", "unsplit", "split768", "chunk64", "taps_off", "taps_forward",
                                          "pixels_off", "pixels_wide", "pixels_split", "waves_off", "gather20", "tile64",
                                          "winograd2", "winograd4"]
    assert conv._tile(256, 10**6, 1) == 64  # the launcher's own choice stays on the 64 tile
    with kernel_path("tile128"), pytest.raises(RuntimeError, match=r"128 tile is not built for cuda:0 \(compute "
                                                                      r"capability 62, under 70\)"):
        conv._tile(256, 10**6, 1)
    assert has_wide_tile(gpucnn.device("cudasim")) and "tile128" in kernel_paths(gpucnn.device("cpu"))


@pytest.mark.parametrize("batch, size, tile", [(1, 56, 64), (8, 32, 64), (32, 32, 128), (128, 32, 128)])
def test_backward_filter_takes_the_wide_tile_where_its_splits_make_enough_blocks(batch, size, tile):
    """Backward-filter of a 64 -> 128 3x3 stride-2 layer: the 128 tile makes 5 tiles, split into chunks
    of about SPLIT_MIN_CHUNK positions: 35 blocks at batch 1 and 80 at 8 (under WIDE_TILE_BLOCKS: the
    64 tile), 320 at 32 and 515 at 128 (the 128 tile)."""
    conv = Conv2d((2, 2), (1, 1, 1, 1), (1, 1), 1)
    conv.device = gpucnn.device("cudasim")
    product = conv._plan("filter", (batch, 64, size, size), (128, 64, 3, 3))
    assert product.name == f"conv2d_backward_filter_{tile}"


# ---------------------------------------------------------------------------- Winograd F(4x4, 3x3), cpu
def winograd_everywhere(patch):
    """The cpu takes Winograd's F(4x4, 3x3) or F(2x2, 5x5) for every 3x3 or 5x5 stride-1 convolution
    on finite data, however small (one channel in and out too, which the depthwise path takes otherwise)."""
    patch.setattr(Conv2d, "DEPTHWISE_CPU", False)
    patch.setattr(Conv2d, "WINOGRAD_CPU_MIN_CHANNELS", {3: 1, 5: 1})
    patch.setattr(Conv2d, "WINOGRAD_CPU_MIN_TILES", 1)


@pytest.fixture
def winograd_on_every_layer(monkeypatch):
    winograd_everywhere(monkeypatch)


WINOGRAD_SHAPES = [  # (x shape, (K, C), pads (top, bottom, left, right))
    ((2, 3, 5, 6), (4, 3), (1, 1, 1, 1)),
    ((1, 2, 3, 3), (3, 2), (0, 0, 0, 0)),  # a single output pixel
    ((3, 4, 9, 7), (2, 4), (2, 2, 2, 2)),
    ((2, 5, 4, 9), (6, 5), (0, 1, 1, 0)),  # asymmetric
    ((1, 1, 8, 8), (1, 1), (3, 4, 4, 3)),  # pads past 2: backward crops the upstream gradient
    ((1, 2, 1, 1), (2, 2), (4, 4, 4, 4)),
    ((2, 3, 13, 10), (4, 3), (1, 1, 1, 1)),  # outputs not a multiple of 4: the last tiles are cut
    ((11, 2, 6, 5), (3, 2), (1, 0, 2, 1)),  # the images copied in groups of 8, the last one short
]


def _conv_on_path(pads, path, stride=(1, 1), groups=1):
    """conv2d through the Function with explicit pads (top, bottom, left, right), checking that the cpu
    took ``path``: "winograd", "blocked" or None (any)."""

    def conv(x, w, b=None):
        function = Conv2d(stride, pads, (1, 1), groups)
        y = function.apply(*[t for t in (x, w, b) if t is not None])
        assert path is None or {"winograd": function.winograd is not None, "blocked": function.blocked}[path]
        return y

    return conv


def _matches_torch_with_pads(conv, arrays, pads, rng, stride=1, groups=1):
    """``conv`` on float64 arrays (x, w[, b]) against torch's conv2d on x padded by ``pads`` (top,
    bottom, left, right): the output and every gradient for one random upstream gradient."""
    tensors = [gpucnn.tensor(a, requires_grad=True) for a in arrays]
    y = conv(*tensors)
    references = [torch.tensor(a, requires_grad=True) for a in arrays]
    top, bottom, left, right = pads
    expected = F.conv2d(F.pad(references[0], (left, right, top, bottom)), *references[1:], stride=stride, groups=groups)
    upstream = rng.standard_normal(expected.shape)
    y.backward(upstream)
    expected.backward(torch.from_numpy(upstream))
    assert_close(y, expected.detach(), atol=1e-10)
    for tensor, reference in zip(tensors, references):
        assert_close(tensor.grad, reference.grad, atol=1e-10)


@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("x_shape, channels, pads", WINOGRAD_SHAPES)
def test_winograd_matches_torch_in_float64(winograd_on_every_layer, rng, x_shape, channels, pads, kernel):
    pads = tuple(pad + (kernel - 3) // 2 for pad in pads)  # 5x5: one more on each side, the same outputs
    arrays = [rng.standard_normal(x_shape), rng.standard_normal(channels + (kernel, kernel)),
              rng.standard_normal(channels[0])]
    _matches_torch_with_pads(_conv_on_path(pads, "winograd"), arrays, pads, rng)


@pytest.mark.parametrize("columns", [1, 7])
@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("x_shape, channels, pads", [WINOGRAD_SHAPES[i] for i in (0, 6, 7)])
def test_winograd_transforms_in_pieces_of_columns(winograd_on_every_layer, monkeypatch, rng, x_shape, channels, pads,
                                                   kernel, columns):
    """The data's transforms run over pieces of TRANSFORM_COLUMNS patches or tiles: here many pieces, the
    last one short (the images last in the tiles' order on the last shape)."""
    monkeypatch.setattr(winograd, "TRANSFORM_COLUMNS", columns)
    pads = tuple(pad + (kernel - 3) // 2 for pad in pads)
    arrays = [rng.standard_normal(x_shape), rng.standard_normal(channels + (kernel, kernel)),
              rng.standard_normal(channels[0])]
    _matches_torch_with_pads(_conv_on_path(pads, "winograd"), arrays, pads, rng)


@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("x_shape, channels, pads", WINOGRAD_SHAPES[2:5])
def test_winograd_gradients_match_central_differences(winograd_on_every_layer, rng, x_shape, channels, pads, kernel):
    pads = tuple(pad + (kernel - 3) // 2 for pad in pads)
    arrays = [rng.standard_normal(x_shape), rng.standard_normal(channels + (kernel, kernel)),
              rng.standard_normal(channels[0])]
    check_gradients(_conv_on_path(pads, "winograd"), *arrays)


@pytest.mark.parametrize("path, x_shape, w_shape, padding", [
    ("winograd", (4, 32, 12, 12), (32, 32, 3, 3), 1),  # 32 channels, 36 tiles
    ("blocked", (4, 16, 16, 16), (20, 16, 5, 5), 2),  # ConvNetJS's conv2 at batch 4: 5 million multiply-adds
])
def test_fast_paths_in_float32_on_layers_that_take_them_by_default(rng, path, x_shape, w_shape, padding):
    """The default rules pick the path. F(4x4, 3x3)'s coefficients reach 8 and 1/24, so its float32
    results are held to the result's largest magnitude (measured within 1.1e-5 on ResNet-18's layers),
    not elementwise; the blocked products sum the plain ones' terms in another order."""
    K, C, R, S = w_shape
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = (rng.standard_normal(w_shape) / np.sqrt(C * R * S)).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32)
    tensors = [gpucnn.tensor(a, requires_grad=True) for a in (x, w, b)]
    y = conv2d(*tensors, padding=padding)
    assert y._creator.winograd is not None if path == "winograd" else y._creator.blocked
    references = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    expected = F.conv2d(*references, padding=padding)
    upstream = rng.standard_normal(expected.shape).astype(np.float32)
    y.backward(upstream)
    expected.backward(torch.from_numpy(upstream))
    for ours, reference in zip([y] + [t.grad for t in tensors], [expected.detach()] + [r.grad for r in references]):
        reference = reference.numpy()
        assert ours.dtype == np.float32
        if path == "winograd":
            assert_close(ours, reference, atol=3e-5 * np.abs(reference).max(), rtol=0)
        else:
            assert_close(ours, reference, atol=ATOL)


@pytest.mark.parametrize("x_shape, w_shape, kwargs, takes", [
    ((32, 64, 32, 32), (64, 64, 3, 3), dict(padding=1), True),  # CIFAR ResNet-18
    ((1, 128, 28, 28), (128, 128, 3, 3), dict(padding=1), True),  # 49 tiles
    ((1, 512, 7, 7), (512, 512, 3, 3), dict(padding=1), False),  # 4 tiles: the weight's transforms dominate
    ((32, 16, 16, 16), (32, 16, 3, 3), dict(padding=1), True),  # 16 input channels, twice as many output
    ((32, 16, 16, 16), (33, 16, 3, 3), dict(padding=1), False),  # more than twice as many
    ((64, 16, 32, 32), (16, 16, 3, 3), dict(padding=1), True),  # 16 in and out: the small ResNet
    ((64, 32, 32, 32), (16, 32, 3, 3), dict(padding=1), True),  # 16 output channels of 32
    ((64, 16, 32, 32), (24, 16, 3, 3), dict(padding=1), True),  # more output than input channels
    ((64, 12, 32, 32), (12, 12, 3, 3), dict(padding=1), False),  # under 16 channels
    ((64, 16, 32, 32), (8, 16, 3, 3), dict(padding=1), False),  # under 16 output channels
    ((64, 15, 32, 32), (30, 15, 3, 3), dict(padding=1), False),
    ((32, 16, 16, 16), (16, 16, 5, 5), dict(padding=2), False),  # 5x5 needs 32
    ((32, 32, 16, 16), (32, 32, 5, 5), dict(padding=2), True),
    ((32, 31, 16, 16), (64, 31, 5, 5), dict(padding=2), False),
    ((32, 64, 32, 32), (64, 64, 3, 3), dict(padding=1, stride=2), False),
    ((32, 64, 32, 32), (64, 32, 3, 3), dict(padding=1, groups=2), False),
    ((32, 64, 32, 32), (64, 64, 3, 3), dict(padding=2, dilation=2), False),
    ((32, 64, 16, 16), (64, 64, 5, 5), dict(padding=2), True),  # F(2x2, 5x5)
    ((32, 64, 16, 16), (31, 64, 5, 5), dict(padding=2), False),
    ((32, 16, 16, 16), (20, 16, 5, 5), dict(padding=2), False),  # ConvNetJS conv2
    ((32, 64, 32, 32), (64, 64, 7, 7), dict(padding=3), False),
    ((32, 64, 32, 32), (64, 64, 3, 5), dict(padding=(1, 2)), False),
])
def test_winograd_rule(x_shape, w_shape, kwargs, takes):
    stride, dilation = (_shapes.pair(kwargs.get(name, 1), name, "", 1) for name in ("stride", "dilation"))
    pads = _shapes.conv_padding(kwargs["padding"], x_shape[2:], w_shape[2:], stride, dilation, "")
    function = Conv2d(stride, pads, dilation, kwargs.get("groups", 1))
    P = _shapes.output_size(x_shape[2], w_shape[2], stride[0], pads[0], pads[1], dilation[0])
    Q = _shapes.output_size(x_shape[3], w_shape[3], stride[1], pads[2], pads[3], dilation[1])
    x, w = np.zeros(x_shape, np.float32), np.zeros(w_shape, np.float32)
    assert (function._winograd_filter(x, w, P, Q, x_shape[0]) is not None) == takes
    w[0, 0, 0, 0] = np.nan  # and never with a non-finite weight (non-finite input: the test below)
    assert function._winograd_filter(x, w, P, Q, x_shape[0]) is None
    # nor in float16, whose few digits the transforms' coefficients (up to 8 and 1/24) would eat
    assert function._winograd_filter(x.astype(np.float16), w.astype(np.float16), P, Q, x_shape[0]) is None


@pytest.mark.parametrize("by_image_rows_max", [0, 1 << 40])
@pytest.mark.parametrize("groups, chunk_images", [(1, None), (2, None), (1, 2), (2, 2)])
@pytest.mark.parametrize("bias", [True, False])
def test_forward_every_product(monkeypatch, rng, by_image_rows_max, groups, chunk_images, bias):
    """y as one product over the images' columns, and as a product an image (BY_IMAGE_ROWS_MAX, here for
    any output size) with the bias as the weight's last column against a row of ones (one group) or
    added after (two), with the batch in one chunk or in chunks of 2 and 1 of its 3 images; and the
    gradients after it, which read the columns it kept."""
    monkeypatch.setattr(Conv2d, "BY_IMAGE_ROWS_MAX", by_image_rows_max)
    monkeypatch.setattr(Conv2d, "BY_IMAGE_MIN_PIXELS", 1)
    x, w, b = rng.standard_normal((3, 4, 7, 6)), rng.standard_normal((6, 4 // groups, 3, 2)), rng.standard_normal(6)
    if chunk_images is not None:  # the columns of chunk_images images each (stride 2, rows of Q + (S-1)//2)
        monkeypatch.setattr(Conv2d, "SPLIT_BYTES", 0)  # and a row of ones after them
        monkeypatch.setattr(Conv2d, "CHUNK_BYTES", chunk_images * (4 * 3 * 2 + 1) * 4 * 4 * x.itemsize)
    arrays = (x, w, b) if bias else (x, w)
    tensors = [gpucnn.tensor(a, requires_grad=True) for a in arrays]
    y = conv2d(*tensors, stride=2, padding=1, groups=groups)
    assert y._creator.chunk == (chunk_images or 3)
    _backward_matches_torch(y, tensors, arrays, (True,) * len(arrays), rng.standard_normal(y.shape), stride=2,
                            padding=1, groups=groups)


@pytest.mark.parametrize("by_image_rows_max", [0, 1 << 40])
@pytest.mark.parametrize("bias", [True, False])
def test_no_output_channels(monkeypatch, by_image_rows_max, bias):
    """A weight of no output channels (PyTorch refuses one) gives an empty output and zero gradients,
    on either forward product."""
    monkeypatch.setattr(Conv2d, "BY_IMAGE_ROWS_MAX", by_image_rows_max)
    monkeypatch.setattr(Conv2d, "BY_IMAGE_MIN_PIXELS", 1)
    arrays = [np.ones((3, 4, 7, 6)), np.ones((0, 4, 3, 2))] + ([np.ones(0)] if bias else [])
    tensors = [gpucnn.tensor(a, requires_grad=True) for a in arrays]
    y = conv2d(*tensors, stride=2, padding=1)
    assert y.shape == (3, 0, 4, 4)
    y.sum().backward()
    assert [t.grad.shape for t in tensors] == [a.shape for a in arrays]
    assert not tensors[0].grad.numpy().any()


@pytest.mark.parametrize("transposed_max, by_image_max", [(0, 1 << 40), (1 << 40, 0), (1 << 40, 1 << 40)])
@pytest.mark.parametrize("groups, chunk_images", [(1, None), (2, None), (2, 1), (1, 2)])
@pytest.mark.parametrize("input_grad", [True, False])
def test_weight_gradient_every_product(monkeypatch, rng, transposed_max, by_image_max, groups, chunk_images,
                                       input_grad):
    """dW as dy @ cols^T, in the weight's layout, as cols @ dy^T copied into it, and as cols @ dy^T an
    image at a time (BY_IMAGE_FILTER_MAX, here for any output size): all C-contiguous (an optimizer's
    elementwise update on a transposed view runs 25 times slower), with the batch in one chunk or in
    chunks of 1 or 2 of its 3 images, the input's gradient asked for or not."""
    monkeypatch.setattr(Conv2d, "TRANSPOSED_FILTER_MAX", transposed_max)
    monkeypatch.setattr(Conv2d, "BY_IMAGE_FILTER_MAX", by_image_max)
    monkeypatch.setattr(Conv2d, "BY_IMAGE_FILTER_MAX_BESIDE_COLUMNS", by_image_max)
    monkeypatch.setattr(Conv2d, "BY_IMAGE_MIN_PIXELS", 1)
    x, w = rng.standard_normal((3, 4, 7, 6)), rng.standard_normal((6, 4 // groups, 3, 2))
    if chunk_images is not None:  # the columns of chunk_images images each (stride 2, rows of Q + (S-1)//2)
        monkeypatch.setattr(Conv2d, "SPLIT_BYTES", 0)  # and a row of ones after them
        monkeypatch.setattr(Conv2d, "CHUNK_BYTES", chunk_images * (4 * 3 * 2 + 1) * 4 * 4 * x.itemsize)
    tensors = [gpucnn.tensor(x, requires_grad=input_grad), gpucnn.tensor(w, requires_grad=True)]
    y = conv2d(*tensors, stride=2, padding=1, groups=groups)
    assert y._creator.chunk == (chunk_images or 3)
    upstream = rng.standard_normal(y.shape)
    y.backward(gpucnn.tensor(upstream))
    references = [torch.tensor(x, requires_grad=input_grad), torch.tensor(w, requires_grad=True)]
    F.conv2d(*references, stride=2, padding=1, groups=groups).backward(torch.tensor(upstream))
    assert tensors[1].grad.numpy().flags.c_contiguous
    for tensor, reference in zip(tensors, references):
        if input_grad or tensor is tensors[1]:
            assert_close(tensor.grad, reference.grad, atol=1e-10)


@pytest.mark.parametrize("chunks_of_one_image", [False, True])
@pytest.mark.parametrize("x_shape, w_shape, pads, groups", [
    ((2, 3, 8, 8), (4, 3, 3, 3), (1, 1, 1, 1), 1),  # ResNet's downsampling 3x3
    ((3, 2, 9, 7), (5, 2, 3, 3), (1, 1, 1, 1), 1),  # odd sizes
    ((1, 4, 11, 10), (6, 2, 5, 4), (2, 1, 0, 3), 2),  # asymmetric pads, even kernel side, groups
    ((2, 3, 7, 7), (2, 3, 1, 1), (0, 0, 0, 0), 1),  # 1x1: the strided copy
    ((2, 2, 6, 9), (3, 2, 7, 7), (3, 3, 3, 3), 1),  # a kernel larger than the input
    ((1, 1, 4, 5), (1, 1, 2, 3), (0, 1, 1, 0), 1),
    ((2, 3, 8, 7), (2, 3, 2, 2), (0, 0, 0, 0), 1),  # rows and columns past the last window
])
def test_stride_2_backward_data_by_phases(monkeypatch, rng, x_shape, w_shape, pads, groups, chunks_of_one_image):
    """Stride-2 backward-data sums the taps into the padded gradient's four stride-2 phases (however
    small the layer; a 1x1 kernel keeps the strided copy)."""
    monkeypatch.setattr(Conv2d, "PHASES_MIN_VALUES", 0)
    monkeypatch.setattr(Conv2d, "PHASES_WIDENING", 0)
    if chunks_of_one_image:
        monkeypatch.setattr(Conv2d, "SPLIT_BYTES", 0)
        monkeypatch.setattr(Conv2d, "CHUNK_BYTES", 1)
    calls, original = [], Conv2d._col2im_phases

    def spy(self, *args):
        calls.append(args)
        return original(self, *args)

    monkeypatch.setattr(Conv2d, "_col2im_phases", spy)
    arrays = [rng.standard_normal(x_shape), rng.standard_normal(w_shape)]
    conv = _conv_on_path(pads, None, stride=(2, 2), groups=groups)
    _matches_torch_with_pads(conv, arrays, pads, rng, stride=2, groups=groups)
    assert bool(calls) == (w_shape[2] * w_shape[3] > 1)


BLOCKED_SHAPES = [  # (x shape, weight shape, pads (top, bottom, left, right))
    ((2, 3, 6, 8), (4, 3, 3, 3), (1, 1, 1, 1)),  # even outputs
    ((3, 2, 7, 5), (5, 2, 3, 3), (1, 1, 1, 1)),  # odd outputs: the last blocks are half outside
    ((1, 4, 9, 9), (3, 4, 5, 5), (2, 2, 2, 2)),  # one image, odd
    ((2, 3, 8, 11), (2, 3, 5, 3), (0, 3, 2, 1)),  # asymmetric pads, a 5x3 kernel
    ((2, 2, 5, 6), (3, 2, 2, 4), (0, 0, 0, 0)),  # no padding, even kernel sides
    ((1, 1, 3, 3), (2, 1, 3, 3), (0, 0, 0, 0)),  # a single output pixel
    ((2, 2, 4, 4), (2, 2, 7, 7), (3, 3, 3, 3)),  # the kernel larger than the input
    ((19, 2, 6, 5), (3, 2, 3, 3), (1, 0, 1, 2)),  # images copied in groups of 8: two and a part
]


@pytest.mark.parametrize("chunks_of_one_image", [False, True])
@pytest.mark.parametrize("x_shape, w_shape, pads", BLOCKED_SHAPES)
def test_blocked_matches_torch_in_float64(monkeypatch, rng, x_shape, w_shape, pads, chunks_of_one_image):
    blocks_everywhere(monkeypatch)
    if chunks_of_one_image:  # backward rebuilds each image's block columns
        monkeypatch.setattr(Conv2d, "SPLIT_BYTES", 0)
        monkeypatch.setattr(Conv2d, "CHUNK_BYTES", 1)
    arrays = [rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])]
    _matches_torch_with_pads(_conv_on_path(pads, "blocked"), arrays, pads, rng)


@pytest.mark.parametrize("x_shape, w_shape, pads", BLOCKED_SHAPES[1:4])
def test_blocked_gradients_match_central_differences(monkeypatch, rng, x_shape, w_shape, pads):
    blocks_everywhere(monkeypatch)
    arrays = [rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])]
    check_gradients(_conv_on_path(pads, "blocked"), *arrays)


@pytest.mark.parametrize("x_shape, w_shape, kwargs, takes", [
    ((32, 16, 16, 16), (20, 16, 5, 5), dict(padding=2), True),  # ConvNetJS conv2
    ((32, 3, 32, 32), (10, 3, 5, 5), dict(padding=2), False),  # the lecture's layer: 75 columns, a product an image
    ((32, 16, 16, 16), (48, 16, 5, 5), dict(padding=2), True),
    ((32, 16, 16, 16), (64, 16, 5, 5), dict(padding=2), False),
    ((32, 16, 16, 16), (32, 16, 7, 7), dict(padding=3), True),
    ((32, 16, 32, 32), (16, 16, 3, 3), dict(padding=1), True),
    ((32, 16, 32, 32), (8, 16, 3, 3), dict(padding=1), True),
    ((16, 16, 32, 32), (16, 16, 3, 3), dict(padding=1), False),  # 3x3 from 32 images
    ((64, 3, 32, 32), (16, 3, 3, 3), dict(padding=1), False),  # 3x3 from 16 input channels
    ((64, 8, 32, 32), (8, 8, 3, 3), dict(padding=1), False),
    ((64, 3, 32, 32), (16, 3, 5, 5), dict(padding=2), False),  # ConvNetJS conv1
    ((32, 5, 32, 32), (16, 5, 5, 5), dict(padding=2), False),  # 125 columns
    ((32, 6, 32, 32), (16, 6, 5, 5), dict(padding=2), True),  # 150
    ((32, 3, 32, 32), (16, 3, 7, 7), dict(padding=3), True),  # 147
    ((4, 16, 16, 16), (20, 16, 5, 5), dict(padding=2), True),  # 5x5 from 4 images
    ((3, 16, 28, 28), (20, 16, 5, 5), dict(padding=2), False),
    ((32, 16, 32, 32), (24, 16, 3, 3), dict(padding=1), False),  # 3x3 pays 1.78 times the multiply-adds
    ((32, 16, 32, 32), (16, 16, 2, 2), dict(), False),  # 2x2: 2.25 times
    ((32, 16, 32, 32), (16, 16, 1, 1), dict(), False),
    ((32, 1, 7, 7), (1, 1, 3, 3), dict(), False),  # 7,200 multiply-adds: the extra calls cost more
    ((32, 16, 16, 16), (20, 16, 5, 5), dict(padding=2, stride=2), False),
    ((32, 16, 16, 16), (20, 8, 5, 5), dict(padding=2, groups=2), False),
    ((32, 16, 16, 16), (20, 16, 5, 5), dict(padding=4, dilation=2), False),
])
def test_blocked_rule(x_shape, w_shape, kwargs, takes):
    stride, dilation = (_shapes.pair(kwargs.get(name, 1), name, "", 1) for name in ("stride", "dilation"))
    pads = _shapes.conv_padding(kwargs.get("padding", 0), x_shape[2:], w_shape[2:], stride, dilation, "")
    function = Conv2d(stride, pads, dilation, kwargs.get("groups", 1))
    P = _shapes.output_size(x_shape[2], w_shape[2], stride[0], pads[0], pads[1], dilation[0])
    Q = _shapes.output_size(x_shape[3], w_shape[3], stride[1], pads[2], pads[3], dilation[1])
    assert function._blocked_shape(w_shape, P, Q, x_shape[0]) == takes  # non-finite input: the test below


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf * 0 and inf - inf, as meant
@pytest.mark.parametrize("where", ["input", "weight", "upstream"])
@pytest.mark.parametrize("path", ["winograd", "blocked"])
def test_fast_paths_leave_non_finite_values_to_exact_ones(monkeypatch, rng, path, where):
    """Winograd: inf - inf in its transforms would give NaN where the direct sum gives inf, so an inf or
    NaN in the input or weight takes im2col in forward, in the upstream gradient in backward. Blocked:
    its zero weights multiply every input of a window and every upstream gradient of a block, so an
    inf or NaN input takes the plain columns, an upstream gradient the wide backward-data and a
    weight the plain one."""
    # No padding: torch's oneDNN skips padding taps, where an inf weight times the zero padding is NaN
    # under IEEE (see test_non_finite_weight_gradients).
    (winograd_everywhere if path == "winograd" else blocks_everywhere)(monkeypatch)
    x = rng.standard_normal((2, 2, 6, 7)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    upstream = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    {"input": x, "weight": w, "upstream": upstream}[where][1, 1, 2, 2] = np.inf
    tensors = [gpucnn.tensor(a, requires_grad=True) for a in (x, w)]
    y = conv2d(*tensors)
    if path == "winograd":
        assert (y._creator.winograd is not None) == (where == "upstream")
    else:
        assert y._creator.blocked == (where != "input")
    references = [torch.tensor(a, requires_grad=True) for a in (x, w)]
    expected = F.conv2d(*references)
    y.backward(upstream)
    expected.backward(torch.from_numpy(upstream))
    assert_close(y, expected.detach(), atol=ATOL)
    for tensor, reference in zip(tensors, references):
        assert_close(tensor.grad, reference.grad, atol=ATOL)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("contiguous", [True, False])
def test_all_finite_finds_every_inf_and_nan(rng, dtype, contiguous):
    """The test that sends non-finite data to the exact paths: one inf, -inf or NaN anywhere says no."""
    from gpucnn.ops._conv2d_cpu import _all_finite

    def view(data):
        return data if contiguous else data[:, :, ::2].transpose(0, 2, 1, 3)

    data = rng.standard_normal((3, 4, 5, 6)).astype(dtype)
    assert _all_finite(view(data))
    for value in (np.inf, -np.inf, np.nan):
        for index in ((0, 0, 0, 0), (2, 1, 2, 5)):
            spoiled = view(data.copy())
            spoiled[index] = value
            assert spoiled.flags.c_contiguous == contiguous
            assert not _all_finite(spoiled), (value, index)


def test_all_finite_in_pieces_finds_every_inf_and_nan_and_overflow(monkeypatch, rng):
    """While work splits among the threads the sums of squares go in pieces: a value in any piece, and
    pieces whose sum overflows together, say no."""
    from gpucnn.ops import _parallel
    from gpucnn.ops._conv2d_cpu import _all_finite

    monkeypatch.setattr(_conv2d_cpu, "FINITE_GRAIN", 8)
    monkeypatch.setattr(_parallel, "splitting", lambda: True)
    data = rng.standard_normal(40).astype(np.float32)
    assert _all_finite(data)
    for index in (0, 17, 39):
        spoiled = data.copy()
        spoiled[index] = np.nan
        assert not _all_finite(spoiled), index
    assert not _all_finite(np.full(40, 5e18, np.float32))  # each piece sums to 2e38, all five to 1e39


@pytest.mark.parametrize("in_parts", [False, True])
@pytest.mark.parametrize("needs", [(True, True, True), (True, False, False), (False, True, False)])
@pytest.mark.parametrize("kernel", [3, 5])
def test_winograd_goes_in_chunks_past_split_bytes(winograd_on_every_layer, monkeypatch, rng, in_parts, needs, kernel):
    """Winograd keeps its transformed input (2.25 or 9 times the input) for backward up to SPLIT_BYTES;
    past it the images go in chunks of about CHUNK_BYTES of it, and backward transforms each chunk's
    input again: here chunks of two images and a last one of one."""
    x, b = rng.standard_normal((5, 2, 6, 5)), rng.standard_normal(3)
    w = rng.standard_normal((3, 2, kernel, kernel))
    image_bytes = 36 * 2 * math.prod(winograd.tiles(6, 5, kernel)) * 8  # pad kernel // 2: a 6x5 output
    monkeypatch.setattr(Conv2d, "SPLIT_BYTES", image_bytes)  # one image's: two go in chunks
    monkeypatch.setattr(Conv2d, "CHUNK_BYTES", 2 * image_bytes)
    if in_parts:  # parts of 2 and 3 images: the second in chunks of 2 and 1
        parts_everywhere(monkeypatch, cores=2)
    tensors = [gpucnn.tensor(a, requires_grad=need) for a, need in zip((x, w, b), needs)]
    transformed, transform_input = [], winograd.transform_input
    monkeypatch.setattr(winograd, "transform_input", lambda *args: transformed.append(1) or transform_input(*args))
    y = conv2d(*tensors, padding=kernel // 2)
    functions = [part for *_, part in y._creator.parts] if in_parts else [y._creator]
    chunks = [[(start, stop, V) for start, stop, V in function.winograd] for function in functions]
    assert [[(start, stop) for start, stop, _ in chunk] for chunk in chunks] == (
        [[(0, 2)], [(0, 2), (2, 3)]] if in_parts else [[(0, 2), (2, 4), (4, 5)]])
    assert all(V is None for chunk in chunks for _, _, V in chunk)
    forward_calls = len(transformed)
    _backward_matches_torch(y, tensors, (x, w, b), needs, rng.standard_normal(y.shape), padding=kernel // 2)
    # backward transformed each chunk's input again for the weight gradient (and each chunk's
    # upstream gradient for the input gradient)
    assert len(transformed) - forward_calls == forward_calls * (needs[0] + needs[1])


def test_winograd_keeps_its_transformed_input_within_split_bytes(winograd_on_every_layer, monkeypatch, rng):
    monkeypatch.setattr(Conv2d, "CHUNK_BYTES", 1)  # unused: the whole batch fits in SPLIT_BYTES
    x = gpucnn.tensor(rng.standard_normal((3, 2, 6, 5)), requires_grad=True)
    y = conv2d(x, rng.standard_normal((2, 2, 3, 3)), padding=1)
    [(start, stop, V)] = y._creator.winograd
    assert (start, stop) == (0, 3) and V.shape == (36, 2, 3 * 2 * 2)


def test_winograd_chunks_leave_a_non_finite_upstream_gradient_to_im2col(winograd_on_every_layer, monkeypatch, rng):
    """An inf in the upstream gradient of a layer that went in Winograd chunks: backward rebuilds
    im2col's columns from the saved input, in im2col's own chunks."""
    monkeypatch.setattr(Conv2d, "SPLIT_BYTES", 0)
    monkeypatch.setattr(Conv2d, "CHUNK_BYTES", 1)
    x, w = rng.standard_normal((3, 2, 6, 5)), rng.standard_normal((2, 2, 3, 3))
    tensors = [gpucnn.tensor(a, requires_grad=True) for a in (x, w)]
    y = conv2d(*tensors, padding=1)
    assert len(y._creator.winograd) == 3 and y._creator.chunk == 1
    upstream = rng.standard_normal(y.shape)
    upstream[1, 0, 2, 3] = np.inf
    _backward_matches_torch(y, tensors, (x, w), (True, True), upstream, padding=1)


# ---------------------------------------------------------------------------- a batch in parts, cpu
PARTS_LAYERS = [  # (x shape, w shape, kwargs, the path every part takes: "winograd", "blocked" or None)
    ((5, 4, 9, 8), (3, 4, 3, 3), dict(padding=1), "winograd"),
    ((5, 4, 9, 8), (3, 4, 5, 5), dict(padding=2), "blocked"),
    ((5, 4, 9, 8), (6, 4, 3, 3), dict(padding=1), None),  # backward-data on wide rows
    ((5, 4, 9, 8), (6, 4, 3, 3), dict(padding=1, stride=2), None),  # by stride-2 phases
    ((5, 4, 9, 8), (6, 2, 2, 3), dict(padding=(1, 0), dilation=2, groups=2), None),
    ((5, 3, 6, 7), (5, 3, 1, 1), dict(stride=2), None),
    ((5, 3, 8, 9), (4, 3, 1, 1), dict(), "pointwise"),
]


@pytest.mark.parametrize("needs", [(True, True, True), (True, False, False), (False, True, False),
                                   (False, False, True)])
@pytest.mark.parametrize("x_shape, w_shape, kwargs, path", PARTS_LAYERS)
def test_parts_match_torch(monkeypatch, rng, x_shape, w_shape, kwargs, path, needs):
    """Five images in parts of 1, 2 and 2 (three cores) on each path, each gradient alone and all
    together: the output and input gradient are the parts' own, the weight and bias gradients their sums."""
    parts_everywhere(monkeypatch)
    if path == "winograd":
        winograd_everywhere(monkeypatch)
    elif path == "blocked":
        blocks_everywhere(monkeypatch)
    arrays = [rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])]
    tensors = [gpucnn.tensor(a, requires_grad=need) for a, need in zip(arrays, needs)]
    y = conv2d(*tensors, **kwargs)
    parts = y._creator.parts
    assert [(start, stop) for start, stop, _ in parts] == [(0, 1), (1, 3), (3, 5)]
    for *_, part in parts:
        assert path is None or {"winograd": part.winograd is not None, "blocked": part.blocked,
                                "pointwise": part.pointwise}[path]
    upstream = rng.standard_normal(y.shape)
    _backward_matches_torch(y, tensors, arrays, needs, upstream, **kwargs)
    assert y._creator.parts is None  # backward released them
    with pytest.raises(RuntimeError, match="a second time"):
        y._creator.backward_cpu(upstream)


def test_parts_take_the_paths_of_the_whole_batch(monkeypatch, rng):
    """The rules count the batch's images and tiles, not a part's: two parts of 16 images keep the 3x3
    2x2-block products that start at 32 images (BLOCKED_CPU_RULE), and two parts of one image of 4
    tiles keep Winograd where the rule asks for 8 tiles."""
    parts_everywhere(monkeypatch, cores=2)
    monkeypatch.setattr(Conv2d, "WINOGRAD_CPU_MIN_TILES", 8)
    for x_shape, w_shape, path in [((32, 16, 12, 12), (8, 16, 3, 3), "blocked"),  # 5.3 million multiply-adds
                                   ((2, 32, 8, 8), (32, 32, 3, 3), "winograd")]:
        x = gpucnn.tensor(rng.standard_normal(x_shape).astype(np.float32), requires_grad=True)
        w = (rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:]))).astype(np.float32)
        y = conv2d(x, w, padding=1)
        parts = [part for *_, part in y._creator.parts]
        assert len(parts) == 2
        assert all(part.winograd is not None if path == "winograd" else part.blocked for part in parts)
        expected = F.conv2d(torch.from_numpy(x.numpy()), torch.from_numpy(w), padding=1).numpy()
        assert_close(y, expected, atol=3e-5 * np.abs(expected).max(), rtol=0)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf * 0 and inf - inf, as meant
def test_a_non_finite_image_sends_only_its_own_part_to_the_exact_path(monkeypatch, rng):
    """An inf in the last image: its part takes im2col, the other keeps Winograd; each part's result is
    torch's, inf and NaN where torch has them."""
    parts_everywhere(monkeypatch, cores=2)
    winograd_everywhere(monkeypatch)
    x = rng.standard_normal((4, 2, 6, 7)).astype(np.float32)
    x[3, 1, 2, 2] = np.inf
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    tensors = [gpucnn.tensor(a, requires_grad=True) for a in (x, w)]
    y = conv2d(*tensors)  # no padding: torch's oneDNN skips padding taps (see test_non_finite_weight_gradients)
    assert [part.winograd is not None for *_, part in y._creator.parts] == [True, False]
    references = [torch.tensor(a, requires_grad=True) for a in (x, w)]
    expected = F.conv2d(*references)
    upstream = rng.standard_normal(expected.shape).astype(np.float32)
    y.backward(upstream)
    expected.backward(torch.from_numpy(upstream))
    assert_close(y, expected.detach(), atol=ATOL)
    for tensor, reference in zip(tensors, references):
        assert_close(tensor.grad, reference.grad, atol=ATOL)


@pytest.mark.parametrize("x_shape, w_shape, kwargs, parts", [
    ((32, 64, 32, 32), (64, 64, 3, 3), dict(padding=1), 2),  # CIFAR ResNet-18: Winograd, 512 tiles a part
    ((32, 256, 8, 8), (256, 256, 3, 3), dict(padding=1), 2),  # 64 tiles a part
    ((32, 512, 4, 4), (512, 512, 3, 3), dict(padding=1), 1),  # 16 tiles a part
    ((32, 64, 32, 32), (128, 64, 1, 1), dict(stride=2), 2),  # 34 million multiply-adds a part
    ((64, 16, 32, 32), (32, 16, 1, 1), dict(stride=2), 1),  # 4 million
    ((64, 16, 32, 32), (16, 16, 3, 3), dict(padding=1), 2),  # blocked: adds of 131,072 values a part
    ((32, 16, 16, 16), (20, 16, 5, 5), dict(padding=2), 1),  # ConvNetJS conv2, blocked: 16,384
    ((32, 3, 32, 32), (16, 3, 5, 5), dict(padding=2), 2),  # ConvNetJS conv1, plain columns: 20 million a part
    ((16, 6, 32, 32), (16, 6, 5, 5), dict(padding=2), 1),  # blocked: adds of 24,576 values
    ((64, 3, 32, 32), (16, 3, 3, 3), dict(padding=1), 2),  # the small ResNet's stem, plain columns
    ((1, 64, 56, 56), (64, 64, 3, 3), dict(padding=1), 1),  # one image
])
def test_parts_rule(monkeypatch, x_shape, w_shape, kwargs, parts):
    if not blas_threads().usable:
        pytest.skip("NumPy's BLAS has no thread count to set here: the cpu's conv2d takes no parts")
    stride = _shapes.pair(kwargs.get("stride", 1), "stride", "", 1)
    pads = _shapes.conv_padding(kwargs.get("padding", 0), x_shape[2:], w_shape[2:], stride, (1, 1), "")
    function = Conv2d(stride, pads, (1, 1), 1)
    P = _shapes.output_size(x_shape[2], w_shape[2], stride[0], pads[0], pads[1], 1)
    Q = _shapes.output_size(x_shape[3], w_shape[3], stride[1], pads[2], pads[3], 1)
    x, w = np.zeros(x_shape, np.float32), np.zeros(w_shape, np.float32)
    monkeypatch.setattr(_conv2d_cpu, "usable_cores", lambda: 2)
    assert function._cpu_parts(x, w, P, Q) == parts
    monkeypatch.setattr(_conv2d_cpu, "usable_cores", lambda: 1)
    assert function._cpu_parts(x, w, P, Q) == 1


def test_parts_run_blas_on_one_thread_and_give_back_its_count(monkeypatch, rng):
    """Each part's forward and backward sees BLAS on one thread; after them it has its count again.
    The same inputs give the same bits twice (the parts' sums are added in order)."""
    parts_everywhere(monkeypatch, cores=2)
    seen = []

    def recording(method):
        def wrapper(self, *args):
            seen.append(blas_threads().get())
            return method(self, *args)

        return wrapper

    monkeypatch.setattr(Conv2d, "_forward_images", recording(Conv2d._forward_images))
    monkeypatch.setattr(Conv2d, "_backward_images", recording(Conv2d._backward_images))
    arrays = [rng.standard_normal(shape).astype(np.float32) for shape in ((4, 3, 8, 8), (5, 3, 3, 3))]
    before = blas_threads().get()
    blas_threads().set(2)
    try:
        results = []
        for _ in range(2):
            tensors = [gpucnn.tensor(a, requires_grad=True) for a in arrays]
            y = conv2d(*tensors, padding=1)
            y.backward(np.cos(y.numpy()))
            results.append([y.numpy()] + [t.grad.numpy() for t in tensors])
        assert seen == [1] * 8
        assert blas_threads().get() == 2
    finally:
        blas_threads().set(before)
    for first, second in zip(*results):
        np.testing.assert_array_equal(first, second)


def _conv_taking(patch, flag, path, **kwargs):
    """conv2d(x, w, b, **kwargs), checking that the cpu's forward took the path whose attribute ``flag`` it
    sets ("pointwise", "depthwise"), or (``path`` False) not."""
    taken, original = [], Conv2d.forward_cpu

    def spy(self, *args):
        y = original(self, *args)
        taken.append(getattr(self, flag))
        return y

    patch.setattr(Conv2d, "forward_cpu", spy)

    def conv(x, w, b=None):
        taken.clear()
        y = conv2d(x, w, b, **kwargs)
        assert taken == ([] if x.device.runs_kernels else [path])
        return y

    return conv


# ---------------------------------------------------------------------------- pointwise, cpu
POINTWISE_CASES = [  # (x shape, K, conv2d's keyword arguments, whether the pointwise path takes it)
    ((2, 3, 8, 9), 4, dict(), True),
    ((1, 6, 1, 1), 2, dict(), True),  # one image: however few pixels
    ((3, 1, 8, 8), 5, dict(), True),
    ((0, 3, 8, 8), 2, dict(), True),  # no images
    ((3, 5, 4), 2, dict(), True),  # unbatched
    ((2, 3, 5, 4), 4, dict(), False),  # images of fewer than BY_IMAGE_MIN_PIXELS pixels
    ((2, 3, 8, 9), 4, dict(padding=1), False),  # a 1x1 kernel over zero padding: the columns
    ((2, 3, 8, 9), 4, dict(stride=2), False),
    ((2, 4, 8, 9), 6, dict(groups=2), False),
]


@pytest.mark.parametrize("products_bytes", [None, 1])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape, K, kwargs, path", POINTWISE_CASES)
def test_pointwise_matches_torch(monkeypatch, rng, x_shape, K, kwargs, path, bias, products_bytes):
    """1x1 layers at stride 1 with no padding and one group take the pointwise path (Conv2d.POINTWISE_CPU) on
    images of at least BY_IMAGE_MIN_PIXELS pixels or a batch of one, the others not: values and every gradient
    against torch, in float32 on every device and in float64 against central differences, with new arrays
    poisoned (nothing left unwritten); backward-filter's products in one stack, and an image a stack."""
    from helpers import poisoned_new_arrays

    if products_bytes is not None:
        monkeypatch.setattr(Conv2d, "POINTWISE_PRODUCTS_BYTES", products_bytes)
    C = x_shape[-3]
    arrays = [rng.standard_normal(x_shape), rng.standard_normal((K, C // kwargs.get("groups", 1), 1, 1))]
    if bias:
        arrays.append(rng.standard_normal(K))
    with poisoned_new_arrays():
        check_op(_conv_taking(monkeypatch, "pointwise", path, **kwargs), lambda *t: F.conv2d(*t, **kwargs),
                 *arrays, atol=ATOL)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pointwise_on_and_off_agree_on_any_layout(monkeypatch, rng, dtype):
    """The pointwise path and the columns (POINTWISE_CPU off) give the same values and gradients, in the
    input's dtype, on an input that is a transposed view (its planes not contiguous) and with new arrays
    poisoned (nothing left unwritten)."""
    from helpers import poisoned_new_arrays

    arrays = [rng.standard_normal(shape).astype(dtype) for shape in ((3, 4, 9, 8), (6, 4, 1, 1), (6,))]
    upstream = rng.standard_normal((3, 6, 8, 9)).astype(dtype)
    results = []
    for on in (True, False):
        with pytest.MonkeyPatch.context() as patch, poisoned_new_arrays():
            patch.setattr(Conv2d, "POINTWISE_CPU", on)
            tensors = [gpucnn.tensor(a, requires_grad=True) for a in arrays]
            y = _conv_taking(patch, "pointwise", on)(tensors[0].transpose(2, 3), *tensors[1:])
            y.backward(upstream)
            results.append([y.numpy()] + [t.grad.numpy() for t in tensors])
    for ours, theirs in zip(*results):
        assert ours.dtype == dtype
        assert_close(ours, theirs, atol=ATOL if dtype == np.float32 else 1e-12)


# ---------------------------------------------------------------------------- depthwise, cpu
def depthwise_everywhere(patch, block_bytes=None):
    """The cpu takes the depthwise path (Conv2d.DEPTHWISE_CPU) at any stride, in blocks of about
    ``block_bytes`` of padded input, and of the forward's columns, where given (1: a block a plane)."""
    patch.setattr(Conv2d, "DEPTHWISE_CPU_MAX_STRIDE", 1 << 30)
    if block_bytes is not None:
        patch.setattr(Conv2d, "DEPTHWISE_BLOCK_BYTES", block_bytes)
        patch.setattr(Conv2d, "DEPTHWISE_COLUMNS_BYTES", block_bytes)


DEPTHWISE_CASES = [  # (x shape, kernel (R, S), conv2d's keyword arguments)
    ((2, 3, 9, 7), (3, 3), dict(padding=1)),
    ((3, 4, 10, 11), (3, 3), dict(stride=2, padding=1)),
    ((2, 5, 11, 10), (3, 3), dict(stride=3, padding=1)),
    ((2, 3, 9, 10), (3, 3), dict(padding=2, dilation=2)),
    ((1, 2, 8, 9), (3, 2), dict(stride=(2, 1), padding=(2, 0), dilation=(1, 3))),
    ((2, 3, 7, 8), (5, 5), dict(padding="same")),
    ((2, 4, 9, 8), (4, 3), dict(stride=2, padding="same")),  # asymmetric pads, the odd one at the bottom/right
    ((3, 2, 5, 6), (1, 1), dict()),
    ((2, 3, 6, 7), (1, 1), dict(stride=2)),
    ((1, 1, 5, 5), (3, 3), dict(padding=2)),  # one channel; windows partly outside on every side
    ((4, 1, 4, 3), (5, 5), dict(padding=2)),  # a kernel larger than the input: every window partly outside
    ((3, 6, 4), (3, 3), dict(padding=1)),  # unbatched
    ((2, 3, 6, 5), (2, 4), dict(stride=(1, 2), padding=(0, 3))),
]


@pytest.mark.parametrize("block_bytes", [None, 1])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape, kernel, kwargs", DEPTHWISE_CASES)
def test_depthwise_matches_torch(monkeypatch, rng, x_shape, kernel, kwargs, bias, block_bytes):
    """Values and every gradient against torch, in float32 on every device and in float64 against central
    differences; in one block and in blocks of a plane each."""
    depthwise_everywhere(monkeypatch, block_bytes)
    C = x_shape[-3]
    arrays = [rng.standard_normal(x_shape), rng.standard_normal((C, 1) + kernel)]
    if bias:
        arrays.append(rng.standard_normal(C))
    padding = kwargs.get("padding", 0)
    reference = torch_conv(padding, x_shape[-2:], kernel, kwargs.get("stride", 1), kwargs.get("dilation", 1))
    check_op(_conv_taking(monkeypatch, "depthwise", True, groups=C, **kwargs),
             lambda x, w, b=None: reference(x, w, b, C), *arrays, atol=ATOL)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, kernel, kwargs", [DEPTHWISE_CASES[i] for i in (0, 1, 3, 6, 9, 11)])
def test_depthwise_on_and_off_agree(monkeypatch, rng, x_shape, kernel, kwargs, dtype):
    """The depthwise path and the columns (DEPTHWISE_CPU off) give the same values and gradients, in the
    input's dtype."""
    C = x_shape[-3]
    arrays = [rng.standard_normal(shape).astype(dtype) for shape in (x_shape, (C, 1) + kernel, (C,))]
    upstream = None
    results = []
    for on in (True, False):
        with pytest.MonkeyPatch.context() as patch:
            depthwise_everywhere(patch, 1 << 10)
            patch.setattr(Conv2d, "DEPTHWISE_CPU", on)
            tensors = [gpucnn.tensor(a, requires_grad=True) for a in arrays]
            y = _conv_taking(patch, "depthwise", on, groups=C, **kwargs)(*tensors)
            upstream = rng.standard_normal(y.shape).astype(dtype) if upstream is None else upstream
            y.backward(upstream)
            results.append([y.numpy()] + [t.grad.numpy() for t in tensors])
    for ours, theirs in zip(*results):
        assert ours.dtype == dtype
        assert_close(ours, theirs, atol=ATOL if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("where", ["input", "weight", "upstream"])
def test_depthwise_non_finite_values(monkeypatch, rng, stride, where):
    """An inf or NaN in the input (whose backward-filter then takes rows of Q), the weight (backward-data
    likewise) or the upstream gradient spreads where torch's does, and nowhere else."""
    depthwise_everywhere(monkeypatch)
    x, w, b = rng.standard_normal((2, 3, 8, 9)), rng.standard_normal((3, 1, 3, 3)), rng.standard_normal(3)
    upstream = rng.standard_normal((2, 3, 8 // stride, -(-9 // stride)))
    if where == "input":
        x[0, 1, 3, 4], x[1, 2, 0, 8] = np.inf, np.nan
    elif where == "weight":
        w[1, 0, 0, 2], w[2, 0, 1, 1] = np.inf, np.nan
    else:
        upstream[0, 0, 1, 1] = np.inf
    tensors = [gpucnn.tensor(a, requires_grad=True) for a in (x, w, b)]
    references = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    with np.errstate(invalid="ignore", over="ignore"):
        y = _conv_taking(monkeypatch, "depthwise", True, groups=3, stride=stride, padding="same")(*tensors)
        y.backward(upstream)
    expected = torch_conv("same", (8, 9), (3, 3), stride, 1)(*references, groups=3)
    expected.backward(torch.from_numpy(upstream))
    for ours, reference in zip([y] + [t.grad for t in tensors], [expected.detach()] + [r.grad for r in references]):
        assert_close(ours, reference, atol=1e-10)


@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_transposed_convolution(monkeypatch, rng, stride):
    """conv_transpose2d with groups == C_in == C_out runs conv2d's depthwise backward-data as its forward,
    its forward as backward-data and its backward-filter."""
    from gpucnn.nn.functional import conv_transpose2d

    depthwise_everywhere(monkeypatch, 1)
    taken, original = [], Conv2d._depthwise_blocks

    def spy(self, work, *block_bytes):
        taken.append(True)
        return original(self, work, *block_bytes)

    monkeypatch.setattr(Conv2d, "_depthwise_blocks", spy)
    x, w, b = rng.standard_normal((2, 3, 5, 6)), rng.standard_normal((3, 1, 3, 3)), rng.standard_normal(3)
    kwargs = dict(stride=stride, padding=1, output_padding=stride - 1, groups=3)
    check_op(lambda *t: conv_transpose2d(*t, **kwargs), lambda *t: F.conv_transpose2d(*t, **kwargs), x, w, b, atol=ATOL)
    assert taken


@pytest.mark.parametrize("x_shape, w_shape, kwargs, takes", [
    ((1, 144, 56, 56), (144, 1, 3, 3), dict(padding=1, groups=144), True),  # MobileNetV2's
    ((8, 32, 112, 112), (32, 1, 3, 3), dict(padding=1, groups=32), True),
    ((1, 4, 9, 9), (4, 1, 5, 3), dict(padding=(2, 1), dilation=(2, 1), groups=4), True),
    ((1, 1, 7, 7), (1, 1, 3, 3), dict(), True),  # one channel
    ((1, 144, 56, 56), (144, 1, 3, 3), dict(stride=2, padding=1, groups=144), False),  # stride 2: the columns
    ((1, 144, 56, 56), (144, 1, 3, 3), dict(stride=(1, 2), padding=1, groups=144), False),
    ((1, 144, 56, 56), (288, 1, 3, 3), dict(padding=1, groups=144), False),  # channel multiplier 2
    ((1, 144, 56, 56), (72, 2, 3, 3), dict(padding=1, groups=72), False),
    ((1, 4, 9, 9), (4, 4, 3, 3), dict(padding=1), False),
])
def test_depthwise_rule(monkeypatch, x_shape, w_shape, kwargs, takes):
    x, w = np.zeros(x_shape, np.float32), np.zeros(w_shape, np.float32)
    assert conv2d(x, w, **kwargs).shape[:2] == (x_shape[0], w_shape[0])  # the arguments are valid
    function = Conv2d(_shapes.pair(kwargs.get("stride", 1), "", "", 1), (0, 0, 0, 0), (1, 1), kwargs.get("groups", 1))
    assert function._depthwise_shape(x_shape, w_shape) == takes
