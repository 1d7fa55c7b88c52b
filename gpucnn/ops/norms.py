"""Layer normalisation and group normalisation, as PyTorch's, composed of differentiable tensor ops (mean,
variance, arithmetic), so that their gradients are autograd's: statistics per sample, none kept across
batches (unlike batch norm), the same in training and evaluation."""

from __future__ import annotations

import numbers

from ..tensor import Tensor, as_tensor
from . import math


def _normalized(x: Tensor, dims: tuple, eps: float) -> Tensor:
    """(x - mean) / sqrt(var + eps) over ``dims``, the variance biased (over the count), as PyTorch's."""
    centred = x - math.mean(x, dims, keepdim=True)
    return centred / math.sqrt(math.mean(centred * centred, dims, keepdim=True) + eps)


def _affine(y: Tensor, weight, bias, shape: tuple, view: tuple, op: str) -> Tensor:
    """y * weight + bias where given, each of ``shape``, applied as ``view`` (broadcast against y)."""
    for value, name in ((weight, "weight"), (bias, "bias")):
        if value is None:
            continue
        value = as_tensor(value, f"{op}: {name}", y.device)
        if value.shape != shape:
            raise ValueError(f"{op}: {name} must have shape {shape}, got {value.shape}")
        value = value.reshape(view)
        y = y * value if name == "weight" else y + value
    return y


def _check_eps(eps, op: str) -> float:
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not eps >= 0:
        raise ValueError(f"{op}: eps must be a non-negative number, got {eps!r}")
    return float(eps)


def _float_input(input, op: str) -> Tensor:
    x = as_tensor(input, f"{op}: input")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be a floating-point tensor, got dtype {x.dtype} (shape {x.shape})")
    return x


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalises over the last dimensions of ``input``, ``normalized_shape`` (an int or a tuple, those
    dimensions' sizes), then scales by ``weight`` and shifts by ``bias`` (of that shape) where given."""
    x = _float_input(input, "layer_norm")
    shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else tuple(normalized_shape)
    if not shape or x.shape[x.ndim - len(shape):] != shape or len(shape) > x.ndim:
        raise ValueError(f"layer_norm: normalized_shape {shape} must be the last dimensions of the input's shape "
                         f"{x.shape}")
    dims = tuple(range(x.ndim - len(shape), x.ndim))
    return _affine(_normalized(x, dims, _check_eps(eps, "layer_norm")), weight, bias, shape, shape, "layer_norm")


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalises each of ``num_groups`` groups of channels of (N, C, *) input over its channels and the
    other dimensions, then scales and shifts each channel by ``weight`` and ``bias`` (C,) where given."""
    x = _float_input(input, "group_norm")
    if x.ndim < 2:
        raise ValueError(f"group_norm: input must be (N, C, *), got shape {x.shape}")
    channels = x.shape[1]
    if isinstance(num_groups, bool) or not isinstance(num_groups, numbers.Integral) or num_groups <= 0 or \
            channels % num_groups:
        raise ValueError(f"group_norm: num_groups must be a positive int that divides the {channels} channels "
                         f"(input shape {x.shape}), got {num_groups!r}")
    grouped = x.reshape(x.shape[0], int(num_groups), x.numel() // max(x.shape[0], 1) // int(num_groups))
    y = _normalized(grouped, (2,), _check_eps(eps, "group_norm")).reshape(x.shape)
    return _affine(y, weight, bias, (channels,), (channels,) + (1,) * (x.ndim - 2), "group_norm")
