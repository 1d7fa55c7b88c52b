"""The wheel built from the checkout carries the package and the cuda/ sources, and runs a kernel."""

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(folder), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    (path,) = folder.glob("gpucnn-*.whl")
    return path


def test_wheel_contains_package_and_cuda_sources(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    cuda_sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "cuda").rglob("*") if p.is_file()}
    assert cuda_sources and {f"gpucnn/{name}" for name in cuda_sources} <= names
    assert {"gpucnn/__init__.py", "gpucnn/tensor.py", "gpucnn/nn/functional.py", "gpucnn/ops/_shapes.py",
            "gpucnn/devices/cudasim/cudasim.h", "gpucnn/devices/cudasim/runtime.cpp"} <= names


def test_installed_wheel_runs_a_kernel_on_cudasim(wheel, tmp_path):
    """In a fresh virtual environment, outside the checkout: the .cu files come from the wheel."""
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True, capture_output=True,
                   timeout=600)
    script = (
        "import gpucnn, numpy\n"
        "from gpucnn.devices import kernels\n"
        "x = gpucnn.tensor([[-1.0, 2.0, -3.0, 4.0]], device='cudasim')\n"
        "print(gpucnn.nn.functional.relu(x).tolist())\n"
        "print(kernels.source_dir())\n"
    )
    env = {**os.environ, "GPUCNN_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("PYTHONPATH", None)
    result = subprocess.run([str(python), "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    values, source_dir = result.stdout.splitlines()
    assert values == "[[0.0, 2.0, 0.0, 4.0]]"
    assert Path(source_dir).is_relative_to(environment), source_dir
