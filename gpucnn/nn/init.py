"""Parameter initialisation (as torch.nn.init), drawing from :func:`gpucnn.random.generator`."""

from __future__ import annotations

import math
import numbers
import warnings

import numpy

from .. import random
from ..autograd import no_grad
from ..tensor import Tensor

_LINEAR = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d", "sigmoid")


def _fill(tensor: Tensor, values: numpy.ndarray) -> Tensor:
    with no_grad():
        tensor.data[...] = tensor.device.asarray(values.astype(tensor.dtype))
    tensor._version[0] += 1
    return tensor


def _check_real(value, name: str, non_negative: bool = False) -> float:
    """``value`` as a float; TypeError unless it is a real number (not a bool), ValueError if negative or NaN
    where ``non_negative``."""
    if isinstance(value, (bool, numpy.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    if non_negative and not value >= 0:
        raise ValueError(f"{name} must be non-negative, got {value}")
    return float(value)


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for ``nonlinearity``: 1 for linear, conv and sigmoid, 5/3 for tanh, sqrt(2) for
    relu, sqrt(2 / (1 + slope^2)) for leaky_relu (``param`` the negative slope, default 0.01), 3/4 for selu."""
    if nonlinearity in _LINEAR:
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (bool, numpy.bool_)) or not isinstance(param, numbers.Real):
            raise ValueError(f"negative_slope {param!r} not a valid number (leaky_relu's param must be a real number)")
        else:
            slope = float(param)
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity!r}; expected one of {', '.join(_LINEAR)}, "
                     "tanh, relu, leaky_relu, selu")


def calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """fan_in = shape[1] * receptive field, fan_out = shape[0] * receptive field (a weight of 2+ dims)."""
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out need a tensor with at least 2 dimensions, got shape {tensor.shape}")
    receptive_field = int(numpy.prod(tensor.shape[2:])) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def _fan(tensor: Tensor, mode: str) -> int:
    """fan_in or fan_out of ``tensor``, as ``mode`` says."""
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r} (tensor of shape {tensor.shape})")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    return _fill(tensor, random.generator().uniform(a, b, size=tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    return _fill(tensor, random.generator().normal(mean, std, size=tensor.shape))


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fills ``tensor`` with ``val``."""
    if not isinstance(val, (numbers.Real, numpy.bool_)):
        raise TypeError(f"constant_: val must be a real number, got {type(val).__name__} {val!r}")
    return _fill(tensor, numpy.full(tensor.shape, val))


def zeros_(tensor: Tensor) -> Tensor:
    return _fill(tensor, numpy.zeros(tensor.shape))


def ones_(tensor: Tensor) -> Tensor:
    return _fill(tensor, numpy.ones(tensor.shape))


def _normal_mass(low: float, high: float) -> float:
    """P(low <= Z <= high) for a standard normal Z, accurate in the tails."""
    root2 = math.sqrt(2.0)
    if low >= 0:
        return 0.5 * (math.erfc(low / root2) - math.erfc(high / root2))
    if high <= 0:
        return 0.5 * (math.erfc(-high / root2) - math.erfc(-low / root2))
    return 0.5 * (math.erf(high / root2) - math.erf(low / root2))


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0) -> Tensor:
    """N(mean, std^2) truncated to [a, b], by rejection: normal draws outside [a, b] drawn again, or, where
    that accepts fewer, uniform draws on [a, b] kept with probability pdf / (its peak on [a, b])."""
    mean, std = _check_real(mean, "trunc_normal_: mean"), _check_real(std, "trunc_normal_: std")
    a, b = _check_real(a, "trunc_normal_: a"), _check_real(b, "trunc_normal_: b")
    if not 0 < std < math.inf:
        raise ValueError(f"trunc_normal_: std must be positive and finite, got {std}")
    if not (a < b and math.isfinite(mean)):
        raise ValueError(f"trunc_normal_: needs a finite mean and a < b, got mean={mean}, a={a}, b={b}")
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
                      "The distribution of values may be incorrect.", stacklevel=2)
    mass = _normal_mass((a - mean) / std, (b - mean) / std)
    log_peak = -0.5 * ((min(max(mean, a), b) - mean) / std) ** 2
    # normal draws are accepted with probability mass, uniform ones with mass * std * sqrt(2 pi) / ((b - a) * peak)
    by_normal = mass > 0 and (b - a) * math.exp(log_peak) >= std * math.sqrt(2 * math.pi)
    if not by_normal and not b - a < math.inf:
        raise ValueError(f"trunc_normal_: [a, b] = [{a}, {b}] holds no mass of N({mean}, {std}^2) in float64")
    generator, count = random.generator(), int(numpy.prod(tensor.shape))
    values = numpy.empty(count)
    pending = numpy.arange(count)
    with numpy.errstate(divide="ignore"):
        while pending.size:
            if by_normal:
                draws = generator.normal(mean, std, size=pending.size)
                accepted = (draws >= a) & (draws <= b)
            else:
                draws = generator.uniform(a, b, size=pending.size)
                log_u = numpy.log(generator.uniform(size=pending.size))
                accepted = log_u <= -0.5 * ((draws - mean) / std) ** 2 - log_peak
            values[pending[accepted]] = draws[accepted]
            pending = pending[~accepted]
    return _fill(tensor, values.reshape(tensor.shape))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """U(-bound, bound) with bound = gain * sqrt(6 / (fan_in + fan_out))."""
    gain = _check_real(gain, "xavier_uniform_: gain", non_negative=True)
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out)) if fan_in + fan_out else 0.0
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    gain = _check_real(gain, "xavier_normal_: gain", non_negative=True)
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out)) if fan_in + fan_out else 0.0
    return normal_(tensor, 0.0, std)


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """U(-bound, bound) with bound = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a) (``a`` the
    leaky_relu slope, default 0: sqrt(2))."""
    fan = _fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    bound = gain * math.sqrt(3.0 / fan) if fan else 0.0
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """N(0, std^2) with std = gain / sqrt(fan), gain = calculate_gain(nonlinearity, a) (``a`` the leaky_relu
    slope, default 0: sqrt(2))."""
    fan = _fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan) if fan else 0.0
    return normal_(tensor, 0.0, std)
