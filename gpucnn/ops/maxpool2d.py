"""2-D max pooling: the ``MaxPool2d`` Function and ``max_pool2d``, plus the window geometry that the
pooling ops share (argument checks, output size, padded input and strided tap views).

Layout is NCHW. An output pixel (p, q) reads the window of input rows ``p*stride_h - pad_h + r*dilation_h``
for taps r in [0, kernel_h), and likewise for columns; taps outside the input are padding.

The cpu runs the NumPy reference (``forward_cpu``/``backward_cpu``); the kernel devices run
``cuda/maxpool2d.cu`` (``forward_gpu``/``backward_gpu``) on float32, with the geometry computed here.
"""

from __future__ import annotations

import numpy

from ..autograd import Function
from ..tensor import Tensor, as_tensor
from ._kernels import kernel_array, launch_elementwise, require_float32
from ._shapes import batched_input, output_size, pair, unbatched_output


class PoolGeometry:
    """Checked window geometry of one 2-D pooling call on an input of shape (N, C, H, W).

    Attributes (each a pair (height, width)): ``kernel``, ``stride``, ``padding`` (applied on both
    sides), ``dilation``, ``input_hw``, ``output_hw`` (P, Q).
    """

    def __init__(self, kernel, stride, padding, dilation, input_hw, output_hw):
        self.kernel, self.stride, self.padding, self.dilation = kernel, stride, padding, dilation
        self.input_hw, self.output_hw = input_hw, output_hw

    def window_starts(self, axis: int):
        """Input coordinate of each window's first tap along ``axis`` (0: rows, 1: columns), shape (P,) or (Q,)."""
        return numpy.arange(self.output_hw[axis]) * self.stride[axis] - self.padding[axis]

    def padded(self, xp, x, fill):
        """``x`` (N, C, H, W) inside a block filled with ``fill``: ``padding`` before, and after it as
        much as the last window reaches (with ceil_mode a window may run past the symmetric padding;
        those positions are filled too, which clips the window as PyTorch does). Without any padding
        this is ``x`` itself, not a copy."""
        (H, W), (pad_h, pad_w) = self.input_hw, self.padding
        reach = [
            (out - 1) * stride + dilation * (kernel - 1) + 1
            for out, stride, dilation, kernel in zip(self.output_hw, self.stride, self.dilation, self.kernel)
        ]
        height = max(reach[0], pad_h + H)
        width = max(reach[1], pad_w + W)
        if (height, width) == (H, W):  # no padding, and every window inside: the input itself
            return x
        block = xp.full(x.shape[:2] + (height, width), fill, dtype=x.dtype)
        block[:, :, pad_h : pad_h + H, pad_w : pad_w + W] = x
        return block

    def tap(self, padded, r: int, s: int):
        """The (N, C, P, Q) strided view of ``padded`` holding tap (r, s) of every window."""
        (P, Q), (stride_h, stride_w), (dilation_h, dilation_w) = self.output_hw, self.stride, self.dilation
        top, left = r * dilation_h, s * dilation_w
        return padded[:, :, top : top + (P - 1) * stride_h + 1 : stride_h, left : left + (Q - 1) * stride_w + 1 : stride_w]

    def column_phases(self, padded) -> list:
        """``padded``'s columns split by their remainder modulo ``stride_w``, each phase contiguous:
        ``[padded[..., j::stride_w] for j in range(stride_w)]`` (``[padded]`` for stride 1). NumPy
        runs over contiguous rows several times faster than over strided ones, so the cpu reads its
        taps from these (one copy) rather than from ``padded`` with a column step."""
        stride_w = self.stride[1]
        if stride_w == 1:
            return [padded]
        return [numpy.ascontiguousarray(padded[..., j::stride_w]) for j in range(stride_w)]

    def phase_tap(self, phases, r: int, s: int):
        """The (N, C, P, Q) view of tap (r, s), as :meth:`tap`, in :meth:`column_phases` ``phases``:
        input column left + q*stride_w is column left // stride_w + q of phase left % stride_w."""
        (P, Q), (stride_h, stride_w), (dilation_h, dilation_w) = self.output_hw, self.stride, self.dilation
        top, left = r * dilation_h, s * dilation_w
        start = left // stride_w
        return phases[left % stride_w][:, :, top : top + (P - 1) * stride_h + 1 : stride_h, start : start + Q]

    def kernel_args(self) -> tuple:
        """The window geometry as the pooling kernels take it: int32 (H, W, P, Q, kernel_h, kernel_w,
        stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w)."""
        values = self.input_hw + self.output_hw + self.kernel + self.stride + self.padding + self.dilation
        return tuple(numpy.int32(value) for value in values)

    def crop(self, padded):
        """Undoes :meth:`padded`: the (N, C, H, W) input region of a padded block, contiguous."""
        (H, W), (pad_h, pad_w) = self.input_hw, self.padding
        return padded[:, :, pad_h : pad_h + H, pad_w : pad_w + W].copy()


def pool_window(op: str, kernel_size, stride, padding, dilation, ceil_mode) -> tuple:
    """The input-independent checks of a pooling call; (kernel, stride, padding, dilation) as pairs.

    PyTorch's rules: ``stride`` None (or empty) means ``kernel_size``; padding is at most
    ``kernel_size // 2`` along each axis (undilated kernel, as PyTorch checks).
    """
    kernel = pair(kernel_size, "kernel_size", op, minimum=1)
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        stride = kernel
    else:
        stride = pair(stride, "stride", op, minimum=1)
    pads = pair(padding, "padding", op, minimum=0)
    dilation = pair(dilation, "dilation", op, minimum=1)
    if not isinstance(ceil_mode, (bool, numpy.bool_)):
        raise TypeError(f"{op}: ceil_mode must be a bool, got {ceil_mode!r}")
    if pads[0] > kernel[0] // 2 or pads[1] > kernel[1] // 2:
        raise ValueError(
            f"{op}: padding {pads} must be at most half of kernel_size {kernel} (padding <= kernel_size // 2 "
            f"along each axis)"
        )
    return kernel, stride, pads, dilation


def pool_geometry(op: str, input_shape: tuple, kernel_size, stride, padding, dilation, ceil_mode) -> PoolGeometry:
    """Checks a pooling call's window arguments (:func:`pool_window`) against an (N, C, H, W) input
    shape: C, H and W are non-zero and the output is at least 1x1."""
    kernel, stride, pads, dilation = pool_window(op, kernel_size, stride, padding, dilation, ceil_mode)
    if any(size == 0 for size in input_shape[1:]):
        raise ValueError(f"{op}: input must have non-zero channels, height and width, got shape {input_shape}")
    input_hw = tuple(input_shape[2:])
    output_hw = tuple(
        output_size(size, k, s, p, p, d, bool(ceil_mode))
        for size, k, s, p, d in zip(input_hw, kernel, stride, pads, dilation)
    )
    if min(output_hw) < 1:
        window = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
        padded = tuple(size + 2 * p for size, p in zip(input_hw, pads))
        raise ValueError(
            f"{op}: output size {output_hw} is too small: kernel_size {kernel} with dilation {dilation} spans "
            f"{window}, larger than the padded input {padded} (input shape {input_shape}, padding {pads}, "
            f"stride {stride}, ceil_mode={bool(ceil_mode)})"
        )
    return PoolGeometry(kernel, stride, pads, dilation, input_hw, output_hw)


class MaxPool2d(Function):
    """Max over each window; x: (N, C, H, W) -> (N, C, P, Q).

    Forward saves ``self.indices`` (N, C, P, Q) int64: the flat index h*W + w of each window's
    maximum in its input plane (also what ``return_indices`` hands out). Among equal values the
    first in scan order (rows, then columns) wins; a NaN always replaces the running maximum, so
    the last NaN of a window wins and the output is NaN, as PyTorch's CPU kernel does. Padding
    never wins: a window whose input values are all -inf reports its first in-input tap.
    """

    def __init__(self, geometry: PoolGeometry):
        self.geometry = geometry

    def _tap_indices(self, r: int, s: int):
        """(P, Q) flat input index h*W + w of tap (r, s) of every window (padding taps included)."""
        g = self.geometry
        rows = g.window_starts(0) + r * g.dilation[0]
        cols = g.window_starts(1) + s * g.dilation[1]
        return rows[:, None] * g.input_hw[1] + cols[None, :]

    def _first_input_tap(self):
        """(P, Q) flat index of each window's first tap inside the input (one exists: checked)."""
        g = self.geometry
        firsts = []
        for axis in range(2):
            starts = g.window_starts(axis)
            # smallest tap t with start + t*dilation >= 0
            taps = numpy.maximum(-(starts // g.dilation[axis]), 0)
            firsts.append(starts + taps * g.dilation[axis])
        return firsts[0][:, None] * g.input_hw[1] + firsts[1][None, :]

    def forward_cpu(self, x):
        xp, g = self.xp, self.geometry
        self.input_shape = x.shape
        padded = g.padded(xp, x, -numpy.inf)
        phases = g.column_phases(padded)
        taps = [(r, s) for r in range(g.kernel[0]) for s in range(g.kernel[1])]
        # The maximum, NaN-propagating as the output must be, without per-element branches.
        best = numpy.array(g.phase_tap(phases, 0, 0), dtype=x.dtype)
        for r, s in taps[1:]:
            numpy.maximum(best, g.phase_tap(phases, r, s), out=best)
        has_padding = padded.shape[2:] != x.shape[2:]
        if numpy.isnan(best).any() or (has_padding and numpy.isneginf(best).any()):
            # A NaN (the last one wins) or a window whose maximum is -inf (padding must not win):
            # the exact scan, tap by tap.
            return self._forward_scan(x, padded)
        # The first tap that equals the maximum: scanning the taps backwards, each match overwrites
        # the tap number, branch-free (position -= match * (position - t)), in a small integer type.
        position_type = numpy.int8 if len(taps) < 127 else numpy.int32
        position = numpy.zeros(best.shape, dtype=position_type)
        match = numpy.empty(best.shape, dtype=bool)
        step = numpy.empty(best.shape, dtype=position_type)
        for t in range(len(taps) - 1, -1, -1):
            numpy.equal(g.phase_tap(phases, *taps[t]), best, out=match)
            numpy.subtract(position, position_type(t), out=step)
            numpy.multiply(step, match, out=step)
            numpy.subtract(position, step, out=position)
        # Tap t = r * kernel_w + s of window (p, q) is input pixel (start_p + r*dh, start_q + s*dw).
        rows = g.window_starts(0)[:, None] * g.input_hw[1] + g.window_starts(1)[None, :]  # (P, Q)
        row_step, column_step = g.dilation[0] * g.input_hw[1], g.dilation[1]
        offsets = numpy.array([r * row_step + s * column_step for r, s in taps], dtype=numpy.int64)
        self.indices = offsets[position] + rows
        return best

    def _forward_scan(self, x, padded):
        """The exact reference: tap by tap, strict '>' keeps the first of equal maxima, NaN takes over."""
        xp, g = self.xp, self.geometry
        N, C = x.shape[:2]
        best = xp.full((N, C) + g.output_hw, -numpy.inf, dtype=x.dtype)
        best_index = xp.broadcast_to(xp.asarray(self._first_input_tap(), dtype=xp.int64), best.shape)
        for r in range(g.kernel[0]):
            for s in range(g.kernel[1]):
                values = g.tap(padded, r, s)
                take = (values > best) | xp.isnan(values)
                best = xp.where(take, values, best)
                best_index = xp.where(take, xp.asarray(self._tap_indices(r, s)), best_index)
        self.indices = xp.ascontiguousarray(best_index, dtype=xp.int64)
        return best

    def backward_cpu(self, grad):
        # Scatter-add: each output's gradient goes to its argmax; overlapping windows that share a
        # maximum accumulate. Plane offsets turn per-plane indices into indices of the flat input.
        xp = self.xp
        N, C, H, W = self.input_shape
        plane = xp.arange(N * C, dtype=xp.int64).reshape(N, C, 1, 1) * (H * W)
        flat = (self.indices + plane).reshape(-1)
        # ufunc.at adds in place, in the gradient's dtype, in order (as PyTorch's CPU kernel does):
        # about twice as fast as bincount, which needs float64 weights and a conversion back.
        grad_input = numpy.zeros(N * C * H * W, dtype=grad.dtype)
        numpy.add.at(grad_input, flat, grad.reshape(-1))
        return (grad_input.reshape(self.input_shape),)

    def forward_gpu(self, x):
        xp, g = self.xp, self.geometry
        x = kernel_array(xp, x)
        self.input_shape = x.shape
        output_shape = x.shape[:2] + g.output_hw
        y = xp.empty(output_shape, dtype=xp.float32)
        self.indices = xp.empty(output_shape, dtype=xp.int64)
        launch_elementwise(self, "maxpool2d", "maxpool2d_forward", y.size,
                       (x, y, self.indices, numpy.int64(y.size)) + g.kernel_args())
        return y

    def backward_gpu(self, grad):
        xp = self.xp
        grad = kernel_array(xp, grad)
        grad_input = xp.empty(self.input_shape, dtype=xp.float32)
        launch_elementwise(self, "maxpool2d", "maxpool2d_backward", grad_input.size,
                       (grad, self.indices, grad_input, numpy.int64(grad_input.size)) + self.geometry.kernel_args())
        return (grad_input,)


def _check_no_empty_window(op: str, geometry: PoolGeometry, input_shape: tuple) -> None:
    """ValueError when a dilated window's taps all fall in the padding (no input pixel to take the max of)."""
    for axis, name in ((0, "row"), (1, "column")):
        starts = geometry.window_starts(axis)
        taps = starts[:, None] + numpy.arange(geometry.kernel[axis]) * geometry.dilation[axis]
        inside = ((taps >= 0) & (taps < geometry.input_hw[axis])).any(axis=1)
        if not inside.all():
            index = int(numpy.argmin(inside))
            raise ValueError(
                f"{op}: output {name} {index} has a window (taps {taps[index].tolist()}) that lies wholly in the "
                f"padding (kernel_size {geometry.kernel}, stride {geometry.stride}, padding {geometry.padding}, "
                f"dilation {geometry.dilation}, input shape {input_shape})"
            )


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max pooling as ``torch.nn.functional.max_pool2d``.

    Args:
        input: (N, C, H, W) or unbatched (C, H, W), floating point.
        kernel_size, stride, padding, dilation: an int or a pair (height, width). ``stride`` defaults
            to ``kernel_size``; padding (with -inf) is at most ``kernel_size // 2``.
        ceil_mode: round the output size up (the last window may then run past the padding).
        return_indices: also return the (N, C, P, Q) int64 Tensor of flat indices h*W + w of the maxima.

    On ``cuda`` and ``cudasim`` the kernels take float32 only: another dtype raises TypeError there.

    Returns:
        (N, C, P, Q) Tensor (or (C, P, Q)), and the indices when ``return_indices``.
    """
    op = "max_pool2d"
    x, unbatched = batched_input(as_tensor(input, f"{op}: input"), op)
    if not isinstance(return_indices, (bool, numpy.bool_)):
        raise TypeError(f"{op}: return_indices must be a bool, got {return_indices!r}")
    require_float32(op, x)
    geometry = pool_geometry(op, x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    _check_no_empty_window(op, geometry, x.shape)
    function = MaxPool2d(geometry)
    output = unbatched_output(function.apply(x), unbatched)
    if not return_indices:
        return output
    indices = function.indices[0] if unbatched else function.indices
    return output, Tensor._from_array(indices, x.device, False)


__all__ = ["MaxPool2d", "PoolGeometry", "max_pool2d", "pool_geometry"]
