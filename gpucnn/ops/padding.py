"""Padding: ``pad`` as ``torch.nn.functional.pad``, in the modes 'constant', 'reflect', 'replicate' and
'circular', written once against the device's array module.

``pad`` lists (before, after) pairs from the last dimension backwards, as PyTorch's: (left, right, top,
bottom) pads W by left and right and H by top and bottom. A negative pad removes that many elements from
that side. The constant mode pads any number of dimensions of any dtype; the others pad the last 1, 2 or 3
dimensions of a tensor with 1 or 2 more dimensions (PyTorch's combinations).

Each output element of the other modes copies one input element, chosen along every padded dimension on
its own: output position o reads input position i = o - before, mapped into [0, size) by reflection
about the first and last elements (reflect: -1 reads 1), by clipping (replicate) or modulo size
(circular, which first crops what negative pads remove, as PyTorch's). The forward gathers along each
padded dimension in turn; the backward adds the gradient back along each, in the reverse order.
"""

from __future__ import annotations

import numbers

import numpy

from ..autograd import Function
from ..tensor import Tensor, as_tensor

MODES = ("constant", "reflect", "replicate", "circular")


def _positions(mode: str, size: int, before: int, after: int):
    """The input position that each output position along one dimension reads (int64, size + before + after)."""
    i = numpy.arange(-before, size + after, dtype=numpy.int64)
    if mode == "reflect":
        i = numpy.abs(i)
        return numpy.where(i >= size, 2 * (size - 1) - i, i)
    if mode == "replicate":
        return numpy.clip(i, 0, size - 1)
    start, kept = max(-before, 0), size - max(-before, 0) - max(-after, 0)  # circular: crops first, as PyTorch
    return start + numpy.arange(-max(before, 0), kept + max(after, 0), dtype=numpy.int64) % max(kept, 1)


class Pad(Function):
    """x padded by ``pads``, one (before, after) pair per dimension of x, in ``mode`` (constant: ``value``)."""

    uses_inputs = False  # backward reads shapes only

    def __init__(self, pads: tuple, mode: str, value):
        self.pads, self.mode, self.value = pads, mode, value

    def _slices(self, shape):
        """(input slice, output slice) of the constant mode: the part of x kept, and where it lands."""
        kept, placed = [], []
        for size, (before, after) in zip(shape, self.pads):
            start, stop = max(-before, 0), size - max(-after, 0)
            kept.append(slice(start, max(stop, start)))
            placed.append(slice(max(before, 0), max(before, 0) + max(stop - start, 0)))
        return tuple(kept), tuple(placed)

    def forward(self, x):
        xp = self.xp
        self.input_shape = x.shape
        if self.mode == "constant":
            output = xp.full(tuple(size + b + a for size, (b, a) in zip(x.shape, self.pads)), self.value, x.dtype)
            kept, placed = self._slices(x.shape)
            output[placed] = x[kept]
            return output
        self.positions = []
        for axis, (before, after) in enumerate(self.pads):
            if before or after:
                positions = xp.asarray(_positions(self.mode, x.shape[axis], before, after))
                self.positions.append((axis, positions))
                x = xp.take(x, positions, axis=axis)
        return x

    def backward(self, grad):
        xp = self.xp
        if self.mode == "constant":
            grad_x = xp.zeros(self.input_shape, grad.dtype)
            kept, placed = self._slices(self.input_shape)
            grad_x[kept] = grad[placed]
            return (grad_x,)
        for axis, positions in reversed(self.positions):
            shape = grad.shape[:axis] + (self.input_shape[axis],) + grad.shape[axis + 1:]
            summed = xp.zeros(shape, grad.dtype)
            xp.add.at(summed, (slice(None),) * axis + (positions,), grad)
            grad = summed
        return (grad,)


def _pad_pairs(pad, shape: tuple, op: str) -> tuple:
    """``pad`` (PyTorch's flat list, last dimension first) as one (before, after) pair per dimension of ``shape``."""
    try:
        items = tuple(pad)
    except TypeError:
        raise TypeError(f"{op}: pad must be a tuple of ints, got {pad!r}") from None
    if any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in items):
        raise TypeError(f"{op}: pad must be a tuple of ints, got {pad!r}")
    if len(items) % 2:
        raise ValueError(f"{op}: pad must have an even length, a (before, after) pair per dimension, got {pad!r}")
    if len(items) // 2 > len(shape):
        raise ValueError(f"{op}: pad {pad!r} pads {len(items) // 2} dimensions, but the input (shape {shape}) has "
                         f"{len(shape)}")
    pairs = [(0, 0)] * (len(shape) - len(items) // 2)
    pairs += [(int(items[i]), int(items[i + 1])) for i in range(len(items) - 2, -1, -2)]
    return tuple(pairs)


def pad(input, pad, mode: str = "constant", value=None) -> Tensor:
    """``input`` padded as ``torch.nn.functional.pad``.

    Args:
        input: any shape (the constant mode), or for the other modes (N, C, *d) or unbatched (C, *d) with
            ``len(pad) // 2`` = len(d) padded dimensions, 1 to 3.
        pad: (before, after) pairs from the last dimension backwards, e.g. (left, right, top, bottom); a
            negative pad crops that side.
        mode: 'constant' (fills with ``value``, default 0), 'reflect' (mirrors about the edge element: each
            pad at most size - 1), 'replicate' (repeats the edge element) or 'circular' (wraps around: each
            pad at most size).
        value: the constant mode's fill; the other modes take none.

    Returns:
        a Tensor of input's dtype, each padded dimension longer by its two pads.
    """
    op = "pad"
    x = as_tensor(input, f"{op}: input")
    if mode not in MODES:
        raise ValueError(f"{op}: mode must be one of {MODES}, got {mode!r}")
    pairs = _pad_pairs(pad, x.shape, op)
    if mode == "constant":
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
            raise TypeError(f"{op}: value must be a real number, got {value!r}")
        value = 0 if value is None else value
    else:
        if value is not None and value != 0:
            raise ValueError(f"{op}: mode {mode!r} takes no value, got value={value!r}")
        padded = len(pad) // 2
        if not 1 <= padded <= 3 or x.ndim not in (padded + 1, padded + 2):
            raise ValueError(f"{op}: mode {mode!r} pads the last 1, 2 or 3 dimensions of an input with 1 or 2 more "
                             f"(batch and channels), got {len(pad)} pads for input shape {x.shape}")
        for axis in range(x.ndim - padded, x.ndim):
            size, (before, after) = x.shape[axis], pairs[axis]
            if mode == "reflect" and max(before, after) >= size:
                raise ValueError(f"{op}: reflect pads ({before}, {after}) of dim {axis} must be less than its size "
                                 f"{size} (input shape {x.shape})")
            kept = size - max(-before, 0) - max(-after, 0)
            if mode == "circular" and max(before, after) > kept:
                raise ValueError(f"{op}: circular pads ({before}, {after}) of dim {axis} must be at most its size "
                                 f"{kept} (after any cropping): they would wrap around more than once (input shape "
                                 f"{x.shape})")
            if size == 0:
                raise ValueError(f"{op}: mode {mode!r} cannot pad dim {axis} of size 0 (input shape {x.shape})")
    for axis, (size, (before, after)) in enumerate(zip(x.shape, pairs)):
        if size + before + after < 0:
            raise ValueError(f"{op}: pads ({before}, {after}) of dim {axis} leave a negative size "
                             f"{size + before + after} (input shape {x.shape})")
    return Pad(pairs, mode, value).apply(x)


__all__ = ["MODES", "Pad", "pad"]
