"""Indexing, reordering and selection, as torch's: gather, scatter, scatter_add, index_select, masked_fill,
narrow, flip, roll, tril, triu, sort, argsort, topk and unique. Each is differentiable in its values (not in
its indices), as torch's."""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy

from ..autograd import Function, is_grad_enabled, no_grad
from ..tensor import Tensor, as_tensor
from .math import GetItem, Where, _check_dims, _normalize_dims, getitem, reshape, setitem


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, numpy.bool_))


def _index(x: Tensor, index, what: str):
    """``index`` (a tensor or array-like of integers) as an int64 array on x's device."""
    index = as_tensor(index, f"{what}: index", x.device)
    if index.dtype.kind not in "iu":
        raise TypeError(f"{what}: index must be an integer tensor, got dtype {index.dtype}")
    if index.device != x.device:
        raise RuntimeError(f"{what}: index is on {index.device} and input on {x.device}")
    return index.data.astype(numpy.int64, copy=False)


def _check_range(index, size: int, axis: int, what: str) -> None:
    """IndexError unless every value of ``index`` is in [0, size), naming the first bad one."""
    if index.size:
        low, high = int(index.min()), int(index.max())
        if low < 0 or high >= size:
            raise IndexError(f"{what}: index {low if low < 0 else high} is out of bounds for dimension {axis} "
                             f"with size {size}")


def _positions(xp, index, axis: int) -> tuple:
    """For each element of ``index``, its position in the indexed array: its own coordinates but along
    ``axis``, where it takes its value (an index tuple for NumPy's advanced indexing)."""
    return tuple(index if d == axis else xp.arange(n).reshape((1,) * d + (n,) + (1,) * (index.ndim - d - 1))
                 for d, n in enumerate(index.shape))


def _leading(shape: tuple) -> tuple:
    """The index of the leading block of ``shape`` in a larger array."""
    return tuple(slice(0, n) for n in shape)


def _gather_checks(x: Tensor, dim, index, what: str, src: Tensor | None = None):
    """(axis, index array) for gather and scatter: index has x's number of dimensions, is no larger than x
    but along ``dim`` (nor than ``src`` anywhere), and holds positions along ``dim``."""
    (axis,) = _check_dims((dim,), x.ndim, what)
    index = _index(x, index, what)
    if index.ndim != x.ndim:
        raise ValueError(f"{what}: index (shape {tuple(index.shape)}) must have as many dimensions as input (shape "
                         f"{x.shape})")
    for d, (n, limit) in enumerate(zip(index.shape, x.shape)):
        if d != axis and n > limit:
            raise ValueError(f"{what}: index (shape {tuple(index.shape)}) is larger than input (shape {x.shape}) "
                             f"along dimension {d}; only dimension {axis} may be larger")
    if src is not None:
        if src.ndim != index.ndim or any(n > limit for n, limit in zip(index.shape, src.shape)):
            raise ValueError(f"{what}: index (shape {tuple(index.shape)}) must be no larger than src (shape "
                             f"{src.shape}) along every dimension")
    _check_range(index, x.shape[axis], axis, what)
    return axis, index


def _as_vector(x: Tensor, index, what: str) -> tuple:
    """A 0-d x and its index (0-d or 1-d) as vectors, as torch takes them, and the shape of the result."""
    index = as_tensor(index, f"{what}: index", x.device)
    if index.ndim > 1:
        raise ValueError(f"{what}: index (shape {index.shape}) must have as many dimensions as input (shape (),"
                         " taken as (1,))")
    return reshape(x, (1,)), reshape(index, (-1,)), index.shape


class Gather(Function):
    """x's values at ``index`` along ``axis`` (x's leading block of index's shape elsewhere); the gradient adds
    back into those places, twice where an index repeats."""

    uses_inputs = False

    def __init__(self, axis: int, index):
        self.axis, self.index = axis, index

    def forward(self, x):
        self.shape = x.shape
        block = tuple(slice(None) if d == self.axis else s for d, s in enumerate(_leading(self.index.shape)))
        return self.xp.take_along_axis(x[block], self.index, axis=self.axis)

    def backward(self, grad):
        grad_x = self.xp.zeros(self.shape, dtype=grad.dtype)
        self.xp.add.at(grad_x, _positions(self.xp, self.index, self.axis), grad)
        return (grad_x,)


def gather(x: Tensor, dim: int, index) -> Tensor:
    """``out[i][j][k] = x[index[i][j][k]][j][k]`` along ``dim`` (there dim 0), of index's shape, as torch's."""
    if x.ndim == 0:
        _check_dims((dim,), 0, "gather")
        vector, index, shape = _as_vector(x, index, "gather")
        return reshape(gather(vector, 0, index), shape)
    axis, index = _gather_checks(x, dim, index, "gather")
    return Gather(axis, index).apply(x)


class Scatter(Function):
    """x with ``src``'s leading block written (or added, ``add``) at ``index`` along ``axis``. The gradient
    reaches x where nothing was written over it (everywhere for an add) and src where it was taken."""

    uses_inputs = False

    def __init__(self, axis: int, index, add: bool):
        self.axis, self.index, self.add = axis, index, add

    def forward(self, x, src):
        self.src_shape = src.shape
        out = x.copy()
        self.positions = _positions(self.xp, self.index, self.axis)
        values = src[_leading(self.index.shape)]
        if self.add:
            self.xp.add.at(out, self.positions, values)
        else:
            out[self.positions] = values
        return out

    def backward(self, grad):
        xp = self.xp
        need_x, need_src = self.needs_input_grad
        grad_x = grad_src = None
        if need_x:
            grad_x = grad
            if not self.add:
                grad_x = grad.copy()
                grad_x[self.positions] = 0
        if need_src:
            grad_src = xp.zeros(self.src_shape, dtype=grad.dtype)
            grad_src[_leading(self.index.shape)] = grad[self.positions]
        return grad_x, grad_src


def _scatter(x: Tensor, dim, index, src, what: str, add: bool) -> Tensor:
    if x.ndim == 0:
        _check_dims((dim,), 0, what)
        vector, index, _ = _as_vector(x, index, what)
        if isinstance(src, Tensor) and src.ndim <= 1:
            src = reshape(src, (-1,))
        return reshape(_scatter(vector, 0, index, src, what, add), ())
    if isinstance(src, Tensor):
        if src.dtype != x.dtype:
            raise TypeError(f"{what}: src has dtype {src.dtype} and input {x.dtype}; they must match, as in torch")
        axis, index = _gather_checks(x, dim, index, what, src)
    elif isinstance(src, (bool, int, float, numpy.number)) and not add:  # a value, as torch's scatter(dim, i, v)
        axis, index = _gather_checks(x, dim, index, what)
        src = Tensor._from_array(x.device.xp.full(index.shape, src, dtype=x.dtype), x.device)
    else:
        raise TypeError(f"{what}: src must be a Tensor{'' if add else ' or a number'}, got {type(src).__name__}")
    return Scatter(axis, index, add).apply(x, src)


def scatter(x: Tensor, dim: int, index, src=None, *, value=None) -> Tensor:
    """A copy of x with ``out[index[i][j]][j] = src[i][j]`` along ``dim`` (there dim 0), as torch's; ``src``
    a tensor of x's dtype, or a number (``value``) written at every index. Where an index repeats, one of
    the values is written. Differentiable in x and src."""
    if (src is None) == (value is None):
        raise TypeError("scatter takes one of src and value")
    return _scatter(x, dim, index, value if src is None else src, "scatter", False)


def scatter_add(x: Tensor, dim: int, index, src) -> Tensor:
    """A copy of x with ``out[index[i][j]][j] += src[i][j]`` along ``dim``, repeated indices adding up, as
    torch's. Differentiable in x and src."""
    return _scatter(x, dim, index, src, "scatter_add", True)


def index_select(x: Tensor, dim: int, index) -> Tensor:
    """x's slices at the positions ``index`` (a 1-D or 0-d integer tensor) along ``dim``, as torch's."""
    (axis,) = _check_dims((dim,), x.ndim, "index_select")
    index = _index(x, index, "index_select")
    if index.ndim > 1:
        raise ValueError(f"index_select: index must be 1-D or 0-d, got shape {tuple(index.shape)}")
    if x.ndim == 0:
        if index.size != 1:
            raise ValueError(f"index_select: a 0-d input takes one index, got shape {tuple(index.shape)}")
        _check_range(index, 1, 0, "index_select")
        return x.clone()
    index = index.reshape(-1)
    _check_range(index, x.shape[axis], axis, "index_select")
    return GetItem((slice(None),) * axis + (index,)).apply(x)


def masked_fill(x: Tensor, mask, value) -> Tensor:
    """x with ``value`` (a number, or a 0-d tensor, which the gradient reaches) where the bool ``mask``
    holds, broadcast, in x's dtype, as torch's."""
    mask = as_tensor(mask, "masked_fill: mask", x.device)
    if mask.dtype != numpy.bool_:
        raise TypeError(f"masked_fill: mask must be a bool tensor, got dtype {mask.dtype}")
    if mask.device != x.device:
        raise RuntimeError(f"masked_fill: mask is on {mask.device} and input on {x.device}")
    try:
        numpy.broadcast_shapes(x.shape, mask.shape)
    except ValueError:
        raise ValueError(f"masked_fill: mask (shape {mask.shape}) does not broadcast with input (shape "
                         f"{x.shape})") from None
    if isinstance(value, Tensor):
        if value.ndim:
            raise ValueError(f"masked_fill: value must be a number or a 0-d tensor, got shape {value.shape}")
        value = value.to(x.device, x.dtype)
    elif isinstance(value, (bool, int, float, numpy.number)):
        value = Tensor._from_array(x.device.xp.asarray(value, dtype=x.dtype), x.device)
    else:
        raise TypeError(f"masked_fill: value must be a number or a 0-d tensor, got {type(value).__name__}")
    return Where(mask.data).apply(value, x)


def written_into(x: Tensor, result, method: str, *others) -> Tensor:
    """What an in-place method (``method``: scatter_, masked_fill_...) gives: ``result()``, the out-of-place
    op, written into x's own array under the rules of ``setitem`` (an error where autograd would record it,
    x or any of ``others`` requiring grad)."""
    if is_grad_enabled() and any(isinstance(t, Tensor) and t.requires_grad for t in (x,) + others):
        raise RuntimeError(f"{method} on a tensor (shape {x.shape}) cannot be recorded for backward where it or "
                           "its operands require grad: call it under gpucnn.no_grad(), or use the out-of-place "
                           f"{method[:-1]}")
    with no_grad():
        values = result()
    if values.shape != x.shape:
        raise ValueError(f"{method}: the result has shape {values.shape}, but an in-place result keeps the tensor's "
                         f"shape {x.shape}")
    setitem(x, Ellipsis, values, method)
    return x


def narrow(x: Tensor, dim: int, start: int, length: int) -> Tensor:
    """``length`` elements of x along ``dim`` from ``start`` (negative: from the end), a view, as torch's."""
    if x.ndim == 0:
        raise ValueError("narrow: a 0-d tensor cannot be narrowed")
    (axis,) = _check_dims((dim,), x.ndim, "narrow")
    size = x.shape[axis]
    if not _is_int(start) or not -size <= start <= size:
        raise ValueError(f"narrow: start {start!r} is out of range for dimension {dim} of size {size} (shape "
                         f"{x.shape})")
    start = int(start) % size if size and start < 0 else int(start)
    if not _is_int(length) or length < 0 or start + length > size:
        raise ValueError(f"narrow: start {start} + length {length!r} exceeds dimension {dim} of size {size} (shape "
                         f"{x.shape})")
    return getitem(x, (slice(None),) * axis + (slice(start, start + int(length)),))


class Flip(Function):
    uses_inputs = False

    def __init__(self, axes: tuple):
        self.axes = axes

    def forward(self, x):
        return self.xp.flip(x, self.axes).copy() if self.axes else x.copy()

    def backward(self, grad):
        return (self.xp.flip(grad, self.axes) if self.axes else grad,)


def flip(x: Tensor, dims) -> Tensor:
    """x reversed along each of ``dims`` (an int or a tuple of ints), a copy, as torch's."""
    axes = _normalize_dims(dims, x.ndim, "flip")
    return Flip(() if x.ndim == 0 else axes).apply(x)


class Roll(Function):
    uses_inputs = False

    def __init__(self, shifts, axes):
        self.shifts, self.axes = shifts, axes

    def forward(self, x):
        return self.xp.roll(x, self.shifts, self.axes)

    def backward(self, grad):
        back = -self.shifts if self.axes is None else tuple(-shift for shift in self.shifts)
        return (self.xp.roll(grad, back, self.axes),)


def roll(x: Tensor, shifts, dims=None) -> Tensor:
    """x's elements shifted by ``shifts`` along ``dims`` (ints or tuples of one length), those pushed off the end
    coming in at the start; with ``dims`` None, shifted in the flattened order, as torch's."""
    shift_list = shifts if isinstance(shifts, (list, tuple)) else (shifts,)
    if not shift_list or not all(_is_int(shift) for shift in shift_list):
        raise TypeError(f"roll: shifts must be an int or a tuple of ints, got {shifts!r}")
    if dims is None:
        if len(shift_list) != 1:
            raise ValueError(f"roll: shifts {shifts!r} need dims, one for each shift")
        return Roll(int(shift_list[0]), None).apply(x)
    dim_list = dims if isinstance(dims, (list, tuple)) else (dims,)
    if len(dim_list) != len(shift_list):
        raise ValueError(f"roll: shifts {shifts!r} and dims {dims!r} must have one length")
    axes = _check_dims(tuple(dim_list), x.ndim, "roll")
    if x.ndim == 0:
        return Roll(0, None).apply(x)
    return Roll(tuple(int(shift) for shift in shift_list), axes).apply(x)


class Triangle(Function):
    """The lower (``kind`` tril) or upper (triu) triangle of the last two dimensions, from ``diagonal`` on."""

    uses_inputs = False

    def __init__(self, kind: str, diagonal: int):
        self.kind, self.diagonal = kind, diagonal

    def forward(self, x):
        return getattr(self.xp, self.kind)(x, self.diagonal)

    def backward(self, grad):
        return (getattr(self.xp, self.kind)(grad, self.diagonal),)


def _triangle(x: Tensor, kind: str, diagonal: int) -> Tensor:
    if x.ndim < 2:
        raise ValueError(f"{kind}: input must have at least 2 dimensions, got shape {x.shape}")
    if not _is_int(diagonal):
        raise TypeError(f"{kind}: diagonal must be an int, got {diagonal!r}")
    return Triangle(kind, int(diagonal)).apply(x)


def tril(x: Tensor, diagonal: int = 0) -> Tensor:
    """x with zeros above the ``diagonal``-th diagonal (positive: above the main one) of its last two
    dimensions."""
    return _triangle(x, "tril", diagonal)


def triu(x: Tensor, diagonal: int = 0) -> Tensor:
    """x with zeros below the ``diagonal``-th diagonal of its last two dimensions."""
    return _triangle(x, "triu", diagonal)


class ValuesIndices(NamedTuple):
    """What ``sort`` and ``topk`` return, as torch's: ``values, indices = x.sort()``."""

    values: Tensor
    indices: Tensor


class TakeAlongAxis(Function):
    """x's values at ``positions`` (distinct along ``axis``: a sort's order, or its first k); the gradient goes
    back to those positions."""

    uses_inputs = False

    def __init__(self, axis: int, positions):
        self.axis, self.positions = axis, positions

    def forward(self, x):
        self.shape = x.shape
        return self.xp.take_along_axis(x, self.positions, axis=self.axis)

    def backward(self, grad):
        grad_x = self.xp.zeros(self.shape, dtype=grad.dtype)
        self.xp.put_along_axis(grad_x, self.positions, grad, axis=self.axis)
        return (grad_x,)


def _order(x: Tensor, axis: int, descending: bool):
    """The positions that sort each row of x along ``axis``, stably (equal values keep their order), NaN
    counting as the largest value, as torch's stable sort."""
    xp, data = x.device.xp, x.data
    if not descending:
        return xp.argsort(data, axis=axis, kind="stable")
    # the reversed row sorted ascending, read backwards: descending, equal values in their first order
    reversed_order = xp.argsort(xp.flip(data, axis), axis=axis, kind="stable")
    return (data.shape[axis] - 1 - xp.flip(reversed_order, axis)).astype(numpy.int64, copy=False)


def _sort_axis(x: Tensor, dim, what: str) -> int:
    if not _is_int(dim):
        raise TypeError(f"{what}: dim must be an int, got {dim!r}")
    (axis,) = _check_dims((dim,), x.ndim, what)
    return axis


def sort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> ValuesIndices:
    """x sorted along ``dim`` and the int64 positions the values came from, as torch's: NaN counts as the largest;
    the sort is always stable (``stable`` is accepted for torch's signature). Differentiable in the values."""
    axis = _sort_axis(x, dim, "sort")
    if x.ndim == 0:
        return ValuesIndices(x.clone(), Tensor._from_array(x.device.xp.zeros((), numpy.int64), x.device))
    positions = _order(x, axis, bool(descending)).astype(numpy.int64, copy=False)
    return ValuesIndices(TakeAlongAxis(axis, positions).apply(x), Tensor._from_array(positions, x.device))


def argsort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """The int64 positions that sort x along ``dim`` (see :func:`sort`)."""
    return sort(x, dim, descending, stable).indices


def topk(x: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> ValuesIndices:
    """The ``k`` largest (or smallest) values along ``dim`` and their int64 positions, largest first (smallest
    first), the first of equal values first, NaN counting as the largest; ``sorted`` is accepted for torch's
    signature (the values always come sorted). Differentiable in the values."""
    axis = _sort_axis(x, dim, "topk")
    size = x.shape[axis] if x.ndim else 1
    if not _is_int(k) or not 0 <= k <= size:
        raise ValueError(f"topk: k={k!r} is out of range for dimension {dim} of size {size} (shape {x.shape})")
    if x.ndim == 0:  # k 0 or 1: x itself, as torch's
        return sort(x)
    positions = _order(x, axis, bool(largest))
    positions = positions[(slice(None),) * axis + (slice(0, int(k)),)].astype(numpy.int64)
    return ValuesIndices(TakeAlongAxis(axis, positions).apply(x), Tensor._from_array(positions, x.device))


def unique(x: Tensor, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False, dim=None):
    """x's distinct values in ascending order (each NaN distinct, as torch's), of the flattened x or, along
    ``dim``, its distinct slices; with ``return_inverse`` the int64 position of each element (slice) among them,
    with ``return_counts`` the int64 number of each. ``sorted`` is accepted for torch's signature (the values
    always come sorted). Not differentiable."""
    xp = x.device.xp
    options = {"equal_nan": False} if xp is numpy else {}
    if dim is None:
        values, inverse, counts = xp.unique(x.data.reshape(-1), return_inverse=True, return_counts=True, **options)
        inverse = inverse.reshape(x.shape)
    else:
        (axis,) = _check_dims((dim,), x.ndim, "unique")
        if x.ndim == 0:
            raise ValueError("unique: a 0-d tensor has no dimension to take slices along")
        values, inverse, counts = xp.unique(x.data, return_inverse=True, return_counts=True, axis=axis, **options)
        inverse = inverse.reshape(-1)
    results = [Tensor._from_array(values, x.device)]
    if return_inverse:
        results.append(Tensor._from_array(inverse.astype(numpy.int64, copy=False), x.device))
    if return_counts:
        results.append(Tensor._from_array(counts.astype(numpy.int64, copy=False), x.device))
    return results[0] if len(results) == 1 else tuple(results)
