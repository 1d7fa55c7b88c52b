"""Tensor arithmetic, reductions and shape ops: written once against the device's array module."""

from __future__ import annotations

import builtins
import math
import numbers
from typing import NamedTuple

import numpy

from ..autograd import Function, is_grad_enabled, no_grad
from ..tensor import Tensor, as_tensor
from . import _memory
from ._select import passed, select


def unbroadcast(xp, grad, shape: tuple):
    """Sums ``grad`` over the axes that broadcasting added or stretched, giving an array of ``shape``."""
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(axis for axis, size in enumerate(shape) if size == 1 and grad.shape[axis] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def _operands(a, b):
    """Two Tensors on one device, with PyTorch's dtypes: a Python number takes the other operand's dtype
    (float32 for a float beside an integer or bool tensor, int64 for an int beside a bool one), and a
    floating-point operand beside an integer or bool one gives its dtype to both (NumPy would widen
    int64 and float32 to float64)."""
    tensor = a if isinstance(a, Tensor) else b
    device = tensor.device

    def convert(value):
        if isinstance(value, Tensor):
            return value
        if isinstance(value, (int, float)):
            dtype = tensor.dtype
            if isinstance(value, float) and dtype.kind != "f":
                dtype = numpy.dtype(numpy.float32)
            elif dtype.kind == "b" and not isinstance(value, bool):  # bool tensor and int: int64 arithmetic
                dtype = numpy.dtype(numpy.int64)
            return Tensor._from_array(device.xp.asarray(value, dtype=dtype), device, False)
        return as_tensor(value, "operand", device)

    a, b = convert(a), convert(b)
    if (a.dtype.kind == "f") != (b.dtype.kind == "f"):
        dtype = a.dtype if a.dtype.kind == "f" else b.dtype
        a, b = a.to(dtype=dtype), b.to(dtype=dtype)
    return a, b


def check_broadcast(op: str, input_shape: tuple, other_shape: tuple) -> None:
    """ValueError naming ``op`` and both shapes unless an input and an other of these shapes broadcast."""
    try:
        numpy.broadcast_shapes(input_shape, other_shape)
    except ValueError:
        raise ValueError(f"{op}: shapes {input_shape} (input) and {other_shape} (other) do not broadcast") from None


class _Binary(Function):
    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        try:
            return self.compute(a, b)
        except ValueError:  # the shapes are checked only then: no cost to the ops that broadcast
            try:
                numpy.broadcast_shapes(a.shape, b.shape)
            except ValueError:
                raise ValueError(f"{type(self).__name__.lower()}: shapes {tuple(a.shape)} and {tuple(b.shape)} "
                                 "do not broadcast together (from the last dimension on, each pair must match or "
                                 "one be 1)") from None
            raise

    def reduce(self, grad_a, grad_b):
        return (
            None if grad_a is None else unbroadcast(self.xp, grad_a, self.a_shape),
            None if grad_b is None else unbroadcast(self.xp, grad_b, self.b_shape),
        )


class Add(_Binary):
    uses_inputs = False

    def compute(self, a, b):
        return _memory.ufunc(numpy.add, a, b) if self.xp is numpy else a + b

    def backward(self, grad):
        return self.reduce(grad, grad)


class Sub(_Binary):
    uses_inputs = False

    def compute(self, a, b):
        return _memory.ufunc(numpy.subtract, a, b) if self.xp is numpy else a - b

    def backward(self, grad):
        return self.reduce(grad, -grad)


class Mul(_Binary):
    def compute(self, a, b):
        self.a, self.b = a, b
        return _memory.ufunc(numpy.multiply, a, b) if self.xp is numpy else a * b

    def backward(self, grad):
        need_a, need_b = self.needs_input_grad
        return self.reduce(grad * self.b if need_a else None, grad * self.a if need_b else None)


class Div(_Binary):
    def compute(self, a, b):
        self.a, self.b = a, b
        return _memory.ufunc(numpy.true_divide, a, b) if self.xp is numpy else a / b

    def backward(self, grad):
        need_a, need_b = self.needs_input_grad
        grad_a = grad / self.b if need_a or need_b else None
        return self.reduce(grad_a if need_a else None, -grad_a * self.a / self.b if need_b else None)


class Maximum(_Binary):
    """The elementwise maximum (or minimum: ``kind``), NaN where either is NaN. The gradient goes to the larger
    (smaller) operand, half to each where they are equal, and whole to both where either is NaN, as PyTorch's."""

    def __init__(self, kind: str):
        self.kind = kind

    def compute(self, a, b):
        self.a, self.b = a, b
        return getattr(self.xp, f"{self.kind}imum")(a, b)

    def backward(self, grad):
        xp = self.xp
        beaten_a, beaten_b = (self.a < self.b, self.a > self.b) if self.kind == "max" else (self.a > self.b,
                                                                                                self.a < self.b)
        shared = xp.where(self.a == self.b, grad / 2, grad)
        need_a, need_b = self.needs_input_grad
        return self.reduce(xp.where(beaten_a, 0, shared).astype(grad.dtype, copy=False) if need_a else None,
                           xp.where(beaten_b, 0, shared).astype(grad.dtype, copy=False) if need_b else None)


class Neg(Function):
    uses_inputs = False

    def forward(self, x):
        return -x

    def backward(self, grad):
        return (-grad,)


class Pow(Function):
    def __init__(self, exponent: float):
        self.exponent = exponent

    def forward(self, x):
        self.x = x
        return x**self.exponent

    def backward(self, grad):
        return (grad * self.exponent * self.x ** (self.exponent - 1),)


class Exp(Function):
    uses_inputs, uses_output = False, True

    def forward(self, x):
        self.y = self.xp.exp(x)
        return self.y

    def backward(self, grad):
        return (grad * self.y,)


class Log(Function):
    def forward(self, x):
        self.x = x
        return self.xp.log(x)

    def backward(self, grad):
        return (grad / self.x,)


class Sigmoid(Function):
    """1 / (1 + exp(-x)), from exp(-|x|) so that no exp overflows."""

    uses_inputs, uses_output = False, True

    def forward(self, x):
        xp = self.xp
        e = xp.exp(-xp.abs(x))
        self.y = select(xp, x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        return self.y

    def backward(self, grad):
        return (grad * self.y * (1 - self.y),)


class Tanh(Function):
    uses_inputs, uses_output = False, True

    def forward(self, x):
        self.y = self.xp.tanh(x)
        return self.y

    def backward(self, grad):
        return (grad * (1 - self.y * self.y),)


class Sqrt(Function):
    uses_inputs, uses_output = False, True

    def forward(self, x):
        self.y = self.xp.sqrt(x)
        return self.y

    def backward(self, grad):
        return (grad / (2 * self.y),)


class Abs(Function):
    """|x|; its gradient is sign(x), 0 at 0 and at NaN, as PyTorch's."""

    def forward(self, x):
        self.x = x
        return self.xp.abs(x)

    def backward(self, grad):
        return (grad * ((self.x > 0).astype(grad.dtype) - (self.x < 0)),)


class Clamp(Function):
    """x clipped to [low, high] (either may be None); the gradient passes where low <= x <= high, as PyTorch's
    (so nowhere when low > high, where every value is high)."""

    def __init__(self, low, high):
        self.low, self.high = low, high

    def forward(self, x):
        self.x = x
        xp = self.xp
        y = x if self.low is None else xp.maximum(x, xp.asarray(self.low, dtype=x.dtype))
        return y if self.high is None else xp.minimum(y, xp.asarray(self.high, dtype=x.dtype))

    def backward(self, grad):
        inside = self.xp.ones(self.x.shape, dtype=bool)
        if self.low is not None:
            inside &= self.x >= self.low
        if self.high is not None:
            inside &= self.x <= self.high
        return (grad * inside,)


class MatMul(Function):
    """``a @ b`` with NumPy's rules: 1-D operands are promoted to matrices, batch dims broadcast."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, grad):
        a = self.a if self.a.ndim > 1 else self.a[None, :]
        b = self.b if self.b.ndim > 1 else self.b[:, None]
        if self.b.ndim == 1:  # restore the dims that the 1-D promotion removed: b's column first
            grad = grad[..., None]
        if self.a.ndim == 1:
            grad = grad[..., None, :]
        need_a, need_b = self.needs_input_grad
        grad_a = grad_b = None
        if need_a:
            grad_a = unbroadcast(self.xp, grad @ b.swapaxes(-1, -2), a.shape).reshape(self.a.shape)
        if need_b:
            grad_b = unbroadcast(self.xp, a.swapaxes(-1, -2) @ grad, b.shape).reshape(self.b.shape)
        return grad_a, grad_b


class Sum(Function):
    uses_inputs = False

    def __init__(self, axis, keepdims: bool):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.shape = x.shape
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, grad):
        if not self.keepdims and self.axis is not None:
            grad = self.xp.expand_dims(grad, self.axis)
        return (self.xp.broadcast_to(grad, self.shape).copy(),)


class Reshape(Function):
    uses_inputs, view_of_input = False, True

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.input_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, grad):
        return (grad.reshape(self.input_shape),)


class Permute(Function):
    uses_inputs, view_of_input = False, True

    def __init__(self, dims: tuple):
        self.dims = dims

    def forward(self, x):
        return x.transpose(self.dims)

    def backward(self, grad):
        return (grad.transpose(numpy.argsort(self.dims)),)


class GetItem(Function):
    uses_inputs, view_of_input = False, True

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.x_shape, self.x_dtype = x.shape, x.dtype
        return x[self.index]

    def backward(self, grad):
        grad_x = self.xp.zeros(self.x_shape, dtype=grad.dtype)
        self.xp.add.at(grad_x, self.index, grad)
        return (grad_x,)


class Extreme(Function):
    """The max or min (``kind``) of x along ``axis``, or of all of x (axis None), as PyTorch's: along an
    axis the first extreme of each row (NaN counts as the largest and the smallest, so a row with one
    gives NaN, at its first NaN), whose position takes the gradient; over all of x the gradient is shared
    evenly among the values equal to the result (or among the NaNs)."""

    def __init__(self, kind: str, axis, keepdims: bool):
        self.kind, self.axis, self.keepdims = kind, axis, keepdims

    def forward(self, x):
        xp = self.xp
        self.shape = x.shape
        if self.axis is None:
            value = x.max() if self.kind == "max" else x.min()
            self.chosen = xp.isnan(x) if xp.isnan(value) else x == value
            return xp.asarray(value)
        position = x.argmax(axis=self.axis) if self.kind == "max" else x.argmin(axis=self.axis)
        self.position = xp.expand_dims(position, self.axis)
        values = xp.take_along_axis(x, self.position, axis=self.axis)
        return values if self.keepdims else values.squeeze(self.axis)

    def backward(self, grad):
        xp = self.xp
        if self.axis is None:
            return (xp.where(self.chosen, grad / self.chosen.sum(), 0).astype(grad.dtype),)
        grad_x = xp.zeros(self.shape, dtype=grad.dtype)
        xp.put_along_axis(grad_x, self.position, grad if self.keepdims else xp.expand_dims(grad, self.axis),
                          axis=self.axis)
        return (grad_x,)


class Clone(Function):
    uses_inputs = False

    def forward(self, x):
        return x.copy()

    def backward(self, grad):
        return (grad,)


class Concatenate(Function):
    """Its inputs joined along ``axis``; backward hands each its slice of the gradient (a view)."""

    uses_inputs = False

    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, *arrays):
        self.bounds = numpy.cumsum([array.shape[self.axis] for array in arrays])[:-1].tolist()
        return self.xp.concatenate(arrays, axis=self.axis)

    def backward(self, grad):
        return tuple(self.xp.split(grad, self.bounds, axis=self.axis))


class Cast(Function):
    uses_inputs = False

    def __init__(self, dtype):
        self.dtype = numpy.dtype(dtype)

    def forward(self, x):
        self.input_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, grad):
        return (grad.astype(self.input_dtype),)


class ToDevice(Function):
    uses_inputs = False

    def __init__(self, device):
        self.output_device = device

    def forward(self, x):
        self.input_device = self.device
        array = self.output_device.asarray(x)
        return array.copy() if array is x else array  # cpu and cudasim hold NumPy arrays: a copy, as on a GPU

    def backward(self, grad):
        return (self.input_device.asarray(grad),)


# ---------------------------------------------------------------------------- public calls
def add(a, b) -> Tensor:
    return Add().apply(*_operands(a, b))


def sub(a, b) -> Tensor:
    return Sub().apply(*_operands(a, b))


def mul(a, b) -> Tensor:
    return Mul().apply(*_operands(a, b))


def div(a, b) -> Tensor:
    a, b = _operands(a, b)
    if a.dtype.kind != "f":  # integers or bools on both sides: float32, PyTorch's default dtype
        a, b = a.to(dtype=numpy.float32), b.to(dtype=numpy.float32)
    return Div().apply(a, b)


def maximum(a, b) -> Tensor:
    return Maximum("max").apply(*_operands(a, b))


def minimum(a, b) -> Tensor:
    return Maximum("min").apply(*_operands(a, b))


def neg(x: Tensor) -> Tensor:
    return Neg().apply(x)


def pow(x: Tensor, exponent) -> Tensor:
    if isinstance(exponent, bool) or not isinstance(exponent, numbers.Real):
        raise TypeError(f"exponent must be a real number, got {type(exponent).__name__}")
    return Pow(exponent).apply(x)


def exp(x: Tensor) -> Tensor:
    return Exp().apply(x)


def log(x: Tensor) -> Tensor:
    return Log().apply(x)


def _float(x: Tensor) -> Tensor:
    """x, or x as float32 where it holds integers or bools (a sigmoid's values are not integers), as PyTorch's."""
    return x if x.dtype.kind == "f" else x.to(dtype=numpy.float32)


def sigmoid(input) -> Tensor:
    """1 / (1 + exp(-input)), elementwise; integer input gives float32."""
    return Sigmoid().apply(_float(as_tensor(input, "sigmoid: input")))


def tanh(input) -> Tensor:
    """The hyperbolic tangent, elementwise; integer input gives float32."""
    return Tanh().apply(_float(as_tensor(input, "tanh: input")))


def sqrt(x: Tensor) -> Tensor:
    return Sqrt().apply(_float(x))


def abs(x: Tensor) -> Tensor:
    return Abs().apply(x)


def clamp(x: Tensor, min=None, max=None) -> Tensor:
    """x clipped to [min, max], either bound a number or None (not both None), in x's dtype."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be a number")
    for bound, name in ((min, "min"), (max, "max")):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, numbers.Real)):
            raise TypeError(f"clamp: {name} must be a real number or None, got {type(bound).__name__} {bound!r}")
        if bound is not None and x.dtype.kind != "f" and not isinstance(bound, numbers.Integral):
            raise TypeError(f"clamp: {name}={bound!r} is not an integer, and the tensor's dtype is {x.dtype}")
    return Clamp(min, max).apply(x)


def matmul(a, b) -> Tensor:
    a, b = _operands(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul needs operands with at least one dimension, got shapes {a.shape} and {b.shape}")
    inner_a = a.shape[-1]
    inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if inner_a != inner_b:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align ({inner_a} != {inner_b})")
    try:
        return MatMul().apply(a, b)
    except ValueError:  # the inner sizes match: the batch dimensions (all but the last two) do not broadcast
        raise ValueError(f"matmul: the batch dimensions of shapes {a.shape} and {b.shape} do not broadcast") from None


def _check_dims(dims, ndim: int, what: str) -> tuple:
    """``dims`` (ints, negatives allowed) as non-negative ints; ValueError naming ``what`` if out of range."""
    bound = max(ndim, 1)
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral) or not -bound <= d < bound:
            raise ValueError(f"{what}: dimension {d!r} is out of range for a tensor with {ndim} dimensions")
    return tuple(int(d) % bound for d in dims)


def _normalize_dims(dim, ndim: int, what: str):
    """``dim`` (None, an int or a sequence of ints) as None or a sorted tuple of distinct dims."""
    if dim is None:
        return None
    if isinstance(dim, numbers.Integral):
        dim = (dim,)
    elif not isinstance(dim, (tuple, list)):
        raise TypeError(f"{what}: dim must be None, an int or a tuple of ints, got {dim!r}")
    dims = _check_dims(tuple(dim), ndim, what)
    if len(set(dims)) != len(dims):
        raise ValueError(f"{what}: dim={dim!r} repeats a dimension (ndim {ndim})")
    return tuple(sorted(dims))


def sum(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return Sum(_normalize_dims(dim, x.ndim, "sum"), bool(keepdim)).apply(x)


def mean(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    dims = _normalize_dims(dim, x.ndim, "mean")
    count = x.numel() if dims is None else math.prod(x.shape[d] for d in dims)
    if x.dtype.kind != "f":
        raise TypeError(f"mean needs a floating-point tensor, got dtype {x.dtype}")
    return Sum(dims, bool(keepdim)).apply(x) / count


def var(x: Tensor, dim=None, correction=1, keepdim: bool = False) -> Tensor:
    """The variance over ``dim``: the sum of squared deviations from the mean over (count - correction),
    PyTorch's ``correction`` (1: the unbiased estimate, 0: the population variance)."""
    if x.dtype.kind != "f":
        raise TypeError(f"var needs a floating-point tensor, got dtype {x.dtype}")
    if isinstance(correction, bool) or not isinstance(correction, numbers.Real):
        raise TypeError(f"var: correction must be a number, got {correction!r}")
    dims = _normalize_dims(dim, x.ndim, "var")
    count = x.numel() if dims is None else math.prod(x.shape[d] for d in dims)
    deviation = x - mean(x, dims, keepdim=True)
    with numpy.errstate(divide="ignore", invalid="ignore"):  # count <= correction: inf or NaN, as PyTorch's
        return sum(deviation * deviation, dims, keepdim) / max(count - correction, 0)


class Where(Function):
    """``a`` where ``condition`` holds, else ``b``, broadcast; each takes the gradient of its elements."""

    uses_inputs = False

    def __init__(self, condition):
        self.condition = condition

    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        return select(self.xp, self.condition, a, b)

    def backward(self, grad):
        xp = self.xp
        need_a, need_b = self.needs_input_grad
        grad_a = unbroadcast(xp, passed(xp, self.condition, grad), self.a_shape) if need_a else None
        grad_b = unbroadcast(xp, passed(xp, ~self.condition, grad), self.b_shape) if need_b else None
        return grad_a, grad_b


def where(condition, input, other) -> Tensor:
    """``input`` where ``condition`` (a bool tensor) holds, else ``other``; the three broadcast, input and
    other may be numbers, and take PyTorch's result dtype as arithmetic does."""
    condition = as_tensor(condition, "where: condition")
    if condition.dtype != numpy.bool_:
        raise TypeError(f"where: condition must be a bool tensor, got dtype {condition.dtype}")
    a, b = _operands(input, other)
    if a.dtype != b.dtype:
        dtype = numpy.result_type(a.dtype, b.dtype)
        a, b = a.to(dtype=dtype), b.to(dtype=dtype)
    if condition.device != a.device:
        raise RuntimeError(f"where: condition is on {condition.device} but the values are on {a.device}")
    try:
        numpy.broadcast_shapes(condition.shape, a.shape, b.shape)
    except ValueError:
        raise ValueError(f"where: the shapes {condition.shape} (condition), {a.shape} (input) and {b.shape} "
                         "(other) do not broadcast") from None
    return Where(condition.data).apply(a, b)


class Expand(Function):
    uses_inputs, view_of_input = False, True

    def __init__(self, shape: tuple):
        self.shape = shape

    def forward(self, x):
        self.input_shape = x.shape
        return self.xp.broadcast_to(x, self.shape)

    def backward(self, grad):
        return (unbroadcast(self.xp, grad, self.input_shape).reshape(self.input_shape),)


def expand(x: Tensor, sizes) -> Tensor:
    """x broadcast to ``sizes`` without copying (-1 keeps a dimension's size; new dimensions go in front), as
    ``torch.Tensor.expand``; a view that cannot be written."""
    sizes = tuple(sizes)
    if len(sizes) < x.ndim or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in sizes):
        raise ValueError(f"expand: sizes must be at least {x.ndim} ints for a tensor of shape {x.shape}, got {sizes}")
    lead = len(sizes) - x.ndim
    shape = tuple(x.shape[i - lead] if n == -1 and i >= lead else int(n) for i, n in enumerate(sizes))
    if any(n < 0 for n in shape) or any(old != 1 and old != new for old, new in zip(x.shape, shape[lead:])):
        raise ValueError(f"expand: a tensor of shape {x.shape} cannot be expanded to {sizes}: only dimensions of "
                         "size 1 stretch")
    return Expand(shape).apply(x)


class Repeat(Function):
    uses_inputs = False

    def __init__(self, repeats: tuple):
        self.repeats = repeats

    def forward(self, x):
        self.input_shape = x.shape
        return self.xp.tile(x, self.repeats)

    def backward(self, grad):
        # (r0, n0, r1, n1, ...) blocks: sum over the repeat axes
        shape = self.input_shape
        lead = len(self.repeats) - len(shape)
        padded = (1,) * lead + shape
        split = tuple(size for pair in zip(self.repeats, padded) for size in pair)
        summed = grad.reshape(split).sum(axis=tuple(range(0, 2 * len(padded), 2)))
        return (summed.reshape(shape),)


def repeat(x: Tensor, repeats) -> Tensor:
    """x tiled ``repeats`` times along each dimension (as many as x's or more, new ones in front), as
    ``torch.Tensor.repeat`` (NumPy's ``tile``)."""
    repeats = tuple(repeats)
    if len(repeats) < x.ndim or not all(
            isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 0 for n in repeats):
        raise ValueError(f"repeat: repeats must be at least {x.ndim} non-negative ints for a tensor of shape "
                         f"{x.shape}, got {repeats}")
    return Repeat(tuple(int(n) for n in repeats)).apply(x)


def split(x: Tensor, split_size_or_sections, dim: int = 0) -> tuple:
    """x cut along ``dim`` into pieces of ``split_size_or_sections`` (an int: the last piece may be shorter)
    or of the sizes a list gives (they must add up to the dimension's size); each piece a view."""
    (axis,) = _check_dims((dim,), x.ndim, "split")
    length = x.shape[axis]
    if isinstance(split_size_or_sections, numbers.Integral) and not isinstance(split_size_or_sections, bool):
        size = int(split_size_or_sections)
        if size <= 0 and length:
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [min(size, length - start) for start in range(0, length, size)] if length else [0]
    else:
        if not isinstance(split_size_or_sections, (tuple, list)) or not all(
                isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in split_size_or_sections):
            raise TypeError(f"split: split_size_or_sections must be an int or a list of ints, got "
                            f"{split_size_or_sections!r}")
        sizes = [int(n) for n in split_size_or_sections]
        if builtins.sum(sizes) != length or any(n < 0 for n in sizes):
            raise ValueError(f"split: sections {sizes} must be non-negative and add up to {length}, the size of "
                             f"dimension {dim} of shape {x.shape}")
    pieces, start = [], 0
    for size in sizes:
        index = (slice(None),) * axis + (slice(start, start + size),)
        pieces.append(getitem(x, index))
        start += size
    return tuple(pieces)


def chunk(x: Tensor, chunks: int, dim: int = 0) -> tuple:
    """x cut along ``dim`` into at most ``chunks`` pieces of ceil(size / chunks), as ``torch.chunk``."""
    if isinstance(chunks, bool) or not isinstance(chunks, numbers.Integral) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive int, got {chunks!r}")
    (axis,) = _check_dims((dim,), x.ndim, "chunk")
    return split(x, max(1, -(-x.shape[axis] // int(chunks))), axis)


def arg_extreme(x: Tensor, kind: str, dim=None, keepdim: bool = False) -> Tensor:
    """The indices of the maxima or minima (``kind``) along ``dim``, of the flattened tensor when None (the
    first of ties; a NaN counts as both, as in PyTorch)."""
    name = f"arg{kind}"
    if dim is None:
        return Tensor._from_array(x.device.xp.asarray(getattr(x.data, name)()), x.device)
    (axis,) = _check_dims((dim,), x.ndim, name)
    return Tensor._from_array(getattr(x.data, name)(axis=axis, keepdims=keepdim), x.device)


class MaxMin(NamedTuple):
    """What ``Tensor.max(dim)`` and ``Tensor.min(dim)`` return, as torch's: ``values, indices = x.max(1)``."""

    values: Tensor
    indices: Tensor


def extreme(x: Tensor, kind: str, dim=None, keepdim: bool = False):
    """``x.max()``/``x.min()`` (``kind``): the extreme of all of x, or along ``dim`` a ``MaxMin`` of the
    values and their int64 positions."""
    if dim is not None and not isinstance(dim, numbers.Integral) or isinstance(dim, bool):
        raise TypeError(f"{kind}: dim must be an int (or None for the {kind} of every element), got {dim!r}")
    if dim is None:
        if x.numel() == 0:
            raise ValueError(f"{kind} of an empty tensor (shape {x.shape}) has no value")
        return Extreme(kind, None, False).apply(x)
    (axis,) = _check_dims((dim,), x.ndim, kind)
    if x.ndim and x.shape[axis] == 0:
        raise ValueError(f"{kind} along dim {dim} of a tensor of shape {x.shape}: that dimension is empty")
    if x.ndim == 0:
        return MaxMin(Clone().apply(x), Tensor._from_array(x.device.xp.zeros((), numpy.int64), x.device))
    function = Extreme(kind, axis, bool(keepdim))
    values = function.apply(x)
    positions = function.position if keepdim else function.position.squeeze(axis)
    return MaxMin(values, Tensor._from_array(positions.astype(numpy.int64), x.device))  # a copy: backward keeps its own


def _tensor_list(tensors, what: str) -> None:
    """TypeError naming ``what`` unless ``tensors`` is a non-empty list or tuple of Tensors."""
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)) or not tensors:
        empty = "an empty" if isinstance(tensors, (list, tuple)) else "a"
        raise TypeError(f"{what} takes a non-empty list or tuple of tensors, got {empty} {type(tensors).__name__}")
    for position, tensor in enumerate(tensors):
        if not isinstance(tensor, Tensor):
            raise TypeError(f"{what}: element {position} is a {type(tensor).__name__}, not a Tensor")


def cat(tensors, dim: int = 0) -> Tensor:
    """The tensors joined along ``dim``, as ``torch.cat``: the same shape but along dim, on one device; a
    floating-point one among integer ones gives its dtype to all (the widest float among floats)."""
    _tensor_list(tensors, "cat")
    first = tensors[0]
    (axis,) = _check_dims((dim,), first.ndim, "cat")
    if first.ndim == 0:
        raise ValueError("cat: zero-dimensional tensors cannot be joined; stack them")
    for position, tensor in enumerate(tensors[1:], start=1):
        if tensor.ndim != first.ndim or any(a != b for d, (a, b) in enumerate(zip(tensor.shape, first.shape))
                                            if d != axis):
            raise ValueError(f"cat: tensor {position} has shape {tensor.shape}, tensor 0 {first.shape}: they must "
                             f"match but along dim {dim}")
    floats = [tensor.dtype for tensor in tensors if tensor.dtype.kind == "f"]
    dtype = numpy.result_type(*floats) if floats else numpy.result_type(*[tensor.dtype for tensor in tensors])
    return Concatenate(axis).apply(*[tensor.to(dtype=dtype) for tensor in tensors])


def stack(tensors, dim: int = 0) -> Tensor:
    """The tensors, all of one shape, joined along a new axis ``dim``, as ``torch.stack``."""
    _tensor_list(tensors, "stack")
    shapes = {tensor.shape for tensor in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack: the tensors must have one shape, got {sorted(shapes)}")
    return cat([unsqueeze(tensor, dim) for tensor in tensors], dim)


def clone(x: Tensor) -> Tensor:
    return Clone().apply(x)


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or not -x.ndim - 1 <= dim <= x.ndim:
        raise ValueError(f"unsqueeze: dim {dim!r} is out of range for a tensor with {x.ndim} dimensions (from "
                         f"{-x.ndim - 1} to {x.ndim})")
    axis = dim % (x.ndim + 1)
    return Reshape(x.shape[:axis] + (1,) + x.shape[axis:]).apply(x)


def squeeze(x: Tensor, dim=None) -> Tensor:
    """x without its axes of size 1 (dim None), or without axis ``dim`` where that has size 1 (else x's shape)."""
    axes = range(x.ndim) if dim is None else _check_dims((dim,), x.ndim, "squeeze")
    return Reshape(tuple(size for axis, size in enumerate(x.shape) if size != 1 or axis not in axes)).apply(x)


_IN_PLACE = {"add": (add, "add", "+"), "sub": (sub, "subtract", "-"), "mul": (mul, "multiply", "*"),
             "div": (div, "true_divide", "/")}


def _written_operand(x: Tensor, value, what: str):
    """What an in-place write into x takes from ``value``: a tensor's array (on x's device), a Python number
    as it is, other numeric data as an array on x's device; ``what`` begins the device error."""
    if isinstance(value, Tensor):
        if value.device != x.device:
            raise RuntimeError(f"{what} a tensor on {value.device} into a tensor on {x.device}")
        return value.data
    if isinstance(value, (bool, int, float)):
        return value
    return as_tensor(value, "value", x.device).data


def in_place(x: Tensor, other, name: str, method: str | None = None) -> Tensor:
    """``x += other`` and the like (``name``: add, sub, mul or div), or the method ``method`` (``x.add_(other)``),
    as PyTorch's.

    Where autograd records nothing (under no_grad, or neither operand requires grad) the result goes
    into x's own array, in x's dtype and shape: an integer x takes no float result, and other broadcasts
    to x's shape. x's version counts the change, so that a backward that needs x's values from before
    it fails rather than use the new ones. Where autograd records the op, ``+=`` is ``x + other``, a new
    tensor that the name then holds (a residual block's ``out += identity``), and a method, whose result
    the caller may drop, is an error; on a leaf that requires grad both are errors, as in PyTorch:
    parameters change in place under no_grad (``p -= lr * p.grad``)."""
    out_of_place, ufunc_name, sign = _IN_PLACE[name]
    label = method or f"{sign}="
    if is_grad_enabled() and (x.requires_grad or isinstance(other, Tensor) and other.requires_grad):
        if x.requires_grad and x.is_leaf:
            raise RuntimeError(f"{label} on a leaf tensor that requires grad (shape {x.shape}) cannot be recorded: "
                               f"change parameters under gpucnn.no_grad(), or write x = x {sign} ... for a new tensor")
        if method:
            raise RuntimeError(f"{label} on a tensor that autograd records (shape {x.shape}) is not supported: "
                               f"write x = x {sign} ... for a new tensor, or change it under gpucnn.no_grad()")
        return out_of_place(x, other)
    operand = _written_operand(x, other, label)
    try:
        getattr(x.device.xp, ufunc_name)(x.data, operand, out=x.data, casting="same_kind")
    except TypeError:  # NumPy's UFuncTypeError: the result's dtype does not cast to x's
        operand_dtype = getattr(operand, "dtype", type(operand).__name__)
        raise TypeError(f"{label}: {x.dtype} {sign} {operand_dtype} gives a result that a tensor of dtype "
                        f"{x.dtype} cannot hold in place; write x = x {sign} ... for a new tensor") from None
    except ValueError:
        raise ValueError(f"{label}: an operand of shape {tuple(numpy.shape(operand))} does not broadcast to the "
                         f"tensor's shape {x.shape}, which an in-place result keeps") from None
    x._version[0] += 1
    return x


def written_in_place(input, compute, op: str) -> Tensor:
    """What an op called with inplace=True gives (``compute(input)`` is the op): as PyTorch's where autograd
    records nothing, ``input`` itself, its array overwritten with the result and its version counted; where
    autograd records the op, the result as a new tensor, ``input`` unchanged (as ``+=`` there: the caller
    takes the result, ``x = F.relu(x, inplace=True)``, as a layer's caller always does)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: inplace=True needs a Tensor input to overwrite, got {type(input).__name__}")
    if is_grad_enabled() and input.requires_grad:
        return compute(input)
    with no_grad():
        result = compute(input)
    setitem(input, Ellipsis, result)
    return input


def compare(a, b, ufunc_name: str) -> Tensor:
    a, b = _operands(a, b)
    return Tensor._from_array(getattr(a.device.xp, ufunc_name)(a.data, b.data), a.device)


def reshape(x: Tensor, shape) -> Tensor:
    shape = tuple(int(size) for size in shape)
    try:
        numpy.empty(x.shape, dtype=numpy.bool_).reshape(shape)
    except ValueError:
        raise ValueError(f"cannot reshape a tensor of shape {x.shape} ({x.numel()} elements) to {shape}") from None
    return Reshape(shape).apply(x)


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if x.ndim == 0:
        return reshape(x, (1,))
    start, end = _check_dims((start_dim, end_dim), x.ndim, "flatten")
    if start > end:
        raise ValueError(f"flatten: start_dim={start_dim} comes after end_dim={end_dim} for shape {x.shape}")
    shape = x.shape[:start] + (math.prod(x.shape[start : end + 1]),) + x.shape[end + 1 :]
    return Reshape(shape).apply(x)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    d0, d1 = _check_dims((dim0, dim1), x.ndim, "transpose")
    dims = list(range(x.ndim))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return Permute(tuple(dims)).apply(x)


def permute(x: Tensor, dims) -> Tensor:
    dims = _check_dims(tuple(dims), x.ndim, "permute")
    if sorted(dims) != list(range(x.ndim)):
        raise ValueError(f"permute: dims={dims} is not a permutation of the {x.ndim} dimensions of shape {x.shape}")
    return Permute(dims).apply(x)


def _is_integer(item) -> bool:
    return isinstance(item, (numbers.Integral, numpy.integer)) and not isinstance(item, (bool, numpy.bool_))


def _axes_taken(item) -> int:
    """How many of the indexed array's axes one item of an index tuple consumes (not Ellipsis)."""
    if item is None or isinstance(item, (bool, numpy.bool_)):  # a new axis
        return 0
    if isinstance(item, (slice, numbers.Integral, numpy.integer)):
        return 1
    array = item if hasattr(item, "ndim") and hasattr(item, "dtype") else numpy.asarray(item)  # lists, arrays
    return array.ndim if array.dtype == bool else 1  # a mask takes as many axes as it has


def _numpy_index(index) -> tuple:
    """PyTorch's ``index`` as NumPy takes it, in two steps: (first, rest), ``first`` None or a tuple of
    basic indices (a view) and ``rest`` what indexes the result of ``first``.

    PyTorch takes an integer as a basic index, NumPy as an advanced one: with a list or array apart from
    it, NumPy puts the advanced result's axes first (x[0, :, [1, 2]] is (2, C) there and (C, 2) in
    PyTorch). Such an index takes its integers first, on their own."""
    if isinstance(index, Tensor):
        return None, index.data
    if isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        basic = [_is_integer(i) or i is None or i is Ellipsis or isinstance(i, slice) for i in index]
        if not all(basic) and any(_is_integer(i) for i in index):
            integers = []
            for i in index:
                integers += [i] if _is_integer(i) or i is Ellipsis else [slice(None)] * _axes_taken(i)
            return tuple(integers), tuple(i for i in index if not _is_integer(i))
    return None, index


def getitem(x: Tensor, index) -> Tensor:
    """x[index] as PyTorch indexes: integers, slices, None, Ellipsis, integer or boolean lists and arrays."""
    first, rest = _numpy_index(index)
    if first is not None:
        x = GetItem(first).apply(x)
    return GetItem(rest).apply(x)


def setitem(x: Tensor, index, value, method: str | None = None) -> None:
    """x[index] = value, indexed as ``getitem`` indexes, into x's own array (value converted to x's dtype, as
    PyTorch converts it), where autograd records nothing: under no_grad, or neither x nor value requires
    grad. x's version counts the change (see ``in_place``). ``method`` names the Tensor method that assigns
    so (``fill_``, ``copy_``) in errors."""
    if is_grad_enabled() and (x.requires_grad or isinstance(value, Tensor) and value.requires_grad):
        raise RuntimeError(f"{method or 'assigning into a tensor'} (shape {x.shape}) cannot be recorded for backward "
                           "where the tensor or the value requires grad: assign under gpucnn.no_grad(), or build a "
                           "new tensor")
    value = _written_operand(x, value, f"{method}:" if method else "assigning")
    first, rest = _numpy_index(index)
    target = x.data if first is None else x.data[first]
    try:
        target[rest] = value
    except ValueError as error:
        raise ValueError(f"assigning a value of shape {tuple(numpy.shape(value))} into a tensor of shape {x.shape}: "
                         f"{error}") from None
    x._version[0] += 1
