"""Elementwise functions beyond exp, log, sqrt and the activations, as torch's: sign and the roundings (whose
gradient is zero), reciprocal, rsqrt, square, log1p, expm1, log2, log10 and erf."""

from __future__ import annotations

import math
import numbers

import numpy

from ..autograd import Function
from ..tensor import Tensor
from .math import _float, mul


class Sign(Function):
    """-1, 0 or 1 by the sign of x (0 at NaN, as torch's; a bool stays itself); the gradient is zero."""

    uses_inputs = False

    def forward(self, x):
        self.shape = x.shape
        if x.dtype == numpy.bool_:
            return x.copy()
        return ((x > 0).astype(x.dtype) - (x < 0)).astype(x.dtype, copy=False)

    def backward(self, grad):
        return (self.xp.zeros(self.shape, dtype=grad.dtype),)


def sign(x: Tensor) -> Tensor:
    return Sign().apply(x)


class Rounding(Function):
    """round (half to even, to ``decimals`` places), floor, ceil or trunc (``kind``); an integer tensor stays
    itself. The gradient is zero, as torch's."""

    uses_inputs = False

    def __init__(self, kind: str, decimals: int = 0):
        self.kind, self.decimals = kind, decimals

    def forward(self, x):
        self.shape = x.shape
        if x.dtype.kind != "f":
            return x.copy()
        if self.kind == "round":
            return self.xp.round(x, self.decimals)
        return getattr(self.xp, self.kind)(x)

    def backward(self, grad):
        return (self.xp.zeros(self.shape, dtype=grad.dtype),)


def _rounding(x: Tensor, kind: str, decimals: int = 0) -> Tensor:
    if x.dtype == numpy.bool_:
        raise TypeError(f"{kind} is not defined for a bool tensor, as in torch")
    if isinstance(decimals, bool) or not isinstance(decimals, numbers.Integral):
        raise TypeError(f"round: decimals must be an int, got {decimals!r}")
    if decimals and x.dtype.kind != "f":
        raise TypeError(f"round: decimals={decimals} needs a floating-point tensor, got dtype {x.dtype}")
    return Rounding(kind, int(decimals)).apply(x)


def round(x: Tensor, decimals: int = 0) -> Tensor:
    """x rounded to the nearest integer, or to ``decimals`` places (negative: tens, hundreds...), halves to even."""
    return _rounding(x, "round", decimals)


def floor(x: Tensor) -> Tensor:
    return _rounding(x, "floor")


def ceil(x: Tensor) -> Tensor:
    return _rounding(x, "ceil")


def trunc(x: Tensor) -> Tensor:
    """x rounded toward zero."""
    return _rounding(x, "trunc")


class Reciprocal(Function):
    uses_inputs, uses_output = False, True

    def forward(self, x):
        with numpy.errstate(divide="ignore"):  # 1 / 0: inf, as torch's
            self.y = (1 / x).astype(x.dtype, copy=False)
        return self.y

    def backward(self, grad):
        return (-grad * self.y * self.y,)


def reciprocal(x: Tensor) -> Tensor:
    """1 / x; integer tensors give float32."""
    return Reciprocal().apply(_float(x))


class Rsqrt(Function):
    uses_inputs, uses_output = False, True

    def forward(self, x):
        with numpy.errstate(divide="ignore", invalid="ignore"):  # inf at 0, NaN below, as torch's
            self.y = (1 / self.xp.sqrt(x)).astype(x.dtype, copy=False)
        return self.y

    def backward(self, grad):
        return (-0.5 * grad * self.y * self.y * self.y,)


def rsqrt(x: Tensor) -> Tensor:
    """1 / sqrt(x); integer tensors give float32."""
    return Rsqrt().apply(_float(x))


def square(x: Tensor) -> Tensor:
    """x * x; an integer tensor stays in its dtype, a bool one gives int64, as torch's."""
    if x.dtype == numpy.bool_:
        x = x.to(dtype=numpy.int64)
    return mul(x, x)


class _Logarithm(Function):
    """log(x) / log(base) (base None: log(1 + x)); the gradient is 1 / (x log(base)), or 1 / (1 + x)."""

    def __init__(self, base):
        self.base = base

    def forward(self, x):
        self.x = x
        xp = self.xp
        with numpy.errstate(divide="ignore", invalid="ignore"):  # -inf at 0, NaN below, as torch's
            if self.base is None:
                return xp.log1p(x)
            return xp.log2(x) if self.base == 2 else xp.log10(x)

    def backward(self, grad):
        with numpy.errstate(divide="ignore"):
            if self.base is None:
                return (grad / (1 + self.x),)
            return (grad / (self.x * math.log(self.base)),)


def log1p(x: Tensor) -> Tensor:
    """log(1 + x), accurate where x is small; integer tensors give float32."""
    return _Logarithm(None).apply(_float(x))


def log2(x: Tensor) -> Tensor:
    return _Logarithm(2).apply(_float(x))


def log10(x: Tensor) -> Tensor:
    return _Logarithm(10).apply(_float(x))


class Expm1(Function):
    uses_inputs, uses_output = False, True

    def forward(self, x):
        self.y = self.xp.expm1(x)
        return self.y

    def backward(self, grad):
        return (grad * (self.y + 1),)


def expm1(x: Tensor) -> Tensor:
    """exp(x) - 1, accurate where x is small; integer tensors give float32."""
    return Expm1().apply(_float(x))


# W. J. Cody's rational Chebyshev approximations of erf and erfc ("Rational Chebyshev approximations for the error
# function", Math. Comp. 23 (1969) 631-638; the coefficients of netlib's specfun CALERF), good to about 1e-16 in
# float64: erf(x) = x A(x^2) / B(x^2) for |x| <= 0.46875; erfc(|x|) = exp(-x^2) C(|x|) / D(|x|) up to 4 and
# exp(-x^2) / |x| (1 / sqrt(pi) - P(1 / x^2) / (x^2 Q(1 / x^2))) beyond, where erf = 1 - erfc (sign of x).
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02, 3.20937758913846947e03,
          1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
_ERF_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01, 2.98635138197400131e02,
          8.81952221241769090e02, 1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03,
          2.15311535474403846e-8)
_ERF_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02, 1.62138957456669019e03,
          3.29079923573345963e03, 4.36261909014324716e03, 3.43936767414372164e03, 1.23033935480374942e03)
_ERF_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1, 1.60837851487422766e-2,
          6.58749161529837803e-4, 1.63153871373020978e-2)
_ERF_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1, 6.05183413124413191e-2,
          2.33520497626869185e-3)


def _ratio(t, numerator: tuple, denominator: tuple):
    """Cody's rational function of t: numerator[-1] leads, then each pair of coefficients in turn, the last
    of each added unmultiplied."""
    top, bottom = numerator[-1] * t, t
    for a, b in zip(numerator[:-2], denominator[:-1]):
        top, bottom = (top + a) * t, (bottom + b) * t
    return (top + numerator[-2]) / (bottom + denominator[-1])


def _erf_small(xp, x):
    """erf(x) for |x| <= 0.46875 (x clipped to [-0.5, 0.5] elsewhere: the caller keeps the values it wants)."""
    near = xp.clip(x, -0.5, 0.5)
    return near * _ratio(near * near, _ERF_A, _ERF_B)


def _erfc_large(xp, y):
    """erfc(y) for y >= 0.46875 (clipped to [0.46875, 30] elsewhere; erfc(30) is 0 in float64)."""
    middle = xp.clip(y, 0.46875, 4.0)  # clipped: each branch is computed everywhere, and must not overflow
    far = xp.clip(y, 4.0, 30.0)
    inverse_square = 1 / (far * far)
    return xp.where(
        y <= 4.0, xp.exp(-middle * middle) * _ratio(middle, _ERF_C, _ERF_D),
        xp.exp(-far * far) / far * (1 / math.sqrt(math.pi) - inverse_square * _ratio(inverse_square, _ERF_P, _ERF_Q)))


def erf_array(xp, x):
    """erf of a floating-point array of ``xp``, computed in float64 (Cody's approximations above) and returned in
    x's dtype; NaN stays NaN, +-inf give +-1."""
    x64 = x.astype(numpy.float64)
    y = xp.abs(x64)
    result = xp.where(y <= 0.46875, _erf_small(xp, x64), xp.copysign(1 - _erfc_large(xp, y), x64))
    return xp.where(xp.isnan(x64), x64, result).astype(x.dtype, copy=False)


def erfc_array(xp, x):
    """erfc = 1 - erf of a floating-point array of ``xp``, as :func:`erf_array` computes it, without the
    cancellation of 1 - erf(x) for large x (exact GELU's Phi(x) = erfc(-x / sqrt 2) / 2 takes it); NaN stays NaN,
    +-inf give 0 and 2."""
    x64 = x.astype(numpy.float64)
    y = xp.abs(x64)
    tail = _erfc_large(xp, y)
    result = xp.where(y <= 0.46875, 1 - _erf_small(xp, x64), xp.where(x64 < 0, 2 - tail, tail))
    return xp.where(xp.isnan(x64), x64, result).astype(x.dtype, copy=False)


class Erf(Function):
    """The error function; its gradient is 2 / sqrt(pi) exp(-x^2)."""

    def forward(self, x):
        self.x = x
        return erf_array(self.xp, x)

    def backward(self, grad):
        return ((grad * (2 / math.sqrt(math.pi)) * self.xp.exp(-self.x * self.x)).astype(grad.dtype, copy=False),)


def erf(x: Tensor) -> Tensor:
    """The error function, 2 / sqrt(pi) times the integral of exp(-t^2) from 0 to x; integer tensors give
    float32. Differentiable."""
    return Erf().apply(_float(x))
