"""cudasim: run the CUDA C kernels of ``cuda/*.cu`` on the CPU.

The same ``.cu`` source that CuPy compiles for the GPU is compiled by g++ with ``cudasim.h``
force-included, linked with ``runtime.cpp`` into a shared library (cached), and launched on NumPy
arrays with CuPy's call shape::

    module = cudasim.load("cuda/relu.cu", include_dirs=["cuda"])
    kernel = module.get_function("relu_forward")
    kernel((blocks,), (256,), (x, y, numpy.int64(n)), shared_mem=0)

Execution model: blocks run one after another (x fastest); the threads of a block are fibers on the
calling thread, so ``__syncthreads()`` is a real barrier and warp shuffles exchange values among
the lanes of a warp. Between barriers threads run in the order set by :func:`set_thread_order`
(forward, reverse, or random per phase; default ``$GPUCNN_CUDASIM_ORDER``, e.g. ``random:7``).
``__shared__`` memory (static and dynamic) is filled with 0xFF bytes, NaN as float, at every block
start, so reads of shared memory no thread wrote show up. Launches check every argument against the
kernel's declared C type (a plain Python int or float for a scalar is an error) and report barrier
divergence, deadlock, device ``assert``, ``__trap()``, fiber stack overflow and illegal addresses
as :class:`KernelError` subclasses naming the kernel, block and thread.

Kernels must be ``extern "C" __global__`` functions taking pointers and bool/integer/float
scalars. Dynamic shared memory is the standard ``extern __shared__ T name[];`` (rewritten to a
pointer into one buffer, so every such array of a kernel starts at the same address, as on the
GPU); written in a header instead of the ``.cu`` file itself it must use
``CUDASIM_EXTERN_SHARED(T, name);`` under ``#ifdef __CUDASIM__``. Not simulated: ``__CUDA_ARCH__``
paths, textures, cooperative groups, half precision, kernels that spin-wait on other blocks or
threads (blocks run one at a time and threads switch only at barriers).

Sanitizers: ``load(..., sanitize=True)`` builds with ``-fsanitize=address,undefined`` (a separate
cache entry); it loads only in a process started with :func:`sanitizer_env` (libasan preloaded).
``sanitize='undefined'`` needs no preload.

Environment: ``$CXX`` (the compiler, default g++), ``$GPUCNN_CACHE_DIR`` (built libraries go to
``$GPUCNN_CACHE_DIR/cudasim``, default ``~/.cache/gpucnn/cudasim``), ``$GPUCNN_CUDASIM_ORDER``
(default thread order), ``$GPUCNN_CUDASIM_SWITCH`` (``asm`` or ``ucontext``). A launch runs on
the calling thread with the GIL held, so launches never overlap.
"""

from __future__ import annotations

import os
import subprocess

from . import _build
from ._build import STATS as stats
from ._build import cache_dir
from ._errors import (
    BarrierDivergenceError,
    CompileError,
    DeadlockError,
    DeviceAssertError,
    IllegalAddressError,
    KernelError,
    StackOverflowError,
    TrapError,
    WarpDivergenceError,
)
from ._launch import Kernel, Module, asan_loaded, get_thread_order, set_thread_order, thread_order

__all__ = [
    "BarrierDivergenceError", "CompileError", "DeadlockError", "DeviceAssertError", "IllegalAddressError",
    "Kernel", "KernelError", "Module", "StackOverflowError", "TrapError", "WarpDivergenceError",
    "asan_loaded", "available", "build", "cache_dir", "get_thread_order", "load", "sanitizer_env",
    "set_thread_order", "stats", "thread_order",
]

_modules: dict[str, Module] = {}  # by library path: one Module per build in a process


def load(path, include_dirs=(), options=(), *, sanitize=False, switch=None, cache_dir=None) -> Module:
    """Compiles (or finds in the cache) and loads the ``.cu`` file at ``path``.

    Args:
        path: the CUDA source file.
        include_dirs: folders searched for ``#include`` (the file's own folder always is).
        options: extra compiler flags, e.g. ``("-DBLOCK=256",)``.
        sanitize: False; True or ``'address,undefined'`` for ASan + UBSan, ``'address'`` for ASan
            alone (both need :func:`sanitizer_env` in the process); ``'undefined'`` for UBSan alone.
        switch: ``'asm'`` (x86-64 stack switch; ucontext elsewhere) or ``'ucontext'``; default
            ``$GPUCNN_CUDASIM_SWITCH`` or ``'asm'``.
        cache_dir: where built libraries go; default :func:`cache_dir`.

    Returns the same :class:`Module` for the same inputs within a process; a changed source or
    header gives a new build.

    Raises:
        FileNotFoundError: no such file.
        RuntimeError: g++ is missing, or (:class:`CompileError`) the file does not compile.
    """
    result = _build.build(path, include_dirs, options, sanitize=sanitize, switch=switch, cache_dir_path=cache_dir)
    module = _modules.get(result.library)
    if module is None:
        module = _modules[result.library] = Module._from_build(result)
    return module


def build(path, include_dirs=(), options=(), *, sanitize=False, switch=None, cache_dir=None) -> str:
    """Compiles ``path`` like :func:`load` without loading it; returns the shared library's path.

    Useful to fill the cache from a process that cannot load the result (a sanitizer build).
    """
    return _build.build(path, include_dirs, options, sanitize=sanitize, switch=switch, cache_dir_path=cache_dir).library


def available() -> bool:
    """True when the compiler cudasim needs (``$CXX`` or g++) is installed."""
    try:
        _build.compiler()
    except RuntimeError:
        return False
    return True


def sanitizer_env() -> dict[str, str]:
    """Environment variables for a subprocess that loads sanitizer builds: ``LD_PRELOAD`` with
    libasan (added to any existing preload), ``ASAN_OPTIONS`` (no leak check: Python itself leaks by
    design) and ``UBSAN_OPTIONS`` (stack traces, stop at the first report). Use as
    ``subprocess.run(..., env={**os.environ, **sanitizer_env()})``.

    Raises:
        RuntimeError: the compiler is missing or has no libasan.
    """
    command = _build.compiler()
    found = subprocess.run(command + ["-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    if not found or not os.path.isabs(found) or not os.path.exists(found):
        raise RuntimeError(f"cudasim: {command[0]} has no libasan.so (install libasan, e.g. apt-get install g++)")
    found = os.path.realpath(found)
    preload = " ".join(part for part in (found, os.environ.get("LD_PRELOAD", "")) if part)
    return {
        "LD_PRELOAD": preload,
        "ASAN_OPTIONS": "detect_leaks=0:halt_on_error=1:abort_on_error=0",
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
    }

