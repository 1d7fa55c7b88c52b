"""The device pair a suite runs on (gpucnn's device and PyTorch's), its synchronisation, the machine's
name and description, and the roofline measured in the same run.

``--device cpu``: gpucnn's NumPy path against PyTorch CPU, PyTorch with as many threads as NumPy's BLAS.
``--device cuda``: gpucnn's kernels against PyTorch CUDA (cuDNN) on the same GPU.
``--device cudasim``: gpucnn's kernels in the CPU simulator against PyTorch CPU; slow, for checking
that the GPU half of the suite runs on a machine without a GPU (the times mean nothing).
"""

from __future__ import annotations

import os
import statistics
import time

import numpy

import gpucnn

from . import blas_environment, blas_info, cpu_model


# One thread that spins until ``nanoseconds`` have passed on the GPU's global timer: what
# Environment.device_ms queues the timed work behind.
BUSY_WAIT_SOURCE = r"""
extern "C" __global__ void busy_wait(unsigned long long nanoseconds) {
    unsigned long long start, now;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
    do {
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    } while (now - start < nanoseconds);
}
"""


class Environment:
    """The gpucnn device, the torch device, and how to time work on them."""

    def __init__(self, device: str):
        import torch

        self.torch = torch
        self.device = gpucnn.device(device)
        self.kind = self.device.type  # cpu, cuda or cudasim
        self.blas = blas_info()
        self._busy_wait_kernel = None
        if self.kind == "cuda":
            self.torch_device = torch.device("cuda", getattr(self.device, "index", 0))
            torch.cuda.set_device(self.torch_device)
        else:
            self.torch_device = torch.device("cpu")
            torch.set_num_threads(self.blas["threads"])

    @property
    def is_gpu(self) -> bool:
        return self.kind == "cuda"

    def synchronize(self) -> None:
        """Waits for both libraries' queued GPU work (nothing to wait for on the CPU)."""
        if self.is_gpu:
            self.device.synchronize()
            self.torch.cuda.synchronize(self.torch_device)

    def time_ms(self, run) -> float:
        """Wall time of ``run()`` in ms, the device synchronised before and after (so queued work counts)."""
        return self.time_call(run)[1]

    def time_call(self, run) -> tuple[float, float]:
        """(ms until ``run()`` returned, ms until the GPU work it queued had finished too), the device
        synchronised before: the host's time to issue the call, and the call's whole time."""
        self.synchronize()
        start = time.perf_counter()
        run()
        issued = time.perf_counter()
        self.synchronize()
        return (issued - start) * 1e3, (time.perf_counter() - start) * 1e3

    def device_ms(self, run, issue_ms: float, prepare=None) -> float | None:
        """The GPU's own time for the work that ``run()`` queues, in ms, without the host's.

        The work is queued behind a kernel that keeps the GPU busy (one thread, on one multiprocessor)
        for longer than the host takes to issue it: two CUDA events around ``run()`` then time its
        kernels back to back, with neither the host's launch work nor a synchronisation between them,
        which a short call's per-call time (``time_ms``) includes. ``issue_ms``: how long ``run()``
        takes to return (``time_call``'s first value). The wait starts at four times that, at least
        0.1 ms, and grows fourfold while the GPU got to the work before all of it was queued (a slow
        call, or a burst of host work). None where it always did (``run()`` waits on the GPU itself),
        and off a GPU. ``prepare()``, untimed, runs before each try: what ``run()`` may do only once (a
        backward that releases what its forward saved) is made again.
        """
        if not self.is_gpu:
            return None
        cupy = self.device.xp
        wait_ns = max(4 * issue_ms * 1e6, 1e5)
        with self.device.context():
            for _ in range(3):
                if prepare is not None:
                    prepare()
                start, stop = cupy.cuda.Event(), cupy.cuda.Event()
                self.synchronize()
                self._busy_wait()((1,), (1,), (numpy.uint64(wait_ns),))
                start.record()
                run()
                stop.record()
                queued_in_time = not start.done  # the GPU was still waiting when the last launch was issued
                stop.synchronize()
                if queued_in_time:
                    return cupy.cuda.get_elapsed_time(start, stop)
                wait_ns *= 4
        return None

    def _busy_wait(self):
        """The kernel ``busy_wait(nanoseconds)``, compiled once."""
        if self._busy_wait_kernel is None:
            self._busy_wait_kernel = self.device.xp.RawKernel(BUSY_WAIT_SOURCE, "busy_wait")
        return self._busy_wait_kernel

    def machine(self) -> str:
        """What the results are named by: the GPU's name on cuda, else the CPU model."""
        if self.is_gpu:
            return self.torch.cuda.get_device_name(self.torch_device)
        return cpu_model()

    def describe(self) -> dict:
        torch = self.torch
        info = dict(device=str(self.device), cpu=cpu_model(), numpy=numpy.__version__, numpy_blas=self.blas,
                    blas_environment=blas_environment(), torch=torch.__version__,
                    torch_threads=torch.get_num_threads(), gpucnn=getattr(gpucnn, "__version__", "unknown"),
                    load_average_before=[round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None)
        if self.is_gpu:
            import cupy

            properties = torch.cuda.get_device_properties(self.torch_device)
            info.update(gpu=properties.name, gpu_memory_gib=round(properties.total_memory / 2**30, 1),
                        compute_capability=f"{properties.major}.{properties.minor}", cuda=torch.version.cuda,
                        cudnn=torch.backends.cudnn.version(), cupy=cupy.__version__)
        return info

    # ------------------------------------------------------------------ roofline
    def roofline(self, quick: bool = False) -> dict:
        """Peak rates measured now: ``gemm_gflops`` (FP32 GEMM: NumPy's sgemm on the CPU, CuPy's
        cuBLAS on the GPU) and ``copy_gbps`` (a large copy, counting bytes read plus bytes written:
        NumPy memcpy on the CPU, device-to-device on the GPU)."""
        n = 256 if quick else (4096 if self.is_gpu else 1024)
        copy_bytes = (1 << 20) if quick else ((1 << 30) if self.is_gpu else (1 << 28))
        repeats = 1 if quick else 5
        xp = self.device.xp if self.is_gpu else numpy
        with self.device.context():
            a = xp.ones((n, n), dtype=xp.float32)
            b = xp.ones((n, n), dtype=xp.float32)
            source = xp.ones(copy_bytes // 4, dtype=xp.float32)
            target = xp.empty_like(source)
            xp.matmul(a, b)
            xp.copyto(target, source)
            gemm_ms = statistics.median(self.time_ms(lambda: xp.matmul(a, b)) for _ in range(repeats))
            copy_ms = statistics.median(self.time_ms(lambda: xp.copyto(target, source)) for _ in range(repeats))
        return dict(gemm_gflops=2 * n**3 / gemm_ms / 1e6, gemm_size=n,
                    copy_gbps=2 * copy_bytes / copy_ms / 1e6, copy_bytes=copy_bytes)
