"""Argument checking and shape arithmetic shared by the convolution and pooling ops.

Every error names the op, the argument, its value and the shapes involved.
"""

from __future__ import annotations

import numbers

from ..tensor import Tensor, as_tensor
from . import math as tensor_math


def pair(value, name: str, op: str, minimum: int) -> tuple[int, int]:
    """``value`` (an int or a sequence of two ints) as ``(height, width)``, each at least ``minimum``."""
    # Plain ints, alone or in a tuple, skip the ABC checks below (a few us per call on small layers).
    items = (value, value) if type(value) is int else value
    if type(items) is tuple and len(items) == 2 and type(items[0]) is int and type(items[1]) is int:
        if items[0] >= minimum and items[1] >= minimum:
            return items
    items = (value, value) if isinstance(value, numbers.Integral) else value
    try:
        items = tuple(items)
    except TypeError:
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}") from None
    if len(items) != 2 or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in items):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if any(v < minimum for v in items):
        raise ValueError(f"{op}: {name} must be at least {minimum}, got {value!r}")
    return int(items[0]), int(items[1])


def plain(value) -> bool:
    """Whether ``value`` is an int, a str or a tuple of two ints: the arguments for which the ops keep the
    result of their checks (conv2d's, the pooling ops' geometry), since a layer repeats them on every call.
    Floats and bools, which the checks refuse, compare equal to ints ((1.0, True) == (1, 1)), and would
    find a kept result."""
    kind = type(value)
    return kind is int or kind is str or (kind is tuple and len(value) == 2 and type(value[0]) is int
                                          and type(value[1]) is int)


def output_size(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int, dilation: int,
                ceil_mode: bool = False) -> int:
    """Output length along one axis: floor((size + pads - dilation*(kernel-1) - 1) / stride) + 1.

    With ``ceil_mode`` the division rounds up, but the last window must start inside the input or
    the leading padding (PyTorch's rule), so it never lies wholly in the trailing padding; a window
    longer than the padded input still gives one (clipped) output when it overshoots by less than
    the stride.
    """
    span = size + pad_begin + pad_end - dilation * (kernel - 1) - 1
    if span < 0:
        return 1 if ceil_mode and span + stride - 1 >= 0 else 0
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


def conv_padding(padding, input_hw, kernel_hw, stride_hw, dilation_hw, op: str) -> tuple[int, int, int, int]:
    """Explicit ``(top, bottom, left, right)`` pads for a conv ``padding`` argument.

    ``padding`` is an int, a pair, ``'valid'`` (no padding) or ``'same'``: the output is
    ceil(input / stride) along each axis, the padding split evenly with any odd pixel at the
    bottom/right (TensorFlow's rule; for stride 1 it is PyTorch's 'same').
    """
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding != "same":
            raise ValueError(f"{op}: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
        pads = []
        for size, kernel, stride, dilation in zip(input_hw, kernel_hw, stride_hw, dilation_hw):
            out = -(-size // stride)
            total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        return tuple(pads)
    pad_h, pad_w = pair(padding, "padding", op, minimum=0)
    return pad_h, pad_h, pad_w, pad_w


def batched_input(input, op: str) -> tuple[Tensor, bool]:
    """``input`` as an (N, C, H, W) Tensor, and whether it was unbatched (C, H, W) and got N = 1."""
    x = as_tensor(input, "input")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be a floating-point tensor, got dtype {x.dtype}")
    if x.ndim == 3:
        return tensor_math.reshape(x, (1,) + x.shape), True
    if x.ndim != 4:
        raise ValueError(f"{op}: input must be (N, C, H, W) or unbatched (C, H, W), got shape {x.shape}")
    return x, False


def unbatched_output(y: Tensor, unbatched: bool) -> Tensor:
    """Undoes :func:`batched_input`'s added batch dimension."""
    return tensor_math.reshape(y, y.shape[1:]) if unbatched else y


def check_window_fits(op: str, input_shape: tuple, pads: tuple, kernel_hw, dilation_hw, kernel_name: str) -> None:
    """ValueError when the dilated window is larger than the padded input along H or W."""
    padded = (input_shape[2] + pads[0] + pads[1], input_shape[3] + pads[2] + pads[3])
    window = tuple(d * (k - 1) + 1 for k, d in zip(kernel_hw, dilation_hw))
    if window[0] > padded[0] or window[1] > padded[1]:
        raise ValueError(
            f"{op}: {kernel_name} {tuple(kernel_hw)} with dilation {tuple(dilation_hw)} spans {window}, larger than "
            f"the padded input {padded} (input shape {input_shape}, pads top/bottom/left/right {pads})"
        )
