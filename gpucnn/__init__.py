"""gpucnn: a small CNN framework with hand-written CUDA kernels and a NumPy CPU path.

    >>> import gpucnn
    >>> from gpucnn import nn
    >>> model = nn.Sequential(nn.Conv2d(3, 10, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2))
    >>> gpucnn.summary(model, (3, 32, 32))
"""

from numpy import bool_, float16, float32, float64, int32, int64  # noqa: F401  dtype names, as torch.float32

from . import data, models, nn, optim
from .autograd import is_grad_enabled, no_grad
from .devices import Device, default_device, devices
from .devices import get_device as device
from .onnx import export_onnx
from .random import get_rng_state, manual_seed, set_rng_state
from .summary import summary
from .ops.math import cat, stack
from .tensor import Tensor, tensor

__version__ = "0.1.0"

__all__ = [
    "Device", "Tensor", "cat", "data", "default_device", "device", "devices", "export_onnx", "get_rng_state",
    "is_grad_enabled", "manual_seed", "models", "nn", "no_grad", "optim", "set_rng_state", "stack", "summary",
    "tensor",
]
