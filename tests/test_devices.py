"""Device names, the default device, and the reasons a GPU device cannot be used."""

import sys

import numpy as np
import pytest

import gpucnn
from gpucnn.devices import cuda


@pytest.fixture
def fresh_probe():
    cuda.probe.cache_clear()
    yield
    cuda.probe.cache_clear()


def test_cpu_device():
    device = gpucnn.device("cpu")
    assert device.type == "cpu" and device.xp is np and not device.runs_kernels
    assert gpucnn.device(" CPU ") is device
    assert "cpu" in gpucnn.devices() and gpucnn.devices()[0] == "cpu"


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "cuda:-1", "tpu:0", ""])
def test_unknown_device_names(name):
    with pytest.raises(ValueError, match="unknown device"):
        gpucnn.device(name)


def test_cuda_without_cupy_names_the_extra(monkeypatch, fresh_probe, default_device_unset):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` raise ImportError
    with pytest.raises(RuntimeError, match=r"CuPy is not installed.*gpucnn\[cuda12\]"):
        gpucnn.tensor([1.0], device="cuda")
    assert not any(name.startswith("cuda:") for name in gpucnn.devices())
    assert gpucnn.default_device().name == "cpu"


@pytest.mark.skipif(cuda.probe()[0] > 0, reason="a GPU is usable here")
def test_cuda_without_gpu_says_why(fresh_probe, default_device_unset):
    with pytest.raises(RuntimeError, match="cannot be used: .+"):
        gpucnn.tensor([1.0], device="cuda:0")
    assert gpucnn.default_device().name == "cpu"


def test_environment_overrides_default(monkeypatch):
    monkeypatch.setenv("GPUCNN_DEVICE", "cudasim")
    assert gpucnn.default_device().name == "cudasim"


def test_cudasim_device_runs_numpy(monkeypatch):
    device = gpucnn.device("cudasim")
    assert device.type == "cudasim" and device.xp is np and device.runs_kernels
    x = gpucnn.tensor([[1.0, 2.0]], device="cudasim", requires_grad=True)
    ((x * x).sum()).backward()  # ops written against xp run unchanged
    assert x.device is device and x.grad.device is device
    assert np.array_equal(x.grad.numpy(), [[2.0, 4.0]])


def test_cudasim_without_compiler_says_why(monkeypatch):
    monkeypatch.setenv("CXX", "/nonexistent/g++")
    with pytest.raises(RuntimeError, match="g\\+\\+"):
        gpucnn.device("cudasim")


@pytest.mark.skipif(cuda.probe()[0] > 0, reason="a GPU is usable here")
def test_cupy_installed_without_gpu_falls_back_to_cpu(fresh_probe, default_device_unset):
    """`pip install gpucnn[cuda12]` on a machine with no GPU: CuPy imports, gpucnn uses the cpu."""
    pytest.importorskip("cupy")
    assert gpucnn.default_device().name == "cpu"
    assert gpucnn.tensor([1.0]).device.name == "cpu"
    assert not any(name.startswith("cuda:") for name in gpucnn.devices())
    with pytest.raises(RuntimeError, match="no usable NVIDIA driver|reports no GPU"):
        gpucnn.device("cuda")
