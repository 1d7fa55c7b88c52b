"""gpucnn: a small CNN framework with hand-written CUDA kernels and a NumPy CPU path.

    >>> import gpucnn
    >>> from gpucnn import nn
    >>> model = nn.Sequential(nn.Conv2d(3, 10, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2))
    >>> gpucnn.summary(model, (3, 32, 32))
"""

from numpy import bool_, float16, float32, float64, int8, int16, int32, int64, uint8  # noqa: F401  as torch.float32

from . import cuda, data, models, nn, optim, utils
from .autograd import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .creation import (
    arange, empty, empty_like, eye, from_numpy, full, full_like, linspace, ones, ones_like, rand, rand_like, randint,
    randn, randn_like, randperm, zeros, zeros_like,
)
from .devices import Device, default_device, devices
from .devices import get_device as device
from .onnx import export_onnx
from .random import Generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state
from .serialization import load, save
from .summary import summary
from .functions import (
    abs, argmax, argmin, chunk, clamp, clone, exp, flatten, is_tensor, log, log_softmax, max, maximum, mean, min,
    minimum, numel, permute, relu, reshape, sigmoid, softmax, split, sqrt, squeeze, sum, tanh, transpose, unsqueeze,
    where,
)
from .ops.math import cat, stack
from .tensor import Tensor, tensor

# torch's other names of the dtypes (torch.long, torch.float); they shadow builtins inside this namespace only
bool, half, float, double, int, long = bool_, float16, float32, float64, int32, int64

__version__ = "0.1.0"

__all__ = [
    "Device", "Generator", "Tensor", "abs", "arange", "argmax", "argmin", "cat", "chunk", "clamp", "clone", "cuda",
    "data", "default_device", "device", "devices", "empty", "empty_like", "enable_grad", "exp", "export_onnx", "eye",
    "flatten", "from_numpy", "full", "full_like", "get_rng_state", "inference_mode", "initial_seed", "is_grad_enabled",
    "is_tensor", "linspace", "load", "log", "log_softmax", "manual_seed", "max", "maximum", "mean", "min", "minimum",
    "models", "nn", "no_grad", "numel", "ones", "ones_like", "optim", "permute", "rand", "rand_like", "randint",
    "randn", "randn_like", "randperm", "relu", "reshape", "save", "seed", "set_grad_enabled", "set_rng_state",
    "sigmoid", "softmax", "split", "sqrt", "squeeze", "stack", "sum", "summary", "tanh", "tensor", "transpose",
    "unsqueeze", "utils", "where", "zeros", "zeros_like",
]
