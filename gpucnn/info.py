"""``gpucnn info``: versions, usable devices, and each NVIDIA GPU's state.

GPUs are read through NVML (``pynvml``, from nvidia-ml-py). Jetson boards have no NVML: there the
CUDA runtime (through CuPy) gives each GPU's name, compute capability and free/total memory, and
``/proc/device-tree/model`` names the board. A machine without a GPU is reported as such, not as an
error.
"""

from __future__ import annotations

import platform
from pathlib import Path

DEVICE_TREE_MODEL = Path("/proc/device-tree/model")
MIB = 1 << 20


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _cuda_version(number: int) -> str:
    """CUDA's integer version (12020) as text (12.2)."""
    return f"{number // 1000}.{number % 1000 // 10}" if number else "not found"


def _import_cupy():
    """(cupy module or None, text for the report)."""
    try:
        import cupy
    except ImportError:
        return None, "not installed"
    except Exception as error:  # a broken install raises other errors at import
        return None, f"failed to import ({error})"
    return cupy, cupy.__version__


def _optional(call, *args, default="n/a"):
    """``call(*args)``, or ``default`` where the GPU does not support the query."""
    try:
        return call(*args)
    except Exception:
        return default


def nvml_gpus() -> list:
    """One dict per GPU from NVML; raises when NVML is missing or cannot start."""
    import pynvml

    pynvml.nvmlInit()
    try:
        driver = _text(_optional(pynvml.nvmlSystemGetDriverVersion))
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = _optional(pynvml.nvmlDeviceGetMemoryInfo, handle, default=None)
            utilisation = _optional(pynvml.nvmlDeviceGetUtilizationRates, handle, default=None)
            capability = _optional(pynvml.nvmlDeviceGetCudaComputeCapability, handle, default=None)
            gpus.append({
                "index": index,
                "name": _text(pynvml.nvmlDeviceGetName(handle)),
                "compute_capability": "{}.{}".format(*capability) if capability else "n/a",
                "memory_total_mib": memory.total // MIB if memory else None,
                "memory_used_mib": memory.used // MIB if memory else None,
                "utilisation_percent": utilisation.gpu if utilisation else None,
                "memory_utilisation_percent": utilisation.memory if utilisation else None,
                "temperature_c": _optional(pynvml.nvmlDeviceGetTemperature, handle, pynvml.NVML_TEMPERATURE_GPU,
                                           default=None),
                "driver": driver,
            })
        return gpus
    finally:
        _optional(pynvml.nvmlShutdown)


def runtime_gpus(cupy) -> list:
    """One dict per GPU from the CUDA runtime through CuPy (the path for Jetson, which lacks NVML)."""
    runtime = cupy.cuda.runtime
    gpus = []
    for index in range(runtime.getDeviceCount()):
        properties = runtime.getDeviceProperties(index)
        with cupy.cuda.Device(index):
            free, total = runtime.memGetInfo()
        gpus.append({
            "index": index, "name": _text(properties["name"]),
            "compute_capability": f"{properties['major']}.{properties['minor']}",
            "memory_total_mib": total // MIB, "memory_free_mib": free // MIB,
        })
    return gpus


def board_model() -> str | None:
    """The board's name from the device tree (Jetson and other ARM boards), else None."""
    try:
        return DEVICE_TREE_MODEL.read_bytes().rstrip(b"\0").decode(errors="replace").strip() or None
    except OSError:
        return None


def collect() -> dict:
    """Everything ``gpucnn info`` prints, as a dict."""
    import numpy

    import gpucnn
    from gpucnn.devices import cuda, cudasim

    cupy, cupy_text = _import_cupy()
    report = {"gpucnn": gpucnn.__version__, "python": platform.python_version(), "numpy": numpy.__version__,
              "cupy": cupy_text, "cuda_runtime": None, "cuda_driver": None, "gpus": [], "source": None,
              "notes": [], "board": board_model()}
    if cupy is not None:
        report["cuda_runtime"] = _optional(lambda: _cuda_version(cupy.cuda.runtime.runtimeGetVersion()))
        report["cuda_driver"] = _optional(lambda: _cuda_version(cupy.cuda.runtime.driverGetVersion()))
    usable = list(gpucnn.devices())
    if cudasim.available() and "cudasim" not in usable:
        usable.append("cudasim")
    report["devices"] = usable
    count, reason = cuda.probe()
    if not count:
        report["notes"].append(f"cuda: not usable: {reason}")
    try:
        report["gpus"], report["source"] = nvml_gpus(), "NVML"
    except Exception as error:
        report["notes"].append(f"NVML: {_text(error) or type(error).__name__}")
        if cupy is not None:
            try:
                report["gpus"], report["source"] = runtime_gpus(cupy), "CUDA runtime"
            except Exception as runtime_error:
                report["notes"].append(f"CUDA runtime: {runtime_error}")
    return report


def _number(value, unit: str = "") -> str:
    return "n/a" if value is None or value == "n/a" else f"{value:,}{unit}"


def format_report(report: dict) -> str:
    """The report as text, one fact per line."""
    lines = [f"gpucnn        {report['gpucnn']}", f"Python        {report['python']}",
             f"NumPy         {report['numpy']}", f"CuPy          {report['cupy']}"]
    if report["cuda_runtime"] is not None:
        lines.append(f"CUDA          runtime {report['cuda_runtime']}, driver {report['cuda_driver']}")
    if report["board"]:
        lines.append(f"board         {report['board']}")
    lines.append(f"devices       {', '.join(report['devices'])}")
    if not report["gpus"]:
        lines.append("GPUs          none: no NVIDIA GPU found")
    for gpu in report["gpus"]:
        lines.append(f"GPU {gpu['index']}: {gpu['name']} (through {report['source']})")
        lines.append(f"  compute capability  {gpu['compute_capability']}")
        if "memory_used_mib" in gpu:
            lines.append(f"  memory              {_number(gpu['memory_used_mib'], ' MiB')} used of "
                         f"{_number(gpu['memory_total_mib'], ' MiB')}")
            lines.append(f"  utilisation         {_number(gpu['utilisation_percent'], ' %')} "
                         f"(memory {_number(gpu['memory_utilisation_percent'], ' %')})")
            lines.append(f"  temperature         {_number(gpu['temperature_c'], ' °C')}")
            lines.append(f"  driver              {gpu['driver']}")
        else:
            lines.append(f"  memory              {_number(gpu['memory_free_mib'], ' MiB')} free of "
                         f"{_number(gpu['memory_total_mib'], ' MiB')}")
    lines += [f"note          {note}" for note in report["notes"]]
    return "\n".join(lines)
