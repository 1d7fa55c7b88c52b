"""Every CUDA kernel, run by the cudasim device through the public functional ops, against the cpu.

Each case runs an op forward and backward (a random upstream gradient) on the cpu device (NumPy)
and on cudasim (the kernels of cuda/*.cu compiled for the CPU), and compares the outputs and every
input gradient: atol 1e-5 + rtol 1e-4 (conv sums in another order), exact where the kernel does
the same float operations in the same order (max-pool outputs and indices, ReLU, average pooling).
Every case runs under the thread orders forward, reverse and random (two seeds): a kernel whose
result depends on the order its threads run in (a missing __syncthreads, a race) fails one of them;
cudasim also poisons shared memory with NaN at every block start, and this module new arrays
(``helpers.poisoned_new_arrays``), so that an output a kernel leaves partly unwritten fails. Shapes
are awkward and small.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_close, poisoned_new_arrays
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import gpucnn
from gpucnn.devices import cudasim
from gpucnn.nn import functional as F
from gpucnn.ops import _kernels as kernels_module
from gpucnn.ops import conv2d as conv2d_module

pytestmark = pytest.mark.skipif(not cudasim.available(), reason="cudasim needs g++ (apt-get install g++)")


@pytest.fixture(autouse=True, scope="module")
def new_arrays_poisoned():
    with poisoned_new_arrays():
        yield


ORDERS = [("forward", None), ("reverse", None), ("random", 1), ("random", 2)]
order_ids = ["forward", "reverse", "random1", "random2"]


def run(device: str, fn, arrays, order=("forward", None), magnitudes=False):
    """fn's output and the gradients of its float inputs on ``device`` for a fixed random upstream gradient;
    with ``magnitudes``, of the arrays' and the upstream gradient's absolute values: each result is then
    the sum of the magnitudes of the terms that the same result sums otherwise."""
    if magnitudes:
        arrays = [np.abs(a) for a in arrays]
    tensors = [gpucnn.tensor(a, device=device, requires_grad=True) for a in arrays]
    with cudasim.thread_order(*order):
        out = fn(*tensors)
        upstream = np.random.default_rng(7).standard_normal(out.shape).astype(np.float32)
        out.backward(np.abs(upstream) if magnitudes else upstream)
    return [out.numpy()] + [t.grad.numpy() for t in tensors]


def compare(fn, arrays, order, exact=(), names=("output", "dx", "dw", "db"), of_largest=None):
    """cudasim against cpu; the results named in ``exact`` must agree bit for bit (NaNs in place).
    ``of_largest``: every difference within that fraction of the largest sum of the magnitudes of a
    result's terms, instead of the elementwise tolerance (Winograd's error scales with the terms it sums,
    not with each sum, which cancellation can leave far smaller)."""
    expected = run("cpu", fn, arrays)
    actual = run("cudasim", fn, arrays, order)
    scales = run("cpu", fn, arrays, magnitudes=True) if of_largest is not None else expected
    for name, ours, reference, scale in zip(names, actual, expected, scales):
        assert ours.dtype == np.float32, f"{name}: dtype {ours.dtype}"
        label = f"{name} under thread order {order}"
        if name in exact:
            np.testing.assert_array_equal(ours, reference, err_msg=label)
        elif of_largest is not None:
            assert_close(ours, reference, atol=of_largest * scale.max(), rtol=0, name=label)
        else:
            assert_close(ours, reference, atol=1e-5, rtol=1e-4, name=label)


# ----------------------------------------------------------------------------------------------- conv2d
CONV_CASES = {
    # batch 1, odd sizes, not multiples of the 64-wide tiles or the 16-deep reduction step
    "batch1_pad1": ((1, 3, 7, 9), (5, 3, 3, 3), dict(padding=1), True),
    "stride_above_kernel": ((2, 2, 11, 10), (4, 2, 2, 2), dict(stride=3), True),
    # 'same' with stride 2: pads (top, bottom, left, right) = (0, 1, 1, 1)
    "same_stride2_asymmetric": ((2, 3, 8, 7), (4, 3, 3, 3), dict(stride=2, padding="same"), True),
    "groups_dilation": ((2, 4, 6, 7), (6, 2, 3, 2), dict(groups=2, dilation=(2, 1), padding=(1, 2)), False),
    "depthwise": ((2, 5, 9, 8), (5, 1, 3, 3), dict(groups=5, stride=2, padding=1), True),
    # K and C above one 64-row tile; 1x1 kernel
    "wide_channels": ((1, 70, 4, 5), (66, 70, 1, 1), dict(), True),
    # more than 128 output channels, a reduction not a multiple of 16 and 1.5 tiles of 128 pixels
    "two_wide_tiles": ((2, 10, 9, 11), (136, 10, 3, 3), dict(padding=1), True),
    # N*P*Q = 468 positions: backward-filter runs in 2 splits and the reduce kernel
    "filter_splits": ((3, 2, 13, 12), (3, 2, 3, 3), dict(padding=1), True),
    "rectangular_kernel_stride": ((2, 3, 9, 6), (4, 3, 2, 3), dict(stride=(2, 1), padding=(0, 1)), False),
    # 3x3 at stride 1 (the winograd path's): no padding, odd P x Q = 6 x 5, so the last 2x2 tiles are cut
    "valid_odd_output": ((2, 5, 8, 7), (6, 5, 3, 3), dict(), True),
    # padding 2, wider than the kernel's reach, and 'same' whose output width is odd
    "pad2": ((2, 4, 5, 6), (3, 4, 3, 3), dict(padding=2), False),
    "same_odd": ((1, 3, 4, 7), (2, 3, 3, 3), dict(padding="same"), True),
    # backward-data by stride phases: stride 3 with padding 1 (the phases' first rows shift), a phase
    # of a 1x1 kernel that no tap reads (zeros), 12 channels (the tiled kernel on the default path),
    # a stride on one axis and a dilation on the other, and both on one axis (the exact gather)
    "stride3_pad1": ((2, 3, 11, 10), (4, 3, 3, 3), dict(stride=3, padding=(1, 2)), True),
    "stride2_1x1": ((2, 10, 7, 8), (6, 10, 1, 1), dict(stride=2), False),
    "stride2_12_channels": ((2, 12, 9, 8), (10, 12, 3, 3), dict(stride=2, padding=1), True),
    "stride_and_dilation_apart": ((2, 3, 9, 10), (4, 3, 3, 3), dict(stride=(2, 1), dilation=(1, 2), padding=(1, 2)),
                                  True),
    "stride_and_dilation_together": ((1, 10, 11, 9), (3, 10, 3, 2), dict(stride=2, dilation=2, padding=2), False),
    # the "taps" kernels (Conv2d.TAP_STEP_CHANNELS divides the channels reduced over): forward and
    # backward-data both, one of them only, with groups, stride phases and a dilation, and a 1x1 kernel
    "taps_both": ((2, 16, 7, 6), (32, 16, 3, 3), dict(padding=1), True),
    "taps_forward_only": ((2, 16, 6, 5), (10, 16, 3, 2), dict(padding=(1, 0)), True),
    "taps_backward_only": ((2, 10, 6, 5), (16, 10, 3, 3), dict(padding=(0, 1)), False),
    "taps_groups_phases": ((2, 32, 9, 8), (32, 16, 3, 3), dict(groups=2, stride=(2, 1), dilation=(1, 2),
                                                             padding=(1, 2)), True),
    "taps_1x1_stride2": ((2, 32, 7, 8), (16, 32, 1, 1), dict(stride=2), False),
}
WINOGRAD_CASES = ("batch1_pad1", "two_wide_tiles", "filter_splits", "valid_odd_output", "pad2", "same_odd")
# Winograd's error scales with the terms its transforms sum, not with each result: bounds as a fraction
# of the result's largest magnitude. Measured on CONV_CASES: within 9e-7 for F(2x2, 3x3) (about twice
# the direct kernels' error) and 4e-6 for F(4x4, 3x3), whose coefficients reach 8 and 1/24.
WINOGRAD_OF_LARGEST = {"winograd2": 4e-6, "winograd4": 3e-5}


@pytest.mark.parametrize("order", ORDERS, ids=order_ids)
@pytest.mark.parametrize("path", conv2d_module.KERNEL_PATHS)
@pytest.mark.parametrize("case", CONV_CASES.values(), ids=CONV_CASES.keys())
def test_conv2d(case, path, order):
    x_shape, w_shape, kwargs, with_bias = case
    rng = np.random.default_rng(0)
    # weights of a trained layer's scale (1 / sqrt(fan-in)): the sums stay near 1 at any channel count
    weight = rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:]))
    arrays = [rng.standard_normal(x_shape).astype(np.float32), weight.astype(np.float32)]
    if with_bias:
        arrays.append(rng.standard_normal(w_shape[0]).astype(np.float32))
    with conv2d_module.kernel_path(path):
        compare(lambda *t: F.conv2d(*t, **kwargs), arrays, order, of_largest=WINOGRAD_OF_LARGEST.get(path))


@pytest.mark.parametrize("path", WINOGRAD_OF_LARGEST)
@pytest.mark.parametrize("case", WINOGRAD_CASES)
def test_conv2d_winograd_paths_run_winograd_where_it_applies(case, path):
    x_shape, w_shape, kwargs, _ = CONV_CASES[case]
    x = gpucnn.tensor(np.ones(x_shape, np.float32), device="cudasim")
    w = gpucnn.tensor(np.ones(w_shape, np.float32), device="cudasim", requires_grad=True)
    with conv2d_module.kernel_path(path):
        assert F.conv2d(x, w, **kwargs)._creator.winograd[0] == int(path[-1])
    assert F.conv2d(x, w, **kwargs)._creator.winograd is None  # the launcher's choice: too small for it


def test_conv2d_takes_winograd_where_the_launcher_rule_says(monkeypatch):
    """The launcher's own choice runs F(4x4, 3x3) on a layer that passes Conv2d's size rule (here
    lowered to this layer's size) and the direct kernels just below it, with the same results."""
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal((2, 16, 9, 7)).astype(np.float32),
              (rng.standard_normal((16, 16, 3, 3)) / 12).astype(np.float32)]
    macs = 9 * 16 * 16 * 2 * 9 * 7  # padding 1: P x Q = 9 x 7
    for threshold, takes in ((macs, True), (macs + 1, False)):
        monkeypatch.setattr(conv2d_module.Conv2d, "WINOGRAD_GPU_MIN_MACS", threshold)

        def conv(*tensors):
            y = F.conv2d(*tensors, padding=1)
            assert (y._creator.winograd is not None) == (takes and tensors[0].device == "cudasim")
            return y

        compare(conv, arrays, ("forward", None), of_largest=WINOGRAD_OF_LARGEST["winograd4"])


@pytest.mark.parametrize("path", WINOGRAD_OF_LARGEST)
@settings(max_examples=30, deadline=None)
@given(N=st.integers(1, 3), C=st.integers(1, 4), K=st.integers(1, 4), H=st.integers(1, 11), W=st.integers(1, 11),
       pads=st.tuples(*[st.integers(0, 3)] * 4), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_conv2d_winograd_paths_on_random_shapes(path, N, C, K, H, W, pads, bias, seed):
    """Any input size and (asymmetric) padding that leaves an output: tiles cut at both edges, patches
    mostly padding, 1x1 outputs."""
    top, bottom, left, right = pads
    assume(H + top + bottom >= 3 and W + left + right >= 3)
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((N, C, H, W)).astype(np.float32),
              (rng.standard_normal((K, C, 3, 3)) / np.sqrt(9 * C)).astype(np.float32)]
    if bias:
        arrays.append(rng.standard_normal(K).astype(np.float32))

    def conv(*tensors):
        function = conv2d_module.Conv2d((1, 1), pads, (1, 1), 1)
        y = function.apply(*tensors)
        assert function.winograd is not None or tensors[0].device == "cpu"
        return y

    with conv2d_module.kernel_path(path):
        compare(conv, arrays, ("random", seed), of_largest=WINOGRAD_OF_LARGEST[path])


@pytest.mark.parametrize("path", WINOGRAD_OF_LARGEST)
@pytest.mark.parametrize("value", [np.inf, np.nan], ids=["inf", "nan"])
@pytest.mark.parametrize("at", [(1, 2, 1, 2), (1, 2, 0, 0)], ids=["inside", "corner"])
@pytest.mark.parametrize("where", ["input", "weight", "upstream"])
def test_conv2d_winograd_paths_sum_their_nan_results_again_directly(where, at, value, path):
    """An inf or NaN in the input, the weight or the upstream gradient spreads through Winograd's transforms
    to results whose direct sums do not read it, and inf - inf turns infinite ones into NaN: the transforms sum
    their NaN results again directly, so every output and gradient is the cpu's, NaN and inf where it has them.
    At a corner, the forward and the weight's gradient multiply the padding's zeros (inf * 0: NaN), as the
    cpu does, and the input's gradient adds nothing for the taps that read no output."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 6, 7)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    upstream = rng.standard_normal((2, 4, 6, 7)).astype(np.float32)
    {"input": x, "weight": w, "upstream": upstream}[where][at] = value
    results = []
    for device in ("cpu", "cudasim"):
        tensors = [gpucnn.tensor(a, device=device, requires_grad=True) for a in (x, w)]
        with conv2d_module.kernel_path(path), np.errstate(invalid="ignore"):
            y = F.conv2d(*tensors, padding=1)
            assert y._creator.winograd is not None or device == "cpu"
            y.backward(upstream)
        results.append([y.numpy()] + [t.grad.numpy() for t in tensors])
    for name, ours, reference in zip(("output", "dx", "dw"), *results):
        assert_close(ours, reference, atol=1e-5, rtol=1e-4, name=name)
    assert not all(np.isfinite(result).all() for result in results[0])


def random_layer(N, groups, C, K, H, W, kernel, stride, dilation, pads, seed) -> tuple:
    """(conv, [x, weight]): conv2d of these sizes (C and K a group) as a function of its input and weight,
    and random ones, the weight at a trained layer's scale; hypothesis assumes the kernel fits the padded
    input."""
    (R, S), (top, bottom, left, right) = kernel, pads
    assume(dilation[0] * (R - 1) < H + top + bottom and dilation[1] * (S - 1) < W + left + right)
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((N, groups * C, H, W)).astype(np.float32),
              (rng.standard_normal((groups * K, C, R, S)) / np.sqrt(C * R * S)).astype(np.float32)]

    def conv(x, w):
        return conv2d_module.Conv2d(stride, pads, dilation, groups).apply(x, w)

    return conv, arrays


@pytest.mark.parametrize("path", ["tile64", "tile128"])
@settings(max_examples=100, deadline=None)
@given(N=st.integers(1, 2), groups=st.integers(1, 2), C=st.sampled_from([1, 2, 3, 16]),
       K=st.sampled_from([1, 2, 3, 16]), H=st.integers(1, 9), W=st.integers(1, 9),
       kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 3)), dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       pads=st.tuples(*[st.integers(0, 3)] * 4), split=st.booleans(), multiprocessors=st.sampled_from([None, 1, 3, 7]),
       seed=st.integers(0, 2**16))
def test_conv2d_tiled_kernels_on_random_geometry(path, N, groups, C, K, H, W, kernel, stride, dilation, pads, split,
                                                 multiprocessors, seed):
    """One tile everywhere (the gather off) on random kernels, strides, dilations, groups and
    asymmetric pads: backward-data's stride phases with phases of no tap, of one row, of none at all;
    16 channels per group take the "taps" kernels (Conv2d.TAP_STEP_CHANNELS); ``split``: every
    reduction in chunks of 16 (Conv2d.SPLIT_MIN_CHUNK), which the 128 tile's backward-filter starts
    at positions within an image and steps through 8 at a time, past image ends, in the splits that
    fill the waves of a GPU of ``multiprocessors`` (Conv2d.FILL_WAVES)."""
    conv, arrays = random_layer(N, groups, C, K, H, W, kernel, stride, dilation, pads, seed)
    with pytest.MonkeyPatch.context() as patch, conv2d_module.kernel_path(path):
        if split:
            patch.setattr(conv2d_module.Conv2d, "SPLIT_MIN_CHUNK", 16)
        patch.setattr(gpucnn.device("cudasim"), "multiprocessors", multiprocessors)
        compare(conv, arrays, ("random", seed))


@settings(max_examples=60, deadline=None)
@given(N=st.integers(1, 3), groups=st.integers(1, 3), C=st.integers(1, 3), K=st.sampled_from([1, 5, 16, 17, 33]),
       H=st.integers(1, 12), W=st.integers(1, 12), kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 3)), dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       pads=st.tuples(*[st.integers(0, 2)] * 4), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_conv2d_short_forward_reductions_take_the_pixels_kernel(N, groups, C, K, H, W, kernel, stride, dilation, pads,
                                                               bias, seed):
    """A forward of at most Conv2d.PIXELS_FORWARD_MAX_REDUCTION reduction indices a group runs
    conv2d_forward_pixels (a thread a pixel and 16 output channels: here 1 to 3 such chunks, the last
    partial): the cpu's results, and bit for bit the tiles' (the same terms in the same order)."""
    assert C * kernel[0] * kernel[1] <= conv2d_module.Conv2d.PIXELS_FORWARD_MAX_REDUCTION
    check_pixels_forward((N, groups * C, H, W), (groups * K, C) + kernel, stride, pads, dilation, groups, bias, seed)


@settings(max_examples=40, deadline=None)
@given(N=st.integers(1, 2), groups=st.integers(1, 2), C=st.integers(2, 10), K=st.sampled_from([1, 7, 16, 20, 32]),
       H=st.integers(1, 10), W=st.integers(1, 10), kernel=st.tuples(st.integers(1, 5), st.integers(1, 5)),
       stride=st.tuples(st.integers(1, 2), st.integers(1, 2)), dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       pads=st.tuples(*[st.integers(0, 2)] * 4), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_conv2d_narrow_forwards_take_the_pixels_kernel_up_to_its_longest_reduction(N, groups, C, K, H, W, kernel,
                                                                                   stride, dilation, pads, bias, seed):
    """A forward of 28 to _conv2d_gpu.PIXELS_MAX_REDUCTION (160) reduction indices and at most
    Conv2d.PIXELS_NARROW_CHANNELS output channels a group runs conv2d_forward_pixels: the cpu's
    results, and bit for bit the tiles' where they sum the reduction in one chunk (Conv2d.SPLIT_MIN_CHUNK)."""
    reduction = C * kernel[0] * kernel[1]
    assume(conv2d_module.Conv2d.PIXELS_FORWARD_MAX_REDUCTION < reduction <= conv2d_module.PIXELS_MAX_REDUCTION)
    assert K <= conv2d_module.Conv2d.PIXELS_NARROW_CHANNELS
    check_pixels_forward((N, groups * C, H, W), (groups * K, C) + kernel, stride, pads, dilation, groups, bias, seed)


def check_pixels_forward(x_shape, w_shape, stride, pads, dilation, groups, bias, seed) -> None:
    """conv2d's forward of random data of these shapes on cudasim (hypothesis assumes its kernel fits the
    padded input): on the launcher's choice, conv2d_forward_pixels, as the cpu's results, and bit for bit
    the tiles' (kernel path pixels_off) where they sum the reduction in one chunk, in the same order."""
    (R, S), (top, bottom, left, right) = w_shape[2:], pads
    assume(dilation[0] * (R - 1) < x_shape[2] + top + bottom and dilation[1] * (S - 1) < x_shape[3] + left + right)
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(x_shape).astype(np.float32),
              (rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:]))).astype(np.float32)]
    if bias:
        arrays.append(rng.standard_normal(w_shape[0]).astype(np.float32))
    outputs = []
    for path in ("chosen", "pixels_off"):
        with pytest.MonkeyPatch.context() as patch, conv2d_module.kernel_path(path):
            launches = launched_kernels(patch)
            outputs.append(conv2d_module.Conv2d(stride, pads, dilation, groups).apply(
                *[gpucnn.tensor(a, device="cudasim") for a in arrays]).numpy())
        assert (launches[0][0] == "conv2d_forward_pixels") == (path == "chosen"), launches
    if np.prod(w_shape[1:]) <= conv2d_module.Conv2d.SPLIT_MIN_CHUNK:
        np.testing.assert_array_equal(outputs[0], outputs[1])
    expected = conv2d_module.Conv2d(stride, pads, dilation, groups).apply(*[gpucnn.tensor(a) for a in arrays])
    assert_close(outputs[0], expected.numpy(), atol=1e-5, rtol=1e-4, name="output")


@settings(max_examples=40, deadline=None)
@given(N=st.integers(1, 2), groups=st.integers(1, 2), C=st.sampled_from([9, 12, 16, 20, 32]),
       K=st.sampled_from([1, 3, 5, 16, 17]), H=st.integers(1, 10), W=st.integers(1, 10),
       kernel=st.tuples(st.integers(1, 5), st.integers(1, 5)), dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       pads=st.tuples(*[st.integers(0, 4)] * 4), seed=st.integers(0, 2**16))
def test_conv2d_narrow_backward_data_takes_the_pixels_kernel(N, groups, C, K, H, W, kernel, dilation, pads, seed):
    """Backward-data of a stride-1 layer of GATHER_MAX_CHANNELS to Conv2d.PIXELS_NARROW_CHANNELS input
    channels a group and at most _conv2d_gpu.PIXELS_MAX_REDUCTION reduction indices (K/G * R * S) runs
    conv2d_forward_pixels on the upstream gradient with the weight flipped, padded by dilation * (R - 1)
    minus the layer's padding (below 0 where that padding is wider): the cpu's gradients, and the tiles'."""
    assume(K * kernel[0] * kernel[1] <= conv2d_module.PIXELS_MAX_REDUCTION)
    conv, arrays = random_layer(N, groups, C, K, H, W, kernel, (1, 1), dilation, pads, seed)
    input_grads = []
    for path in ("chosen", "pixels_off"):
        with pytest.MonkeyPatch.context() as patch, conv2d_module.kernel_path(path):
            launches = launched_kernels(patch)
            input_grads.append(run("cudasim", conv, arrays)[1])
        assert ("conv2d_forward_pixels" in [name for name, _ in launches[1:]]) == (path == "chosen"), launches
    expected = run("cpu", conv, arrays)[1]
    for name, grad in zip(("pixels", "tiles"), input_grads):
        assert_close(grad, expected, atol=1e-5, rtol=1e-4, name=f"dx on the {name}")


@settings(max_examples=40, deadline=None)
@given(N=st.integers(1, 3), groups=st.integers(1, 2), C=st.integers(1, 40), K=st.sampled_from([1, 5, 16, 17, 32]),
       H=st.integers(1, 12), W=st.integers(1, 12), kernel=st.tuples(st.integers(1, 5), st.integers(1, 5)),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 3)), dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       pads=st.tuples(*[st.integers(0, 3)] * 4), chunk=st.sampled_from([16, 80, 4096]), seed=st.integers(0, 2**16))
def test_conv2d_narrow_backward_filter_takes_the_pixels_kernel(N, groups, C, K, H, W, kernel, stride, dilation, pads,
                                                               chunk, seed):
    """Backward-filter of at most Conv2d.PIXELS_NARROW_CHANNELS output channels a group runs
    conv2d_backward_filter_pixels: up to 1,000 columns (C/G * R * S) spread over blocks of at most 256, in
    lanes where a block holds 128 or fewer; 16 output channels a thread (two such chunks for 17 and 32);
    positions staged 64 at a time, in splits of 16 or 80 positions (conv2d_sum_splits adds them) or one:
    the cpu's weight gradient, and the tiles' (kernel path pixels_off)."""
    conv, arrays = random_layer(N, groups, C, K, H, W, kernel, stride, dilation, pads, seed)
    weight_grads = []
    for path in ("chosen", "pixels_off"):
        with pytest.MonkeyPatch.context() as patch, conv2d_module.kernel_path(path):
            patch.setattr(conv2d_module.Conv2d, "SPLIT_MIN_CHUNK", chunk)
            launches = launched_kernels(patch)
            weight_grads.append(run("cudasim", conv, arrays)[2])
        names = [name for name, _ in launches]
        assert ("conv2d_backward_filter_pixels" in names) == (path == "chosen"), launches
    expected = run("cpu", conv, arrays)[2]
    for name, grad in zip(("pixels", "tiles"), weight_grads):
        assert_close(grad, expected, atol=1e-5, rtol=1e-4, name=f"dw on the {name}")


@pytest.mark.parametrize("order", ORDERS, ids=order_ids)
def test_conv2d_narrow_backward_filter_with_non_finite_values(order):
    """inf and NaN in the input and the upstream gradient: conv2d_backward_filter_pixels multiplies dy by the
    padding's zeros as the cpu does (NaN where an inf dy meets one): 75 columns in 3 lanes, 216 positions in 14
    splits, which conv2d_sum_splits adds in 2 lanes."""
    rng = np.random.default_rng(10)
    x = rng.standard_normal((3, 3, 9, 8)).astype(np.float32)
    w = rng.standard_normal((10, 3, 5, 5)).astype(np.float32)
    x[0, 1, 2, 3], x[2, 0, 8, 7] = np.inf, np.nan
    dy = rng.standard_normal((3, 10, 9, 8)).astype(np.float32)
    dy[1, 4, 0, 0], dy[2, 9, 4, 4] = -np.inf, np.nan
    results = {}
    for device in ("cpu", "cudasim"):
        with pytest.MonkeyPatch.context() as patch, np.errstate(invalid="ignore"), cudasim.thread_order(*order):
            patch.setattr(conv2d_module.Conv2d, "SPLIT_MIN_CHUNK", 16)
            launches = launched_kernels(patch)
            weight = gpucnn.tensor(w, device=device, requires_grad=True)
            F.conv2d(gpucnn.tensor(x, device=device), weight, padding=2).backward(dy)
            results[device] = weight.grad.numpy()
    assert launches[1:] == [("conv2d_backward_filter_pixels", (1, 1, 14)), ("conv2d_sum_splits", (6,))], launches
    assert np.isnan(results["cpu"]).any() and np.isinf(results["cpu"]).any() and np.isfinite(results["cpu"]).any()
    assert_close(results["cudasim"], results["cpu"], atol=1e-5, rtol=1e-4, name="dw")


@pytest.mark.parametrize("order", ORDERS[:3], ids=order_ids[:3])
@pytest.mark.parametrize("max_blocks", [None, 1], ids=["blocks", "grid_stride"])
@pytest.mark.parametrize("x_shape, w_shape, product, grid", [
    # backward-filter of 108 weights over 4,096 positions in 256 splits: 32 lanes, 8 elements a block
    ((4, 3, 32, 32), (4, 3, 3, 3), "conv2d_backward_filter_pixels", (14,)),
    # a forward of 32 outputs over 576 reduction indices in 36 splits (the bias with the sum): 8 lanes
    ((1, 64, 4, 4), (2, 64, 3, 3), "conv2d_forward_64", (1,)),
    # backward-filter in 9 splits of 16 positions: 2 lanes, the last one adding 4 splits
    ((1, 2, 12, 12), (3, 2, 1, 1), "conv2d_backward_filter_pixels", (1,)),
], ids=["filter32", "forward4", "filter2"])
def test_conv2d_splits_summed_in_lanes(monkeypatch, x_shape, w_shape, product, grid, max_blocks, order):
    """conv2d_sum_splits takes several threads an element where the result is small and its splits many
    (Conv2d.SUM_LANES_THREADS): each lane adds its share of the splits, lane 0 the lanes' sums; with one
    block, it strides over the elements. The cpu's results."""
    monkeypatch.setattr(conv2d_module.Conv2d, "SPLIT_MIN_CHUNK", 16)
    if max_blocks:
        monkeypatch.setattr(kernels_module, "MAX_BLOCKS", max_blocks)
    launches = launched_kernels(monkeypatch)
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal(x_shape).astype(np.float32),
              (rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:]))).astype(np.float32),
              rng.standard_normal(w_shape[0]).astype(np.float32)]
    compare(lambda *t: F.conv2d(*t, padding=1 if w_shape[2] == 3 else 0), arrays, order)
    at = [name for name, _ in launches].index(product)
    assert launches[at + 1] == ("conv2d_sum_splits", grid if max_blocks is None else (1,)), launches


@settings(max_examples=40, deadline=None)
@given(N=st.integers(1, 2), groups=st.integers(1, 2), C=st.integers(12, 40), K=st.sampled_from([1, 5, 16, 17, 32]),
       H=st.integers(1, 9), W=st.integers(1, 9), kernel=st.tuples(st.integers(2, 5), st.integers(3, 5)),
       stride=st.sampled_from([(1, 1), (1, 1), (2, 1)]), dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       pads=st.tuples(*[st.integers(0, 3)] * 4), seed=st.integers(0, 2**16))
def test_conv2d_pixels_split_path_on_long_narrow_reductions(N, groups, C, K, H, W, kernel, stride, dilation, pads,
                                                           seed):
    """The kernel path pixels_split: narrow forwards of more than PIXELS_MAX_REDUCTION indices a group run
    conv2d_forward_pixels in splits of whole input channels, added by conv2d_sum_splits, and so does
    backward-data at stride 1 over the output channels (where the input has 9 to 32 a group): the cpu's
    output and input gradient."""
    taps = kernel[0] * kernel[1]
    assume(C * taps > conv2d_module.PIXELS_MAX_REDUCTION)
    conv, arrays = random_layer(N, groups, C, K, H, W, kernel, stride, dilation, pads, seed)
    with pytest.MonkeyPatch.context() as patch, conv2d_module.kernel_path("pixels_split"):
        launches = launched_kernels(patch)
        results = run("cudasim", conv, arrays)
    splits = -(-C // (conv2d_module.PIXELS_MAX_REDUCTION // taps))
    assert launches[:2] == [("conv2d_forward_pixels", launches[0][1][:2] + (groups * splits,)),
                            ("conv2d_sum_splits", launches[1][1])], launches
    data_on_pixels = stride == (1, 1) and C <= 32  # and more than Conv2d.GATHER_MAX_CHANNELS (8)
    assert ("conv2d_forward_pixels" in [name for name, _ in launches[2:]]) == data_on_pixels, launches
    for name, ours, reference in zip(("output", "dx", "dw"), results, run("cpu", conv, arrays)):
        assert_close(ours, reference, atol=1e-5, rtol=1e-4, name=name)


@pytest.mark.parametrize("order", ORDERS, ids=order_ids)
def test_conv2d_pixels_forward_with_non_finite_values(order):
    """inf and NaN in the input and the weight: NaN where an inf weight meets padding, as on the cpu."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    w = rng.standard_normal((20, 3, 3, 3)).astype(np.float32)
    x[0, 1, 2, 3], x[1, 0, 0, 0], w[3, 2, 0, 1], w[18, 0, 2, 2] = np.inf, np.nan, -np.inf, np.nan
    with pytest.MonkeyPatch.context() as patch, np.errstate(invalid="ignore"):
        launches = launched_kernels(patch)
        compare(lambda *t: F.conv2d(*t, padding=1), [x, w], order)
    assert launches[0][0] == "conv2d_forward_pixels"


@pytest.mark.parametrize("order", ORDERS[:3], ids=order_ids[:3])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", [
    ((2, 3, 9, 8), (20, 3, 5, 5), dict(padding=2)),  # a 5x5 RGB stem: 75 reduction indices
    ((1, 3, 11, 10), (16, 3, 7, 7), dict(stride=2, padding=3)),  # a 7x7 one: 147
    ((2, 20, 6, 5), (6, 10, 4, 4), dict(padding=(1, 2), groups=2)),  # 160 a group, the kernel's longest
])
def test_conv2d_pixels_forward_up_to_its_longest_reduction(monkeypatch, x_shape, w_shape, kwargs, order):
    """The kernel path pixels_wide runs conv2d_forward_pixels on reductions of up to
    _conv2d_gpu.PIXELS_MAX_REDUCTION indices a group, all staged in its shared buffer: the cpu's results."""
    launches = launched_kernels(monkeypatch)
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal(x_shape).astype(np.float32),
              (rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:]))).astype(np.float32),
              rng.standard_normal(w_shape[0]).astype(np.float32)]
    with conv2d_module.kernel_path("pixels_wide"):
        compare(lambda *t: F.conv2d(*t, **kwargs), arrays, order)
    assert launches[0][0] == "conv2d_forward_pixels", launches


@pytest.mark.parametrize("order", ORDERS, ids=order_ids)
def test_conv2d_many_filter_splits(monkeypatch, order):
    # Chunks of 16 positions: 5 splits over N*P*Q = 70, the last one partial.
    monkeypatch.setattr(conv2d_module.Conv2d, "SPLIT_MIN_CHUNK", 16)
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(shape).astype(np.float32) for shape in ((2, 3, 5, 7), (4, 3, 2, 2), (4,))]
    compare(lambda *t: F.conv2d(*t, padding=(0, 1)), arrays, order)


@pytest.mark.parametrize("order", ORDERS[:3], ids=order_ids[:3])
@pytest.mark.parametrize("multiprocessors, splits", [(None, 8), (15, 4)])
def test_conv2d_filter_splits_that_fill_waves(monkeypatch, multiprocessors, splits, order):
    """The 128 tile's backward-filter on 4 tiles over 126 positions, in 8 chunks of 16 (32 blocks): on a
    GPU of 15 multiprocessors, which hold Conv2d.WIDE_FILTER_BLOCKS = 2 such blocks each, two waves,
    the second of 2 blocks, so Conv2d.FILL_WAVES takes 4 chunks of 32 (16 blocks, one wave); the splits
    kernel sums those."""
    monkeypatch.setattr(conv2d_module.Conv2d, "SPLIT_MIN_CHUNK", 16)
    monkeypatch.setattr(conv2d_module.Conv2d, "WIDE_TILE_BLOCKS", 1)
    monkeypatch.setattr(gpucnn.device("cudasim"), "multiprocessors", multiprocessors)
    launches = launched_kernels(monkeypatch)
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal((3, 20, 6, 7)).astype(np.float32),
              (rng.standard_normal((130, 20, 3, 3)) / np.sqrt(180)).astype(np.float32)]
    compare(lambda *t: F.conv2d(*t, padding=1), arrays, order)
    grids = [grid for name, grid in launches if name == "conv2d_backward_filter_128"]
    assert grids == [(2, 2, splits)], launches


def launched_kernels(monkeypatch) -> list:
    """(name, grid) of each conv2d kernel launched from here on, in order."""
    launches = []
    launch = conv2d_module.Conv2d._launch

    def recording(self, name, grid, args, fixed=()):
        launches.append((name, grid))
        launch(self, name, grid, args, fixed)

    monkeypatch.setattr(conv2d_module.Conv2d, "_launch", recording)
    return launches


@pytest.mark.parametrize("order", ORDERS[:3], ids=order_ids[:3])
@pytest.mark.parametrize("path", ["chosen", "tile128"])
@pytest.mark.parametrize("case", CONV_CASES.values(), ids=CONV_CASES.keys())
def test_conv2d_split_reductions(monkeypatch, case, path, order):
    """Every product's reduction in chunks of 16 (Conv2d.SPLIT_MIN_CHUNK), summed by the splits
    kernels: the last chunk partial; stride phases of fewer taps than the largest, whose last chunks
    are empty; the taps kernels' chunks within one tap; the bias added once, after the sum."""
    x_shape, (K, Cg, R, S), kwargs, with_bias = case
    monkeypatch.setattr(conv2d_module.Conv2d, "SPLIT_MIN_CHUNK", 16)
    for name, value in conv2d_module.KERNEL_PATHS["pixels_off"].items():  # short and narrow forwards tiled too
        monkeypatch.setattr(conv2d_module.Conv2d, name, value)
    launches = launched_kernels(monkeypatch)
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal(x_shape).astype(np.float32),
              (rng.standard_normal((K, Cg, R, S)) / np.sqrt(Cg * R * S)).astype(np.float32)]
    if with_bias:
        arrays.append(rng.standard_normal(K).astype(np.float32))
    with conv2d_module.kernel_path(path):
        compare(lambda *t: F.conv2d(*t, **kwargs), arrays, order)
    # These layers make a few tiles: every chunk of 16 is a split of its own.
    groups, (stride_h, stride_w) = kwargs.get("groups", 1), np.broadcast_to(kwargs.get("stride", 1), 2)
    phases, taps = stride_h * stride_w, -(-R // stride_h) * -(-S // stride_w)
    splits = {"conv2d_forward": -(-Cg * R * S // 16), "conv2d_backward_data": -(-K // groups * taps // 16)}
    layers = {"conv2d_forward": groups, "conv2d_backward_data": groups * phases}
    tiled = [(match[1], grid) for name, grid in launches
             if (match := re.fullmatch(r"(conv2d_forward|conv2d_backward_data)(_taps)?_(64|128)", name))]
    assert tiled and all(grid[2] == layers[product] * splits[product] for product, grid in tiled), tiled


@pytest.mark.parametrize("order", ORDERS, ids=order_ids)
@pytest.mark.parametrize("channels, tile", [(2, None), (12, None), (12, 64), (12, 128)],
                         ids=["gather", "pixels", "tile64", "tile128"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("kernels", [3, 16])
@pytest.mark.parametrize("chunk", [16, 4096], ids=["split", "unsplit"])
def test_conv2d_non_finite_weights(monkeypatch, chunk, kernels, stride, channels, tile, order):
    """inf and NaN weights: backward-data's NaNs land where the cpu puts them, and its finite values too
    where a tiled product multiplied an inf by a tap that does not exist. 2 channels take the exact
    gather; 12 at stride 1 the pixels kernel, a forward of the upstream gradient that visits only the
    taps that read an output; 12 at stride 2, or with a tile forced, the tiled kernel alone (the taps one
    with 16 kernels, after the weight's transpose), in chunks of 16 then summed (where the reduction is
    longer), or unsplit: it sums its NaN results again, exactly, with no other launch."""
    monkeypatch.setattr(conv2d_module.Conv2d, "SPLIT_MIN_CHUNK", chunk)
    monkeypatch.setattr(conv2d_module.Conv2d, "FORCE_TILE", tile)
    if tile:  # narrow stride-1 layers on the tiles too
        monkeypatch.setattr(conv2d_module.Conv2d, "PIXELS_NARROW_CHANNELS", 0)
    launches = launched_kernels(monkeypatch)
    rng = np.random.default_rng(2)
    w = rng.standard_normal((kernels, channels, 3, 3)).astype(np.float32)
    # tap (0, 0) reads no output from the last row (stride 1) or, at stride 2, from the last column
    w[0, 1, 0, 0], w[2, 0, 1, 1] = np.inf, np.nan
    x = rng.standard_normal((2, channels, 7, 6)).astype(np.float32)
    with np.errstate(invalid="ignore"):
        compare(lambda x, w: F.conv2d(x, w, stride=stride, padding=1), [x, w], order)
        dx = run("cpu", lambda x, w: F.conv2d(x, w, stride=stride, padding=1), [x, w])[1]
    assert np.isnan(dx).any() and np.isinf(dx).any() and np.isfinite(dx[:, 1]).any()  # all three kinds
    device = gpucnn.device("cudasim")
    x_in = gpucnn.tensor(x, device=device, requires_grad=True)
    y = F.conv2d(x_in, gpucnn.tensor(w, device=device), stride=stride, padding=1)
    launches.clear()
    with np.errstate(invalid="ignore"):
        y.backward(np.ones(y.shape, np.float32))
    names = [name for name, _ in launches]
    if channels == 2:
        assert names == ["conv2d_backward_data_exact"], names
    elif tile is None and stride == 1:
        assert names == ["conv2d_forward_pixels"], names
    else:
        product = f"conv2d_backward_data{'_taps' if kernels == 16 else ''}_{tile or 64}"
        summed = ["conv2d_sum_splits"] * (kernels * (-(-3 // stride)) ** 2 > chunk)  # the largest phase's reduction
        assert names == [product] + summed, names  # (the weight's transpose is no Conv2d._launch)


@pytest.mark.parametrize("order", ORDERS, ids=order_ids)
@pytest.mark.parametrize("w_shape, x_shape, kwargs", [
    ((64, 3, 7, 7), (2, 3, 23, 21), dict(stride=2, padding=3)),  # an RGB stem
    ((8, 1, 3, 3), (2, 4, 9, 8), dict(groups=4, stride=(2, 1), dilation=(2, 2), padding=2)),  # Cg 1; stride, dilation
    ((5, 8, 2, 3), (1, 8, 6, 7), dict(padding=(1, 0))),  # Cg 8, Conv2d.GATHER_MAX_CHANNELS
    # items of 4 channels and a last one of 2, columns in 3 phases of 4 slots for a width of 11 (one slot
    # past it); two groups of 5 channels, items of 4 and 1
    ((4, 6, 3, 3), (2, 6, 7, 11), dict(stride=(1, 3), padding=1)),
    ((6, 5, 2, 3), (1, 10, 6, 9), dict(groups=2, stride=2, padding=1)),
], ids=["stem", "groups", "eight", "six_phases", "groups_of_five"])
def test_conv2d_few_channels_take_the_exact_gather(monkeypatch, w_shape, x_shape, kwargs, order):
    """Groups of at most GATHER_MAX_CHANNELS input channels: backward-data is the exact gather alone,
    with inf and NaN weights too; its items take up to 4 channels of a group at a pixel, a row's
    columns by stride phase."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    w[1, 0, 1, 1], w[-1, -1, 0, 0] = np.inf, np.nan
    launches = launched_kernels(monkeypatch)
    with np.errstate(invalid="ignore"):
        compare(lambda x, w: F.conv2d(x, w, **kwargs), [x, w], order)
    assert [name for name, _ in launches if name.startswith("conv2d_backward_data")] == ["conv2d_backward_data_exact"]


def test_conv2d_empty_batch_launches_nothing():
    x = gpucnn.tensor(np.zeros((0, 3, 5, 5), np.float32), device="cudasim", requires_grad=True)
    w = gpucnn.tensor(np.ones((4, 3, 3, 3), np.float32), device="cudasim", requires_grad=True)
    b = gpucnn.tensor(np.ones(4, np.float32), device="cudasim", requires_grad=True)
    y = F.conv2d(x, w, b, padding=1)
    y.backward(np.zeros(y.shape, np.float32))
    assert y.shape == (0, 4, 5, 5) and x.grad.shape == (0, 3, 5, 5)
    assert not w.grad.numpy().any() and not b.grad.numpy().any()


def test_conv2d_unbatched_and_non_contiguous_input():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((7, 3, 6)).astype(np.float32).transpose(1, 0, 2)  # (3, 7, 6), not contiguous
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    compare(lambda x, w: F.conv2d(x, w, padding=1), [x, w], ("random", 3))


# ------------------------------------------------------------------------------------------- pooling
MAX_POOL_CASES = {
    "ceil_mode_pad": ((1, 2, 7, 9), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    "dilation_rect": ((2, 3, 9, 8), dict(kernel_size=(3, 2), stride=(1, 3), padding=(1, 1), dilation=(2, 1))),
    "stride_above_kernel": ((2, 1, 5, 5), dict(kernel_size=2, stride=3)),
    "clipped_window": ((1, 1, 2, 2), dict(kernel_size=3, stride=3, ceil_mode=True)),
    "kernel1": ((1, 1, 1, 1), dict(kernel_size=1)),
    "overlap_dilated_ceil": ((2, 2, 10, 11), dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True)),
    # 2x2 at stride 2 (maxpool2d_forward_2x2 where the width is even and no window leaves the input,
    # maxpool2d_forward_2x2_pairs where the height is even too and the width divisible by 4)
    "2x2": ((2, 3, 6, 8), dict(kernel_size=2)),
    "2x2_width_6": ((2, 2, 4, 6), dict(kernel_size=2)),
    "2x2_odd_height": ((2, 2, 5, 6), dict(kernel_size=2, stride=2)),
    "2x2_ceil_odd_height": ((1, 2, 7, 10), dict(kernel_size=2, ceil_mode=True)),
    "2x2_odd_width": ((1, 2, 6, 7), dict(kernel_size=2)),
}


def awkward_values(shape, seed):
    """Few distinct values (ties), and NaN, inf and -inf, including a window of -inf only."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=shape).astype(np.float32)
    flat = x.reshape(-1)
    picks = rng.choice(flat.size, size=min(flat.size, 6), replace=False)
    flat[picks[:2]] = np.nan
    flat[picks[2:4]] = np.inf
    flat[picks[4:]] = -np.inf
    if shape[2] >= 2 and shape[3] >= 2:
        x[0, 0, :2, :2] = -np.inf
    return x


@pytest.mark.parametrize("order", ORDERS, ids=order_ids)
@pytest.mark.parametrize("values", ["normal", "awkward"])
@pytest.mark.parametrize("case", MAX_POOL_CASES.values(), ids=MAX_POOL_CASES.keys())
def test_max_pool2d(case, values, order):
    shape, kwargs = case
    x = (np.random.default_rng(4).standard_normal(shape).astype(np.float32) if values == "normal"
         else awkward_values(shape, 5))
    compare(lambda t: F.max_pool2d(t, **kwargs), [x], order, exact=("output",))  # dx: the cpu sums in float64
    expected_output, expected = (t.numpy() for t in F.max_pool2d(gpucnn.tensor(x), return_indices=True, **kwargs))
    with cudasim.thread_order(*order):
        indices = F.max_pool2d(gpucnn.tensor(x, device="cudasim"), return_indices=True, **kwargs)[1].numpy()
        inference = F.max_pool2d(gpucnn.tensor(x, device="cudasim"), **kwargs)  # keeps no indices
    assert indices.dtype == np.int64
    np.testing.assert_array_equal(indices, expected)
    assert inference._creator is None
    np.testing.assert_array_equal(inference.numpy(), expected_output)


@pytest.mark.parametrize("shape, offset, kwargs, kernels", [
    ((2, 3, 6, 8), 0, dict(), ("forward_2x2_pairs", "backward_2x2")),
    ((3, 1, 10, 12), 0, dict(), ("forward_2x2_pairs", "backward_2x2")),  # 3 output pairs a row, 5 rows a plane
    ((2, 3, 6, 8), 2, dict(), ("forward_2x2", "backward_2x2")),  # 8 bytes past a 16-byte boundary: no float4
    ((2, 3, 6, 10), 0, dict(), ("forward_2x2", "backward_2x2")),  # a row of 10 is no whole number of float4
    ((2, 3, 5, 8), 0, dict(), ("forward_2x2", "backward")),  # the last row is in no window: H != 2P
    ((2, 3, 6, 8), 1, dict(), ("forward", "backward_2x2")),  # 4 bytes past an 8-byte boundary: no float2 reads
    ((2, 3, 6, 7), 0, dict(), ("forward", "backward")),
    ((2, 3, 5, 8), 0, dict(ceil_mode=True), ("forward", "backward")),  # the last window leaves the input
    ((2, 3, 6, 8), 0, dict(padding=1), ("forward", "backward")),
])
def test_max_pool2d_2x2_kernels_where_their_vector_accesses_fit(monkeypatch, shape, offset, kwargs, kernels):
    from gpucnn.ops import maxpool2d as maxpool2d_module

    launched = []
    launch = maxpool2d_module.launch_elementwise

    def record(device, file, name, *rest):
        launched.append(name)
        return launch(device, file, name, *rest)

    monkeypatch.setattr(maxpool2d_module, "launch_elementwise", record)
    x = awkward_values(shape, 6)
    flat = gpucnn.tensor(np.concatenate([np.zeros(offset, np.float32), x.reshape(-1)]), device="cudasim",
                         requires_grad=True)
    view = flat[offset:].reshape(shape)  # the input at an offset of `offset` floats into its buffer
    out, indices = F.max_pool2d(view, 2, return_indices=True, **kwargs)
    upstream = np.random.default_rng(7).standard_normal(out.shape).astype(np.float32)
    out.backward(upstream)
    reference = gpucnn.tensor(x, requires_grad=True)
    expected, expected_indices = F.max_pool2d(reference, 2, return_indices=True, **kwargs)
    expected.backward(upstream)
    assert launched == [f"maxpool2d_{kernel}" for kernel in kernels]
    np.testing.assert_array_equal(out.numpy(), expected.numpy())
    np.testing.assert_array_equal(indices.numpy(), expected_indices.numpy())
    np.testing.assert_array_equal(flat.grad.numpy()[offset:].reshape(shape), reference.grad.numpy())


AVG_POOL_CASES = {
    "ceil_mode_pad": ((2, 3, 7, 6), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    "stride_above_kernel": ((1, 2, 5, 5), dict(kernel_size=2, stride=3)),
    "rect": ((2, 1, 6, 9), dict(kernel_size=(3, 1), stride=(1, 2), padding=(1, 0))),
    "clipped_window": ((1, 1, 2, 2), dict(kernel_size=3, stride=3, ceil_mode=True, padding=1)),
    "divisor_override": ((1, 2, 7, 7), dict(kernel_size=3, stride=2, padding=1, divisor_override=5)),
    "negative_divisor": ((1, 2, 5, 6), dict(kernel_size=2, divisor_override=-3)),
}


@pytest.mark.parametrize("order", ORDERS, ids=order_ids)
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("case", AVG_POOL_CASES.values(), ids=AVG_POOL_CASES.keys())
def test_avg_pool2d(case, count_include_pad, order):
    shape, kwargs = case
    x = np.random.default_rng(6).standard_normal(shape).astype(np.float32)
    compare(lambda t: F.avg_pool2d(t, count_include_pad=count_include_pad, **kwargs), [x], order,
            exact=("output", "dx"))


@pytest.mark.parametrize("order", ORDERS, ids=order_ids)
def test_avg_pool2d_nan_and_inf(order):
    x = awkward_values((2, 2, 7, 8), 8)
    with np.errstate(invalid="ignore"):
        compare(lambda t: F.avg_pool2d(t, 3, 2, padding=1, ceil_mode=True, count_include_pad=False), [x], order,
                exact=("output", "dx"))


def test_adaptive_avg_pool2d_runs_on_cudasim():
    x = np.random.default_rng(9).standard_normal((2, 3, 9, 7)).astype(np.float32)
    compare(lambda t: F.adaptive_avg_pool2d(t, (4, 3)), [x], ("forward", None))


@pytest.mark.parametrize("output_size", [1, (2, 3), (4, None)])
def test_adaptive_avg_pool2d_of_whole_windows_runs_the_avg_pool_kernels(output_size):
    """Output sizes that divide the input's take avg_pool2d's kernels, forward and backward."""
    x = np.random.default_rng(10).standard_normal((2, 3, 8, 9)).astype(np.float32)
    compare(lambda t: F.adaptive_avg_pool2d(t, output_size), [x], ("reverse", None))
    y = F.adaptive_avg_pool2d(gpucnn.tensor(x, device="cudasim", requires_grad=True), output_size)
    assert type(y._creator).__name__ == "AvgPool2d"


@pytest.mark.parametrize("op", [
    lambda t: F.max_pool2d(t, 2, return_indices=True)[0],
    lambda t: F.avg_pool2d(t, 3, 1, padding=1),
])
def test_pooling_empty_batch(op):
    x = gpucnn.tensor(np.zeros((0, 2, 5, 5), np.float32), device="cudasim", requires_grad=True)
    y = op(x)
    y.backward(np.zeros(y.shape, np.float32))
    assert y.shape[0] == 0 and x.grad.shape == (0, 2, 5, 5)


# --------------------------------------------------------------------------------------------- ReLU
def relu_values(shape, seed):
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    flat = x.reshape(-1)
    flat[: min(6, flat.size)] = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-45][: min(6, flat.size)]
    return x


RELUS = {
    "relu": lambda t: F.relu(t),
    "leaky_0.2": lambda t: F.leaky_relu(t, 0.2),
    "leaky_-1.5": lambda t: F.leaky_relu(t, -1.5),
}


@pytest.mark.parametrize("order", ORDERS, ids=order_ids)
# (5, 4001): 5 blocks, each thread four quads (the unrolled loop) or three, and a tail of one element
@pytest.mark.parametrize("shape", [(3, 5, 7, 11), (5, 4001), (1,), (6,), ()], ids=str)
@pytest.mark.parametrize("fn", RELUS.values(), ids=RELUS.keys())
def test_relu(fn, shape, order):
    x = relu_values(shape, 10)
    expected, actual = run("cpu", fn, [x]), run("cudasim", fn, [x], order)
    for name, ours, reference in zip(("output", "dx"), actual, expected):
        np.testing.assert_array_equal(ours, reference, err_msg=name)  # the same float operations


@pytest.mark.parametrize("fn", RELUS.values(), ids=RELUS.keys())
def test_relu_grid_stride_loop_and_non_contiguous_input(monkeypatch, fn):
    """Two blocks for 2310 elements: each thread handles several (the grid-stride loop)."""
    monkeypatch.setattr(kernels_module, "MAX_BLOCKS", 2)
    x = relu_values((6, 5, 7, 11), 11).transpose(3, 1, 2, 0)[::2]
    assert not x.flags.c_contiguous
    expected, actual = run("cpu", fn, [x]), run("cudasim", fn, [x], ("random", 4))
    for ours, reference in zip(actual, expected):
        np.testing.assert_array_equal(ours, reference)


@pytest.mark.parametrize("fn", RELUS.values(), ids=RELUS.keys())
def test_relu_quads_and_unaligned_views(fn):
    """Views 0-3 elements past a 16-byte boundary (aligned: float4 quads and a tail of n % 4; else one
    element at a time), of every length mod 4, bit for bit as the cpu."""
    address = gpucnn.device("cudasim").address
    x = relu_values((40,), 12)
    for offset in range(4):
        for n in (13, 14, 15, 16):
            results = []
            for device in ("cpu", "cudasim"):
                t = gpucnn.tensor(x, device=device, requires_grad=True)
                view = t[offset : offset + n]
                if device == "cudasim":
                    assert address(t.data) % 16 == 0 and address(view.data) % 16 == 4 * offset
                y = fn(view)
                y.backward(np.linspace(-2, 2, n, dtype=np.float32))
                results.append((y.numpy(), t.grad.numpy()))
            for ours, reference in zip(*results):
                np.testing.assert_array_equal(ours, reference)


def test_pooling_grid_stride_loop(monkeypatch):
    monkeypatch.setattr(kernels_module, "MAX_BLOCKS", 1)
    x = np.random.default_rng(12).standard_normal((2, 3, 17, 15)).astype(np.float32)  # 1530 inputs, 1 block
    compare(lambda t: F.max_pool2d(t, 3, 2, padding=1), [x], ("reverse", None), exact=("output",))
    compare(lambda t: F.avg_pool2d(t, 3, 2, padding=1), [x], ("reverse", None), exact=("output", "dx"))


def test_relu_empty():
    x = gpucnn.tensor(np.zeros((0, 3), np.float32), device="cudasim", requires_grad=True)
    y = F.leaky_relu(x, 0.1)
    y.backward(np.zeros((0, 3), np.float32))
    assert y.shape == (0, 3) and x.grad.shape == (0, 3)


# ---------------------------------------------------------------------------------------- batch norm
BATCH_NORM_SHAPES = {
    "vector": (5, 3),  # (N, C): one value per plane
    "planes": (3, 4, 7, 5),  # 105 values per channel: threads past the end
    "wide_planes": (2, 3, 17, 19),  # 323 values per plane: a thread's walk stays in one image's plane
    "many_images": (300, 2, 1, 1),  # 300 images of one value: the walk steps whole images
    "volume": (2, 3, 4, 3, 5),  # (N, C, D, H, W)
}


def _batch_norm_on(device_of: dict, training: bool, affine: bool):
    """F.batch_norm with running statistics made on the input's device (kept in ``device_of``)."""
    def fn(x, *params):
        channels = x.shape[1]
        rng = np.random.default_rng(3)
        running = [gpucnn.tensor(rng.standard_normal(channels).astype(np.float32), device=x.device),
                   gpucnn.tensor(rng.uniform(0.5, 2, channels).astype(np.float32), device=x.device)]
        device_of[str(x.device)] = running
        weight, bias = params if affine else (None, None)
        return F.batch_norm(x, *running, weight, bias, training=training, momentum=0.3)
    return fn


def _compare_batch_norm(shape, seed: int, training: bool, affine: bool, order) -> None:
    """Output, dx, dweight, dbias and the updated running statistics of random data of ``shape`` on
    cudasim (under thread order ``order``) against the cpu half."""
    rng = np.random.default_rng(seed)
    arrays = [(rng.standard_normal(shape) * 3 + 1).astype(np.float32)]
    if affine:
        arrays += [rng.standard_normal(shape[1]).astype(np.float32) for _ in range(2)]
    running = {}
    compare(_batch_norm_on(running, training, affine), arrays, order, names=("output", "dx", "dw", "db"))
    for name, ours, reference in zip(("running_mean", "running_var"), running["cudasim"], running["cpu"]):
        assert_close(ours.numpy(), reference.numpy(), atol=1e-6, rtol=1e-5, name=name)


@pytest.mark.parametrize("order", ORDERS, ids=order_ids)
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", BATCH_NORM_SHAPES.values(), ids=BATCH_NORM_SHAPES.keys())
def test_batch_norm(shape, training, affine, order):
    """Output, dx, dweight, dbias and the updated running statistics against the cpu half."""
    _compare_batch_norm(shape, len(shape), training, affine, order)


# (shape, BatchNorm.MIN_BLOCK_VALUES, BatchNorm.TARGET_BLOCKS, the blocks a channel that makes)
BATCH_NORM_SHARES = {
    # 715 values a channel in shares of 256, 256 and 203: the last block's threads run past its end
    "three_shares": ((5, 3, 11, 13), 256, 512, 3),
    # TARGET_BLOCKS / C = 2 blocks of 512 and 203 values: threads take two values or one
    "two_long_shares": ((5, 3, 11, 13), 256, 6, 2),
    # 300 images of one value: shares of 256 and 44 images, the walk steps whole images
    "images": ((300, 2, 1, 1), 256, 512, 2),
}


@pytest.mark.parametrize("order", ORDERS, ids=order_ids)
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("case", BATCH_NORM_SHARES.values(), ids=BATCH_NORM_SHARES.keys())
def test_batch_norm_channels_shared_among_blocks(monkeypatch, case, training, affine, order):
    """A channel's values shared among several blocks, whose moments and gradient sums a launch before
    each kernel writes and every block adds up: output, dx, dweight, dbias and the running statistics
    against the cpu half."""
    from gpucnn.ops.batchnorm import BatchNorm

    shape, min_values, target, blocks = case
    monkeypatch.setattr(BatchNorm, "MIN_BLOCK_VALUES", min_values)
    monkeypatch.setattr(BatchNorm, "TARGET_BLOCKS", target)
    count = shape[0] * int(np.prod(shape[2:]))
    assert BatchNorm._shares(shape[1], count)[0] == blocks
    _compare_batch_norm(shape, sum(shape), training, affine, order)


@pytest.mark.parametrize("channels, count, expected", [
    (16, 128 * 32 * 32, (16, 8192)),  # a small ResNet's first stage at batch 128: 256 blocks
    (32, 128 * 16 * 16, (4, 8192)),
    (64, 128 * 8 * 8, (1, 8192)),  # too few values: a block a channel
    (64, 32 * 32 * 32, (4, 8192)),
    (512, 256 * 8 * 8, (1, 16384)),  # enough channels
    (1, 10**8, (256, 390656)),  # at most THREADS blocks a channel
    (2, 8193, (2, 4352)),  # shares of whole 256-value steps: 4352 and 3841
    (5, 0, (1, 0)),
])
def test_batch_norm_shares(channels, count, expected):
    from gpucnn.ops.batchnorm import BatchNorm

    assert BatchNorm._shares(channels, count) == expected


def test_batch_norm_sums_carry_their_rounding_errors():
    """Thread 0 of the block visits x[n, 0, 0] for every n: 2^24, then 63 ones, which a plain float sum
    drops one by one (2^24 + 1 rounds back to 2^24). The channel's mean (the running mean at momentum
    1) is the exact one to within an ulp."""
    x = np.zeros((64, 1, 256), np.float32)
    x[:, 0, 0] = 1
    x[0, 0, 0] = 2**24
    mean = gpucnn.tensor(np.zeros(1, np.float32), device="cudasim")
    F.batch_norm(gpucnn.tensor(x, device="cudasim"), mean, gpucnn.tensor(np.ones(1, np.float32), device="cudasim"),
                 training=True, momentum=1.0)
    exact = (2**24 + 63) / x.size
    assert abs(float(mean.numpy()[0]) - exact) <= np.spacing(np.float32(exact)), (mean.numpy(), exact)


def test_batch_norm_gradients_asked_for_one_at_a_time():
    """Only the weight's, only the bias's, only the input's gradient: each alone matches the cpu."""
    rng = np.random.default_rng(8)
    arrays = [rng.standard_normal((4, 3, 5, 6)).astype(np.float32), rng.standard_normal(3).astype(np.float32),
              rng.standard_normal(3).astype(np.float32)]
    upstream = rng.standard_normal((4, 3, 5, 6)).astype(np.float32)
    for wanted in range(3):
        results = {}
        for device in ("cpu", "cudasim"):
            tensors = [gpucnn.tensor(a, device=device, requires_grad=i == wanted) for i, a in enumerate(arrays)]
            y = F.batch_norm(tensors[0], None, None, tensors[1], tensors[2], training=True)
            y.backward(upstream)
            results[device] = [t.grad for t in tensors]
        assert [g is None for g in results["cudasim"]] == [i != wanted for i in range(3)]
        assert_close(results["cudasim"][wanted].numpy(), results["cpu"][wanted].numpy(), atol=1e-5, rtol=1e-4,
                     name=f"gradient {wanted}")


def test_batch_norm_updates_non_contiguous_running_statistics():
    """Running statistics that are strided views: the kernel works on a copy, which is written back."""
    x = np.random.default_rng(9).standard_normal((6, 3, 4, 4)).astype(np.float32)
    results = []
    for device in ("cpu", "cudasim"):
        storage = gpucnn.tensor(np.arange(12, dtype=np.float32), device=device)
        mean, var = storage.data[0:6:2], storage.data[6:12:2]  # (3,) views, stride 2
        F.batch_norm(gpucnn.tensor(x, device=device), mean, var, training=True)
        results.append(storage.numpy())
    assert not np.array_equal(results[0], np.arange(12, dtype=np.float32))
    assert_close(results[1], results[0], atol=1e-6, rtol=1e-5, name="storage")


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm_non_finite_and_empty_batch(training):
    """inf and NaN reach the output and gradients as on the cpu (the inf is the first of three values its
    thread sums: the mean stays inf); an empty batch leaves the running statistics alone."""
    x = np.random.default_rng(10).standard_normal((3, 3, 16, 16)).astype(np.float32)
    x[0, 0, 1, 1], x[1, 1, 2, 2] = np.inf, np.nan
    results = []
    for device in ("cpu", "cudasim"):
        xt = gpucnn.tensor(x, device=device, requires_grad=True)
        mean = gpucnn.tensor(np.zeros(3, np.float32), device=device)
        var = gpucnn.tensor(np.ones(3, np.float32), device=device)
        with np.errstate(invalid="ignore"):
            y = F.batch_norm(xt, mean, var, training=training)
            y.backward(np.ones(y.shape, np.float32))
            empty = F.batch_norm(gpucnn.tensor(np.zeros((0, 3, 2, 2), np.float32), device=device), mean, var,
                                 training=training)
        assert empty.shape == (0, 3, 2, 2)
        results.append([y.numpy(), xt.grad.numpy(), mean.numpy(), var.numpy()])
    for name, ours, reference in zip(("output", "dx", "running_mean", "running_var"), *results[::-1]):
        assert_close(ours, reference, atol=1e-5, rtol=1e-4, name=name)


# ------------------------------------------------------------------------------------------- cross-entropy
def cross_entropy_on(device, logits, target, order=("forward", None), **options):
    """cross_entropy's loss and the logits' gradient on ``device`` for a fixed random upstream gradient."""
    x = gpucnn.tensor(logits, device=device, requires_grad=True)
    with cudasim.thread_order(*order):
        loss = F.cross_entropy(x, gpucnn.tensor(target, device=device), **options)
        upstream = np.random.default_rng(3).standard_normal(loss.shape).astype(np.float32)
        loss.backward(upstream)
    return loss.numpy(), x.grad.numpy()


@pytest.mark.parametrize("order", ORDERS, ids=order_ids)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
@pytest.mark.parametrize("shape", [(7, 10), (3, 4, 5, 2), (1, 1), (300, 3)], ids=["flat", "spatial", "one", "many"])
@pytest.mark.parametrize("weighted", [False, True], ids=["", "weighted"])
def test_cross_entropy_kernels_match_the_cpu(order, reduction, label_smoothing, shape, weighted):
    """cuda/cross_entropy.cu against the cpu: every reduction, smoothing, spatial targets, a single class
    and more samples than the reduction's 256 threads (int32 targets: the kernels take them as int64);
    weighted: class weights of either sign, and a fifth of the targets ignored."""
    rng = np.random.default_rng(sum(shape))
    logits = (rng.standard_normal(shape) * 4).astype(np.float32)
    target = rng.integers(0, shape[1], (shape[0],) + shape[2:]).astype(np.int32)
    options = dict(reduction=reduction, label_smoothing=label_smoothing)
    if weighted:
        target[rng.random(target.shape) < 0.2] = -3
        options.update(weight=rng.uniform(-0.5, 2.0, shape[1]).astype(np.float32), ignore_index=-3)
    for ours, reference, name in zip(cross_entropy_on("cudasim", logits, target, order, **options),
                                     cross_entropy_on("cpu", logits, target, **options), ("loss", "grad")):
        assert ours.dtype == np.float32
        assert_close(ours, reference, atol=1e-5, rtol=1e-5, name=f"{name} under thread order {order}")


def test_cross_entropy_kernels_with_more_classes_than_threads():
    """Class weights summed over more classes than the reduction's 256 threads (label smoothing's term)."""
    rng = np.random.default_rng(8)
    logits = rng.standard_normal((3, 600)).astype(np.float32)
    options = dict(weight=rng.uniform(0.0, 2.0, 600).astype(np.float32), label_smoothing=0.4)
    for ours, reference in zip(cross_entropy_on("cudasim", logits, np.array([5, 599, 300]), **options),
                               cross_entropy_on("cpu", logits, np.array([5, 599, 300]), **options)):
        assert_close(ours, reference, atol=1e-5, rtol=1e-5)


def test_cross_entropy_kernels_on_awkward_logits():
    """NaN, +inf and -inf logits, logits of 1e4 (no overflow) and an empty batch, as the cpu gives them."""
    logits = np.array([[1.0, np.nan, 2.0], [np.inf, 0.0, 1.0], [-np.inf, -np.inf, -np.inf], [-np.inf, 0.0, 1.0],
                       [1e4, -1e4, 0.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    target = np.array([0, 1, 2, 0, 0, 2])
    for reduction in ("none", "mean"):
        for ours, reference in zip(cross_entropy_on("cudasim", logits, target, reduction=reduction),
                                   cross_entropy_on("cpu", logits, target, reduction=reduction)):
            assert_close(ours, reference, atol=1e-6, rtol=1e-6)
    for reduction in ("mean", "sum", "none"):
        empty = [cross_entropy_on(device, np.zeros((0, 3), np.float32), np.zeros(0, np.int64), reduction=reduction)
                 for device in ("cudasim", "cpu")]
        for ours, reference in zip(*empty):
            assert ours.shape == reference.shape
            np.testing.assert_array_equal(ours, reference)  # the mean of no samples is NaN on both


@pytest.mark.parametrize("target, bad", [([0, 3, -1], 3), ([-1, 2, 0], -1), ([1, 2, 7], 7), ([-100, 5, 0], 5),
                                         (np.array([1, 2**63 + 5, 0], np.uint64), 2**63 + 5),
                                         (np.array([1, 2**64 - 100, 0], np.uint64), 2**64 - 100)])
def test_cross_entropy_names_the_first_target_out_of_range(target, bad):
    """Both devices name the first out-of-range target in order that is not ignored, as given (a uint64
    past 2^63 too, which no int64 ignore_index matches: 2^64 - 100 is not -100), with the shapes."""
    message = (rf"cross_entropy: target value {bad} is out of range \[0, 3\) "
               rf"\(input shape \(3, 3\), target shape \(3,\)\)")
    for device in ("cudasim", "cpu"):
        with pytest.raises(ValueError, match=message):
            F.cross_entropy(gpucnn.tensor(np.zeros((3, 3), np.float32), device=device),
                            gpucnn.tensor(np.array(target), device=device))


# ------------------------------------------------------------------------------------------ optimizers
# (their results against torch, on cudasim: tests/test_optim.py)
@pytest.mark.parametrize("order", ORDERS[1:], ids=order_ids[1:])
def test_optimizer_kernels_do_not_depend_on_thread_order(order):
    """Three steps of each optimizer kernel (two blocks of threads, state written then read; seven of RAdam's,
    whose rectification starts at step 6) give the same bits in every thread order."""
    def steps(thread_order):
        rng = np.random.default_rng(5)
        results = []
        for name, options in (("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)),
                              ("Adam", dict(lr=0.1, amsgrad=True, weight_decay=0.01)), ("Adadelta", dict(lr=1.0)),
                              ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01)),
                              ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01)),
                              ("Adamax", dict(lr=0.01, weight_decay=0.01)),
                              ("NAdam", dict(lr=0.01, weight_decay=0.01, decoupled_weight_decay=True)),
                              ("RAdam", dict(lr=0.01, weight_decay=0.01))):
            param = gpucnn.tensor(rng.standard_normal((7, 37)).astype(np.float32), device="cudasim", requires_grad=True)
            optimizer = getattr(gpucnn.optim, name)([param], **options)
            with cudasim.thread_order(*thread_order):
                for _ in range(7 if name == "RAdam" else 3):
                    param.grad = gpucnn.tensor(rng.standard_normal(param.shape).astype(np.float32), device="cudasim")
                    optimizer.step()
            results.append(param.numpy())
        return results

    for ours, reference in zip(steps(order), steps(("forward", None)), strict=True):
        np.testing.assert_array_equal(ours, reference)


# ------------------------------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("call", [
    lambda t: F.relu(t),
    lambda t: F.leaky_relu(t, 0.1),
    lambda t: F.max_pool2d(t, 2),
    lambda t: F.avg_pool2d(t, 2),
    lambda t: F.conv2d(t, gpucnn.tensor(np.ones((2, 2, 1, 1)), device="cudasim")),
    lambda t: F.batch_norm(t, None, None, training=True),
])
def test_kernel_ops_refuse_float64_on_kernel_devices(call):
    """The kernels are float32: a float64 tensor on cudasim (or cuda) is refused with a clear TypeError."""
    x = gpucnn.tensor(np.ones((1, 2, 4, 4)), device="cudasim")
    with pytest.raises(TypeError, match=r"kernels of device 'cudasim' take float32 only, got (input )?dtype float64"):
        call(x)


def test_float64_still_runs_on_the_cpu_and_adaptive_pool_on_cudasim():
    x = np.random.default_rng(13).standard_normal((1, 2, 4, 4))
    assert F.max_pool2d(gpucnn.tensor(x), 2).dtype == np.float64
    assert F.adaptive_avg_pool2d(gpucnn.tensor(x, device="cudasim"), 1).dtype == np.float64


# --------------------------------------------------------------------------------------- sanitizers
SANITIZED_RUN = r"""
from bench import kernel_smoke
from gpucnn.devices import SimulatorDevice, cudasim, kernels


class Sanitized(SimulatorDevice):
    def kernel(self, file, name):
        if file not in self._modules:
            self._modules[file] = cudasim.load(kernels.source_path(file), include_dirs=[kernels.source_dir()],
                                               sanitize=True)
        return self._modules[file].get_function(name)


kernel_smoke.run(Sanitized())  # what compute-sanitizer runs on a GPU: every kernel (tests/test_bench.py)
print("sanitized run done")
"""


@pytest.mark.slow
def test_every_kernel_under_address_and_undefined_behaviour_sanitizers(tmp_path):
    """bench.kernel_smoke, a small forward and backward of every kernel on each kernel path, built with
    ASan + UBSan: no out-of-bounds access, no overflow, no misaligned load (the process is started with
    libasan preloaded)."""
    try:
        env = {**os.environ, **cudasim.sanitizer_env()}
    except RuntimeError as error:
        pytest.skip(str(error))
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH", "")]))
    script = tmp_path / "sanitized_run.py"
    script.write_text(SANITIZED_RUN)
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600)
    report = result.stdout + result.stderr
    assert result.returncode == 0 and "sanitized run done" in result.stdout, report[-6000:]
    assert "runtime error" not in report and "AddressSanitizer" not in report, report[-6000:]


def test_divide_by_invariant_divisor():
    """common.cuh's make_divisor and divide (a multiply-high, an add and a shift) against NumPy's floor
    division: every divisor up to 600, powers of two and their neighbours up to 2^30, random divisors
    up to 2^31 - 1; numerators 0, multiples of the divisor and their neighbours, 2^31 - 1, random."""
    from pathlib import Path

    from gpucnn.devices import cudasim, kernels

    module = cudasim.load(Path(__file__).with_name("divide.cu"), [kernels.source_dir()])
    rng = np.random.default_rng(5)
    top = 2**31 - 1
    divisors = np.concatenate([np.arange(1, 601), [2**k + o for k in range(1, 31) for o in (-1, 0, 1)],
                               rng.integers(1, top, 200, endpoint=True)]).astype(np.int64)
    pairs = []
    for d in divisors:
        multiples = np.array([1, 2, 3, 1000, top // d], np.int64) * d
        numerators = np.concatenate([[0, 1, top, top - 1], multiples - 1, multiples, multiples + 1,
                                     rng.integers(0, top, 8, endpoint=True)])
        numerators = numerators[(numerators >= 0) & (numerators <= top)]
        pairs.append(np.stack([numerators, np.full_like(numerators, d)], axis=1))
    n, d = (np.ascontiguousarray(column, dtype=np.int32) for column in np.concatenate(pairs).T)
    q = np.empty_like(n)
    module.get_function("divide_pairs")(-(-n.size // 256), 256, (n, d, q, np.int32(n.size)))
    np.testing.assert_array_equal(q, n.astype(np.int64) // d)


@pytest.mark.parametrize("fits_int", [1, 0])
def test_split_index_both_branches(fits_int):
    """common.cuh's split_index: the 32-bit branch the pooling kernels take below 2^31 elements and the
    64-bit one above, on the same small indices (the 64-bit one also runs on a GPU past 2^31)."""
    from pathlib import Path

    from gpucnn.devices import cudasim, kernels

    module = cudasim.load(Path(__file__).with_name("split_index.cu"), [kernels.source_dir()])
    rows, cols, n = 5, 7, 3 * 5 * 7 + 4  # past three planes
    plane, row, col = np.zeros(n, np.int64), np.zeros(n, np.int32), np.zeros(n, np.int32)
    module.get_function("split")(1, n, (np.int32(rows), np.int32(cols), np.int32(fits_int), plane, row, col))
    expected = np.unravel_index(np.arange(n), (n // (rows * cols) + 1, rows, cols))
    for name, ours, reference in zip(("plane", "row", "col"), (plane, row, col), expected):
        np.testing.assert_array_equal(ours, reference, err_msg=name)
