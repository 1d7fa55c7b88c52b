"""Softmax and log-softmax along one dimension, written once against the device's array module.

Both subtract the maximum along ``dim`` before exponentiating, so logits of 1e4 do not overflow.
A row holding +inf, or only -inf, gives NaN (inf - inf), as in PyTorch.
"""

from __future__ import annotations

import numbers

import numpy

from ..autograd import Function
from ..tensor import Tensor, as_tensor


def shifted_logits(xp, x, axis: int):
    """(x - max(x), log(sum(exp(x - max(x))))) along ``axis`` (kept as a size-1 axis)."""
    with numpy.errstate(invalid="ignore", divide="ignore", over="ignore"):
        shifted = x - x.max(axis=axis, keepdims=True)
        log_sum = xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
    return shifted, log_sum


class _AlongAxis(Function):
    """Shared shape handling: a 0-d input is treated as shape (1,), and an empty input is its own output."""

    uses_output = True

    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, x):
        shape = x.shape
        if x.size == 0:  # max over an empty axis is undefined; there is nothing to compute
            self.y = x.copy()
            return self.y
        self.y = self.compute(x.reshape(1) if x.ndim == 0 else x).reshape(shape)
        return self.y


class Softmax(_AlongAxis):
    """y = exp(x) / sum(exp(x)) along ``axis``; x: any shape."""

    def compute(self, x):
        shifted, log_sum = shifted_logits(self.xp, x, self.axis)
        return self.xp.exp(shifted - log_sum)

    def backward(self, grad_output):
        # dx = y * (g - sum(g * y)), the sum along the softmax axis.
        y, grad = self.y, grad_output
        if y.ndim == 0:
            y, grad = y.reshape(1), grad.reshape(1)
        dot = (grad * y).sum(axis=self.axis, keepdims=True)
        return ((y * (grad - dot)).reshape(grad_output.shape),)


class LogSoftmax(_AlongAxis):
    """y = x - log(sum(exp(x))) along ``axis``; x: any shape."""

    def compute(self, x):
        shifted, log_sum = shifted_logits(self.xp, x, self.axis)
        return shifted - log_sum

    def backward(self, grad_output):
        # dx = g - softmax * sum(g), the sum along the softmax axis.
        y, grad = self.y, grad_output
        if y.ndim == 0:
            y, grad = y.reshape(1), grad.reshape(1)
        total = grad.sum(axis=self.axis, keepdims=True)
        return ((grad - self.xp.exp(y) * total).reshape(grad_output.shape),)


def _checked(input, dim, dtype, op: str):
    """The input as a floating-point Tensor (cast to ``dtype`` first when given) and ``dim`` as an axis."""
    x = as_tensor(input, f"{op}: input")
    if dtype is not None:
        dtype = numpy.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"{op}: dtype must be a floating-point type, got {dtype}")
        x = x.to(dtype=dtype)
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be a floating-point tensor, got dtype {x.dtype} (shape {x.shape})")
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    bound = max(x.ndim, 1)  # a 0-d tensor accepts dim 0 and -1, as in PyTorch
    if not -bound <= dim < bound:
        raise ValueError(
            f"{op}: dim={dim} is out of range for input of shape {x.shape} (expected {-bound} to {bound - 1})"
        )
    return x, int(dim) % bound


def softmax(input, dim: int, *, dtype=None) -> Tensor:
    """Softmax along ``dim``. input: any shape; output: the same shape, summing to 1 along ``dim``.

    Args:
        dim: the dimension to normalise (required; negative counts from the end).
        dtype: when given, the input is cast to it first (as PyTorch's ``dtype=``).
    """
    x, axis = _checked(input, dim, dtype, "softmax")
    return Softmax(axis).apply(x)


def log_softmax(input, dim: int, *, dtype=None) -> Tensor:
    """log(softmax(input, dim)), computed without forming the softmax. Same arguments as :func:`softmax`."""
    x, axis = _checked(input, dim, dtype, "log_softmax")
    return LogSoftmax(axis).apply(x)
