"""Devices a Tensor can live on.

A device gives ops two things: ``xp``, the array module its arrays belong to (``numpy`` or
``cupy``), and, for the kernel devices, ``launcher(file, name, fixed)``: kernel ``name`` of
``cuda/<file>.cu`` with ``fixed`` as its last arguments (a layer's sizes, which repeat from call to
call; or none), called as ``launcher(grid, block, leading)``, which packs ``fixed`` once
(:mod:`.packed`). Every op launches so. ``kernel(file, name)`` gives the kernel itself, called with
CuPy's shape ``kernel(grid, block, args, shared_mem=0)``.
Everything that is not a hand-written kernel is written once against ``xp``.

- ``'cpu'``: NumPy.
- ``'cuda'``, ``'cuda:N'``: an NVIDIA GPU through CuPy.
- ``'cudasim'``: NumPy arrays, with the same CUDA kernels compiled for the CPU by g++ and run by the
  simulator in :mod:`gpucnn.devices.cudasim`.
"""

from __future__ import annotations

import contextlib
import os
import re

import numpy

from ..ops._parallel import single_threaded_blas, splitting
from .packed import PackedLaunch

_CUDA_NAME = re.compile(r"^cuda(?::(\d+))?$")


_NO_CONTEXT = contextlib.nullcontext()  # reusable: it holds nothing


class Device:
    """A place where arrays live and ops run.

    Attributes:
        name: canonical name, e.g. ``'cpu'``, ``'cuda:0'``, ``'cudasim'``.
        type: ``'cpu'``, ``'cuda'`` or ``'cudasim'``.
        xp: the array module (``numpy`` or ``cupy``).
        runs_kernels: True where conv, pool and ReLU launch the CUDA kernels (``cuda`` and ``cudasim``).
        multiprocessors: the GPU's streaming multiprocessors (``cuda``), None where there is no GPU.
    """

    multiprocessors = None

    def __init__(self, name: str, type: str, xp):
        self.name = name
        self.type = type
        self.xp = xp
        self.runs_kernels = type != "cpu"
        self._launchers = {}  # (file, kernel name, id of the fixed arguments) -> launcher

    def context(self):
        """A context manager making this device current while ops allocate arrays."""
        return _NO_CONTEXT

    def asarray(self, array):
        """``array`` (NumPy or another device's array) on this device."""
        if hasattr(array, "__cuda_array_interface__"):  # a CuPy array, which NumPy does not take: to the host first
            array = array.get()
        return self.xp.asarray(array)

    def to_numpy(self, array) -> numpy.ndarray:
        """A NumPy array with the values of ``array`` (this device's array)."""
        return array

    def synchronize(self) -> None:
        """Waits for queued work (a no-op where work is synchronous)."""

    def address(self, array) -> int:
        """The address of ``array``'s first element, as kernels of this device see it."""
        return array.ctypes.data

    def kernel(self, file: str, name: str):
        raise RuntimeError(f"device '{self.name}' runs no CUDA kernels")

    #: Past this many launchers a device forgets them and makes them again.
    MAX_LAUNCHERS = 4096

    def launcher(self, file: str, name: str, fixed: tuple = ()):
        """Kernel ``name`` of ``cuda/<file>.cu`` with ``fixed`` as its last arguments, for launches that
        repeat: ``launcher(grid, block, leading)`` launches it with the arguments ``leading + fixed``,
        from a :class:`~gpucnn.devices.packed.PackedArguments` buffer where ``fixed`` was written once.
        Made once per kernel and ``fixed`` tuple, which it keeps and knows by identity: pass the same
        tuple each time (a cached launch plan's), or none."""
        if type(fixed) is not tuple:
            raise TypeError(f"launcher({file!r}, {name!r}): fixed must be a tuple of the kernel's last arguments, "
                            f"got {type(fixed).__name__}")
        launchers, key = self._launchers, (file, name, id(fixed))
        launcher = launchers.get(key)
        if launcher is None:
            if len(launchers) >= self.MAX_LAUNCHERS:
                launchers.clear()
            launcher = launchers[key] = self._make_launcher(file, name, fixed)
        return launcher

    def _make_launcher(self, file: str, name: str, fixed: tuple):
        raise RuntimeError(f"device '{self.name}' runs no CUDA kernels")

    def __eq__(self, other):
        if isinstance(other, str):
            return other == self.name or other == self.type == "cuda" and self.name == "cuda:0"
        return isinstance(other, Device) and other.name == self.name

    def __hash__(self):
        return hash(self.name)

    def __reduce__(self):
        """Pickled (and deep-copied) by name: the copy is this process's device of that name."""
        return get_device, (self.name,)

    def __repr__(self):
        return f"device(type='{self.type}', name='{self.name}')"

    def __str__(self):
        return self.name


class CpuDevice(Device):
    """``'cpu'``: NumPy. Large work splits among the cores in the ops themselves (:mod:`gpucnn.ops._parallel`)."""

    def __init__(self):
        super().__init__("cpu", "cpu", numpy)

    def context(self):
        """While the ops split work among threads (``_parallel.splitting``), NumPy's BLAS runs on one
        thread during each op, its count as before after it. Otherwise OpenBLAS's threads, woken by a
        product, spin on every core for about 0.1 s after it and take the cores from the split work:
        on the 2-core VM a small ResNet's training step at batch 64 ran at 372-390 images/s with
        conv2d's parts so, 584-592 with this, 426-473 before the parts (``python -m bench train``)."""
        return single_threaded_blas() if splitting() else _NO_CONTEXT


CPU = CpuDevice()


def get_device(device) -> Device:
    """The Device for ``device``: a name, a Device, or None for :func:`default_device`.

    Raises:
        TypeError: ``device`` is neither a string nor a Device.
        ValueError: the name is not a device gpucnn knows.
        RuntimeError: the device is known but cannot be used on this machine (the message says why).
    """
    if device is None:
        return default_device()
    if isinstance(device, Device):
        return device
    if not isinstance(device, str):
        raise TypeError(f"device must be a str such as 'cpu' or 'cuda:0', got {type(device).__name__} {device!r}")
    name = device.strip().lower()
    if name == "cpu":
        return CPU
    match = _CUDA_NAME.match(name)
    if match:
        from . import cuda

        return cuda.get(int(match.group(1) or 0))
    if name == "cudasim":
        return _cudasim_device()
    raise ValueError(f"unknown device '{device}'; expected 'cpu', 'cuda', 'cuda:N' or 'cudasim'")


class SimulatorDevice(Device):
    """``'cudasim'``: NumPy arrays; the CUDA kernels compiled by g++ and run by :mod:`.cudasim`."""

    def __init__(self):
        super().__init__("cudasim", "cudasim", numpy)
        self._modules = {}

    def kernel(self, file: str, name: str):
        from . import cudasim, kernels

        module = self._modules.get(file)
        if module is None:
            module = cudasim.load(kernels.source_path(file), include_dirs=[kernels.source_dir()])
            self._modules[file] = module
        return module.get_function(name)

    def _make_launcher(self, file: str, name: str, fixed: tuple):
        return _SimulatedLaunch(self, file, name, fixed)


class _SimulatedLaunch(PackedLaunch):
    """The cuda device's launch from packed arguments, on cudasim: each launch checks the arguments
    against the kernel's declaration, writes them into the PackedArguments buffer and launches through
    its pointer array (``Kernel.launch_params``), which cudasim reads as the driver does."""

    def __init__(self, device, file: str, name: str, fixed: tuple):
        super().__init__(fixed, device.address)
        self._device, self._file, self._name = device, file, name

    def __call__(self, grid, block, leading: tuple) -> None:
        kernel = self._device.kernel(self._file, self._name)
        kernel.check(tuple(leading) + self._fixed)
        arguments = self._packed(leading)
        with arguments.lock:
            kernel.launch_params(grid, block, arguments.fill(leading))


_simulator = None


def _cudasim_device() -> Device:
    global _simulator
    from . import cudasim

    if not cudasim.available():
        raise RuntimeError("device 'cudasim' cannot be used: it compiles the CUDA kernels with g++ (or $CXX), "
                           "which is not installed; install it with apt-get install g++")
    if _simulator is None:
        _simulator = SimulatorDevice()
    return _simulator


def default_device() -> Device:
    """Where new tensors go: ``$GPUCNN_DEVICE`` when set, else ``'cuda'`` when a GPU is usable, else ``'cpu'``."""
    name = os.environ.get("GPUCNN_DEVICE")
    if name:
        return get_device(name)
    from . import cuda

    return get_device("cuda") if cuda.probe()[0] else CPU


def devices() -> list[str]:
    """Names of the devices usable on this machine: 'cpu', 'cudasim' where g++ is installed, each GPU."""
    from . import cuda, cudasim

    return ["cpu"] + ["cudasim"] * cudasim.available() + [f"cuda:{index}" for index in range(cuda.probe()[0])]
