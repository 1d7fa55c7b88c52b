"""gpucnn: a small CNN framework with hand-written CUDA kernels and a NumPy CPU path."""

from numpy import float16, float32, float64, int32, int64, bool_  # noqa: F401  dtype names, as torch.float32

from .autograd import is_grad_enabled, no_grad
from .devices import Device, default_device, devices, get_device as device
from .tensor import Tensor, tensor

__version__ = "0.1.0"
