"""``gpucnn.cuda``, as torch.cuda's few calls a training script makes:

    >>> device = "cuda" if gpucnn.cuda.is_available() else "cpu"
"""

from __future__ import annotations

from .devices import cuda as _cuda
from .devices import get_device

__all__ = ["device_count", "is_available", "synchronize"]


def device_count() -> int:
    """The number of GPUs gpucnn can use (0 without CuPy, a driver or a GPU)."""
    return _cuda.probe()[0]


def is_available() -> bool:
    """Whether the ``cuda`` device can be used; ``gpucnn.devices.cuda.probe()`` says why not."""
    return device_count() > 0


def synchronize(device=None) -> None:
    """Waits for the work queued on the GPU ``device`` (None: ``'cuda'``); RuntimeError, saying why, without one."""
    get_device("cuda" if device is None else f"cuda:{device}" if isinstance(device, int) else device).synchronize()
