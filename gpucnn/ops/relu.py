"""ReLU and leaky ReLU, elementwise on any shape.

The CUDA devices will run kernels for these (``forward_gpu``/``backward_gpu``); the cpu runs the
NumPy reference below.

Gradient at the kink and at NaN follows PyTorch: ReLU passes the upstream gradient unless the input
is <= 0 (so at exactly 0 the gradient is 0, and at NaN it passes); leaky ReLU passes it where the
input is > 0 and scales it by ``negative_slope`` elsewhere (at 0 and at NaN).
"""

from __future__ import annotations

import numbers

from ..autograd import Function
from ..tensor import Tensor, as_tensor


class ReLU(Function):
    """y = max(x, 0); x: any shape."""

    def forward_cpu(self, x):
        self.x = x
        # x <= 0 -> 0; anything else, NaN included, passes through.
        return self.xp.where(x <= 0, self.xp.zeros((), dtype=x.dtype), x)

    def backward_cpu(self, grad_output):
        return (self.xp.where(self.x <= 0, self.xp.zeros((), dtype=grad_output.dtype), grad_output),)


class LeakyReLU(Function):
    """y = x where x > 0, negative_slope * x elsewhere; x: any shape."""

    def __init__(self, negative_slope: float):
        self.negative_slope = negative_slope

    def forward_cpu(self, x):
        self.x = x
        slope = x.dtype.type(self.negative_slope)
        return self.xp.where(x > 0, x, x * slope)

    def backward_cpu(self, grad_output):
        slope = grad_output.dtype.type(self.negative_slope)
        return (self.xp.where(self.x > 0, grad_output, grad_output * slope),)


def _float_input(input, op: str) -> Tensor:
    x = as_tensor(input, f"{op}: input")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be a floating-point tensor, got dtype {x.dtype} (shape {x.shape})")
    return x


def _check_not_inplace(inplace, op: str) -> None:
    if inplace:
        raise ValueError(
            f"{op}: inplace=True is not supported (gpucnn ops never overwrite their input); "
            f"use the returned tensor"
        )


def relu(input, inplace: bool = False) -> Tensor:
    """Rectified linear unit, elementwise. input: any shape; output: the same shape and dtype.

    >>> relu(gpucnn.tensor([1.0, -2.0, 3.0, -1.0])).tolist()
    [1.0, 0.0, 3.0, 0.0]
    """
    _check_not_inplace(inplace, "relu")
    x = _float_input(input, "relu")
    return ReLU().apply(x)


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x where x > 0, else negative_slope * x. input: any shape; output: the same shape and dtype."""
    _check_not_inplace(inplace, "leaky_relu")
    if isinstance(negative_slope, bool) or not isinstance(negative_slope, numbers.Real):
        raise TypeError(f"leaky_relu: negative_slope must be a real number, got {negative_slope!r}")
    x = _float_input(input, "leaky_relu")
    return LeakyReLU(float(negative_slope)).apply(x)
