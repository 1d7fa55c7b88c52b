"""NumPy's elementwise loops over rows with an operand broadcast along them.

An elementwise ufunc whose operand holds one value a row, shaped (..., 1) against rows of (..., L) (a
per-channel scale over an image's planes, a bias over a product's rows), runs with the operand at
stride 0 along each row. When a row is shorter than NumPy's ufunc buffer (8192 elements by default),
NumPy's iterator makes its inner loop span several rows, and to do so copies the operands into its
buffers: on the 2-core AMD EPYC VM, float32 (C, L) times (C, 1) took 134-145 us on 451,584 values in
rows of 196 to 4096 values, against 43-54 us times a scalar; from rows of 6272 on, 55-59 us (NumPy 2.4
and 1.24 alike). With the buffer no longer than a row, the loop runs along each row in place: 45-55 us
on rows of 3136, 60 on 1024, 64 on 840, 74 on 400, but 116 on 196 and 388 on 49, where the call per
row costs more than the copy (99-117 us left as they were). Setting the buffer size and setting it
back costs about 5 us.
"""

from __future__ import annotations

import contextlib

import numpy

#: Rows of at least SHORTEST_ROW values take a buffer no longer than a row (see above).
SHORTEST_ROW = 384


@contextlib.contextmanager
def whole_rows(length: int):
    """Within it, NumPy's elementwise loops on rows of ``length`` values run a row at a time, unbuffered,
    where rows are long enough to gain (SHORTEST_ROW) and shorter than the buffer; NumPy's buffer size as
    it was outside it. NumPy keeps the buffer size per thread (a context variable from NumPy 2 on)."""
    size = numpy.getbufsize()
    if not SHORTEST_ROW <= length < size:
        yield
        return
    numpy.setbufsize(length - length % 16)  # a multiple of 16, as NumPy requires
    try:
        yield
    finally:
        numpy.setbufsize(size)
