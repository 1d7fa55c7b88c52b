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
from .relu import check_not_inplace


class Dropout(Function):
    """y = x * mask, mask = keep / (1 - p) with keep ~ Bernoulli(1 - p); x: any shape."""

    uses_inputs = False

    def __init__(self, p: float):
        self.p = p

    def forward(self, x):
        keep = random.generator().random(x.shape) >= self.p
        # p = 1 keeps nothing; the scale would be 1/0, so the mask is all zeros.
        scale = 0.0 if self.p == 1 else 1.0 / (1.0 - self.p)
        self.mask = self.device.asarray((keep * scale).astype(x.dtype))
        # A multiply, not a select: NaN and inf become NaN where dropped (inf * 0), as in PyTorch.
        with numpy.errstate(invalid="ignore"):
            return x * self.mask

    def backward(self, grad_output):
        return (grad_output * self.mask,)


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Inverted dropout. input: any shape; output: the same shape and dtype.

    With ``training=False`` or ``p = 0`` (or an empty input) the input itself is returned; ``p = 1``
    gives zeros (NaN/inf inputs give NaN, as in PyTorch).
    """
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"dropout: p must be a real number in [0, 1], got {p!r}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability p has to be between 0 and 1, but got {p!r}")
    check_not_inplace(inplace, "dropout")
    x = as_tensor(input, "dropout: input")
    if x.dtype.kind != "f":
        raise TypeError(f"dropout: input must be a floating-point tensor, got dtype {x.dtype} (shape {x.shape})")
    if not training or p == 0 or x.numel() == 0:
        return x
    return Dropout(float(p)).apply(x)
