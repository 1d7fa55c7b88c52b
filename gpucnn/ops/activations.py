"""Activations beyond ReLU and leaky ReLU (:mod:`gpucnn.ops.relu`), elementwise on any shape, with
PyTorch's names, arguments, defaults and gradients: hardtanh, relu6, elu, selu, celu, gelu, silu, mish,
hardswish, hardsigmoid, softplus, logsigmoid, prelu, softsign and tanhshrink.

Each is written once against the device's array module (NumPy on ``cpu`` and ``cudasim``, CuPy on
``cuda``), in the input's floating-point dtype. The gradients are the exact derivatives, and at the
kinks and at NaN they are PyTorch's: hardtanh and relu6 pass nothing at either bound and pass the
gradient at NaN; elu, selu and celu take the negative side's slope at 0; hardswish's slope is 0 at -3
and 1 at 3; hardsigmoid passes nothing at +-3.

gelu's exact form takes erfc (:func:`gpucnn.ops.elementwise.erfc_array`, W. J. Cody's approximations in
float64), NumPy having none.
"""

from __future__ import annotations

import contextlib
import math
import numbers

import numpy

from ..autograd import Function
from ..tensor import Tensor, as_tensor
from ._select import passed, select
from .elementwise import erfc_array
from .math import abs as tensor_abs
from .math import tanh, unbroadcast, written_in_place

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_TANH_GELU_BETA = math.sqrt(2 / math.pi)
_TANH_GELU_KAPPA = 0.044715


def _quiet(xp):
    """NumPy's floating-point warnings off (branches that ``where`` drops may overflow); nothing on CuPy."""
    return numpy.errstate(all="ignore") if xp is numpy else contextlib.nullcontext()


def _sigmoid(xp, x):
    """1 / (1 + exp(-x)) from exp(-|x|), so that no exp overflows."""
    e = xp.exp(-xp.abs(x))
    return select(xp, x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _softplus(xp, x):
    """log(1 + exp(x)) as max(x, 0) + log1p(exp(-|x|)): no exp overflows."""
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


class _Elementwise(Function):
    """y = f(x) elementwise: a subclass gives ``value(xp, x)`` and ``slope(xp, x)`` (dy/dx at x), on arrays of
    the device's module; the gradient is the upstream gradient times the slope."""

    def forward(self, x):
        self.x = x
        with _quiet(self.xp):
            return self.xp.asarray(self.value(self.xp, x)).astype(x.dtype, copy=False)

    def backward(self, grad):
        with _quiet(self.xp):
            return (self.xp.asarray(grad * self.slope(self.xp, self.x)).astype(grad.dtype, copy=False),)


def _relu6(xp, shifted):
    """min(max(shifted, 0), 6), in place where ``shifted`` is an array (NumPy makes 0-d results scalars), for
    hardswish and hardsigmoid (see Hardtanh.value)."""
    shifted = xp.asarray(shifted)
    return shifted.clip(shifted.dtype.type(0), shifted.dtype.type(6), out=shifted)


class Hardtanh(_Elementwise):
    """x clipped to [min_val, max_val], NaN kept; the gradient passes strictly inside, and at NaN."""

    def __init__(self, min_val: float, max_val: float):
        self.min_val, self.max_val = min_val, max_val

    def value(self, xp, x):
        """One clip with the bounds in x's dtype: 51 us on 451,584 float32 on the 2-core AMD EPYC VM, where
        maximum and minimum with a Python float took 422 (NumPy's loops for an array and a scalar).
        -0.0 stays -0.0 inside the bounds from NumPy 2.1 on, as in PyTorch (+0.0 before)."""
        return x.clip(x.dtype.type(self.min_val), x.dtype.type(self.max_val))

    def backward(self, grad):
        stopped = self.x <= self.min_val
        stopped |= self.x >= self.max_val
        return (passed(self.xp, ~stopped, grad),)


class ELU(_Elementwise):
    """PyTorch's elu family: scale * x for x > 0 (and NaN), else scale * alpha * (exp(input_scale * x) - 1).
    ELU is (alpha, 1, 1), SELU (SELU_ALPHA, SELU_SCALE, 1), CELU (alpha, 1, 1 / alpha)."""

    def __init__(self, alpha: float, scale: float = 1.0, input_scale: float = 1.0):
        self.alpha, self.scale, self.input_scale = alpha, scale, input_scale

    def value(self, xp, x):
        negative = (self.scale * self.alpha) * xp.expm1(xp.minimum(x, 0) * self.input_scale)
        return select(xp, x <= 0, negative, x * self.scale)

    def slope(self, xp, x):
        negative = (self.scale * self.alpha * self.input_scale) * xp.exp(xp.minimum(x, 0) * self.input_scale)
        return select(xp, x <= 0, negative, self.scale)


class GELU(_Elementwise):
    """x * Phi(x), Phi the standard normal CDF ('none': 0.5 * erfc(-x / sqrt 2)), or its tanh approximation
    0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3))) ('tanh')."""

    def __init__(self, approximate: str):
        self.approximate = approximate

    def value(self, xp, x):
        if self.approximate == "tanh":
            return 0.5 * x * (1 + xp.tanh(_TANH_GELU_BETA * (x + _TANH_GELU_KAPPA * x * x * x)))
        return x * (0.5 * erfc_array(xp, -x * _SQRT_HALF))

    def slope(self, xp, x):
        if self.approximate == "tanh":
            inner = xp.tanh(_TANH_GELU_BETA * (x + _TANH_GELU_KAPPA * x * x * x))
            return 0.5 * (1 + inner) + 0.5 * x * (1 - inner * inner) * _TANH_GELU_BETA * (
                1 + 3 * _TANH_GELU_KAPPA * x * x)
        return 0.5 * erfc_array(xp, -x * _SQRT_HALF) + x * xp.exp(-0.5 * x * x) * _INV_SQRT_2PI


class SiLU(_Elementwise):
    """x * sigmoid(x) (swish)."""

    def value(self, xp, x):
        return x * _sigmoid(xp, x)

    def slope(self, xp, x):
        s = _sigmoid(xp, x)
        return s * (1 + x * (1 - s))


class Mish(_Elementwise):
    """x * tanh(softplus(x))."""

    def value(self, xp, x):
        return x * xp.tanh(_softplus(xp, x))

    def slope(self, xp, x):
        t = xp.tanh(_softplus(xp, x))
        return t + x * _sigmoid(xp, x) * (1 - t * t)


class Hardswish(_Elementwise):
    """x * min(max(x + 3, 0), 6) / 6; slope 0 up to -3 (included), x / 3 + 1/2 below 3, 1 from 3 (and at NaN)."""

    def value(self, xp, x):
        product = _relu6(xp, x + 3)
        product *= x
        product /= 6
        return product

    def slope(self, xp, x):
        return select(xp, x <= -3, 0, select(xp, x < 3, x / 3 + 0.5, 1))


class Hardsigmoid(_Elementwise):
    """min(max(x + 3, 0), 6) / 6; slope 1/6 strictly between -3 and 3, else 0 (at NaN too)."""

    def value(self, xp, x):
        ratio = _relu6(xp, x + 3)
        ratio /= 6
        return ratio

    def backward(self, grad):
        return (passed(self.xp, (self.x > -3) & (self.x < 3), grad / 6),)


class Softplus(_Elementwise):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold. The log is taken so that no exp
    overflows (PyTorch's gives inf where exp(beta x) overflows below the threshold)."""

    def __init__(self, beta: float, threshold: float):
        self.beta, self.threshold = beta, threshold

    def value(self, xp, x):
        scaled = x * self.beta
        return select(xp, scaled > self.threshold, x, _softplus(xp, scaled) / self.beta)

    def slope(self, xp, x):
        scaled = x * self.beta
        return select(xp, scaled > self.threshold, 1, _sigmoid(xp, scaled))


class LogSigmoid(_Elementwise):
    """log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)); slope sigmoid(-x)."""

    def value(self, xp, x):
        return xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))

    def slope(self, xp, x):
        return _sigmoid(xp, -x)


class PReLU(Function):
    """x where x > 0, else weight * x, weight (1,) shared or (C,) one per channel, C = x.shape[1]."""

    def forward(self, x, weight):
        self.x, self.weight = x, weight
        self.shape = (1, weight.size) + (1,) * (x.ndim - 2) if weight.size > 1 else ()
        w = weight.reshape(self.shape)
        return select(self.xp, x > 0, x, w * x)

    def backward(self, grad):
        xp = self.xp
        need_x, need_weight = self.needs_input_grad
        positive = self.x > 0
        grad_x = grad_weight = None
        if need_x:
            grad_x = select(xp, positive, grad, self.weight.reshape(self.shape) * grad)
        if need_weight:
            contributions = passed(xp, ~positive, self.x * grad)
            grad_weight = unbroadcast(xp, contributions, self.shape).reshape(self.weight.shape)
        return grad_x, grad_weight


# ---------------------------------------------------------------------------- public calls
def _float_input(input, op: str) -> Tensor:
    x = as_tensor(input, f"{op}: input")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be a floating-point tensor, got dtype {x.dtype} (shape {x.shape})")
    return x


def _real(value, name: str, op: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: {name} must be a real number, got {value!r}")
    return float(value)


def _applied(input, function: Function, inplace: bool, op: str) -> Tensor:
    """``function`` on ``input``, or written into it (``inplace``: :func:`gpucnn.ops.math.written_in_place`)."""
    x = _float_input(input, op)
    if inplace:
        return written_in_place(input, lambda x: function.apply(x), op)
    return function.apply(x)


def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """input clipped to [min_val, max_val]. input: any shape, floating point; output: its shape and dtype.
    ``inplace=True`` as :func:`gpucnn.ops.relu.relu`'s."""
    low, high = _real(min_val, "min_val", "hardtanh"), _real(max_val, "max_val", "hardtanh")
    if low > high:
        raise ValueError(f"hardtanh: min_val ({min_val}) must not be greater than max_val ({max_val})")
    return _applied(input, Hardtanh(low, high), inplace, "hardtanh")


def relu6(input, inplace: bool = False) -> Tensor:
    """min(max(input, 0), 6): hardtanh(input, 0, 6), whose gradient is 0 at 0 and at 6."""
    return _applied(input, Hardtanh(0.0, 6.0), inplace, "relu6")


def elu(input, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """input where > 0, else alpha * (exp(input) - 1)."""
    return _applied(input, ELU(_real(alpha, "alpha", "elu")), inplace, "elu")


def selu(input, inplace: bool = False) -> Tensor:
    """SELU_SCALE * elu(input, SELU_ALPHA): the self-normalising activation's fixed constants."""
    return _applied(input, ELU(SELU_ALPHA, SELU_SCALE), inplace, "selu")


def celu(input, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """max(0, input) + min(0, alpha * (exp(input / alpha) - 1)); alpha must not be 0."""
    alpha = _real(alpha, "alpha", "celu")
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0 (the input is divided by it)")
    return _applied(input, ELU(alpha, 1.0, 1 / alpha), inplace, "celu")


def gelu(input, approximate: str = "none") -> Tensor:
    """input * Phi(input), Phi the standard normal CDF; ``approximate='tanh'`` takes its tanh approximation."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return _applied(input, GELU(approximate), False, "gelu")


def silu(input, inplace: bool = False) -> Tensor:
    """input * sigmoid(input)."""
    return _applied(input, SiLU(), inplace, "silu")


def mish(input, inplace: bool = False) -> Tensor:
    """input * tanh(softplus(input))."""
    return _applied(input, Mish(), inplace, "mish")


def hardswish(input, inplace: bool = False) -> Tensor:
    """input * relu6(input + 3) / 6."""
    return _applied(input, Hardswish(), inplace, "hardswish")


def hardsigmoid(input, inplace: bool = False) -> Tensor:
    """relu6(input + 3) / 6."""
    return _applied(input, Hardsigmoid(), inplace, "hardsigmoid")


def softplus(input, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta * input)) / beta, and input itself where beta * input > threshold."""
    beta, threshold = _real(beta, "beta", "softplus"), _real(threshold, "threshold", "softplus")
    if beta == 0:
        raise ValueError("softplus: beta must not be 0 (the result is divided by it)")
    return _applied(input, Softplus(beta, threshold), False, "softplus")


def logsigmoid(input) -> Tensor:
    """log(sigmoid(input)), without overflow for large |input|."""
    return _applied(input, LogSigmoid(), False, "logsigmoid")


def prelu(input, weight) -> Tensor:
    """input where > 0, else weight * input: ``weight`` has 1 value, shared, or one per channel (dim 1 of
    an input of at least 2 dims), in input's dtype; both get gradients."""
    x = _float_input(input, "prelu")
    w = as_tensor(weight, "prelu: weight", x.device)
    if w.device != x.device:
        raise ValueError(f"prelu: weight is on {w.device} but input is on {x.device}")
    if w.ndim > 1:
        raise ValueError(f"prelu: weight must be a scalar or 1-D tensor, got shape {w.shape}")
    channels = x.shape[1] if x.ndim >= 2 else 1
    if w.numel() not in (1, channels):
        raise ValueError(f"prelu: weight has {w.numel()} values (shape {w.shape}) but the input (shape {x.shape}) "
                         f"has {channels} channels; it must have 1 value or one per channel")
    if w.dtype != x.dtype:
        raise TypeError(f"prelu: weight has dtype {w.dtype} but input has dtype {x.dtype}; they must match")
    return PReLU().apply(x, w)


def softsign(input) -> Tensor:
    """input / (1 + |input|)."""
    x = _float_input(input, "softsign")
    return x / (tensor_abs(x) + 1)


def tanhshrink(input) -> Tensor:
    """input - tanh(input)."""
    x = _float_input(input, "tanhshrink")
    return x - tanh(x)


__all__ = ["celu", "elu", "gelu", "hardsigmoid", "hardswish", "hardtanh", "logsigmoid", "mish", "prelu",
           "relu6", "selu", "silu", "softplus", "softsign", "tanhshrink"]
