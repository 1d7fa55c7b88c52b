"""gpucnn: a small CNN framework with hand-written CUDA kernels and a NumPy CPU path.

    >>> import gpucnn
    >>> from gpucnn import nn
    >>> model = nn.Sequential(nn.Conv2d(3, 10, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2))
    >>> gpucnn.summary(model, (3, 32, 32))
"""

from numpy import bool_, float16, float32, float64, int8, int16, int32, int64, uint8  # noqa: F401  as torch.float32

from . import autograd, cuda, data, models, nn, optim, utils
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
    abs, add, all, allclose, any, argmax, argmin, argsort, bmm, ceil, chunk, clamp, clone, count_nonzero, cumprod,
    cumsum, div, dot, eq, equal, erf, exp, expm1, flatten, flip, floor, gather, ge, gt, index_select, is_floating_point,
    is_tensor, isfinite, isinf, isnan, le, log, log10, log1p, log2, log_softmax, logical_and, logical_not, logical_or,
    logical_xor, logsumexp, lt, masked_fill, matmul, max, maximum, mean, min, minimum, mm, mul, mv, narrow, ne, neg,
    nonzero, norm, numel, outer, permute, pow, prod, reciprocal, relu, reshape, roll, round, rsqrt, rsub, scatter,
    scatter_add, sigmoid, sign, softmax, sort, split, sqrt, square, squeeze, std, std_mean, sub, sum, tanh, topk,
    transpose, tril, triu, trunc, unique, unsqueeze, var, var_mean, where,
)
from .ops.math import cat, stack
from .tensor import Tensor, tensor

# torch's other names of the dtypes (torch.long, torch.float); they shadow builtins inside this namespace only
bool, half, float, double, int, long = bool_, float16, float32, float64, int32, int64

__version__ = "0.1.0"

__all__ = [
    "Device", "Generator", "Tensor", "abs", "add", "all", "allclose", "any", "arange", "argmax", "argmin", "argsort",
    "autograd", "bmm", "cat", "ceil", "chunk", "clamp", "clone", "count_nonzero", "cuda", "cumprod", "cumsum", "data",
    "default_device", "device", "devices", "div", "dot", "empty", "empty_like", "enable_grad", "eq", "equal", "erf",
    "exp", "expm1", "export_onnx", "eye", "flatten", "flip", "floor", "from_numpy", "full", "full_like", "gather", "ge",
    "get_rng_state", "gt", "index_select", "inference_mode", "initial_seed", "is_floating_point", "is_grad_enabled",
    "is_tensor", "isfinite", "isinf", "isnan", "le", "linspace", "load", "log", "log10", "log1p", "log2", "log_softmax",
    "logical_and", "logical_not", "logical_or", "logical_xor", "logsumexp", "lt", "manual_seed", "masked_fill",
    "matmul", "max", "maximum", "mean", "min", "minimum", "mm", "models", "mul", "mv", "narrow", "ne", "neg", "nn",
    "no_grad", "nonzero", "norm", "numel", "ones", "ones_like", "optim", "outer", "permute", "pow", "prod", "rand",
    "rand_like", "randint", "randn", "randn_like", "randperm", "reciprocal", "relu", "reshape", "roll", "round",
    "rsqrt", "rsub", "save", "scatter", "scatter_add", "seed", "set_grad_enabled", "set_rng_state", "sigmoid", "sign",
    "softmax", "sort", "split", "sqrt", "square", "squeeze", "stack", "std", "std_mean", "sub", "sum", "summary",
    "tanh", "tensor", "topk", "transpose", "tril", "triu", "trunc", "unique", "unsqueeze", "utils", "var", "var_mean",
    "where", "zeros", "zeros_like",
]
