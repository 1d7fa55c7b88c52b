"""The ``cuda`` device: CuPy arrays, and the kernels of ``cuda/*.cu`` compiled by NVRTC through
``cupy.RawModule``.

Whether it can be used is probed once per process; every reason it cannot (CuPy missing, no driver,
no GPU, NVRTC headers missing) is reported in words.
"""

from __future__ import annotations

import functools

from . import Device, kernels
from .packed import PackedLaunch

INSTALL_HINT = "pip install 'gpucnn[cuda12]' (or [cuda11] / [cuda13], matching the CUDA version of your driver)"


@functools.lru_cache(maxsize=None)
def probe() -> tuple[int, str]:
    """(number of usable GPUs, why none can be used: '' when some can)."""
    try:
        import cupy
    except ImportError as error:
        return 0, f"CuPy is not installed ({error}); install it with {INSTALL_HINT}"
    except Exception as error:  # a broken CuPy install raises other errors at import
        return 0, f"CuPy failed to import: {error}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:
        return 0, f"no usable NVIDIA driver: {error}"
    if count == 0:
        return 0, "the NVIDIA driver reports no GPU"
    return count, ""


class CudaDevice(Device):
    """GPU ``index`` through CuPy. Kernels: ``device.kernel('relu', 'relu_forward')``."""

    def __init__(self, index: int):
        import cupy

        super().__init__(f"cuda:{index}", "cuda", cupy)
        self.index = index
        self._modules = {}
        self._functions = {}  # (file, name) -> kernel: RawModule.get_function builds a new RawKernel per call

    def context(self):
        return self.xp.cuda.Device(self.index)

    @functools.cached_property
    def compute_capability(self) -> int:
        """The GPU's compute capability as a number: 90 for 9.0 (H100), 53 for 5.3 (Jetson Nano)."""
        return int(self.xp.cuda.Device(self.index).compute_capability)

    @functools.cached_property
    def multiprocessors(self) -> int:
        """The GPU's streaming multiprocessors: 132 on an H100 SXM, 16 on a Jetson AGX Orin."""
        runtime = self.xp.cuda.runtime
        return int(runtime.deviceGetAttribute(runtime.cudaDevAttrMultiProcessorCount, self.index))

    def asarray(self, array):
        with self.context():
            return self.xp.asarray(array)

    def to_numpy(self, array):
        return self.xp.asnumpy(array)

    def address(self, array) -> int:
        return array.data.ptr

    def synchronize(self) -> None:
        with self.context():
            self.xp.cuda.Device(self.index).synchronize()

    def kernel(self, file: str, name: str):
        function = self._functions.get((file, name))
        if function is None:
            module = self._modules.get(file)
            if module is None:
                module = self._modules[file] = self._compile(file)
            function = self._functions[file, name] = module.get_function(name)
        return function

    def _make_launcher(self, file: str, name: str, fixed: tuple):
        return _DriverLaunch(self, file, name, fixed)

    def _compile(self, file: str):
        path = kernels.source_path(file)
        options = ("-std=c++17", f"-I{kernels.source_dir()}")
        with self.context():
            module = self.xp.RawModule(code=path.read_text(), options=options, name_expressions=None)
            try:
                module.compile()
            except Exception as error:
                text = str(error)
                hint = ""
                if "cuda_fp16.h" in text or "could not open source file" in text or "cannot open source file" in text:
                    hint = (" — the CUDA headers NVRTC needs are missing: install the CUDA toolkit headers "
                            "(e.g. 'pip install nvidia-cuda-runtime-cu12' or use a CUDA 'devel' image)")
                raise RuntimeError(f"compiling {path} for {self.name} failed{hint}: {text}") from None
        return module


def _dims(value) -> tuple[int, int, int]:
    """A grid or block (an int or a tuple of 1 to 3 ints) as (x, y, z)."""
    return (value, 1, 1) if isinstance(value, int) else (tuple(value) + (1, 1))[:3]


class _DriverLaunch(PackedLaunch):
    """A kernel launched by the driver's cuLaunchKernel from a PackedArguments buffer, on CuPy's current
    stream, as CuPy's RawKernel launches it (arrays as their addresses, NumPy scalars as their bytes),
    without building the argument array anew."""

    def __init__(self, device: CudaDevice, file: str, name: str, fixed: tuple):
        super().__init__(fixed, device.address)
        with device.context():
            self._function = device.kernel(file, name).kernel  # this GPU's (kept: it holds the module)
        self._launch = device.xp.cuda.driver.launchKernel
        self._current_stream = device.xp.cuda.get_current_stream

    def __call__(self, grid, block, leading: tuple) -> None:
        arguments = self._packed(leading)
        (gx, gy, gz), (bx, by, bz) = _dims(grid), _dims(block)
        with arguments.lock:
            self._launch(self._function.ptr, gx, gy, gz, bx, by, bz, 0, self._current_stream().ptr,
                         arguments.fill(leading), 0)


def get(index: int) -> CudaDevice:
    """The Device for GPU ``index``; RuntimeError saying why when it cannot be used."""
    count, reason = probe()
    if not count:
        raise RuntimeError(f"device 'cuda:{index}' cannot be used: {reason}")
    if index >= count:
        raise RuntimeError(f"device 'cuda:{index}' does not exist: this machine has {count} GPU(s), "
                           f"cuda:0..cuda:{count - 1}")
    return _device(index)


@functools.lru_cache(maxsize=None)
def _device(index: int) -> CudaDevice:
    return CudaDevice(index)
