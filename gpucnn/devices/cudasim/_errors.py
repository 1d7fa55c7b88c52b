"""Exceptions raised by cudasim launches and builds."""

from __future__ import annotations


class CompileError(RuntimeError):
    """g++ rejected a ``.cu`` file. ``log`` holds the compiler's output, ``command`` its command line."""

    def __init__(self, message: str, log: str = "", command: list[str] | None = None):
        super().__init__(message)
        self.log = log
        self.command = command or []


class KernelError(RuntimeError):
    """A kernel failed while running. The message names the kernel, the block and the thread.

    Attributes:
        kernel: the kernel's name.
        block: ``(x, y, z)`` of the block that failed, or None.
        thread: ``(x, y, z)`` of the thread the message is about, or None.
    """

    def __init__(self, message: str, kernel: str | None = None, block=None, thread=None):
        super().__init__(message)
        self.kernel = kernel
        self.block = block
        self.thread = thread


class BarrierDivergenceError(KernelError):
    """Threads of a block disagree about ``__syncthreads()``: some returned or wait at another
    call site while others wait at it (undefined behaviour on the GPU: a hang or wrong results)."""


class WarpDivergenceError(KernelError):
    """A warp primitive (``__shfl_*_sync``, ``__ballot_sync``, ``__syncwarp``...) was used with a
    mask that does not hold the calling lane, a bad width, or different masks or primitives among
    the lanes it names."""


class DeadlockError(KernelError):
    """Threads wait for each other forever: lanes of a warp primitive wait for a lane that waits at
    ``__syncthreads()``."""


class DeviceAssertError(KernelError, AssertionError):
    """A device-side ``assert(condition)`` failed."""


class TrapError(KernelError):
    """A kernel called ``__trap()``."""


class StackOverflowError(KernelError):
    """A kernel thread overflowed its fiber stack (large local arrays or deep recursion)."""


class IllegalAddressError(KernelError):
    """A kernel thread touched an unmapped address (the GPU's ``cudaErrorIllegalAddress``)."""


# Error codes of runtime.cpp.
ERROR_CLASSES = {
    1: DeviceAssertError,
    2: BarrierDivergenceError,
    3: DeadlockError,
    4: StackOverflowError,
    5: TrapError,
    6: WarpDivergenceError,
    7: KernelError,
    8: KernelError,
    9: IllegalAddressError,
}
