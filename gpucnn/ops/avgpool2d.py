"""2-D average pooling: ``AvgPool2d`` / ``avg_pool2d`` and ``AdaptiveAvgPool2d`` / ``adaptive_avg_pool2d``; and
adaptive max pooling, ``AdaptiveMaxPool2d`` / ``adaptive_max_pool2d``, whose windows are adaptive average
pooling's.

Layout is NCHW. Window geometry (padding, ceil_mode, strided tap views) is shared with max pooling
(:class:`gpucnn.ops.maxpool2d.PoolGeometry`).

``avg_pool2d`` runs the NumPy reference on the cpu and ``cuda/avgpool2d.cu`` on the kernel devices
(float32). ``adaptive_avg_pool2d`` is written once against the device's array module and serves
every device (its windows differ per output, and a global pool is a plain mean).
"""

from __future__ import annotations

import functools
import math
import numbers

import numpy

from ..autograd import Function
from ..tensor import Tensor, as_tensor
from . import _memory
from ._shapes import batched_input, unbatched_output
from ._kernels import kernel_array, launch_elementwise, require_float32, sized
from .maxpool2d import PoolGeometry, max_pool2d, pool_geometry


class AvgPool2d(Function):
    """Mean over each window; x: (N, C, H, W) -> (N, C, P, Q).

    The divisor follows PyTorch: a window first is clipped to the padded input (with ceil_mode the
    last window may run past it), then ``count_include_pad`` divides by that clipped size, padding
    included; otherwise by the number of input pixels in it. ``divisor_override`` replaces both.
    Both sizes factor into a row count times a column count, so the divisor is an outer product.
    """

    uses_inputs = False  # backward reads shapes only

    def __init__(self, geometry: PoolGeometry, count_include_pad: bool, divisor_override=None):
        self.geometry = geometry
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def _divisor(self, dtype):
        """(P, Q) divisor of every window, in ``dtype``."""
        g = self.geometry
        if self.divisor_override is not None:
            return self.xp.asarray(numpy.full(g.output_hw, self.divisor_override, dtype=dtype))
        counts = []
        for axis in range(2):
            size, pad, kernel = g.input_hw[axis], g.padding[axis], g.kernel[axis]
            start = g.window_starts(axis)
            end = numpy.minimum(start + kernel, size + pad)  # clipped to the padded input
            if self.count_include_pad:
                counts.append(end - start)
            else:
                counts.append(numpy.minimum(end, size) - numpy.maximum(start, 0))
        return self.xp.asarray(numpy.outer(counts[0], counts[1]).astype(dtype))

    def _plane_divisor(self, dtype):
        """The divisor of the one window of :meth:`_one_window_per_plane`, a scalar of ``dtype``: the
        (P, Q) outer product of :meth:`_divisor` costs more than the rest of a batch-1 global pool."""
        g = self.geometry
        if self.divisor_override is not None:
            return dtype.type(self.divisor_override)
        # _divisor's counts for the one window, which starts at -pad and holds the whole input
        if self.count_include_pad:  # the window clipped to the padded input
            return dtype.type(math.prod(min(k, size + 2 * pad)
                                        for k, size, pad in zip(g.kernel, g.input_hw, g.padding)))
        return dtype.type(g.input_hw[0] * g.input_hw[1])

    def _one_window_per_plane(self) -> bool:
        """Whether the only window of each plane holds all of its pixels (global average pooling)."""
        g = self.geometry
        return g.output_hw == (1, 1) and all(k - pad >= size for k, pad, size in zip(g.kernel, g.padding, g.input_hw))

    def forward_cpu(self, x):
        xp, g = self.xp, self.geometry
        self.input_shape = x.shape
        if self._one_window_per_plane():
            # Each plane's sum as one matrix-vector product (BLAS): 31 us on 32x512x4x4 float32,
            # where adding the 16 strided taps takes 0.24 ms and a sum over the last axis 0.31 ms
            # (PyTorch 0.10 ms). BLAS adds in its own order, so the last bit may differ from the
            # tap-by-tap sum.
            N, C, H, W = x.shape
            with numpy.errstate(invalid="ignore", over="ignore"):  # inf + -inf is NaN, as in PyTorch, silently
                sums = x.reshape(N * C, H * W) @ numpy.ones(H * W, dtype=x.dtype)
            sums /= self._plane_divisor(x.dtype)
            return sums.reshape(N, C, 1, 1)
        phases = g.column_phases(g.padded(xp, x, 0))
        total = numpy.array(g.phase_tap(phases, 0, 0), dtype=x.dtype)
        with numpy.errstate(invalid="ignore", over="ignore"):  # inf + -inf is NaN, as in PyTorch, silently
            for r in range(g.kernel[0]):
                for s in range(g.kernel[1]):
                    if r or s:
                        total += g.phase_tap(phases, r, s)
            total /= self._divisor(x.dtype)
        return total

    def backward_cpu(self, grad):
        # Every tap of a window gets grad / divisor; the taps of one (r, s) are distinct pixels, so
        # adding into the strided view is safe, and overlapping windows accumulate across taps.
        # The taps are added into contiguous column phases (see PoolGeometry.column_phases), which
        # are then interleaved into the padded gradient once.
        # The input-sized arrays come from _memory, whose recycled blocks cost no page faults: the small
        # ResNet's 64x64x8x8 gradient here took 256 a step where the process had freed other arrays.
        g = self.geometry
        if self._one_window_per_plane():  # every pixel of a plane gets its share: 41 us on 32x512x4x4
            share = grad / self._plane_divisor(grad.dtype)
            grad_input = _memory.empty(self.input_shape, grad.dtype)
            numpy.copyto(grad_input.reshape(share.size, math.prod(self.input_shape[2:])), share.reshape(-1, 1))
            return (grad_input,)
        share = grad / self._divisor(grad.dtype)
        padded = _memory.zeros(self.input_shape[:2] + g.padded_hw, grad.dtype)
        if all(k <= s for k, s in zip(g.kernel, g.stride)):
            # Windows that do not overlap give each pixel at most one share: written, not added, tap
            # by tap (2x2/2 on 32x10x32x32: 0.2 ms, against 0.58 ms through the column phases).
            for r in range(g.kernel[0]):
                for s in range(g.kernel[1]):
                    g.tap(padded, r, s)[...] = share
            return (padded if padded.shape == self.input_shape else g.crop(padded),)
        stride_w = g.stride[1]
        phases = [padded] if stride_w == 1 else [
            _memory.zeros(padded.shape[:3] + (len(range(j, padded.shape[3], stride_w)),), grad.dtype)
            for j in range(stride_w)
        ]
        with numpy.errstate(invalid="ignore", over="ignore"):
            for r in range(g.kernel[0]):
                for s in range(g.kernel[1]):
                    g.phase_tap(phases, r, s)[...] += share
        if stride_w > 1:
            for j, phase in enumerate(phases):
                padded[..., j::stride_w] = phase
        return (padded if padded.shape == self.input_shape else g.crop(padded),)

    def forward_gpu(self, x):
        xp, g = self.xp, self.geometry
        x = kernel_array(xp, x)
        self.input_shape = x.shape
        y = xp.empty(x.shape[:2] + g.output_hw, dtype=xp.float32)
        fixed = _kernel_args("avgpool2d_forward", g, y.size, self.count_include_pad, self.divisor_override)
        launch_elementwise(self.device, "avgpool2d", "avgpool2d_forward", y.size, (x, y), fixed)
        return y

    def backward_gpu(self, grad):
        xp = self.xp
        grad = kernel_array(xp, grad)
        grad_input = xp.empty(self.input_shape, dtype=xp.float32)
        fixed = _kernel_args("avgpool2d_backward", self.geometry, grad_input.size, self.count_include_pad,
                             self.divisor_override)
        launch_elementwise(self.device, "avgpool2d", "avgpool2d_backward", grad_input.size, (grad, grad_input), fixed)
        return (grad_input,)


@functools.lru_cache(maxsize=1024)
def _kernel_args(name: str, g: PoolGeometry, count: int, count_include_pad: bool, divisor_override) -> tuple:
    """The last arguments of kernel ``name`` over ``count`` elements, as launch_elementwise's ``fixed``:
    the geometry and divisor rule as the avgpool2d kernels take them (no dilation: always 1). Made once
    for a layer's calls (a small layer's call on a GPU is mostly the host's work)."""
    divisor = 0 if divisor_override is None else divisor_override  # 0: no override
    return sized(name, count, g.kernel_args()[:10] + (numpy.int32(count_include_pad), numpy.float32(divisor)))


def checked_divisor(op: str, divisor_override):
    """``divisor_override`` as an int, or None; TypeError or ValueError naming ``op`` for anything else."""
    if divisor_override is None:
        return None
    if isinstance(divisor_override, bool) or not isinstance(divisor_override, numbers.Integral):
        raise TypeError(f"{op}: divisor_override must be an int or None, got {divisor_override!r}")
    if divisor_override == 0:
        raise ValueError(f"{op}: divisor_override must be non-zero, got {divisor_override!r}")
    return int(divisor_override)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Average pooling as ``torch.nn.functional.avg_pool2d``.

    Args:
        input: (N, C, H, W) or unbatched (C, H, W), floating point.
        kernel_size, stride, padding: an int or a pair (height, width). ``stride`` defaults to
            ``kernel_size``; padding (with zeros) is at most ``kernel_size // 2``.
        ceil_mode: round the output size up; the last window is clipped to the padded input.
        count_include_pad: count the padding in the divisor.
        divisor_override: a non-zero int used as every window's divisor instead.

    On ``cuda`` and ``cudasim`` the kernels take float32 only: another dtype raises TypeError there.

    Returns:
        (N, C, P, Q) Tensor (or (C, P, Q)).
    """
    op = "avg_pool2d"
    x, unbatched = batched_input(as_tensor(input, f"{op}: input"), op)
    require_float32(op, x.dtype, x.device, x.shape)
    geometry = pool_geometry(op, x.shape, kernel_size, stride, padding, 1, ceil_mode)
    if not isinstance(count_include_pad, (bool, numpy.bool_)):
        raise TypeError(f"{op}: count_include_pad must be a bool, got {count_include_pad!r}")
    divisor_override = checked_divisor(op, divisor_override)
    output = AvgPool2d(geometry, bool(count_include_pad), divisor_override).apply(x)
    return unbatched_output(output, unbatched)


class AdaptiveAvgPool2d(Function):
    """Mean over adaptive windows; x: (N, C, H, W) -> (N, C, oH, oW).

    Output row i averages input rows [floor(i*H/oH), ceil((i+1)*H/oH)), columns likewise. A window is
    a rectangle, so its mean is the mean over its rows of the means over its columns: rows are
    reduced first (N, C, oH, W), then columns, one loop iteration per output row and per column.
    """

    uses_inputs = False  # backward reads shapes only

    def __init__(self, output_hw: tuple):
        self.output_hw = output_hw

    @staticmethod
    def windows(size: int, out: int) -> list:
        """[(start, end)] of each of the ``out`` windows over ``size`` input positions."""
        return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]

    def forward(self, x):
        """Every device: slices and means of the array module, no kernel."""
        xp = self.xp
        N, C, H, W = self.input_shape = x.shape
        out_h, out_w = self.output_hw
        rows = xp.empty((N, C, out_h, W), dtype=x.dtype)
        output = xp.empty((N, C, out_h, out_w), dtype=x.dtype)
        with numpy.errstate(invalid="ignore", over="ignore"):  # inf + -inf is NaN, as in PyTorch, silently
            for i, (start, end) in enumerate(self.windows(H, out_h)):
                rows[:, :, i, :] = x[:, :, start:end, :].mean(axis=2)
            for j, (start, end) in enumerate(self.windows(W, out_w)):
                output[:, :, :, j] = rows[:, :, :, start:end].mean(axis=3)
        return output

    def backward(self, grad):
        xp = self.xp
        N, C, H, W = self.input_shape
        out_h, out_w = self.output_hw
        # Undo the column means, then the row means; windows may overlap, so add.
        grad_rows = xp.zeros((N, C, out_h, W), dtype=grad.dtype)
        for j, (start, end) in enumerate(self.windows(W, out_w)):
            grad_rows[:, :, :, start:end] += grad[:, :, :, j : j + 1] / (end - start)
        grad_x = xp.zeros(self.input_shape, dtype=grad.dtype)
        for i, (start, end) in enumerate(self.windows(H, out_h)):
            grad_x[:, :, start:end, :] += grad_rows[:, :, i : i + 1, :] / (end - start)
        return (grad_x,)


def _adaptive_output_size(output_size, input_shape: tuple, op: str) -> tuple[int, int]:
    """``output_size`` (an int, or a pair of ints / None, None keeping that input size) as (oH, oW), each >= 1."""
    items = (output_size, output_size) if isinstance(output_size, numbers.Integral) else output_size
    try:
        items = tuple(items)
    except TypeError:
        raise TypeError(f"{op}: output_size must be an int or a pair of ints or None, got {output_size!r}") from None
    if len(items) != 2 or any(
        v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Integral)) for v in items
    ):
        raise TypeError(f"{op}: output_size must be an int or a pair of ints or None, got {output_size!r}")
    # PyTorch's forward accepts 0 (an empty output) but its backward then fails; an empty feature map
    # is a mistake, so it is refused here.
    if any(v is not None and v < 1 for v in items):
        raise ValueError(f"{op}: output_size must be at least 1, got {output_size!r} (input shape {input_shape})")
    return tuple(input_shape[2 + axis] if v is None else int(v) for axis, v in enumerate(items))


def _adaptive_input(input, output_size, op: str) -> tuple:
    """The adaptive poolings' checked arguments: (x batched, unbatched, (oH, oW), the uniform window (H / oH,
    W / oW) where the sizes divide and a plain pool can take them, else None)."""
    x, unbatched = batched_input(as_tensor(input, f"{op}: input"), op)
    output_hw = _adaptive_output_size(output_size, x.shape, op)
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"{op}: input height and width must be non-zero, got shape {x.shape}")
    (H, W), (out_h, out_w) = x.shape[2:], output_hw
    uniform = H % out_h == 0 and W % out_w == 0 and (x.dtype == numpy.float32 or not x.device.runs_kernels)
    return x, unbatched, output_hw, (H // out_h, W // out_w) if uniform else None


def adaptive_avg_pool2d(input, output_size):
    """Adaptive average pooling as ``torch.nn.functional.adaptive_avg_pool2d``.

    Args:
        input: (N, C, H, W) or unbatched (C, H, W), floating point, H and W non-zero.
        output_size: (oH, oW), an int for both, or a pair with None keeping that input size.
            ``output_size=1`` is global average pooling.

    Where oH divides H and oW divides W (global pooling among them), the windows are those of an
    average pool with kernel and stride (H / oH, W / oW), which runs instead: one kernel launch each
    way on a GPU, where the general windows take a CuPy operation per output row and column.

    Returns:
        (N, C, oH, oW) Tensor (or (C, oH, oW)).
    """
    op = "adaptive_avg_pool2d"
    x, unbatched, output_hw, window = _adaptive_input(input, output_size, op)
    if window is not None:
        output = AvgPool2d(pool_geometry(op, x.shape, window, window, 0, 1, False), True).apply(x)
    else:
        output = AdaptiveAvgPool2d(output_hw).apply(x)
    return unbatched_output(output, unbatched)


class AdaptiveMaxPool2d(Function):
    """Max over adaptive windows (``AdaptiveAvgPool2d.windows``); x: (N, C, H, W) -> (N, C, oH, oW), and the
    flat index h*W + w of each maximum (``indices``).

    As PyTorch's, a window's maximum is its first in row-major order, or its last NaN where it holds
    NaN. One iteration per output pixel: each window is a block of its own (windows overlap), taken as
    (N, C, kh*kw). The backward adds each output's gradient at its maximum's index.
    """

    uses_inputs = False  # backward reads the indices and shapes only

    def __init__(self, output_hw: tuple):
        self.output_hw = output_hw

    def forward(self, x):
        xp = self.xp
        N, C, H, W = self.input_shape = x.shape
        out_h, out_w = self.output_hw
        output = xp.empty((N, C, out_h, out_w), dtype=x.dtype)
        self.indices = xp.empty((N, C, out_h, out_w), dtype=numpy.int64)
        any_nan = bool(xp.isnan(x).any())
        for i, (top, bottom) in enumerate(AdaptiveAvgPool2d.windows(H, out_h)):
            for j, (left, right) in enumerate(AdaptiveAvgPool2d.windows(W, out_w)):
                window = x[:, :, top:bottom, left:right].reshape(N, C, (bottom - top) * (right - left))
                chosen = window.argmax(axis=2)
                if any_nan:
                    nan = xp.isnan(window)
                    last_nan = window.shape[2] - 1 - nan[:, :, ::-1].argmax(axis=2)
                    chosen = xp.where(nan.any(axis=2), last_nan, chosen)
                output[:, :, i, j] = xp.take_along_axis(window, chosen[:, :, None], axis=2)[:, :, 0]
                width = right - left
                self.indices[:, :, i, j] = (top + chosen // width) * W + left + chosen % width
        return output

    def backward(self, grad):
        xp = self.xp
        N, C, H, W = self.input_shape
        planes, outputs = N * C, self.output_hw[0] * self.output_hw[1]
        grad_x = xp.zeros((planes, H * W), dtype=grad.dtype)
        rows = xp.arange(planes)[:, None]
        xp.add.at(grad_x, (rows, self.indices.reshape(planes, outputs)), grad.reshape(planes, outputs))
        return (grad_x.reshape(self.input_shape),)


def adaptive_max_pool2d(input, output_size, return_indices: bool = False):
    """Adaptive max pooling as ``torch.nn.functional.adaptive_max_pool2d``.

    Args:
        input: (N, C, H, W) or unbatched (C, H, W), floating point, H and W non-zero.
        output_size: (oH, oW), an int for both, or a pair with None keeping that input size. Output row i
            takes the maximum over input rows [floor(i*H/oH), ceil((i+1)*H/oH)), columns likewise.
        return_indices: also return the int64 Tensor of flat indices h*W + w of the maxima.

    Where oH divides H and oW divides W, the windows are those of a max pool with kernel and stride
    (H / oH, W / oW), which runs instead (:func:`gpucnn.ops.maxpool2d.max_pool2d`, the same maxima and
    indices), as :func:`adaptive_avg_pool2d` does.

    Returns:
        (N, C, oH, oW) Tensor (or (C, oH, oW)), and the indices when ``return_indices``.
    """
    op = "adaptive_max_pool2d"
    if not isinstance(return_indices, (bool, numpy.bool_)):
        raise TypeError(f"{op}: return_indices must be a bool, got {return_indices!r}")
    x, unbatched, output_hw, window = _adaptive_input(input, output_size, op)
    if window is not None:
        return max_pool2d(input, window, window, return_indices=bool(return_indices))
    function = AdaptiveMaxPool2d(output_hw)
    output = unbatched_output(function.apply(x), unbatched)
    if not return_indices:
        return output
    indices = function.indices[0] if unbatched else function.indices
    return output, Tensor._from_array(indices.copy(), x.device, False)  # a copy: backward keeps its own


__all__ = ["AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "AvgPool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d",
           "avg_pool2d"]
