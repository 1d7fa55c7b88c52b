"""The wheel built from the checkout carries the package and the top-level cuda/ sources."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_package_and_cuda_sources(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    (wheel,) = tmp_path.glob("gpucnn-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    cuda_sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "cuda").rglob("*") if p.is_file()}
    assert cuda_sources and {f"gpucnn/{name}" for name in cuda_sources} <= names
    assert {"gpucnn/__init__.py", "gpucnn/tensor.py", "gpucnn/nn/functional.py", "gpucnn/ops/_shapes.py"} <= names
