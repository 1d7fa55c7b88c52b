"""Every cuda/*.cu compiles for the GPUs that nvcc 13 no longer targets, with CUDA 12's NVRTC.

Jetson Nano (sm_53), P100 (sm_60), Jetson TX2 (sm_62), V100 (sm_70) and Jetson Xavier (sm_72) run
gpucnn through CuPy, which compiles the kernels at run time with NVRTC. This test does the same
through ctypes with the NVRTC of the ``nvidia-cuda-nvrtc-cu12`` wheel: PTX for ``compute_XX``
(what a driver JIT-compiles) and a cubin for ``sm_XX`` (which also runs ptxas), with the options
the cuda device passes (``-std=c++17``, the include path of ``common.cuh``); the ptxas report of the
cubin must show no register spills. Skipped, saying why, when the wheel is not installed.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import CUDA_SOURCES, declared_kernels

from bench.ptxas_report import function_spills

from gpucnn.devices import nvrtc
from gpucnn.ops.conv2d import Conv2d

SOURCES = CUDA_SOURCES
ARCHS = ["53", "60", "62", "70", "72"]  # Nano, P100, TX2, V100, Xavier
SPILLS = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")

NVRTC, VERSION = nvrtc.load()
pytestmark = pytest.mark.skipif(NVRTC is None, reason=f"NVRTC of CUDA 12 unavailable: {VERSION}")


def warnings(log: str) -> list[str]:
    """The warning lines of an NVRTC log, less the notice that architectures before sm_75 are deprecated."""
    return [line for line in log.splitlines() if "warning" in line.lower() and "are deprecated" not in line]


def test_every_op_has_its_source():
    assert {"avgpool2d.cu", "conv2d.cu", "maxpool2d.cu", "relu.cu"} <= {path.name for path in SOURCES}


def spilled(log: str) -> bool:
    """Whether a ptxas report shows a kernel spilling registers."""
    return any(counts.groups() != ("0", "0") for counts in SPILLS.finditer(log))


@pytest.fixture(scope="module")
def compiled():
    """{(source name, target): nvrtc.compile's result} for every source, old arch and target kind
    (compute_XX PTX; sm_XX cubin with the ptxas report), compiled in parallel threads (NVRTC
    compiles separate programs concurrently, and ctypes releases the GIL around each call).

    A cubin whose report shows a spill is compiled once more, and the second report counts: ptxas
    does not always allocate alike, and a kernel at its register cap (conv2d_forward_taps_64, 80 for
    three blocks of 256 threads) spilled 4 bytes on sm_70 in one of many compiles of the same source.
    A spill that comes back on the second compile still fails."""
    jobs = [(source, target, ["--ptxas-options=-v"] if target.startswith("sm_") else [])
            for source in SOURCES for arch in ARCHS for target in (f"compute_{arch}", f"sm_{arch}")]
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        results = list(pool.map(lambda job: nvrtc.compile(NVRTC, *job), jobs))
    return {(source.name, target): nvrtc.compile(NVRTC, source, target, options) if spilled(result[1]) else result
            for (source, target, options), result in zip(jobs, results)}


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("source", SOURCES, ids=[path.stem for path in SOURCES])
def test_compiles_to_ptx_and_cubin(compiled, source, arch):
    kernels = declared_kernels(source)
    assert kernels, f"{source.name} declares no extern \"C\" __global__ kernel"
    if int(arch) < Conv2d.WIDE_TILE_CAPABILITY:  # conv2d.cu builds no 128-tile kernels there
        kernels = [kernel for kernel in kernels if not kernel.endswith("_128")]
    ok, log, ptx = compiled[(source.name, f"compute_{arch}")]
    assert ok, f"NVRTC (CUDA 12) failed on {source.name} for compute_{arch}:\n{log}"
    assert not warnings(log), f"{source.name} for compute_{arch}:\n{log}"
    text = ptx.decode(errors="replace")
    for kernel in kernels:
        assert re.search(rf"\.entry\s+{kernel}\s*\(", text), f"no .entry {kernel} in the PTX of {source.name}"
    ok, log, cubin = compiled[(source.name, f"sm_{arch}")]
    assert ok, f"NVRTC (CUDA 12) failed on {source.name} for sm_{arch}:\n{log}"
    assert cubin[:4] == b"\x7fELF", f"the sm_{arch} cubin of {source.name} is not an ELF image"
    spills = function_spills(log)
    for kernel in kernels:
        assert (kernel, f"sm_{arch}") in spills, f"no ptxas report for {kernel} on sm_{arch}:\n{log}"
    for (function, _), (_, stores, loads) in spills.items():  # kernels and the functions they call
        assert stores == 0 and loads == 0, f"{function} on sm_{arch}: spill (stores, loads) {(stores, loads)}\n{log}"
