"""Recycled host memory for the cpu ops' large arrays: ``empty(shape, dtype)`` and ``zeros(shape, dtype)``.

The first touch of fresh memory costs a page fault per page, in which the kernel maps and zeroes it.
glibc's malloc maps each block from its threshold up afresh (128 KiB, raised to the largest block
freed so far, at most 32 MiB; a block the size of the threshold is still mapped) and unmaps it on
free, so an op that makes an array of a few MiB anew in every call pays those faults in every call,
more or less of them depending on what the process freed before. On the 2-core VM this was measured
on, max_pool2d's forward on 32x16x32x32 took 3.0 ms in a fresh process and 0.7 ms after larger
blocks had been freed.

So the cpu ops take their large outputs and temporaries from here. An array from :func:`empty` is a
view of a kept block; when it and every view of it are gone (CPython frees them as soon as the last
reference goes), the block goes back to the free list for the next array that fits in it. At most
``max_free_bytes`` are kept free (an eighth of the machine's memory, at most 4 GiB; 1 GiB where the OS
does not say): a block that would pass it first pushes out the blocks freed longest ago, which a
change of shapes (another batch size) leaves unused. Arrays under ``MIN_BYTES`` come from malloc,
whose free lists serve them without page faults. Large layers need the room: VGG-16's 128-channel
112x112 conv2d at batch 32 keeps 1.7 GB free between steps, and with at most 1 GiB its forward +
backward took 1.39-1.42 and 2.20-2.48 s in alternate steps on the 2-core VM with 23 GB, with an eighth
(2.9 GB) 1.28-1.30 s.
"""

from __future__ import annotations

import bisect
import collections
import math
import operator
import os
import threading
import weakref

import numpy

MIN_BYTES = 1 << 18

#: Images per copy where a copy gathers images into the last axis (conv2d's 2x2-block layout,
#: Winograd's padded input): an image's pixel and the next image's are often a power of two apart,
#: which maps many images' pixels to one set of the cache. In groups of 8 the copies into the blocked
#: layout took half the time or less (ConvNetJS conv1 and conv2).
IMAGE_TILE = 8


def default_max_free_bytes() -> int:
    """An eighth of the physical memory, at most 4 GiB; 1 GiB where the OS does not report it."""
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        physical = 0
    return min(4 << 30, physical // 8) if physical > 0 else 1 << 30


class HostMemory:
    """The free blocks (flat uint8 arrays) and the arrays handed out from them."""

    def __init__(self, max_free_bytes: int | None = None):
        self.max_free_bytes = default_max_free_bytes() if max_free_bytes is None else max_free_bytes
        self._sizes = []  # the free blocks' sizes, ascending
        self._blocks = []  # the free blocks, in the same order
        self._freed_at = []  # when each was given back (a count of gives), in the same order
        self._gives = 0
        self._free_bytes = 0
        self._lock = threading.Lock()
        # Blocks whose arrays are gone, not yet filed into the lists. A weak reference's callback
        # (``_gone``) may run on any thread at any allocation, even one made while that thread holds
        # the lock, so it only appends here (atomic, no lock); whoever takes the lock next files them.
        self._returned = collections.deque()
        self._owners = {}  # id of the weak reference to an array handed out: (that reference, its block)

    def empty(self, shape, dtype):
        """An uninitialised C-contiguous array of ``shape`` (an int or a sequence of them) and ``dtype``,
        as ``numpy.empty``.

        Every large op output comes from here, so this is written for speed: a call right after an op
        that streamed megabytes through the cache finds little of its Python state there. Right after a
        2.6 MB clip, a 1.3 MB array took 15.7-15.9 us here (numpy.empty: 1.4-1.5 us) while a tuple
        shape went through operator.index's TypeError and the block came back through
        ``weakref.finalize``, and 8.2-8.4 us without them (warm: 3.1 and 2.2 us)."""
        if not isinstance(shape, tuple):
            try:
                shape = (operator.index(shape),)
            except TypeError:
                shape = tuple(shape)
        dtype = numpy.dtype(dtype)
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if nbytes < MIN_BYTES:
            return numpy.empty(shape, dtype=dtype)
        block = self._take(nbytes)
        # Through a memoryview, frombuffer's array is the base of every view of it (NumPy collapses a
        # view's base down to the first array whose own base is not an array), so it lives exactly as
        # long as any of them. Given the block itself, views would collapse past it to the block.
        owner = numpy.frombuffer(memoryview(block), dtype=dtype, count=count)
        reference = weakref.ref(owner, self._gone)
        self._owners[id(reference)] = reference, block
        return owner.reshape(shape)

    def _gone(self, reference) -> None:
        """The callback of an array's weak reference: its block goes back (see ``_returned``)."""
        self._returned.append(self._owners.pop(id(reference))[1])

    def whole_block(self, array) -> bool:
        """Whether ``array`` is all of a block that ``empty`` handed out: a C-contiguous view, of all
        its bytes, of the array over the block (as ``empty`` returns them)."""
        owner = array.base
        return (isinstance(owner, numpy.ndarray) and owner.nbytes == array.nbytes and array.flags.c_contiguous
                and any(id(reference) in self._owners for reference in weakref.getweakrefs(owner)))

    def zeros(self, shape, dtype):
        """A C-contiguous array of zeros, as ``numpy.zeros``."""
        array = self.empty(shape, dtype)
        fill_zeros(array)
        return array

    def free_bytes(self) -> int:
        """Bytes kept in free blocks."""
        with self._lock:
            self._file_returned()
            return self._free_bytes

    def _take(self, nbytes: int):
        """The smallest free block of ``nbytes`` to ``2 * nbytes`` bytes, else a new one."""
        with self._lock:
            self._file_returned()
            index = bisect.bisect_left(self._sizes, nbytes)
            if index < len(self._sizes) and self._sizes[index] <= 2 * nbytes:
                return self._remove(index)
        return numpy.empty(nbytes, dtype=numpy.uint8)

    def _file_returned(self) -> None:
        """Files the returned blocks into the free lists (the lock held), within ``max_free_bytes``."""
        while self._returned:
            block = self._returned.popleft()
            if block.size > self.max_free_bytes:
                continue
            while self._free_bytes + block.size > self.max_free_bytes:  # push out the longest free
                self._remove(self._freed_at.index(min(self._freed_at)))
            index = bisect.bisect_left(self._sizes, block.size)
            self._sizes.insert(index, block.size)
            self._blocks.insert(index, block)
            self._freed_at.insert(index, self._gives)
            self._gives += 1
            self._free_bytes += block.size

    def _remove(self, index: int):
        """Takes free block ``index`` off the list (the lock held) and returns it."""
        self._free_bytes -= self._sizes.pop(index)
        del self._freed_at[index]
        return self._blocks.pop(index)


def ufunc(function, a, b):
    """``function(a, b)``, a NumPy ufunc of two host arrays; where they have one dtype and one of them at
    least ``MIN_BYTES // 8`` values, the result goes into a recycled block. A fresh array of megabytes may
    cost a page fault a page: a small ResNet's residual adds and the sums of the gradients that meet at
    its branches took about 1,000 and 770 a step at batch 64 where the process had freed other models'
    arrays. Of two dtypes, NumPy's own result (before NumPy 2, a 0-d operand's dtype could give way to
    the other's, where ``resolve_dtypes`` would not)."""
    if a.dtype != b.dtype or max(a.size, b.size) < MIN_BYTES // 8:
        return function(a, b)
    out_dtype = function.resolve_dtypes((a.dtype, b.dtype, None))[2]
    return function(a, b, out=empty(numpy.broadcast_shapes(a.shape, b.shape), out_dtype))


def fill_zeros(array) -> None:
    """Sets every value of ``array`` to zero; a C-contiguous one through a byte view: NumPy fills bytes
    as memset does and wider items item by item. On the 2-core VM, 2 MiB of float32 took 30 us so
    against 69 us by ``fill(0)``, 8 MiB 85 against 273 us."""
    if array.flags.c_contiguous:  # flat first: a 0-d array has no byte view of its own
        array.reshape(-1).view(numpy.uint8).fill(0)
    else:  # reshape would copy it
        array.fill(0)


_host = HostMemory()
empty = _host.empty
zeros = _host.zeros
whole_block = _host.whole_block


def _after_fork_in_child() -> None:
    """A forked child has only the forking thread: a lock another thread held then stays held. The
    child gets a new lock; the free blocks, copied with the rest of its memory, stay usable."""
    _host._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
