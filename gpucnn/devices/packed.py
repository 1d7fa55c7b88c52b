"""A kernel's arguments packed as ``cuLaunchKernel`` takes them, for launches that repeat.

``cuLaunchKernel(f, grid, block, shared, stream, kernelParams, extra)`` reads argument i through
``kernelParams[i]``, a pointer to its value, taking as many bytes as parameter i's type has. CuPy's
``RawKernel`` builds that array anew from the Python arguments on every call: on an H100's host a
launch took 11.0-14.4 us with conv2d's 22 arguments and 6.6-7.9 us with 6, against 5.1 us for the
driver's launch from a buffer made beforehand with 4 of its 22 values rewritten (the median of
200-launch blocks). :class:`PackedArguments` is such a buffer: an 8-byte slot per argument, holding
the value in its first bytes (little-endian, as the GPU and the host read it), and the array of
pointers to the slots. A layer's sizes are the kernel's last arguments and do not change from call to
call; they are written once, and each launch writes only the arrays and flags before them.

The ``cudasim`` device launches from the same buffer (``Kernel.launch_params``), so the tests run
this packing on every such launch.
"""

from __future__ import annotations

import ctypes
import threading

import numpy


# The integer scalar types by the mask that gives their bytes as an unsigned number (two's complement).
_INTEGER_MASKS = {numpy.int32: 2**32 - 1, numpy.uint32: 2**32 - 1, numpy.int64: 2**64 - 1, numpy.uint64: 2**64 - 1}


class PackedArguments:
    """The slots of a kernel's ``leading + len(fixed)`` arguments: ``fixed`` (NumPy scalars or arrays)
    written now, the ``leading`` ones by :meth:`fill` before each launch. ``address(array)`` gives an
    array's device address. Hold ``lock`` from :meth:`fill` until the launch has read the slots."""

    def __init__(self, leading: int, fixed: tuple, address):
        count = leading + len(fixed)
        self.leading = leading
        self._address = address
        self._slots = (ctypes.c_uint64 * max(count, 1))()
        first = ctypes.addressof(self._slots)
        self._pointers = (ctypes.c_void_p * max(count, 1))(*range(first, first + 8 * count, 8))
        self.params = ctypes.addressof(self._pointers)
        self.lock = threading.Lock()
        self._array_types = set()  # the types whose values _bits passed by address: fill does so at once
        for index, value in enumerate(fixed, leading):
            self._slots[index] = self._bits(index, value)

    def _bits(self, index: int, value) -> int:
        """Slot ``index``'s contents for ``value``: a NumPy scalar's bytes, or an array's address."""
        mask = _INTEGER_MASKS.get(type(value))
        if mask is not None:  # the common scalars, a quarter of tobytes' time
            return int(value) & mask
        if isinstance(value, numpy.generic):
            return int.from_bytes(value.tobytes(), "little")
        if isinstance(value, (int, float, bool)):
            raise TypeError(f"kernel argument {index} is a Python {type(value).__name__} ({value!r}): pass a NumPy "
                            "scalar of the parameter's type, such as numpy.int32(value)")
        try:
            bits = self._address(value)
        except AttributeError:  # not an array: no address to pass
            raise TypeError(f"kernel argument {index} is a {type(value).__name__}: pass an array of the device or a "
                            "NumPy scalar") from None
        self._array_types.add(type(value))
        return bits

    def fill(self, leading: tuple) -> int:
        """Writes the leading arguments into their slots; returns the address of the pointer array."""
        if len(leading) != self.leading:
            raise TypeError(f"this launch takes {self.leading} leading kernel arguments, got {len(leading)}")
        slots, bits, address, arrays = self._slots, self._bits, self._address, self._array_types
        for index, value in enumerate(leading):  # arrays, most of them, by their address at once
            slots[index] = address(value) if type(value) in arrays else bits(index, value)
        return self.params


class PackedLaunch:
    """What the kernel devices' launchers share: the PackedArguments of their ``fixed`` arguments, made at
    the first launch, whose number of leading arguments every later launch must match."""

    def __init__(self, fixed: tuple, address):
        self._fixed, self._address, self._arguments = fixed, address, None

    def _packed(self, leading: tuple) -> PackedArguments:
        arguments = self._arguments
        if arguments is None:
            arguments = self._arguments = PackedArguments(len(leading), self._fixed, self._address)
        return arguments
