"""Functions of tensors at the package's top level, as torch's (``gpucnn.flatten(x, 1)``, ``gpucnn.max(logits,
1)``): each is the Tensor method of the same name, or the ``nn.functional`` op. An array stands for a tensor
on its own device (a CuPy array's GPU, else the cpu), so ``gpucnn.max(outputs.data, 1)``, where ``.data``
is the array, works as in PyTorch's tutorials."""

from __future__ import annotations

from .nn import functional
from .ops import math as tensor_math
from .tensor import Tensor, as_tensor

__all__ = [
    "abs", "argmax", "argmin", "chunk", "clamp", "clone", "exp", "flatten", "is_tensor", "log", "log_softmax", "max",
    "maximum", "mean", "min", "minimum", "numel", "permute", "relu", "reshape", "sigmoid", "softmax", "split", "sqrt",
    "squeeze", "sum", "tanh", "transpose", "unsqueeze", "where",
]


def _tensor(input, name: str) -> Tensor:
    """``input`` itself if a Tensor, else a tensor of the array (not copied) on the array's device."""
    if isinstance(input, Tensor):
        return input
    if not hasattr(input, "__array__") and not hasattr(input, "__cuda_array_interface__"):
        raise TypeError(f"{name}: input must be a Tensor or an array, got {type(input).__name__}")
    device = f"cuda:{input.device.id}" if hasattr(input, "__cuda_array_interface__") else "cpu"
    return as_tensor(input, f"{name}: input", device)


def is_tensor(obj) -> bool:
    """Whether ``obj`` is a gpucnn Tensor (a Parameter is one)."""
    return isinstance(obj, Tensor)


def numel(input) -> int:
    """The number of elements of ``input``."""
    return _tensor(input, "numel").numel()


def flatten(input, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """``input`` with dims start_dim..end_dim merged into one (``flatten(x, 1)``: a row per sample)."""
    return _tensor(input, "flatten").flatten(start_dim, end_dim)


def reshape(input, shape) -> Tensor:
    return _tensor(input, "reshape").reshape(shape)


def transpose(input, dim0: int, dim1: int) -> Tensor:
    return _tensor(input, "transpose").transpose(dim0, dim1)


def permute(input, dims) -> Tensor:
    return _tensor(input, "permute").permute(dims)


def unsqueeze(input, dim: int) -> Tensor:
    return _tensor(input, "unsqueeze").unsqueeze(dim)


def squeeze(input, dim=None) -> Tensor:
    return _tensor(input, "squeeze").squeeze(dim)


def sum(input, dim=None, keepdim: bool = False) -> Tensor:
    return _tensor(input, "sum").sum(dim, keepdim)


def mean(input, dim=None, keepdim: bool = False) -> Tensor:
    return _tensor(input, "mean").mean(dim, keepdim)


def _extreme(input, dim, keepdim: bool, name: str):
    if isinstance(dim, Tensor):  # max(input, other): elementwise, as torch's
        return getattr(tensor_math, f"{name}imum")(_tensor(input, name), dim)
    return getattr(_tensor(input, name), name)(dim, keepdim)


def max(input, dim=None, keepdim: bool = False):
    """The largest value of ``input``, or along ``dim`` the pair (values, indices): ``_, predicted =
    gpucnn.max(logits, 1)``; with a tensor for ``dim``, the elementwise :func:`maximum`."""
    return _extreme(input, dim, keepdim, "max")


def min(input, dim=None, keepdim: bool = False):
    """The smallest value of ``input``, or along ``dim`` the pair (values, indices); with a tensor for ``dim``,
    the elementwise :func:`minimum`."""
    return _extreme(input, dim, keepdim, "min")


def maximum(input, other) -> Tensor:
    """The elementwise maximum, broadcast (NaN where either is NaN); the gradient goes to the larger, half to each
    where equal."""
    return tensor_math.maximum(_tensor(input, "maximum"), other)


def minimum(input, other) -> Tensor:
    """The elementwise minimum, broadcast (NaN where either is NaN); the gradient goes to the smaller, half to each
    where equal."""
    return tensor_math.minimum(_tensor(input, "minimum"), other)


def argmax(input, dim=None, keepdim: bool = False) -> Tensor:
    return _tensor(input, "argmax").argmax(dim, keepdim)


def argmin(input, dim=None, keepdim: bool = False) -> Tensor:
    return _tensor(input, "argmin").argmin(dim, keepdim)


def exp(input) -> Tensor:
    return _tensor(input, "exp").exp()


def log(input) -> Tensor:
    return _tensor(input, "log").log()


def sqrt(input) -> Tensor:
    return _tensor(input, "sqrt").sqrt()


def abs(input) -> Tensor:
    return _tensor(input, "abs").abs()


def sigmoid(input) -> Tensor:
    return _tensor(input, "sigmoid").sigmoid()


def tanh(input) -> Tensor:
    return _tensor(input, "tanh").tanh()


def clamp(input, min=None, max=None) -> Tensor:
    return _tensor(input, "clamp").clamp(min, max)


def where(condition, input, other) -> Tensor:
    """``input`` where ``condition`` holds, else ``other`` (numbers allowed), broadcast; differentiable in both."""
    return tensor_math.where(condition, input, other)


def split(tensor, split_size_or_sections, dim: int = 0) -> tuple:
    return _tensor(tensor, "split").split(split_size_or_sections, dim)


def chunk(input, chunks: int, dim: int = 0) -> tuple:
    return _tensor(input, "chunk").chunk(chunks, dim)


def clone(input) -> Tensor:
    return _tensor(input, "clone").clone()


def relu(input) -> Tensor:
    return functional.relu(_tensor(input, "relu"))


def softmax(input, dim: int, *, dtype=None) -> Tensor:
    return functional.softmax(_tensor(input, "softmax"), dim, dtype=dtype)


def log_softmax(input, dim: int, *, dtype=None) -> Tensor:
    return functional.log_softmax(_tensor(input, "log_softmax"), dim, dtype=dtype)
