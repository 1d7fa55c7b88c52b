"""Every cuda/*.cu compiles for the GPUs that nvcc 13 no longer targets, with CUDA 12's NVRTC.

Jetson Nano (sm_53), P100 (sm_60), Jetson TX2 (sm_62), V100 (sm_70) and Jetson Xavier (sm_72) run
gpucnn through CuPy, which compiles the kernels at run time with NVRTC. This test does the same
through ctypes with the NVRTC of the ``nvidia-cuda-nvrtc-cu12`` wheel: PTX for ``compute_XX``
(what a driver JIT-compiles) and a cubin for ``sm_XX`` (which also runs ptxas), with the options
the cuda device passes (``-std=c++17``, the include path of ``common.cuh``); the ptxas report of the
cubin must show no register spills. Skipped, saying why, when the wheel is not installed.
"""

from __future__ import annotations

import ctypes
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

CUDA_DIR = Path(__file__).resolve().parents[2] / "cuda"
SOURCES = sorted(CUDA_DIR.glob("*.cu"))
ARCHS = ["53", "60", "62", "70", "72"]  # Nano, P100, TX2, V100, Xavier
KERNEL = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(')
ENTRY = re.compile(r"Compiling entry function '(\w+)' for '(sm_\d+)'")
SPILLS = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")


def _find_nvrtc():
    """(library, None) for CUDA 12's libnvrtc from the nvidia-cuda-nvrtc-cu12 wheel, or (None, why not)."""
    try:
        import nvidia.cuda_nvrtc as package
    except ImportError:
        return None, "the nvidia-cuda-nvrtc-cu12 wheel is not installed (pip install nvidia-cuda-nvrtc-cu12)"
    candidates = [path for folder in package.__path__ for path in sorted(Path(folder, "lib").glob("libnvrtc.so.12*"))]
    if not candidates:
        return None, f"no libnvrtc.so.12 in {list(package.__path__)} (the wheel installed for another platform?)"
    try:
        library = ctypes.CDLL(str(candidates[0]))
    except OSError as error:
        return None, f"loading {candidates[0]} failed: {error}"
    major, minor = ctypes.c_int(), ctypes.c_int()
    library.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
    if major.value != 12:
        return None, f"{candidates[0]} is NVRTC {major.value}.{minor.value}, not CUDA 12"
    return library, None


NVRTC, WHY_NOT = _find_nvrtc()
pytestmark = pytest.mark.skipif(NVRTC is None, reason=f"NVRTC of CUDA 12 unavailable: {WHY_NOT}")


def _check(library, status: int, call: str) -> None:
    if status != 0:
        library.nvrtcGetErrorString.restype = ctypes.c_char_p
        raise RuntimeError(f"{call} failed: {library.nvrtcGetErrorString(status).decode()}")


def nvrtc_compile(source: Path, arch: str, extra_options=()) -> tuple[bool, str, bytes]:
    """Compiles ``source`` with ``--gpu-architecture=arch``; returns (success, log, PTX or cubin)."""
    library = NVRTC
    program = ctypes.c_void_p()
    _check(library, library.nvrtcCreateProgram(ctypes.byref(program), source.read_bytes(), source.name.encode(),
                                               0, None, None), "nvrtcCreateProgram")
    try:
        options = [f"--gpu-architecture={arch}", "-std=c++17", f"--include-path={CUDA_DIR}", *extra_options]
        array = (ctypes.c_char_p * len(options))(*(option.encode() for option in options))
        status = library.nvrtcCompileProgram(program, len(options), array)
        size = ctypes.c_size_t()
        _check(library, library.nvrtcGetProgramLogSize(program, ctypes.byref(size)), "nvrtcGetProgramLogSize")
        log = ctypes.create_string_buffer(size.value)
        _check(library, library.nvrtcGetProgramLog(program, log), "nvrtcGetProgramLog")
        if status != 0:
            return False, log.value.decode(errors="replace"), b""
        kind = "CUBIN" if arch.startswith("sm_") else "PTX"
        _check(library, getattr(library, f"nvrtcGet{kind}Size")(program, ctypes.byref(size)), f"nvrtcGet{kind}Size")
        output = ctypes.create_string_buffer(size.value)
        _check(library, getattr(library, f"nvrtcGet{kind}")(program, output), f"nvrtcGet{kind}")
        return True, log.value.decode(errors="replace"), output.raw
    finally:
        library.nvrtcDestroyProgram(ctypes.byref(program))


def warnings(log: str) -> list[str]:
    """The warning lines of an NVRTC log, less the notice that architectures before sm_75 are deprecated."""
    return [line for line in log.splitlines() if "warning" in line.lower() and "are deprecated" not in line]


def test_every_op_has_its_source():
    assert {"avgpool2d.cu", "conv2d.cu", "maxpool2d.cu", "relu.cu"} <= {path.name for path in SOURCES}


@pytest.fixture(scope="module")
def compiled():
    """{(source name, target): nvrtc_compile's result} for every source, old arch and target kind
    (compute_XX PTX; sm_XX cubin with the ptxas report), compiled in parallel threads (NVRTC
    compiles separate programs concurrently, and ctypes releases the GIL around each call)."""
    jobs = [(source, target, ["--ptxas-options=-v"] if target.startswith("sm_") else [])
            for source in SOURCES for arch in ARCHS for target in (f"compute_{arch}", f"sm_{arch}")]
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        results = pool.map(lambda job: nvrtc_compile(*job), jobs)
        return {(source.name, target): result for (source, target, _), result in zip(jobs, results)}


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("source", SOURCES, ids=[path.stem for path in SOURCES])
def test_compiles_to_ptx_and_cubin(compiled, source, arch):
    kernels = KERNEL.findall(source.read_text())
    assert kernels, f"{source.name} declares no extern \"C\" __global__ kernel"
    ok, log, ptx = compiled[(source.name, f"compute_{arch}")]
    assert ok, f"NVRTC (CUDA 12) failed on {source.name} for compute_{arch}:\n{log}"
    assert not warnings(log), f"{source.name} for compute_{arch}:\n{log}"
    text = ptx.decode(errors="replace")
    for kernel in kernels:
        assert re.search(rf"\.entry\s+{kernel}\s*\(", text), f"no .entry {kernel} in the PTX of {source.name}"
    ok, log, cubin = compiled[(source.name, f"sm_{arch}")]
    assert ok, f"NVRTC (CUDA 12) failed on {source.name} for sm_{arch}:\n{log}"
    assert cubin[:4] == b"\x7fELF", f"the sm_{arch} cubin of {source.name} is not an ELF image"
    spills, kernel = {}, None
    for line in log.splitlines():
        entry, counts = ENTRY.search(line), SPILLS.search(line)
        if entry:
            kernel = entry.group(1)
        elif counts and kernel is not None:
            spills[kernel] = tuple(int(value) for value in counts.groups())
    for kernel in kernels:
        assert spills.get(kernel) == (0, 0), f"{kernel} on sm_{arch}: spill (stores, loads) {spills.get(kernel)}\n{log}"
