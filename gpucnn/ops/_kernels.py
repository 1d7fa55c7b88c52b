"""What the GPU halves of the ops share: launch shapes, the float32 rule, kernel-ready arrays.

The kernels of ``cuda/*.cu`` take C-contiguous float32 arrays and run 256 threads per block. The
elementwise and pooling kernels give one thread per output (or input) element over a 1-D grid capped
at 65535 blocks, looping over the rest (grid-stride). Every launch goes through ``Device.launcher``
(cuLaunchKernel from packed arguments on a GPU): a layer's sizes, which repeat from call to call, are
packed once, the rest on each launch.
"""

from __future__ import annotations

import functools

import numpy

THREADS = 256
MAX_BLOCKS = 65535


def blocks_for(count: int, cap: int | None = None) -> int:
    """Blocks of THREADS for ``count`` elements, at most ``cap`` (default MAX_BLOCKS; the kernels
    stride over the rest)."""
    return min(-(-count // THREADS), MAX_BLOCKS if cap is None else cap)


@functools.lru_cache(maxsize=4096)
def int32_args(values: tuple) -> tuple:
    """``values`` (ints or bools) as numpy.int32 scalars, as the kernels take their int arguments.
    Cached: a layer's sizes repeat on every call, and making conv2d's 16 scalars anew took 4.4 us a
    launch (0.14 us cached), a visible part of a small layer's host time."""
    return tuple(numpy.int32(value) for value in values)


def launch_elementwise(device, file: str, name: str, count: int, args: tuple, fixed: tuple = ()) -> None:
    """Launches kernel ``name`` of ``cuda/<file>.cu`` on ``device`` over ``count`` elements with the
    arguments ``args + fixed``; nothing when count is 0. ``fixed``: the last arguments where a layer
    repeats them on every call, one tuple for those values (``sized``), which the launch packs once."""
    if count:
        device.launcher(file, name, fixed)((blocks_for(count),), (THREADS,), args)


@functools.lru_cache(maxsize=4096)
def sized(name: str, count: int, sizes: tuple) -> tuple:
    """``(numpy.int64(count),) + sizes``: the last arguments of kernel ``name`` over ``count`` elements,
    ``sizes`` NumPy scalars of its parameters' types. The same tuple for the same values, as
    ``launch_elementwise``'s ``fixed``; ``name`` keeps apart kernels whose sizes compare equal in other
    types (an int32 1 and a float32 1.0)."""
    return (numpy.int64(count),) + sizes


_constants = {}


def _constant(device, dtype, value):
    """A 1-element array of ``dtype`` holding ``value`` on ``device``, one per device, dtype and value,
    made on first use: on a GPU a new one would be an allocation and a fill per call."""
    key = (device.name, dtype, value)  # a str hashes faster than a Device
    array = _constants.get(key)
    if array is None:
        with device.context():
            array = _constants[key] = device.xp.full(1, value, dtype=dtype)
    return array


def placeholder(device, dtype=numpy.float32):
    """A 1-element array of ``dtype`` on ``device`` that stands in for a missing array argument: kernels
    take no null pointers (the kernel's flag says the array is absent, and it is neither read nor
    written)."""
    return _constant(device, dtype, 0)


def kernel_array(xp, array):
    """``array`` as a C-contiguous float32 array of the same shape (0-d stays 0-d), as kernels read it:
    itself when it is one already (most calls; a small op's launch is mostly such Python work)."""
    if isinstance(array, xp.ndarray) and array.dtype == numpy.float32 and array.flags.c_contiguous:
        return array
    return xp.ascontiguousarray(array, dtype=xp.float32).reshape(array.shape)


def require_float32(op: str, dtype, device, input_shape: tuple, weight_shape: tuple | None = None) -> None:
    """TypeError when an input of ``dtype`` is on a kernel device (cuda, cudasim: float32 kernels) and is not
    float32; the message gives its shape, and ``weight_shape`` where given."""
    if dtype != numpy.float32 and device.runs_kernels:
        shapes = f"input shape {input_shape}" + ("" if weight_shape is None else f", weight shape {weight_shape}")
        raise TypeError(
            f"{op}: the kernels of device '{device}' take float32 only, got dtype {dtype} ({shapes}); convert "
            "with .float()"
        )
