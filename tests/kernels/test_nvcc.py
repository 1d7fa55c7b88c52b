"""Every cuda/*.cu compiles with nvcc for each GPU generation gpucnn targets, without register spills.

``nvcc -cubin -arch=sm_XX -std=c++17 -I cuda -Xptxas -v`` for Turing (sm_75), A100 (sm_80), Ampere
consumer cards (sm_86), Jetson Orin (sm_87), Ada (sm_89) and Hopper (sm_90); the ptxas report of
every kernel, and of every device function a kernel calls, must show "0 bytes spill stores" and "0 bytes
spill loads", and no compile may warn.
The compiles run in parallel. Skipped where nvcc is not installed (it only compiles: no GPU needed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import CUDA_SOURCES, declared_kernels

from bench.ptxas_report import function_spills

CUDA_DIR = Path(__file__).resolve().parents[2] / "cuda"
SOURCES = CUDA_SOURCES
ARCHS = ["sm_75", "sm_80", "sm_86", "sm_87", "sm_89", "sm_90"]
NVCC = shutil.which("nvcc")

pytestmark = pytest.mark.skipif(NVCC is None, reason="nvcc is not installed (the CUDA toolkit's compiler)")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """{(source name, arch): CompletedProcess} of one nvcc -cubin run per source and arch, in parallel;
    one whose ptxas report shows a spill runs once more and the second run counts (ptxas does not
    always allocate alike: see test_nvrtc_old_archs.compiled)."""
    out = tmp_path_factory.mktemp("cubin")

    def compile_one(job):
        source, arch = job
        command = [NVCC, "-cubin", f"-arch={arch}", "-std=c++17", "-I", str(CUDA_DIR), "-Xptxas", "-v",
                   "-o", str(out / f"{source.stem}_{arch}.cubin"), str(source)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if any(spills[1:] != (0, 0) for spills in function_spills(result.stdout + result.stderr).values()):
            result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        return job, result

    jobs = [(source, arch) for source in SOURCES for arch in ARCHS]
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return {(source.name, arch): result for (source, arch), result in pool.map(compile_one, jobs)}


def test_every_op_has_its_source():
    assert {"avgpool2d.cu", "conv2d.cu", "maxpool2d.cu", "relu.cu"} <= {path.name for path in SOURCES}


@pytest.mark.parametrize("source", SOURCES, ids=[path.stem for path in SOURCES])
def test_kernel_names_start_with_the_file_name(source):
    kernels = declared_kernels(source)
    assert kernels, f"{source.name} declares no extern \"C\" __global__ kernel"
    prefixes = ("relu_", "leaky_relu_") if source.stem == "relu" else (source.stem + "_",)  # relu.cu holds both
    wrong = [name for name in kernels if not name.startswith(prefixes)]
    assert not wrong, f"{source.name}: kernels {wrong} are not named {source.stem}_<what>"


@pytest.mark.parametrize("source", SOURCES, ids=[path.stem for path in SOURCES])
def test_compiles_for_every_arch_without_spills(compiled, source):
    kernels = declared_kernels(source)
    for arch in ARCHS:
        result = compiled[(source.name, arch)]
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"nvcc failed on {source.name} for {arch}:\n{output}"
        assert "warning" not in output.lower(), f"nvcc warned on {source.name} for {arch}:\n{output}"
        report = function_spills(output)
        for kernel in kernels:
            assert (kernel, arch) in report, f"no ptxas report for {kernel} on {arch}:\n{output}"
        for (function, _), (_, stores, loads) in report.items():  # kernels and the functions they call
            assert stores == 0 and loads == 0, (
                f"{function} spills registers on {arch}: {stores} bytes spill stores, {loads} bytes spill loads")
