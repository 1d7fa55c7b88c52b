"""Inverted dropout: zero each element with probability p, scale the kept ones by 1 / (1 - p).

The mask comes from the global generator (:func:`gpucnn.random.generator`), is drawn on the host and
moved to the tensor's device, so a seed gives the same mask on every device.
"""

from __future__ import annotations

import numbers

import numpy

from .. import random
from ..autograd import Function
from ..tensor import Tensor, as_tensor
from .math import written_in_place


class Dropout(Function):
    """y = x * mask, mask = keep / (1 - p) with keep ~ Bernoulli(1 - p); x: any shape. With ``channel_axes``
    (dropout2d) one draw a channel: the mask has x's first ``channel_axes`` sizes and 1 after, broadcast."""

    uses_inputs = False

    def __init__(self, p: float, channel_axes: int | None = None):
        self.p, self.channel_axes = p, channel_axes

    def forward(self, x):
        shape = x.shape if self.channel_axes is None else x.shape[:self.channel_axes] + (1,) * (
            x.ndim - self.channel_axes)
        keep = random.generator().random(shape) >= self.p
        # p = 1 keeps nothing; the scale would be 1/0, so the mask is all zeros.
        scale = 0.0 if self.p == 1 else 1.0 / (1.0 - self.p)
        self.mask = self.device.asarray((keep * scale).astype(x.dtype))
        # A multiply, not a select: NaN and inf become NaN where dropped (inf * 0), as in PyTorch.
        with numpy.errstate(invalid="ignore"):
            return x * self.mask

    def backward(self, grad_output):
        return (grad_output * self.mask,)


def _checked(input, p, op: str) -> Tensor:
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"{op}: p must be a real number in [0, 1], got {p!r}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: probability p has to be between 0 and 1, but got {p!r}")
    x = as_tensor(input, f"{op}: input")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be a floating-point tensor, got dtype {x.dtype} (shape {x.shape})")
    return x


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Inverted dropout. input: any shape; output: the same shape and dtype.

    With ``training=False`` or ``p = 0`` (or an empty input) the input itself is returned; ``p = 1``
    gives zeros (NaN/inf inputs give NaN, as in PyTorch). ``inplace=True`` as :func:`gpucnn.nn.functional.relu`'s.
    """
    x = _checked(input, p, "dropout")
    if not training or p == 0 or x.numel() == 0:
        return x
    if inplace:
        return written_in_place(input, lambda x: Dropout(float(p)).apply(x), "dropout")
    return Dropout(float(p)).apply(x)


def dropout2d(input, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Channel dropout: each channel of (N, C, H, W), or of unbatched (C, H, W), zeroed whole with probability
    p, the kept ones scaled by 1 / (1 - p); as ``dropout`` otherwise."""
    x = _checked(input, p, "dropout2d")
    if x.ndim not in (3, 4):
        raise ValueError(f"dropout2d: input must be (N, C, H, W) or (C, H, W), got shape {x.shape}")
    if not training or p == 0 or x.numel() == 0:
        return x
    if inplace:
        return written_in_place(input, lambda x: Dropout(float(p), x.ndim - 2).apply(x), "dropout2d")
    return Dropout(float(p), x.ndim - 2).apply(x)
