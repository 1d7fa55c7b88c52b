"""Functions of tensors at the package's top level, as torch's (``gpucnn.flatten(x, 1)``, ``gpucnn.max(logits,
1)``): each is the Tensor method of the same name, or the ``nn.functional`` op. An array stands for a tensor
on its own device (a CuPy array's GPU, else the cpu), so ``gpucnn.max(outputs.data, 1)``, where ``.data``
is the array, works as in PyTorch's tutorials."""

from __future__ import annotations

import numbers

import numpy

from .autograd import Function
from .nn import functional
from .ops import math as tensor_math
from .tensor import Tensor, _scaled, as_tensor

__all__ = [
    "abs", "add", "all", "allclose", "any", "argmax", "argmin", "argsort", "bmm", "ceil", "chunk", "clamp", "clone",
    "count_nonzero", "cumprod", "cumsum", "div", "dot", "eq", "equal", "erf", "exp", "expm1", "flatten", "flip",
    "floor", "gather", "ge", "gt", "index_select", "is_floating_point", "is_tensor", "isfinite", "isinf", "isnan", "le",
    "log", "log10", "log1p", "log2", "log_softmax", "logical_and", "logical_not", "logical_or", "logical_xor",
    "logsumexp", "lt", "masked_fill", "matmul", "max", "maximum", "mean", "min", "minimum", "mm", "mul", "mv", "narrow",
    "ne", "neg", "nonzero", "norm", "numel", "outer", "permute", "pow", "prod", "reciprocal", "relu", "reshape", "roll",
    "round", "rsqrt", "rsub", "scatter", "scatter_add", "sigmoid", "sign", "softmax", "sort", "split", "sqrt", "square",
    "squeeze", "std", "std_mean", "sub", "sum", "tanh", "topk", "transpose", "tril", "triu", "trunc", "unique",
    "unsqueeze", "var", "var_mean", "where",
]


def _tensor(input, name: str) -> Tensor:
    """``input`` itself if a Tensor, else a tensor of the array (not copied) on the array's device."""
    if isinstance(input, Tensor):
        return input
    if not hasattr(input, "__array__") and not hasattr(input, "__cuda_array_interface__"):
        raise TypeError(f"{name}: input must be a Tensor or an array, got {type(input).__name__}")
    device = f"cuda:{input.device.id}" if hasattr(input, "__cuda_array_interface__") else "cpu"
    return as_tensor(input, f"{name}: input", device)


def is_tensor(obj) -> bool:
    """Whether ``obj`` is a gpucnn Tensor (a Parameter is one)."""
    return isinstance(obj, Tensor)


def numel(input) -> int:
    """The number of elements of ``input``."""
    return _tensor(input, "numel").numel()


def flatten(input, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """``input`` with dims start_dim..end_dim merged into one (``flatten(x, 1)``: a row per sample)."""
    return _tensor(input, "flatten").flatten(start_dim, end_dim)


def reshape(input, shape) -> Tensor:
    return _tensor(input, "reshape").reshape(shape)


def transpose(input, dim0: int, dim1: int) -> Tensor:
    return _tensor(input, "transpose").transpose(dim0, dim1)


def permute(input, dims) -> Tensor:
    return _tensor(input, "permute").permute(dims)


def unsqueeze(input, dim: int) -> Tensor:
    return _tensor(input, "unsqueeze").unsqueeze(dim)


def squeeze(input, dim=None) -> Tensor:
    return _tensor(input, "squeeze").squeeze(dim)


def sum(input, dim=None, keepdim: bool = False) -> Tensor:
    return _tensor(input, "sum").sum(dim, keepdim)


def mean(input, dim=None, keepdim: bool = False) -> Tensor:
    return _tensor(input, "mean").mean(dim, keepdim)


def _extreme(input, dim, keepdim: bool, name: str):
    if isinstance(dim, Tensor):  # max(input, other): elementwise, as torch's
        return getattr(tensor_math, f"{name}imum")(_tensor(input, name), dim)
    return getattr(_tensor(input, name), name)(dim, keepdim)


def max(input, dim=None, keepdim: bool = False):
    """The largest value of ``input``, or along ``dim`` the pair (values, indices): ``_, predicted =
    gpucnn.max(logits, 1)``; with a tensor for ``dim``, the elementwise :func:`maximum`."""
    return _extreme(input, dim, keepdim, "max")


def min(input, dim=None, keepdim: bool = False):
    """The smallest value of ``input``, or along ``dim`` the pair (values, indices); with a tensor for ``dim``,
    the elementwise :func:`minimum`."""
    return _extreme(input, dim, keepdim, "min")


def maximum(input, other) -> Tensor:
    """The elementwise maximum, broadcast (NaN where either is NaN); the gradient goes to the larger, half to each
    where equal."""
    return tensor_math.maximum(_tensor(input, "maximum"), other)


def minimum(input, other) -> Tensor:
    """The elementwise minimum, broadcast (NaN where either is NaN); the gradient goes to the smaller, half to each
    where equal."""
    return tensor_math.minimum(_tensor(input, "minimum"), other)


def argmax(input, dim=None, keepdim: bool = False) -> Tensor:
    return _tensor(input, "argmax").argmax(dim, keepdim)


def argmin(input, dim=None, keepdim: bool = False) -> Tensor:
    return _tensor(input, "argmin").argmin(dim, keepdim)


def exp(input) -> Tensor:
    return _tensor(input, "exp").exp()


def log(input) -> Tensor:
    return _tensor(input, "log").log()


def sqrt(input) -> Tensor:
    return _tensor(input, "sqrt").sqrt()


def abs(input) -> Tensor:
    return _tensor(input, "abs").abs()


def sigmoid(input) -> Tensor:
    return _tensor(input, "sigmoid").sigmoid()


def tanh(input) -> Tensor:
    return _tensor(input, "tanh").tanh()


def clamp(input, min=None, max=None) -> Tensor:
    return _tensor(input, "clamp").clamp(min, max)


def where(condition, input, other) -> Tensor:
    """``input`` where ``condition`` holds, else ``other`` (numbers allowed), broadcast; differentiable in both."""
    return tensor_math.where(condition, input, other)


def split(tensor, split_size_or_sections, dim: int = 0) -> tuple:
    return _tensor(tensor, "split").split(split_size_or_sections, dim)


def chunk(input, chunks: int, dim: int = 0) -> tuple:
    return _tensor(input, "chunk").chunk(chunks, dim)


def clone(input) -> Tensor:
    return _tensor(input, "clone").clone()


def relu(input) -> Tensor:
    return functional.relu(_tensor(input, "relu"))


def softmax(input, dim: int, *, dtype=None) -> Tensor:
    return functional.softmax(_tensor(input, "softmax"), dim, dtype=dtype)


def log_softmax(input, dim: int, *, dtype=None) -> Tensor:
    return functional.log_softmax(_tensor(input, "log_softmax"), dim, dtype=dtype)


def var(input, dim=None, unbiased: bool = True, keepdim: bool = False, *, correction=None) -> Tensor:
    return _tensor(input, "var").var(dim, unbiased, keepdim, correction=correction)


def std(input, dim=None, unbiased: bool = True, keepdim: bool = False, *, correction=None) -> Tensor:
    return _tensor(input, "std").std(dim, unbiased, keepdim, correction=correction)


def var_mean(input, dim=None, unbiased: bool = True, keepdim: bool = False, *, correction=None) -> tuple:
    """(variance, mean) over ``dim``, as ``torch.var_mean``; both differentiable."""
    input = _tensor(input, "var_mean")
    return input.var(dim, unbiased, keepdim, correction=correction), input.mean(dim, keepdim)


def std_mean(input, dim=None, unbiased: bool = True, keepdim: bool = False, *, correction=None) -> tuple:
    """(standard deviation, mean) over ``dim``, as ``torch.std_mean``; both differentiable."""
    input = _tensor(input, "std_mean")
    return input.std(dim, unbiased, keepdim, correction=correction), input.mean(dim, keepdim)


# ----------------------------------------------------------------------------- named arithmetic and comparisons
def _alpha(input: Tensor, other, alpha, what: str):
    """alpha * other for add and sub; an integer alpha where both are integers or bools, as torch's."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise TypeError(f"{what}: alpha must be a real number, got {type(alpha).__name__} {alpha!r}")
    other_kind = other.dtype.kind if isinstance(other, Tensor) else numpy.asarray(other).dtype.kind
    if not isinstance(alpha, numbers.Integral) and input.dtype.kind != "f" and other_kind != "f":
        raise TypeError(f"{what}: alpha={alpha!r} is not an integer, and neither input ({input.dtype}) nor other is "
                        "floating point")
    return _scaled(other, alpha)


def add(input, other, *, alpha=1) -> Tensor:
    """input + alpha * other, broadcast; differentiable."""
    input = _tensor(input, "add")
    return tensor_math.add(input, _alpha(input, other, alpha, "add"))


def sub(input, other, *, alpha=1) -> Tensor:
    """input - alpha * other, broadcast; differentiable."""
    input = _tensor(input, "sub")
    return tensor_math.sub(input, _alpha(input, other, alpha, "sub"))


def rsub(input, other, *, alpha=1) -> Tensor:
    """other - alpha * input, as torch.rsub."""
    input = _tensor(input, "rsub")
    return tensor_math.sub(other, _alpha(input, input, alpha, "rsub"))


def mul(input, other) -> Tensor:
    return tensor_math.mul(_tensor(input, "mul"), other)


class RoundedDiv(Function):
    """input / other rounded toward zero (``mode`` 'trunc') or down ('floor', as Python's //: NumPy's
    floor_divide, whose floating-point results are torch's); a step function, so both gradients are
    zero, as torch's."""

    uses_inputs = False

    def __init__(self, mode: str):
        self.mode = mode

    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        xp = self.xp
        with numpy.errstate(divide="ignore", invalid="ignore"):
            if self.mode == "floor":
                return xp.floor_divide(a, b)
            if a.dtype.kind == "f":
                return xp.trunc(a / b)
            quotient = xp.floor_divide(a, b)  # integers: one up where a floor below zero left a remainder
            return quotient + ((quotient * b != a) & ((a < 0) != (b < 0))).astype(quotient.dtype)

    def backward(self, grad):
        xp = self.xp
        return tuple(xp.zeros(shape, dtype=grad.dtype) if need else None
                     for shape, need in zip((self.a_shape, self.b_shape), self.needs_input_grad))


def div(input, other, *, rounding_mode=None) -> Tensor:
    """input / other, broadcast (integers give float32); with ``rounding_mode`` 'trunc' or 'floor', rounded
    toward zero or down in the operands' dtype, as torch's (an integer division by zero raises
    ZeroDivisionError), with zero gradients."""
    input = _tensor(input, "div")
    if rounding_mode is None:
        return tensor_math.div(input, other)
    if rounding_mode not in ("trunc", "floor"):
        raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")
    a, b = tensor_math._operands(input, other)
    if a.device != b.device:
        raise RuntimeError(f"div: input is on {a.device} and other on {b.device}")
    if a.dtype.kind == "b" or b.dtype.kind == "b":
        raise TypeError(f"div: rounding_mode={rounding_mode!r} takes numbers, not bools (input {a.dtype}, other "
                        f"{b.dtype})")
    tensor_math.check_broadcast("div", a.shape, b.shape)
    if a.dtype.kind != "f" and bool((b.data == 0).any()):
        raise ZeroDivisionError(f"div: integer division by zero (rounding_mode={rounding_mode!r})")
    return RoundedDiv(rounding_mode).apply(a, b)


def eq(input, other) -> Tensor:
    return _tensor(input, "eq").eq(other)


def ne(input, other) -> Tensor:
    return _tensor(input, "ne").ne(other)


def lt(input, other) -> Tensor:
    return _tensor(input, "lt").lt(other)


def le(input, other) -> Tensor:
    return _tensor(input, "le").le(other)


def gt(input, other) -> Tensor:
    return _tensor(input, "gt").gt(other)


def ge(input, other) -> Tensor:
    return _tensor(input, "ge").ge(other)


def _logical(input, other, name: str) -> Tensor:
    a, b = tensor_math._operands(_tensor(input, name), other)
    if a.device != b.device:
        raise RuntimeError(f"{name}: input is on {a.device} and other on {b.device}")
    tensor_math.check_broadcast(name, a.shape, b.shape)
    return Tensor._from_array(getattr(a.device.xp, name)(a.data, b.data), a.device)


def logical_and(input, other) -> Tensor:
    """Where both are nonzero, a bool tensor, broadcast."""
    return _logical(input, other, "logical_and")


def logical_or(input, other) -> Tensor:
    """Where either is nonzero, a bool tensor, broadcast."""
    return _logical(input, other, "logical_or")


def logical_xor(input, other) -> Tensor:
    """Where exactly one is nonzero, a bool tensor, broadcast."""
    return _logical(input, other, "logical_xor")


def logical_not(input) -> Tensor:
    """Where input is zero, a bool tensor."""
    input = _tensor(input, "logical_not")
    return Tensor._from_array(input.device.xp.logical_not(input.data), input.device)


def is_floating_point(input) -> bool:
    """Whether ``input``'s dtype is a floating-point one."""
    return _tensor(input, "is_floating_point").is_floating_point()


def pow(input, exponent) -> Tensor:
    return _tensor(input, "pow").pow(exponent)


def neg(input) -> Tensor:
    return _tensor(input, "neg").neg()


# ----------------------------------------------------------------------------- predicates and reductions
def isnan(input) -> Tensor:
    return _tensor(input, "isnan").isnan()


def isinf(input) -> Tensor:
    return _tensor(input, "isinf").isinf()


def isfinite(input) -> Tensor:
    return _tensor(input, "isfinite").isfinite()


def all(input, dim=None, keepdim: bool = False) -> Tensor:
    return _tensor(input, "all").all(dim, keepdim)


def any(input, dim=None, keepdim: bool = False) -> Tensor:
    return _tensor(input, "any").any(dim, keepdim)


def allclose(input, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    """Whether |input - other| <= atol + rtol * |other| everywhere, broadcast, as a Python bool; NaN equals NaN only
    with ``equal_nan``."""
    return _tensor(input, "allclose").allclose(other, rtol, atol, equal_nan)


def equal(input, other) -> bool:
    """Whether the two have one shape and equal elements, as a Python bool."""
    return _tensor(input, "equal").equal(other)


def count_nonzero(input, dim=None) -> Tensor:
    return _tensor(input, "count_nonzero").count_nonzero(dim)


def nonzero(input, *, as_tuple: bool = False):
    return _tensor(input, "nonzero").nonzero(as_tuple=as_tuple)


def prod(input, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    return _tensor(input, "prod").prod(dim, keepdim, dtype=dtype)


def cumsum(input, dim: int, *, dtype=None) -> Tensor:
    return _tensor(input, "cumsum").cumsum(dim, dtype=dtype)


def logsumexp(input, dim, keepdim: bool = False) -> Tensor:
    return _tensor(input, "logsumexp").logsumexp(dim, keepdim)


def norm(input, p="fro", dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """The p-norm over ``dim`` (an int, a tuple, or None for all elements): 'fro' (the default) and 2 the square
    root of the sum of squares, any real p, inf and -inf the vector norms; differentiable (0 where the norm is 0)."""
    return _tensor(input, "norm").norm(p, dim, keepdim, dtype)


# ----------------------------------------------------------------------------- elementwise
def sign(input) -> Tensor:
    return _tensor(input, "sign").sign()


def round(input, *, decimals: int = 0) -> Tensor:
    return _tensor(input, "round").round(decimals)


def floor(input) -> Tensor:
    return _tensor(input, "floor").floor()


def ceil(input) -> Tensor:
    return _tensor(input, "ceil").ceil()


def trunc(input) -> Tensor:
    return _tensor(input, "trunc").trunc()


def reciprocal(input) -> Tensor:
    return _tensor(input, "reciprocal").reciprocal()


def rsqrt(input) -> Tensor:
    return _tensor(input, "rsqrt").rsqrt()


def square(input) -> Tensor:
    return _tensor(input, "square").square()


def log1p(input) -> Tensor:
    return _tensor(input, "log1p").log1p()


def expm1(input) -> Tensor:
    return _tensor(input, "expm1").expm1()


def log2(input) -> Tensor:
    return _tensor(input, "log2").log2()


def log10(input) -> Tensor:
    return _tensor(input, "log10").log10()


def erf(input) -> Tensor:
    return _tensor(input, "erf").erf()


def cumprod(input, dim: int, *, dtype=None) -> Tensor:
    return _tensor(input, "cumprod").cumprod(dim, dtype=dtype)


# ----------------------------------------------------------------------------- matrix products
def matmul(input, other) -> Tensor:
    """input @ other, as ``torch.matmul``: batch dimensions broadcast, a 1-D operand is a vector."""
    return _tensor(input, "matmul").matmul(other)


def mm(input, mat2) -> Tensor:
    return _tensor(input, "mm").mm(mat2)


def bmm(input, mat2) -> Tensor:
    return _tensor(input, "bmm").bmm(mat2)


def mv(input, vec) -> Tensor:
    return _tensor(input, "mv").mv(vec)


def dot(input, other) -> Tensor:
    return _tensor(input, "dot").dot(other)


def outer(input, vec2) -> Tensor:
    return _tensor(input, "outer").outer(vec2)


# ----------------------------------------------------------------------------- indexing, reordering, selection
def gather(input, dim: int, index) -> Tensor:
    """``out[i][j] = input[index[i][j]][j]`` along ``dim`` (there dim 0), of index's shape; differentiable."""
    return _tensor(input, "gather").gather(dim, index)


def scatter(input, dim: int, index, src=None, *, value=None) -> Tensor:
    """A copy of input with ``out[index[i][j]][j] = src[i][j]`` along ``dim`` (or ``value`` at every index);
    differentiable in input and src."""
    return _tensor(input, "scatter").scatter(dim, index, src, value=value)


def scatter_add(input, dim: int, index, src) -> Tensor:
    """A copy of input with ``out[index[i][j]][j] += src[i][j]`` along ``dim``; differentiable in input and src."""
    return _tensor(input, "scatter_add").scatter_add(dim, index, src)


def index_select(input, dim: int, index) -> Tensor:
    return _tensor(input, "index_select").index_select(dim, index)


def masked_fill(input, mask, value) -> Tensor:
    return _tensor(input, "masked_fill").masked_fill(mask, value)


def narrow(input, dim: int, start: int, length: int) -> Tensor:
    return _tensor(input, "narrow").narrow(dim, start, length)


def flip(input, dims) -> Tensor:
    return _tensor(input, "flip").flip(dims)


def roll(input, shifts, dims=None) -> Tensor:
    return _tensor(input, "roll").roll(shifts, dims)


def tril(input, diagonal: int = 0) -> Tensor:
    return _tensor(input, "tril").tril(diagonal)


def triu(input, diagonal: int = 0) -> Tensor:
    return _tensor(input, "triu").triu(diagonal)


def sort(input, dim: int = -1, descending: bool = False, *, stable: bool = False):
    """(values, indices) sorted along ``dim``, as ``torch.sort`` with stable=True (equal values keep their order;
    NaN counts as the largest); differentiable in the values."""
    return _tensor(input, "sort").sort(dim, descending, stable)


def argsort(input, dim: int = -1, descending: bool = False, *, stable: bool = False) -> Tensor:
    return _tensor(input, "argsort").argsort(dim, descending, stable)


def topk(input, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """(values, indices) of the ``k`` largest (or smallest) along ``dim``, sorted, the first of equal values first;
    differentiable in the values."""
    return _tensor(input, "topk").topk(k, dim, largest, sorted)


def unique(input, sorted: bool = True, return_inverse: bool = False,
           return_counts: bool = False, dim=None):
    """The distinct values in ascending order (each NaN distinct), and with the flags the int64 inverse indices
    and counts, as ``torch.unique``; not differentiable."""
    return _tensor(input, "unique").unique(sorted, return_inverse, return_counts, dim)
