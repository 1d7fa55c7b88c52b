"""Tensors made from sizes, values or the random generator, as torch's creation functions.

    >>> gpucnn.zeros(2, 3).shape
    (2, 3)
    >>> gpucnn.arange(5).tolist()
    [0, 1, 2, 3, 4]

Sizes are given as separate ints or as one tuple or list. Floating-point results are float32 unless
``dtype`` says otherwise, as PyTorch's default dtype; ``device`` defaults to
:func:`gpucnn.devices.default_device`. Random values are drawn on the host from the generator that
:func:`gpucnn.manual_seed` seeds and then moved, so a seed gives the same values on every device.
"""

from __future__ import annotations

import math
import numbers

import numpy

from . import random
from .devices import get_device
from .tensor import Tensor, _to_array

__all__ = [
    "arange", "empty", "empty_like", "eye", "from_numpy", "full", "full_like", "linspace", "ones", "ones_like",
    "rand", "rand_like", "randint", "randn", "randn_like", "randperm", "zeros", "zeros_like",
]


def _size(size: tuple, name: str) -> tuple:
    """The shape that ``size`` (separate ints, or one tuple or list of them) gives."""
    if not size:
        raise TypeError(f"{name}: size is missing (ints, or one tuple or list; () makes a 0-d tensor)")
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    if not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 0 for n in size):
        raise ValueError(f"{name}: size must be non-negative ints, got {size!r}")
    return tuple(int(n) for n in size)


def _dtype(dtype, default, name: str) -> numpy.dtype:
    dtype = numpy.dtype(default if dtype is None else dtype)
    if dtype.kind not in "biuf":
        raise TypeError(f"{name}: dtype must be a bool, integer or float type, got {dtype}")
    return dtype


def _made(array, device, requires_grad: bool) -> Tensor:
    """A Tensor of ``array``, a NumPy array, on ``device`` (moved there if it is not the cpu)."""
    device = get_device(device)
    if device.xp is not numpy:
        with device.context():
            array = device.asarray(array)
    return Tensor._from_array(array, device, requires_grad)


def _filled(shape: tuple, value, dtype: numpy.dtype, device, requires_grad: bool) -> Tensor:
    device = get_device(device)
    with device.context():
        array = device.xp.full(shape, value, dtype=dtype)
    return Tensor._from_array(array, device, requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros of shape ``size``."""
    return _filled(_size(size, "zeros"), 0, _dtype(dtype, numpy.float32, "zeros"), device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones of shape ``size``."""
    return _filled(_size(size, "ones"), 1, _dtype(dtype, numpy.float32, "ones"), device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of shape ``size`` whose values are whatever its memory held (write them before reading)."""
    shape, dtype, device = _size(size, "empty"), _dtype(dtype, numpy.float32, "empty"), get_device(device)
    with device.context():
        return Tensor._from_array(device.xp.empty(shape, dtype=dtype), device, requires_grad)


def _fill_dtype(fill_value, name: str) -> numpy.dtype:
    """torch.full's dtype for a Python value: bool for a bool, int64 for an int, float32 for a float."""
    if isinstance(fill_value, (bool, numpy.bool_)):
        return numpy.dtype(numpy.bool_)
    if isinstance(fill_value, numbers.Integral):
        return numpy.dtype(numpy.int64)
    if isinstance(fill_value, numbers.Real):
        return numpy.dtype(numpy.float32)
    raise TypeError(f"{name}: fill_value must be a real number or a bool, got {type(fill_value).__name__} "
                    f"{fill_value!r}")


def full(size, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of shape ``size`` (a tuple or list) holding ``fill_value``; its dtype follows the value's
    type unless given: bool, int64 for an int, float32 for a float."""
    shape = _size((size,), "full")
    dtype = _dtype(dtype, _fill_dtype(fill_value, "full"), "full")
    return _filled(shape, fill_value, dtype, device, requires_grad)


def _like(input, name: str, dtype, device) -> tuple:
    """``input``'s shape, and ``dtype`` and ``device`` where given, else input's."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
    return input.shape, input.dtype if dtype is None else dtype, input.device if device is None else device


def zeros_like(input, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Zeros of ``input``'s shape, and of its dtype and device unless given."""
    shape, dtype, device = _like(input, "zeros_like", dtype, device)
    return zeros(shape, dtype=dtype, device=device, requires_grad=requires_grad)


def ones_like(input, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Ones of ``input``'s shape, and of its dtype and device unless given."""
    shape, dtype, device = _like(input, "ones_like", dtype, device)
    return ones(shape, dtype=dtype, device=device, requires_grad=requires_grad)


def empty_like(input, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor of ``input``'s shape, and of its dtype and device unless given."""
    shape, dtype, device = _like(input, "empty_like", dtype, device)
    return empty(shape, dtype=dtype, device=device, requires_grad=requires_grad)


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``fill_value`` in ``input``'s shape, and of its dtype and device unless given."""
    shape, dtype, device = _like(input, "full_like", dtype, device)
    _fill_dtype(fill_value, "full_like")
    return full(shape, fill_value, dtype=dtype, device=device, requires_grad=requires_grad)


def _float_dtype(dtype, name: str) -> numpy.dtype:
    dtype = _dtype(dtype, numpy.float32, name)
    if dtype.kind != "f":
        raise TypeError(f"{name}: dtype must be a floating-point type, got {dtype}")
    return dtype


def rand(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uniform random values in [0, 1) of shape ``size``."""
    shape, dtype = _size(size, "rand"), _float_dtype(dtype, "rand")
    if dtype in (numpy.float32, numpy.float64):
        values = random.generator().random(shape, dtype=dtype)
    else:  # multiples of 2^-bits that the dtype holds exactly, so that none rounds up to 1
        bits = min(numpy.finfo(dtype).nmant + 1, 53)
        values = (random.generator().integers(0, 1 << bits, shape) * 2.0**-bits).astype(dtype)
    return _made(values, device, requires_grad)


def randn(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Standard normal random values of shape ``size``."""
    shape, dtype = _size(size, "randn"), _float_dtype(dtype, "randn")
    if dtype in (numpy.float32, numpy.float64):
        values = random.generator().standard_normal(shape, dtype=dtype)
    else:
        values = random.generator().standard_normal(shape).astype(dtype)
    return _made(values, device, requires_grad)


def rand_like(input, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uniform random values in [0, 1) of ``input``'s shape, and of its dtype and device unless given."""
    shape, dtype, device = _like(input, "rand_like", dtype, device)
    return rand(shape, dtype=dtype, device=device, requires_grad=requires_grad)


def randn_like(input, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Standard normal random values of ``input``'s shape, and of its dtype and device unless given."""
    shape, dtype, device = _like(input, "randn_like", dtype, device)
    return randn(shape, dtype=dtype, device=device, requires_grad=requires_grad)


def _integer(value, name: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: {what} must be an int, got {type(value).__name__} {value!r}")
    return int(value)


def randint(*args, size=None, dtype=None, device=None, requires_grad: bool = False, low=None, high=None) -> Tensor:
    """Random integers in [low, high) of shape ``size``: ``randint(high, size)`` or ``randint(low, high, size)``,
    as torch.randint; int64 unless ``dtype`` says otherwise."""
    if size is None and args:
        *args, size = args
    if len(args) == 2 and low is None and high is None:
        low, high = args
    elif len(args) == 1 and high is None:
        high, low = args[0], 0 if low is None else low
    elif not args and high is not None:
        low = 0 if low is None else low
    else:
        raise TypeError(f"randint takes (high, size) or (low, high, size), got {len(args)} bounds besides size "
                        f"{size!r} (low={low!r}, high={high!r})")
    if size is None or not isinstance(size, (tuple, list)):
        raise TypeError(f"randint: size must be a tuple or list of ints, got {size!r}")
    low, high = _integer(low, "randint", "low"), _integer(high, "randint", "high")
    if low >= high:
        raise ValueError(f"randint: low must be less than high, got low={low}, high={high}")
    shape, dtype = _size((size,), "randint"), _dtype(dtype, numpy.int64, "randint")
    if requires_grad and dtype.kind != "f":
        raise TypeError(f"randint: only floating-point tensors can require grad, got dtype {dtype}")
    return _made(random.generator().integers(low, high, shape).astype(dtype), device, requires_grad)


def randperm(n, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A random permutation of 0 .. n-1, int64 unless ``dtype`` says otherwise."""
    n = _integer(n, "randperm", "n")
    if n < 0:
        raise ValueError(f"randperm: n must be non-negative, got {n}")
    dtype = _dtype(dtype, numpy.int64, "randperm")
    return _made(random.generator().permutation(n).astype(dtype), device, requires_grad)


def _real(value, name: str, what: str):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: {what} must be a real number, got {type(value).__name__} {value!r}")
    return value


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """start, start + step, ... up to but not including ``end`` (``arange(end)`` starts at 0). int64 when every
    bound is an int, else float32, unless ``dtype`` says otherwise. An integer dtype cuts the bounds to integers
    first, as torch's; float values are computed in float64 and rounded once."""
    if end is None:
        start, end = 0, start
    bounds = [_real(value, "arange", what) for value, what in ((start, "start"), (end, "end"), (step, "step"))]
    if not all(math.isfinite(value) for value in bounds):
        raise ValueError(f"arange: start, end and step must be finite, got {start}, {end}, {step}")
    integral = all(isinstance(value, numbers.Integral) for value in bounds)
    dtype = _dtype(dtype, numpy.int64 if integral else numpy.float32, "arange")
    if dtype.kind == "b":
        raise TypeError("arange: dtype must be an integer or float type, got bool")
    if dtype.kind != "f":
        bounds = [int(value) for value in bounds]
    start, end, step = bounds
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise ValueError(f"arange: the range from start={start} to end={end} goes against the sign of step={step}")
    count = math.ceil((end - start) / step)
    if dtype.kind == "f":
        values = start + numpy.arange(count, dtype=numpy.float64) * step
    else:
        values = numpy.arange(start, end, step, dtype=numpy.int64)
    return _made(values.astype(dtype, copy=False), device, requires_grad)


def linspace(start, end, steps: int, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end``, both included; float32 unless ``dtype`` says
    otherwise. As torch's, the first half counts up from start and the second down from end."""
    start, end = _real(start, "linspace", "start"), _real(end, "linspace", "end")
    steps = _integer(steps, "linspace", "steps")
    if steps < 0:
        raise ValueError(f"linspace: steps must be non-negative, got {steps}")
    dtype = _dtype(dtype, numpy.float32, "linspace")
    index = numpy.arange(steps, dtype=numpy.float64)
    step = (end - start) / (steps - 1) if steps > 1 else 0.0
    values = numpy.where(index < steps // 2, start + index * step, end - (steps - 1 - index) * step)
    return _made(values.astype(dtype), device, requires_grad)


def eye(n: int, m: int | None = None, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """An n x m (n x n) matrix with ones on the diagonal."""
    n = _integer(n, "eye", "n")
    m = n if m is None else _integer(m, "eye", "m")
    if n < 0 or m < 0:
        raise ValueError(f"eye: n and m must be non-negative, got n={n}, m={m}")
    return _made(numpy.eye(n, m, dtype=_dtype(dtype, numpy.float32, "eye")), device, requires_grad)


def from_numpy(ndarray) -> Tensor:
    """A cpu tensor sharing ``ndarray``'s memory, of its dtype: a change to one shows in the other, as with
    torch.from_numpy (:func:`gpucnn.tensor` copies)."""
    if not isinstance(ndarray, numpy.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(ndarray).__name__}")
    return Tensor._from_array(_to_array(ndarray, None, "from_numpy: ndarray"), get_device("cpu"))
