"""Devices a Tensor can live on.

A device gives ops two things: ``xp``, the array module its arrays belong to (``numpy`` or
``cupy``), and, for the CUDA devices, a launcher for the kernels in ``cuda/*.cu``. Everything that
is not a hand-written kernel is written once against ``xp``.

Names: ``'cpu'`` (NumPy). ``'cuda'``, ``'cuda:N'`` and ``'cudasim'`` are the kernel devices.
"""

from __future__ import annotations

import os
import re

import numpy

_CUDA_NAME = re.compile(r"^cuda(?::(\d+))?$")


class Device:
    """A place where arrays live and ops run.

    Attributes:
        name: canonical name, e.g. ``'cpu'`` or ``'cuda:0'``.
        type: ``'cpu'``, ``'cuda'`` or ``'cudasim'``.
        xp: the array module (``numpy`` or ``cupy``).
    """

    def __init__(self, name: str, type: str, xp):
        self.name = name
        self.type = type
        self.xp = xp

    @property
    def runs_kernels(self) -> bool:
        """True when conv, pool and ReLU launch the CUDA kernels (``cuda`` and ``cudasim``)."""
        return self.type != "cpu"

    def asarray(self, array):
        """Moves ``array`` (NumPy or another device's array) onto this device."""
        return self.xp.asarray(array)

    def __eq__(self, other):
        return isinstance(other, Device) and other.name == self.name

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return f"device(type='{self.type}', name='{self.name}')"

    def __str__(self):
        return self.name


CPU = Device("cpu", "cpu", numpy)


def get_device(device) -> Device:
    """Returns the Device for ``device`` (a name, a Device, or None for the default device).

    Raises:
        TypeError: ``device`` is neither a string nor a Device.
        ValueError: the name is not a device gpucnn knows.
        RuntimeError: the device is known but cannot be used on this machine.
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
    if _CUDA_NAME.match(name) or name == "cudasim":
        raise RuntimeError(
            f"device '{device}' cannot be used: this build of gpucnn runs on 'cpu' only "
            "(the CUDA kernels are not part of it yet)"
        )
    raise ValueError(f"unknown device '{device}'; expected 'cpu', 'cuda', 'cuda:N' or 'cudasim'")


def default_device() -> Device:
    """The device new tensors go to: ``$GPUCNN_DEVICE`` when set, else ``'cpu'``."""
    return get_device(os.environ.get("GPUCNN_DEVICE") or "cpu")


def devices() -> list[str]:
    """Names of the devices usable on this machine."""
    return ["cpu"]
