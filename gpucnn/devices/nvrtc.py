"""CUDA 12's runtime compiler (NVRTC) through ctypes, from the ``nvidia-cuda-nvrtc-cu12`` wheel.

CuPy compiles the kernels of ``cuda/*.cu`` at run time with NVRTC. nvcc 13 no longer targets the
older GPUs gpucnn supports (Jetson Nano sm_53, P100 sm_60, TX2 sm_62, V100 sm_70, Xavier sm_72), so
the compile checks and the ptxas report reach them through this module, with the options the cuda
device passes (``-std=c++17`` and the include path of ``common.cuh``). No GPU is needed.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

from . import kernels


def load() -> tuple:
    """(library, version such as '12.9') for CUDA 12's libnvrtc, or (None, why it is unavailable)."""
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
    library.nvrtcGetErrorString.restype = ctypes.c_char_p
    return library, f"{major.value}.{minor.value}"


def _check(library, status: int, call: str) -> None:
    if status != 0:
        raise RuntimeError(f"{call} failed: {library.nvrtcGetErrorString(status).decode()}")


def compile(library, source: Path, arch: str, options=()) -> tuple[bool, str, bytes]:
    """Compiles ``source`` for ``arch`` (``compute_XX``: PTX; ``sm_XX``: a cubin, ptxas included).

    Returns (success, the compiler log, the PTX or cubin bytes; empty on failure).
    """
    program = ctypes.c_void_p()
    _check(library, library.nvrtcCreateProgram(ctypes.byref(program), source.read_bytes(), source.name.encode(),
                                               0, None, None), "nvrtcCreateProgram")
    try:
        arguments = [f"--gpu-architecture={arch}", "-std=c++17", f"--include-path={kernels.source_dir()}", *options]
        status = library.nvrtcCompileProgram(program, len(arguments),
                                             (ctypes.c_char_p * len(arguments))(*(a.encode() for a in arguments)))
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
