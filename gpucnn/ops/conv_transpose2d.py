"""conv_transpose2d: 2-D transposed convolution, as in PyTorch: the adjoint of conv2d.

    y[n, k, i*stride_h - pad_h + r*dilation_h, j*stride_w - pad_w + s*dilation_w] += x[n, c, i, j] * weight[c, k', r, s]

for every input pixel (i, j) and tap (r, s), k' = k - group(c) * C_out/groups, then + bias[k]; the
positions that fall outside the output add nothing.

Shapes: input x (N, C_in, H, W), weight (C_in, C_out/groups, R, S), bias (C_out,), output y
(N, C_out, H_out, W_out), H_out = (H-1)*stride_h - 2*pad_h + dilation_h*(R-1) + output_padding_h + 1.

No kernels of its own: with x read as the upstream gradient of a conv2d of the same weight, stride,
dilation and groups from a (N, C_out, H_out, W_out) input to (N, C_in, H, W), its forward is that
conv2d's backward-data, its input gradient that conv2d's forward of the upstream gradient, and its
weight gradient that conv2d's backward-filter with the upstream gradient as the conv2d's input and x
as its upstream gradient. Each runs on conv2d's own paths (``Conv2d.grad_input_cpu``,
``Conv2d.forward_cpu``, ``Conv2d.grad_weight_cpu`` and their kernel twins), so the cpu runs NumPy and
``cuda`` and ``cudasim`` the kernels of ``cuda/conv2d.cu``.
"""

from __future__ import annotations

import functools
import numbers

from ..autograd import Function
from ..tensor import Tensor, as_tensor
from . import _kernels, _shapes
from .conv2d import Conv2d, checked_weight_and_groups

__all__ = ["ConvTranspose2d", "conv_transpose2d", "output_padding_for"]


class ConvTranspose2d(Function):
    """The conv_transpose2d op, as the conv2d ``Conv2d(stride, pads, dilation, groups)`` whose input
    gradient it is.

    Args:
        stride, dilation: (height, width) pairs, each >= 1.
        pads: that conv2d's (top, bottom, left, right): (pad_h, max(0, pad_h - output_padding_h), ...).
        groups: splits C_in and C_out into ``groups`` independent convolutions.
        output_hw: (H_out, W_out).
        grid_hw: that conv2d's output size on (H_out, W_out): (H, W), or more where an output_padding
            past the stride (smaller than the dilation) and the padding leave output rows or columns that
            no input reaches; the input then takes zero rows or columns at the bottom and right.
    """

    def __init__(self, stride: tuple[int, int], pads: tuple[int, int, int, int], dilation: tuple[int, int],
                 groups: int, output_hw: tuple[int, int], grid_hw: tuple[int, int]):
        self.stride, self.pads, self.dilation, self.groups = stride, pads, dilation, groups
        self.output_hw, self.grid_hw = output_hw, grid_hw

    def _conv(self) -> Conv2d:
        conv = Conv2d(self.stride, self.pads, self.dilation, self.groups)
        conv.device, conv.xp = self.device, self.xp
        return conv

    def _extended(self, x):
        """x (N, C_in, H, W) with zeros to the conv2d's output size ``grid_hw`` (itself where that is (H, W))."""
        if x.shape[2:] == self.grid_hw:
            return x
        extended = self.xp.zeros(x.shape[:2] + self.grid_hw, dtype=x.dtype)
        extended[:, :, : x.shape[2], : x.shape[3]] = x
        return extended

    def forward(self, x, weight, bias=None):
        """x (N, C_in, H, W), weight (C_in, C_out/G, R, S), bias (C_out,) or None -> y (N, C_out, H_out, W_out)."""
        self.x, self.weight = x, weight
        conv, y_shape = self._conv(), (x.shape[0], weight.shape[1] * self.groups) + self.output_hw
        if self.device.runs_kernels:
            y = conv.grad_input_gpu(self._extended(x), weight, y_shape)
            bias = None if bias is None else _kernels.kernel_array(self.xp, bias)
        else:
            y = conv.grad_input_cpu(self._extended(x), weight, y_shape)
        if bias is not None:
            y += bias.reshape(-1, 1, 1)
        return y

    def backward(self, grad):
        """grad (N, C_out, H_out, W_out) -> (dx, dweight, dbias), None where not needed."""
        need_input, need_weight, need_bias = (self.needs_input_grad + (False,))[:3]
        kernels = self.device.runs_kernels
        grad_input = grad_weight = grad_bias = None
        if need_input:
            conv = self._conv()
            grad_input = (conv.forward_gpu if kernels else conv.forward_cpu)(grad, self.weight)
            conv.release()
            H, W = self.x.shape[2:]
            if grad_input.shape[2:] != (H, W):
                grad_input = self.xp.ascontiguousarray(grad_input[:, :, :H, :W])
        if need_weight:
            conv = self._conv()
            grad_weight = (conv.grad_weight_gpu if kernels else conv.grad_weight_cpu)(grad, self._extended(self.x),
                                                                                      self.weight)
        if need_bias and kernels:  # conv2d's bias-gradient kernel: the same per-channel sums
            grad_bias = self._conv()._grad_bias(_kernels.kernel_array(self.xp, grad))
        elif need_bias:
            grad_bias = grad.sum(axis=(0, 2, 3))
        return (grad_input, grad_weight, grad_bias)[: len(self.inputs)]


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1) -> Tensor:
    """2-D transposed convolution, as ``torch.nn.functional.conv_transpose2d`` (conv2d's adjoint, also
    called a fractionally strided convolution or, loosely, a deconvolution).

    Args:
        input: (N, C_in, H, W) or unbatched (C_in, H, W), floating point, H and W >= 1.
        weight: (C_in, C_out/groups, R, S), the same dtype as input.
        bias: (C_out,) or None.
        stride, dilation: an int or a (height, width) pair, each >= 1.
        padding: an int or a pair (>= 0): removed from each side of the full output.
        output_padding: an int or a pair (>= 0), added at the bottom and right; along each axis smaller
            than the stride or than the dilation (PyTorch's rule).
        groups: >= 1, dividing C_in.

    On ``cuda`` and ``cudasim`` the kernels take float32 only: another dtype raises TypeError there.
    The input gradient is conv2d's forward, which may run Winograd's algorithm (3x3 at stride 1 with
    enough channels), within conv2d's error for it. Errors name the argument, its value and the shapes:
    ValueError for shapes and values, TypeError for dtypes and argument types.

    Returns:
        (N, C_out, H_out, W_out), or (C_out, H_out, W_out) for unbatched input, with
        H_out = (H-1)*stride_h - 2*padding_h + dilation_h*(R-1) + output_padding_h + 1 (>= 1), W_out likewise.
    """
    op = "conv_transpose2d"
    x, unbatched = _shapes.batched_input(input, op)
    device = x.device
    weight = as_tensor(weight, "weight", device)
    inputs = [x, weight] if bias is None else [x, weight, as_tensor(bias, "bias", device)]
    bias_key = None if bias is None else (inputs[2].shape, inputs[2].dtype)
    arguments = (x.shape, x.dtype, weight.shape, weight.dtype, bias_key, stride, padding, output_padding, groups,
                 dilation, device)
    if all(_shapes.plain(value) for value in (stride, padding, output_padding, dilation)) and type(groups) is int:
        geometry = _checked_arguments(*arguments)
    else:  # other types of arguments (lists, NumPy integers, floats, which raise) are checked afresh
        geometry = _checked_arguments.__wrapped__(*arguments)
    if device.runs_kernels:  # settings, not arguments: outside the kept result
        if geometry[3] > Conv2d.MAX_GRID_YZ:
            raise ValueError(f"{op}: the kernels of device '{device}' run at most {Conv2d.MAX_GRID_YZ} groups, "
                             f"got {geometry[3]}")
        if max(x.shape[2] * x.shape[3], geometry[4][0] * geometry[4][1]) > Conv2d.MAX_PLANE:
            raise ValueError(
                f"{op}: the kernels of device '{device}' take planes of at most {Conv2d.MAX_PLANE} values, got "
                f"input shape {x.shape} and output planes of {geometry[4][0]}x{geometry[4][1]}; the cpu takes any size"
            )
    y = ConvTranspose2d(*geometry).apply(*inputs)
    return _shapes.unbatched_output(y, unbatched)


@functools.lru_cache(maxsize=1024)
def _checked_arguments(x_shape: tuple, dtype, weight_shape: tuple, weight_dtype, bias, stride, padding, output_padding,
                       groups, dilation, device) -> tuple:
    """conv_transpose2d's checks of its arguments and of the input, weight and bias (``bias``: its (shape,
    dtype), or None) shapes and dtypes on ``device``; ConvTranspose2d's arguments (stride, conv2d pads,
    dilation, groups, output (H_out, W_out), grid (H', W')), as ints. Kept for plain arguments, as
    conv2d's are; a check that fails raises, and nothing is kept."""
    op = "conv_transpose2d"
    shapes = f"input shape {x_shape}, weight shape {weight_shape}"
    groups = checked_weight_and_groups(op, dtype, weight_shape, weight_dtype, groups, "(C_in, C_out/groups, R, S)")
    channels = x_shape[1]
    if weight_shape[0] != channels:
        raise ValueError(
            f"{op}: input has {channels} channels but weight {weight_shape} expects {weight_shape[0]} "
            f"(weight.shape[0], the input channels of a transposed convolution's weight); input shape {x_shape}"
        )
    if channels % groups:
        raise ValueError(f"{op}: groups={groups} does not divide the input's {channels} channels ({shapes})")
    _kernels.require_float32(op, dtype, device, x_shape, weight_shape)
    out_channels = weight_shape[1] * groups
    if bias is not None:
        bias_shape, bias_dtype = bias
        if bias_shape != (out_channels,):
            raise ValueError(
                f"{op}: bias must have shape ({out_channels},) (weight.shape[1] * groups) for weight {weight_shape} "
                f"with groups={groups}, got {bias_shape}"
            )
        if bias_dtype != dtype:
            raise TypeError(f"{op}: bias has dtype {bias_dtype} but input and weight have dtype {dtype}")
    stride_hw = _shapes.pair(stride, "stride", op, minimum=1)
    padding_hw = _shapes.pair(padding, "padding", op, minimum=0)
    output_padding_hw = _shapes.pair(output_padding, "output_padding", op, minimum=0)
    dilation_hw = _shapes.pair(dilation, "dilation", op, minimum=1)
    if any(extra >= step and extra >= spread for extra, step, spread in zip(output_padding_hw, stride_hw, dilation_hw)):
        raise ValueError(
            f"{op}: output_padding {output_padding_hw} must be smaller than either the stride {stride_hw} or the "
            f"dilation {dilation_hw} along each axis (PyTorch's rule); {shapes}"
        )
    if x_shape[2] < 1 or x_shape[3] < 1:
        raise ValueError(f"{op}: the input must have at least one row and one column, got input shape {x_shape}")
    kernel_hw = weight_shape[2:]
    output_hw = tuple(full_size(size, kernel, step, pad, spread) + extra for size, kernel, step, pad, spread, extra
                      in zip(x_shape[2:], kernel_hw, stride_hw, padding_hw, dilation_hw, output_padding_hw))
    if min(output_hw) < 1:
        raise ValueError(
            f"{op}: the output would be {output_hw[0]}x{output_hw[1]} ((H-1)*stride - 2*padding + "
            f"dilation*(kernel-1) + output_padding + 1), too small: {shapes}, stride {stride_hw}, padding "
            f"{padding_hw}, output_padding {output_padding_hw}, dilation {dilation_hw}"
        )
    (pad_h, pad_w), (extra_h, extra_w) = padding_hw, output_padding_hw
    pads = (pad_h, max(0, pad_h - extra_h), pad_w, max(0, pad_w - extra_w))
    grid_hw = (_shapes.output_size(output_hw[0], kernel_hw[0], stride_hw[0], pads[0], pads[1], dilation_hw[0]),
               _shapes.output_size(output_hw[1], kernel_hw[1], stride_hw[1], pads[2], pads[3], dilation_hw[1]))
    return stride_hw, pads, dilation_hw, groups, output_hw, grid_hw


def full_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Output length along one axis without output_padding: (size-1)*stride - 2*padding + dilation*(kernel-1) + 1."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + 1


def output_padding_for(output_size, input_shape: tuple, kernel_hw, stride_hw, padding_hw, dilation_hw,
                       op: str = "ConvTranspose2d") -> tuple[int, int]:
    """The output_padding that gives ``output_size``, as ``torch.nn.ConvTranspose2d.forward``'s.

    Args:
        output_size: (H_out, W_out), or the whole output shape: with (N, C_out) before them for an
            (N, C_in, H, W) input, C_out for an unbatched (C_in, H, W) one (only the last two count).
        input_shape: the input's shape; kernel_hw, stride_hw, padding_hw, dilation_hw: (height, width) pairs.

    Raises ValueError naming the sizes reachable (from the output without output_padding to that plus
    stride - 1) where output_size is not one of them or not a size, TypeError where it is no sequence.
    """
    if len(input_shape) not in (3, 4):
        raise ValueError(f"{op}: input must be (N, C, H, W) or unbatched (C, H, W), got shape {tuple(input_shape)}")
    try:
        sizes = tuple(output_size)
    except TypeError:
        raise TypeError(f"{op}: output_size must be a sequence of ints, got {output_size!r}") from None
    if len(sizes) == len(input_shape):
        sizes = sizes[-2:]
    if len(sizes) != 2 or any(isinstance(size, bool) or not isinstance(size, numbers.Integral) for size in sizes):
        raise ValueError(f"{op}: for a {len(input_shape)}-D input, output_size must be 2 or {len(input_shape)} ints, "
                         f"got {output_size!r}")
    smallest = tuple(full_size(size, kernel, step, pad, spread) for size, kernel, step, pad, spread
                     in zip(input_shape[-2:], kernel_hw, stride_hw, padding_hw, dilation_hw))
    largest = tuple(size + step - 1 for size, step in zip(smallest, stride_hw))
    if any(not low <= size <= high for size, low, high in zip(sizes, smallest, largest)):
        raise ValueError(
            f"{op}: requested an output size of {tuple(int(size) for size in sizes)}, but valid sizes range from "
            f"{smallest} to {largest} (for an input of {tuple(input_shape[-2:])}, stride {tuple(stride_hw)}, "
            f"padding {tuple(padding_hw)}, dilation {tuple(dilation_hw)}, kernel {tuple(kernel_hw)})"
        )
    return tuple(int(size) - low for size, low in zip(sizes, smallest))
