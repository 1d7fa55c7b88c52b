"""Chunked, threaded NumPy work for the cpu ops: ``run_chunked(work, size, grain)``.

NumPy's ufuncs release the GIL while they loop (``ufunc.at`` and fancy indexing do not), so calling
them on disjoint pieces of a large array from two threads keeps two cores busy. Waking a helper
thread and waiting for it costs about 20 us each way on the 2-core virtual machine this was measured
on, so the cpu ops only split work of a few hundred microseconds or more (their ``grain``); each
op's docstring gives its numbers. Pieces also bound the size of a block's temporaries.

Work that follows a BLAS product gains nothing: OpenBLAS's threads keep spinning on the other cores
for a while after each product. Splitting conv2d's copies and adds between its products by channel
(the 2x2-block path's gathers, tap sums and scatters) left a 64x16x32x32 3x3 layer's forward and
backward at 21.4-22.6 ms against 22.0-22.3 ms (best three of five runs); with OpenBLAS on one thread
the same split took it from 31.2-32.8 to 28.4-28.9 ms.

The pieces are claimed one at a time by whichever thread is free (the caller's thread takes part),
so a helper that is slow to wake, or busy with another caller's job, only means the caller does more
pieces itself: nothing waits for a piece that no thread has started. The helpers are daemon threads,
one fewer than the usable cores (os.sched_getaffinity), started on first use; none on one core.
"""

from __future__ import annotations

import os
import queue
import threading


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS reports it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class _Job:
    """One ``run_chunked`` call: its pieces, each run once by whichever thread claims it first."""

    def __init__(self, work, bounds: list):
        self.work = work
        self.pieces = iter(bounds)  # a list iterator: next() is atomic under the GIL
        self.unfinished = len(bounds)
        self.lock = threading.Lock()
        self.finished = threading.Event()
        self.error = None

    def run(self) -> None:
        """Claims and runs pieces until none is left."""
        for start, stop in self.pieces:
            try:
                self.work(start, stop)
            except BaseException as error:  # handed to the caller's thread, which raises it
                self.error = error
            with self.lock:
                self.unfinished -= 1
                if self.unfinished == 0:
                    self.finished.set()


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
    """After fork the child has none of the parent's threads: it starts its own when needed."""
    global _helpers, _helpers_lock
    _helpers, _helpers_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_helpers)


def run_chunked(work, size: int, grain: int) -> None:
    """Calls ``work(start, stop)`` on consecutive pieces that together cover ``range(size)``.

    There are ``size // grain`` pieces (at least one), of equal size give or take one. With two or
    more and more than one usable core they run concurrently on the helper threads and this one;
    otherwise one after the other, here. ``work`` must only write its own piece of the output.
    Returns when every piece is done; re-raises an exception from any of them.
    """
    count = max(1, size // grain)
    bounds = [(size * index // count, size * (index + 1) // count) for index in range(count)]
    helpers = _get_helpers() if count > 1 else None
    if helpers is None:
        for start, stop in bounds:
            work(start, stop)
        return
    job = _Job(work, bounds)
    for _ in range(helpers.count):
        helpers.inbox.put(job)
    job.run()
    job.finished.wait()
    if job.error is not None:
        raise job.error
