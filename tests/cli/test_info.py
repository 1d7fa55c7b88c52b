"""gpucnn info on this machine, and with NVML and CuPy replaced by small fakes for the GPU and Jetson paths."""

import sys
import types


import gpucnn
from gpucnn import info
from gpucnn.devices import cuda

GIB = 1 << 30


class NVMLError(Exception):
    pass


def fake_nvml(fail_init=None):
    """A pynvml with two GPUs: an H100, and a T4 that does not report its temperature."""
    module = types.ModuleType("pynvml")
    module.NVML_TEMPERATURE_GPU = 0
    module.NVMLError = NVMLError

    def init():
        if fail_init:
            raise NVMLError(fail_init)

    def temperature(handle, sensor):
        assert sensor == module.NVML_TEMPERATURE_GPU
        if handle == 1:
            raise NVMLError("Not Supported")
        return 41

    module.nvmlInit = init
    module.nvmlShutdown = lambda: None
    module.nvmlSystemGetDriverVersion = lambda: "550.54.15"
    module.nvmlDeviceGetCount = lambda: 2
    module.nvmlDeviceGetHandleByIndex = lambda index: index
    module.nvmlDeviceGetName = lambda handle: ["NVIDIA H100 80GB HBM3", b"Tesla T4"][handle]  # old versions: bytes
    module.nvmlDeviceGetCudaComputeCapability = lambda handle: [(9, 0), (7, 5)][handle]
    module.nvmlDeviceGetMemoryInfo = lambda handle: types.SimpleNamespace(
        total=[80 * GIB, 16 * GIB][handle], used=[1536 << 20, 0][handle], free=0)
    module.nvmlDeviceGetUtilizationRates = lambda handle: types.SimpleNamespace(gpu=[37, 0][handle],
                                                                               memory=[12, 0][handle])
    module.nvmlDeviceGetTemperature = temperature
    return module


def fake_cupy():
    """A CuPy whose CUDA runtime reports one Jetson Orin GPU (compute capability 8.7)."""
    runtime = types.SimpleNamespace(
        runtimeGetVersion=lambda: 12060, driverGetVersion=lambda: 12020, getDeviceCount=lambda: 1,
        getDeviceProperties=lambda index: {"name": b"Orin", "major": 8, "minor": 7, "totalGlobalMem": 30 * GIB},
        memGetInfo=lambda: (20 * GIB, 30 * GIB))

    class Device:
        def __init__(self, index):
            self.index = index

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    module = types.ModuleType("cupy")
    module.__version__ = "13.3.0"
    module.cuda = types.SimpleNamespace(runtime=runtime, Device=Device)
    return module


def test_info_on_this_machine(gpucnn_cli):
    result = gpucnn_cli("info")
    assert result.code == 0, result
    assert f"gpucnn        {gpucnn.__version__}" in result.out and "NumPy" in result.out and "CuPy" in result.out
    assert "devices       cpu" in result.out
    if not cuda.probe()[0]:
        assert "none: no NVIDIA GPU found" in result.out and "cuda: not usable" in result.out


def test_gpus_through_nvml(gpucnn_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml())
    monkeypatch.setattr(info, "DEVICE_TREE_MODEL", info.Path("/nonexistent/model"))
    result = gpucnn_cli("info")
    assert result.code == 0, result
    lines = result.out.splitlines()
    start = lines.index("GPU 0: NVIDIA H100 80GB HBM3 (through NVML)")
    assert lines[start + 1:start + 6] == [
        "  compute capability  9.0",
        "  memory              1,536 MiB used of 81,920 MiB",
        "  utilisation         37 % (memory 12 %)",
        "  temperature         41 °C",
        "  driver              550.54.15",
    ]
    start = lines.index("GPU 1: Tesla T4 (through NVML)")
    assert lines[start + 1] == "  compute capability  7.5" and lines[start + 4] == "  temperature         n/a"
    assert "board" not in result.out


def test_jetson_falls_back_to_the_cuda_runtime(gpucnn_cli, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(fail_init="NVML Shared Library Not Found"))
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy())
    monkeypatch.setattr(cuda, "probe", lambda: (1, ""))
    model = tmp_path / "model"
    model.write_bytes(b"NVIDIA Jetson AGX Orin Developer Kit\0")
    monkeypatch.setattr(info, "DEVICE_TREE_MODEL", model)
    result = gpucnn_cli("info")
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert "CuPy          13.3.0" in lines and "CUDA          runtime 12.6, driver 12.2" in lines
    assert "board         NVIDIA Jetson AGX Orin Developer Kit" in lines
    devices_line = next(line for line in lines if line.startswith("devices"))
    assert devices_line.split(None, 1)[1].split(", ")[0] == "cpu" and "cuda:0" in devices_line
    start = lines.index("GPU 0: Orin (through CUDA runtime)")
    assert lines[start + 1:start + 3] == ["  compute capability  8.7",
                                          "  memory              20,480 MiB free of 30,720 MiB"]
    assert "note          NVML: NVML Shared Library Not Found" in lines


def test_no_gpu_and_no_cupy_is_not_an_error(gpucnn_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.setattr(cuda, "probe", lambda: (0, "CuPy is not installed"))
    result = gpucnn_cli("info")
    assert result.code == 0, result
    assert "CuPy          not installed" in result.out and "none: no NVIDIA GPU found" in result.out
    assert "CUDA  " not in result.out


def test_collect_is_plain_data(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml())
    report = info.collect()
    assert report["source"] == "NVML" and [gpu["name"] for gpu in report["gpus"]] == ["NVIDIA H100 80GB HBM3",
                                                                                      "Tesla T4"]
    assert report["gpus"][1]["temperature_c"] is None and report["gpus"][0]["memory_total_mib"] == 81920
