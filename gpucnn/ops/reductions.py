"""Predicates and reductions beyond sum and mean, as torch's: isnan and its kin, all/any, allclose, equal,
count_nonzero, nonzero, and the differentiable prod, cumsum, cumprod, logsumexp and norm."""

from __future__ import annotations

import builtins
import math
import numbers

import numpy

from ..autograd import Function
from ..tensor import Tensor, as_tensor
from .math import _check_dims, _float, _normalize_dims, check_broadcast


def _axes(x: Tensor, dim, what: str):
    """``dim`` (None, an int or ints) as NumPy's ``axis``: None for all of x, which a 0-d x always takes
    (NumPy refuses axis 0 of a 0-d array, torch takes dim 0 and -1 there)."""
    axes = _normalize_dims(dim, x.ndim, what)
    return None if x.ndim == 0 else axes


def _bools(x: Tensor, array) -> Tensor:
    return Tensor._from_array(x.device.xp.asarray(array, dtype=numpy.bool_), x.device)


# ---------------------------------------------------------------------------- predicates
def isnan(x: Tensor) -> Tensor:
    """Where x is NaN, a bool tensor (nowhere in an integer or bool tensor)."""
    xp = x.device.xp
    return _bools(x, xp.isnan(x.data) if x.dtype.kind == "f" else xp.zeros(x.shape, bool))


def isinf(x: Tensor) -> Tensor:
    """Where x is +inf or -inf, a bool tensor."""
    xp = x.device.xp
    return _bools(x, xp.isinf(x.data) if x.dtype.kind == "f" else xp.zeros(x.shape, bool))


def isfinite(x: Tensor) -> Tensor:
    """Where x is neither NaN nor infinite, a bool tensor (everywhere in an integer or bool tensor)."""
    xp = x.device.xp
    return _bools(x, xp.isfinite(x.data) if x.dtype.kind == "f" else xp.ones(x.shape, bool))


def _truth(x: Tensor, name: str, dim, keepdim: bool) -> Tensor:
    """all or any (``name``) over ``dim``: bool, uint8 for a uint8 tensor, as torch's."""
    axes = _axes(x, dim, name)
    result = getattr(x.device.xp, name)(x.data, axis=axes, keepdims=bool(keepdim) and x.ndim > 0)
    dtype = numpy.uint8 if x.dtype == numpy.uint8 else numpy.bool_
    return Tensor._from_array(x.device.xp.asarray(result, dtype=dtype), x.device)


def all(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Whether every element (over ``dim``: an int, a tuple, or None for all) is nonzero; True where empty."""
    return _truth(x, "all", dim, keepdim)


def any(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Whether any element (over ``dim``) is nonzero; False where empty."""
    return _truth(x, "any", dim, keepdim)


def _other(x: Tensor, other, what: str) -> Tensor:
    other = as_tensor(other, f"{what}: other", x.device)
    if other.device != x.device:
        raise RuntimeError(f"{what}: input is on {x.device} and other on {other.device}")
    return other


def allclose(x: Tensor, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    """Whether |x - other| <= atol + rtol * |other| everywhere, broadcast (infinities equal where of one sign;
    NaN equal to NaN only with ``equal_nan``), as a Python bool. Unlike torch's, two float dtypes compare."""
    other = _other(x, other, "allclose")
    check_broadcast("allclose", x.shape, other.shape)
    return builtins.bool(x.device.xp.allclose(x.data, other.data, rtol=rtol, atol=atol, equal_nan=equal_nan))


def equal(x: Tensor, other) -> bool:
    """Whether x and ``other`` have one shape and equal elements (NaN equals nothing), as a Python bool."""
    other = _other(x, other, "equal")
    return x.shape == other.shape and builtins.bool(x.device.xp.array_equal(x.data, other.data))


def count_nonzero(x: Tensor, dim=None) -> Tensor:
    """The number of nonzero elements over ``dim`` (an int, a tuple, or None for all), int64."""
    axes = _axes(x, dim, "count_nonzero")
    xp = x.device.xp
    return Tensor._from_array(xp.asarray(xp.count_nonzero(x.data, axis=axes), dtype=numpy.int64), x.device)


def nonzero(x: Tensor, as_tuple: bool = False):
    """The indices of the nonzero elements: an int64 tensor of shape (count, ndim), or with ``as_tuple`` one 1-D
    int64 tensor per dimension (one for a 0-d tensor, as torch's)."""
    xp = x.device.xp
    positions = xp.nonzero(x.data.reshape(-1) if x.ndim == 0 else x.data)
    positions = [position.astype(numpy.int64, copy=False) for position in positions]
    if as_tuple:
        return tuple(Tensor._from_array(position, x.device) for position in positions)
    if x.ndim == 0:
        return Tensor._from_array(xp.zeros((positions[0].size, 0), dtype=numpy.int64), x.device)
    return Tensor._from_array(xp.stack(positions, axis=1), x.device)


# ---------------------------------------------------------------------------- differentiable reductions
def _expanded(xp, grad, axes, keepdims: bool):
    """The gradient of a reduction with the reduced axes back as size 1, to broadcast against its input."""
    return grad if keepdims or axes is None else xp.expand_dims(grad, axes)


class Prod(Function):
    """The product over ``axis`` (None: all of x). Its gradient at each element is the product of the others,
    taken from the products before and after it, so that zeros need no division (one zero: the gradient
    reaches it alone; two: nowhere), as torch's."""

    def __init__(self, axis, keepdims: bool):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.x = x
        return x.prod(axis=self.axis, keepdims=self.keepdims)

    def backward(self, grad):
        xp, x = self.xp, self.x
        rows = xp.moveaxis(x, self.axis, -1) if self.axis is not None else x.reshape(-1)
        if rows.shape[-1] == 0:
            return (xp.zeros(x.shape, dtype=grad.dtype),)
        one = xp.ones(rows.shape[:-1] + (1,), dtype=x.dtype)
        before = xp.concatenate([one, xp.cumprod(rows, axis=-1)[..., :-1]], axis=-1)
        after = xp.concatenate([xp.cumprod(rows[..., ::-1], axis=-1)[..., ::-1][..., 1:], one], axis=-1)
        others = before * after
        if self.axis is None:
            return ((others.reshape(x.shape) * grad).astype(grad.dtype, copy=False),)
        others = xp.moveaxis(others, -1, self.axis)
        return ((others * _expanded(xp, grad, (self.axis,), self.keepdims)).astype(grad.dtype, copy=False),)


def prod(x: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """The product of all elements (``dim`` None) or along the int ``dim``; integer and bool tensors give int64,
    as torch's; ``dtype`` converts x first. Differentiable, at zeros too."""
    if dtype is not None:
        x = x.to(dtype=dtype)
    if x.dtype.kind != "f":
        x = x.to(dtype=numpy.int64)
    if dim is None:
        return Prod(None, False).apply(x)
    if isinstance(dim, builtins.bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"prod: dim must be an int or None, got {dim!r}")
    (axis,) = _check_dims((dim,), x.ndim, "prod")
    return Prod(None if x.ndim == 0 else axis, builtins.bool(keepdim) and x.ndim > 0).apply(x)


class CumSum(Function):
    """The running sum along ``axis``; its gradient is the running sum of the gradient from the other end."""

    uses_inputs = False

    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, x):
        return x.copy() if x.ndim == 0 else self.xp.cumsum(x, axis=self.axis, dtype=x.dtype)

    def backward(self, grad):
        if grad.ndim == 0:
            return (grad,)
        xp = self.xp
        return (xp.flip(xp.cumsum(xp.flip(grad, self.axis), axis=self.axis), self.axis).copy(),)


def _running(x: Tensor, dim: int, dtype, op: str) -> tuple:
    """cumsum's and cumprod's input, converted to ``dtype`` where given and integers and bools to int64 (torch's
    rule), and their axis."""
    if dtype is not None:
        x = x.to(dtype=dtype)
    if x.dtype.kind != "f":
        x = x.to(dtype=numpy.int64)
    (axis,) = _check_dims((dim,), x.ndim, op)
    return x, axis


def cumsum(x: Tensor, dim: int, *, dtype=None) -> Tensor:
    """The running sums along ``dim``; integer and bool tensors give int64, as torch's; ``dtype`` converts x
    first."""
    x, axis = _running(x, dim, dtype, "cumsum")
    return CumSum(axis).apply(x)


class CumProd(Function):
    """The running product along ``axis``. Its gradient at x_k is y_(k-1) * s_k, where y is the output (y_(-1) =
    1) and s_k = g_k + x_(k+1) * s_(k+1) sums the incoming gradient g times the products after x_k: no
    division, so zeros get their gradients as torch's (a loop along the axis, each step over the others)."""

    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, x):
        self.x = x
        return x.copy() if x.ndim == 0 else self.xp.cumprod(x, axis=self.axis, dtype=x.dtype)

    def backward(self, grad):
        if grad.ndim == 0:
            return (grad,)
        xp = self.xp
        x, g = xp.moveaxis(self.x, self.axis, 0), xp.moveaxis(grad, self.axis, 0)
        sums = xp.empty(g.shape, dtype=grad.dtype)
        sums[-1] = g[-1]
        for k in range(g.shape[0] - 2, -1, -1):
            sums[k] = g[k] + x[k + 1] * sums[k + 1]
        before = xp.cumprod(xp.concatenate([xp.ones_like(x[:1]), x[:-1]]), axis=0)
        return (xp.ascontiguousarray(xp.moveaxis(before * sums, 0, self.axis)),)


def cumprod(x: Tensor, dim: int, *, dtype=None) -> Tensor:
    """The running products along ``dim``; integer and bool tensors give int64, as torch's; ``dtype`` converts x
    first. Differentiable, at zeros too."""
    x, axis = _running(x, dim, dtype, "cumprod")
    return CumProd(axis).apply(x)


class LogSumExp(Function):
    """log(sum(exp(x))) over ``axes``, shifted by the largest value (0 where that is infinite, as torch's) so
    that no exp overflows; an empty reduction gives -inf. The gradient is softmax(x) times the incoming one."""

    def __init__(self, axes, keepdims: bool):
        self.axes, self.keepdims = axes, keepdims

    def forward(self, x):
        xp = self.xp
        self.x = x
        count = x.size if self.axes is None else math.prod(x.shape[axis] for axis in self.axes)
        if count == 0:
            shape = tuple(1 if self.axes is None or axis in self.axes else n for axis, n in enumerate(x.shape))
            self.result = xp.full(shape, -numpy.inf, dtype=x.dtype)
        else:
            shift = x.max(axis=self.axes, keepdims=True)
            shift = xp.where(xp.isinf(shift), 0, shift).astype(x.dtype, copy=False)
            with numpy.errstate(divide="ignore"):  # log(0) where every value is -inf: -inf, as torch's
                self.result = xp.log(xp.exp(x - shift).sum(axis=self.axes, keepdims=True)) + shift
        if self.keepdims:
            return self.result
        return self.result.reshape(()) if self.axes is None else self.result.squeeze(self.axes)

    def backward(self, grad):
        xp = self.xp
        with numpy.errstate(invalid="ignore"):
            return ((_expanded(xp, grad, self.axes, self.keepdims) * xp.exp(self.x - self.result)).astype(
                grad.dtype, copy=False),)


def logsumexp(x: Tensor, dim, keepdim: bool = False) -> Tensor:
    """log(sum(exp(x))) over ``dim`` (an int or a tuple), computed without overflow; integer tensors give
    float32. Differentiable."""
    x = _float(x)
    return LogSumExp(_axes(x, dim, "logsumexp"), builtins.bool(keepdim) and x.ndim > 0).apply(x)


class VectorNorm(Function):
    """The p-norm of x over ``axes`` (None: all of x): (sum |x|^p)^(1/p), max |x| for p = inf, min |x| for
    -inf, the count of nonzeros for 0. The gradients are torch's: 0 where the norm is 0 (its subgradient
    for p = 2), shared evenly among the extremes for p = +-inf, none for p = 0."""

    def __init__(self, p: float, axes, keepdims: bool):
        self.p, self.axes, self.keepdims = p, axes, keepdims

    def forward(self, x):
        xp, p, axes = self.xp, self.p, self.axes
        self.x = x
        magnitude = xp.abs(x)
        if p == 2:
            result = xp.sqrt((x * x).sum(axis=axes, keepdims=True))
        elif p == 1:
            result = magnitude.sum(axis=axes, keepdims=True)
        elif p == math.inf:
            result = magnitude.max(axis=axes, keepdims=True)
        elif p == -math.inf:
            result = magnitude.min(axis=axes, keepdims=True)
        elif p == 0:
            result = (x != 0).sum(axis=axes, keepdims=True).astype(x.dtype)
        else:
            result = (magnitude**p).sum(axis=axes, keepdims=True) ** (1 / p)
        self.result = result.astype(x.dtype, copy=False)
        if self.keepdims:
            return self.result
        return self.result.reshape(()) if axes is None else self.result.squeeze(axes)

    def backward(self, grad):
        xp, p, x, norm = self.xp, self.p, self.x, self.result
        grad = _expanded(xp, grad, self.axes, self.keepdims)
        sign = (x > 0).astype(x.dtype) - (x < 0)
        if p == 0:
            grad_x = xp.zeros(x.shape, dtype=grad.dtype)
        elif p == 1:
            grad_x = sign * grad
        elif p in (math.inf, -math.inf):
            extreme = xp.abs(x) == norm
            with numpy.errstate(divide="ignore", invalid="ignore"):  # no extreme where the norm is NaN
                grad_x = sign * extreme * (grad / extreme.sum(axis=self.axes, keepdims=True))
        else:
            with numpy.errstate(divide="ignore", invalid="ignore"):
                scale = xp.where(norm == 0, 0, grad / norm ** (p - 1))
                grad_x = x * scale if p == 2 else xp.where(x == 0, 0, sign * xp.abs(x) ** (p - 1)) * scale
        return (grad_x.astype(grad.dtype, copy=False),)


def norm(x: Tensor, p="fro", dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """The p-norm over ``dim`` (an int, a tuple, or None for all elements), as ``torch.norm``: ``'fro'`` (the
    default) and 2 are the square root of the sum of squares; any real p, inf and -inf are vector norms of the
    elements over ``dim``. Floating-point tensors only; ``dtype`` (a floating-point one) converts x first.
    Differentiable."""
    if x.dtype.kind != "f":
        raise TypeError(f"norm needs a floating-point tensor, got dtype {x.dtype}")
    if dtype is not None:
        x = x.to(dtype=dtype)
    if p == "fro":
        p = 2
    elif isinstance(p, (str, builtins.bool)) or not isinstance(p, numbers.Real):
        raise ValueError(f"norm: p must be 'fro' or a real number (inf included), got {p!r}")
    axes = _axes(x, dim, "norm")
    if p in (math.inf, -math.inf) and (x.size if axes is None else math.prod(x.shape[a] for a in axes)) == 0:
        raise ValueError(f"norm: p={p} of no elements (shape {x.shape}, dim {dim!r}) has no value")
    return VectorNorm(float(p), axes, builtins.bool(keepdim) and x.ndim > 0).apply(x)
