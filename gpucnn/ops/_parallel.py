"""Threads for the cpu ops: ``run_chunked(work, size, grain)``, NumPy's BLAS thread count, ``matmul``.

NumPy's ufuncs release the GIL while they loop (``ufunc.at`` and fancy indexing do not), so calling
them on disjoint pieces of a large array from two threads keeps two cores busy. Waking a helper
thread and waiting for it costs about 20 us each way on the 2-core virtual machine this was measured
on, so the cpu ops only split work of a few hundred microseconds or more (their ``grain``); each
op's docstring gives its numbers. Pieces also bound the size of a block's temporaries.

The pieces are claimed one at a time by whichever thread is free (the caller's thread takes part),
so a helper that is slow to wake, or busy with another caller's job, only means the caller does more
pieces itself: nothing waits for a piece that no thread has started. The helpers are daemon threads,
one fewer than the usable cores (os.sched_getaffinity), started on first use; none on one core. A
``run_chunked`` inside a piece of another runs its pieces one after the other.

OpenBLAS, NumPy's BLAS, runs a large product on all cores with threads of its own, which then spin
for about 0.1 s waiting for the next product before they sleep. Work split among this module's
threads in that time shares the cores with them. Splitting conv2d's copies and adds between its
products by channel (the 2x2-block path's gathers, tap sums and scatters) left a 64x16x32x32 3x3
layer's forward and backward at 21.4-22.6 ms against 22.0-22.3 ms (best three of five runs); with
OpenBLAS on one thread the same split took it from 31.2-32.8 to 28.4-28.9 ms. So:

- work whose pieces call BLAS runs inside ``single_threaded_blas()``, each piece's products on its
  own core (conv2d's parts, ``matmul``);
- for ``SPLIT_WINDOW`` seconds after ``run_chunked`` last split work among threads (``splitting``),
  the cpu device runs every op with BLAS on one thread (``gpucnn.devices.CpuDevice.context``) and
  ``matmul`` splits the large products of conv2d among the threads itself. Outside that window the
  ops leave BLAS to its own threads, which ran the mid-sized products of the small networks faster
  than two pieces here (a 128x576 by 576x784 product: 0.46 ms against 0.72 ms).
"""

from __future__ import annotations

import ctypes
import os
import queue
import threading
import time

import numpy


#: For this many seconds after work split among the threads (``note_split``), ``splitting`` is True.
SPLIT_WINDOW = 1.0
_split_until = 0.0


def note_split() -> None:
    """Marks that work splits among this process's threads now."""
    global _split_until
    _split_until = time.monotonic() + SPLIT_WINDOW


def end_split() -> None:
    """Ends the window ``note_split`` opened, as if no work had split: what runs next runs as a call on
    its own does (the benchmarks start each op's block of timings so)."""
    global _split_until
    _split_until = 0.0


def splitting() -> bool:
    """Whether ``run_chunked`` split work among the threads within the last SPLIT_WINDOW seconds."""
    return time.monotonic() < _split_until


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS reports it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


_inside = threading.local()  # .pieces: how many pieces of run_chunked this thread is running, nested


class _Job:
    """One ``run_chunked`` call: its pieces, each run once by whichever thread claims it first."""

    def __init__(self, work, bounds: list):
        self.work = work
        self.pieces = iter(bounds)  # a list iterator: next() is atomic under the GIL
        self.unfinished = len(bounds)
        self.lock = threading.Lock()
        self.finished = threading.Lock()  # held until the last piece is done (an Event's Condition costs more)
        self.finished.acquire()
        self.error = None

    def run(self) -> None:
        """Claims and runs pieces until none is left."""
        for start, stop in self.pieces:
            _inside.pieces = getattr(_inside, "pieces", 0) + 1
            try:
                self.work(start, stop)
            except BaseException as error:  # handed to the caller's thread, which raises it
                self.error = error
            finally:
                _inside.pieces -= 1
            with self.lock:
                self.unfinished -= 1
                if self.unfinished == 0:
                    self.finished.release()


class _Helpers:
    """The helper threads, all waiting on one queue of jobs."""

    def __init__(self, count: int):
        self.count = count
        self.inbox = queue.SimpleQueue()
        for index in range(count):
            threading.Thread(target=self._serve, name=f"gpucnn-cpu-{index}", daemon=True).start()

    def _serve(self) -> None:
        while True:
            self.inbox.get().run()


_helpers = None
_helpers_lock = threading.Lock()


def _get_helpers():
    """The helper threads, started on first use; None on a single usable core."""
    global _helpers
    if _helpers is None:
        with _helpers_lock:
            if _helpers is None:
                _helpers = _Helpers(usable_cores() - 1) if usable_cores() > 1 else False
    return _helpers or None


def _forget_helpers() -> None:
    """After fork the child has none of the parent's threads: it starts its own when needed. A lock
    that another thread of the parent held stays held in the child, so the child gets new ones."""
    global _helpers, _helpers_lock
    _helpers, _helpers_lock = None, threading.Lock()
    if _blas_threads is not None:
        _blas_threads.lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_helpers)


def in_piece() -> bool:
    """Whether this thread is running a piece of ``run_chunked``."""
    return getattr(_inside, "pieces", 0) > 0


def run_chunked(work, size: int, grain: int) -> None:
    """Calls ``work(start, stop)`` on consecutive pieces that together cover ``range(size)``.

    There are ``size // grain`` pieces (at least one), of equal size give or take one. With two or
    more and more than one usable core they run concurrently on the helper threads and this one;
    otherwise one after the other, here, as they do inside a piece of another call (whose siblings
    already keep the other cores busy). ``work`` must only write its own piece of the output.
    Returns when every piece is done; re-raises an exception from any of them.
    """
    count = max(1, size // grain)
    bounds = [(size * index // count, size * (index + 1) // count) for index in range(count)]
    helpers = _get_helpers() if count > 1 and not in_piece() else None
    if helpers is None:
        for start, stop in bounds:
            work(start, stop)
        return
    note_split()
    job = _Job(work, bounds)
    for _ in range(helpers.count):
        helpers.inbox.put(job)
    job.run()
    job.finished.acquire()
    if job.error is not None:
        raise job.error


class _BlasThreads:
    """NumPy's OpenBLAS thread count, read and set through OpenBLAS's own calls.

    The library is found among those this process has loaded (/proc/self/maps, so Linux only); NumPy's
    wheels ship it beside the package (numpy.libs), which is preferred over another OpenBLAS (SciPy's
    wheels ship their own). NumPy built on another BLAS (MKL, Accelerate) has no such calls: then
    ``usable`` is False and nothing is changed."""

    def __init__(self):
        self.library = self.get = self.set = None
        self.symbol = None  # how the library names its calls: symbol("get_num_threads")
        self.lock = threading.Lock()
        self.depth = self.saved = 0
        try:
            with open("/proc/self/maps") as maps:
                paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line}
        except OSError:
            return
        numpy_prefix = os.path.dirname(os.path.dirname(numpy.__file__)) + os.sep + "numpy"
        for path in sorted(paths, key=lambda path: (not path.startswith(numpy_prefix), path)):
            try:
                library = ctypes.CDLL(path)
            except OSError:
                continue
            for prefix in ("scipy_openblas_", "openblas_"):
                for suffix in ("64_", ""):
                    get = getattr(library, f"{prefix}get_num_threads{suffix}", None)
                    set_ = getattr(library, f"{prefix}set_num_threads{suffix}", None)
                    if get is not None and set_ is not None:
                        get.restype, get.argtypes = ctypes.c_int, []
                        set_.restype, set_.argtypes = None, [ctypes.c_int]
                        self.library, self.get, self.set = library, get, set_
                        self.symbol = f"{prefix}{{}}{suffix}".format
                        return

    @property
    def usable(self) -> bool:
        return self.set is not None

    def __enter__(self):
        """BLAS on one thread inside ``with``, its count as before after it. Re-entrant, from any
        thread: the last one out sets the count back."""
        if self.set is not None:
            with self.lock:
                if self.depth == 0:
                    self.saved = self.get()
                    if self.saved > 1:
                        self.set(1)
                self.depth += 1
        return self

    def __exit__(self, *exception) -> None:
        if self.set is not None:
            with self.lock:
                self.depth -= 1
                if self.depth == 0 and self.saved > 1:
                    self.set(self.saved)


_blas_threads = None


def blas_threads() -> _BlasThreads:
    """The process's ``_BlasThreads``, made on first use."""
    global _blas_threads
    if _blas_threads is None:
        _blas_threads = _BlasThreads()
    return _blas_threads


def single_threaded_blas() -> _BlasThreads:
    """A context in which NumPy's BLAS runs every product on one thread (where its thread count can be
    set: NumPy's OpenBLAS on Linux; elsewhere it changes nothing). The count is process-wide: products
    that other threads run meanwhile get one thread too."""
    return blas_threads()


#: A product of fewer multiply-adds than this stays one BLAS call (``matmul``).
MATMUL_MIN_MACS = 1 << 22

def matmul(a, b, out):
    """``numpy.matmul(a, b, out=out)``; returns out. While ``splitting``, outside a piece, a product of
    at least 2 * MATMUL_MIN_MACS multiply-adds runs in pieces on all cores, each a product of its own
    with BLAS on one thread: pieces of out's leading (stack) axis where it holds at least as many
    matrices as there are cores, else of its longer matrix axis. On the 2-core VM two such pieces
    took 0.72 ms for a 128x576 by 576x784 product and 0.74 ms for 80x400 by 400x2048, where one
    thread took 0.78 and 1.05 ms (but 0.61 against 0.52 ms for 20x500 by 500x2048); a small ResNet's
    training step took 118-122 ms with them and 117-127 ms without, the ConvNetJS network's 30 ms
    against 34-36 ms."""
    macs = out.size * a.shape[-1]
    if macs < 2 * MATMUL_MIN_MACS or in_piece() or not splitting():
        return numpy.matmul(a, b, out=out)
    cores = usable_cores()
    stacked = out.ndim >= 3 and out.shape[0] >= cores
    size = out.shape[0] if stacked else max(out.shape[-2:])  # the axis the pieces cut
    pieces = min(cores, size, macs // MATMUL_MIN_MACS)
    if pieces < 2:  # also a long dot product into one value: nothing to cut
        return numpy.matmul(a, b, out=out)
    if stacked:
        def work(start, stop):  # an operand of fewer axes, or a stack of one, is broadcast over the stack
            numpy.matmul(a if a.ndim < out.ndim or len(a) == 1 else a[start:stop],
                         b if b.ndim < out.ndim or len(b) == 1 else b[start:stop], out=out[start:stop])
    elif out.shape[-1] >= out.shape[-2]:
        def work(start, stop):
            numpy.matmul(a, b[..., start:stop], out=out[..., start:stop])
    else:
        def work(start, stop):
            numpy.matmul(a[..., start:stop, :], b, out=out[..., start:stop, :])
    with single_threaded_blas():
        run_chunked(work, size, size // pieces)
    return out
