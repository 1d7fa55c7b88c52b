"""Layers: thin Modules over :mod:`gpucnn.nn.functional`, with PyTorch's names, arguments and init."""

from __future__ import annotations

import math
import numbers

import numpy

from ..ops import math as tensor_math
from ..ops._shapes import pair
from ..ops.avgpool2d import checked_divisor
from ..ops.batchnorm import counted_batch_norm
from ..ops.conv_transpose2d import output_padding_for
from ..ops.cross_entropy import check_options
from ..ops.maxpool2d import pool_window
from ..tensor import Tensor, as_tensor
from . import functional as F
from . import init
from .module import Module, Parameter


def _positive_int(value, name: str, layer: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{layer}: {name} must be a positive int, got {value!r}")
    return int(value)


def _empty(*shape) -> Parameter:
    return Parameter(numpy.zeros(shape, dtype=numpy.float32))


def _reset_weight_and_bias(weight: Parameter, bias: Parameter | None) -> None:
    """PyTorch's default for Conv2d and Linear: kaiming_uniform(a=sqrt(5)) weights, U(+-1/sqrt(fan_in)) bias."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = init.calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        init.uniform_(bias, -bound, bound)


class Conv2d(Module):
    """2-D convolution. input (N, C_in, H, W) -> (N, C_out, P, Q); weight (C_out, C_in/groups, R, S)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros"):
        super().__init__()
        if padding_mode != "zeros":
            raise ValueError(f"Conv2d: padding_mode must be 'zeros', the only padding gpucnn implements, "
                             f"got {padding_mode!r}")
        self.in_channels = _positive_int(in_channels, "in_channels", "Conv2d")
        self.out_channels = _positive_int(out_channels, "out_channels", "Conv2d")
        self.groups = _positive_int(groups, "groups", "Conv2d")
        for name, channels in (("in_channels", in_channels), ("out_channels", out_channels)):
            if channels % groups:
                raise ValueError(f"Conv2d: {name}={channels} is not divisible by groups={groups}")
        self.kernel_size = pair(kernel_size, "kernel_size", "Conv2d", minimum=1)
        self.stride = pair(stride, "stride", "Conv2d", minimum=1)
        self.dilation = pair(dilation, "dilation", "Conv2d", minimum=1)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Conv2d: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
            self.padding = padding
        else:
            self.padding = pair(padding, "padding", "Conv2d", minimum=0)
        self.weight = _empty(out_channels, in_channels // groups, *self.kernel_size)
        self.bias = _empty(out_channels) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_weight_and_bias(self.weight, self.bias)

    def forward(self, input):
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding!r}" if isinstance(self.padding, str) else f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if self.bias is not None else ", bias=False")


class ConvTranspose2d(Module):
    """2-D transposed convolution, conv2d's adjoint. input (N, C_in, H, W) -> (N, C_out, H_out, W_out) with
    H_out = (H-1)*stride - 2*padding + dilation*(R-1) + output_padding + 1; weight (C_in, C_out/groups, R, S).

    ``forward(input, output_size=None)``: an ``output_size`` (H_out, W_out), or the whole output shape,
    picks the output_padding that gives it in place of the layer's own (PyTorch's rule: one of the
    ``stride`` sizes from the output without output_padding up); ValueError where none does.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros"):
        super().__init__()
        layer = "ConvTranspose2d"
        if padding_mode != "zeros":
            raise ValueError(f"{layer}: padding_mode must be 'zeros', the only padding gpucnn implements, "
                             f"got {padding_mode!r}")
        self.in_channels = _positive_int(in_channels, "in_channels", layer)
        self.out_channels = _positive_int(out_channels, "out_channels", layer)
        self.groups = _positive_int(groups, "groups", layer)
        for name, channels in (("in_channels", in_channels), ("out_channels", out_channels)):
            if channels % groups:
                raise ValueError(f"{layer}: {name}={channels} is not divisible by groups={groups}")
        self.kernel_size = pair(kernel_size, "kernel_size", layer, minimum=1)
        self.stride = pair(stride, "stride", layer, minimum=1)
        self.padding = pair(padding, "padding", layer, minimum=0)
        self.output_padding = pair(output_padding, "output_padding", layer, minimum=0)
        self.dilation = pair(dilation, "dilation", layer, minimum=1)
        self.weight = _empty(in_channels, out_channels // groups, *self.kernel_size)
        self.bias = _empty(out_channels) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # PyTorch's too: fan_in is weight.shape[1] * R * S, that is C_out/groups * R * S
        _reset_weight_and_bias(self.weight, self.bias)

    def forward(self, input, output_size=None):
        output_padding = self.output_padding
        if output_size is not None:
            input = as_tensor(input, "input")
            output_padding = output_padding_for(output_size, input.shape, self.kernel_size, self.stride, self.padding,
                                                self.dilation)
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding, output_padding,
                                  self.groups, self.dilation)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        for name, unset in (("padding", (0, 0)), ("dilation", (1, 1)), ("output_padding", (0, 0))):
            if getattr(self, name) != unset:
                text += f", {name}={getattr(self, name)}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if self.bias is not None else ", bias=False")


class Linear(Module):
    """y = x @ weight^T + bias. input (*, in_features) -> (*, out_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features", "Linear")
        self.out_features = _positive_int(out_features, "out_features", "Linear")
        self.weight = _empty(out_features, in_features)
        self.bias = _empty(out_features) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_weight_and_bias(self.weight, self.bias)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False):
        super().__init__()
        pool_window("MaxPool2d", kernel_size, stride, padding, dilation, ceil_mode)
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input):
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override=None):
        super().__init__()
        pool_window("AvgPool2d", kernel_size, stride, padding, 1, ceil_mode)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad
        self.divisor_override = checked_divisor("AvgPool2d", divisor_override)

    def forward(self, input):
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                            self.divisor_override)

    def extra_repr(self) -> str:
        text = f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, padding={self.padding}"
        return text if self.divisor_override is None else f"{text}, divisor_override={self.divisor_override}"


class AdaptiveAvgPool2d(Module):
    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        return F.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(Module):
    """Max over adaptive windows, as ``F.adaptive_max_pool2d``; ``return_indices`` also returns the maxima's
    flat indices."""

    def __init__(self, output_size, return_indices: bool = False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, input):
        return F.adaptive_max_pool2d(input, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class ReLU(Module):
    """``inplace=True`` overwrites the input where autograd records nothing, and gives a new tensor where it
    records the op (:func:`gpucnn.ops.math.written_in_place`); the layer's output is the same either way."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = bool(inplace)

    def forward(self, input):
        return F.relu(input, self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, numbers.Real):
            raise TypeError(f"LeakyReLU: negative_slope must be a real number, got {negative_slope!r}")
        self.negative_slope, self.inplace = float(negative_slope), bool(inplace)

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class Sigmoid(Module):
    def forward(self, input):
        return F.sigmoid(input)


class Tanh(Module):
    def forward(self, input):
        return F.tanh(input)


def _inplace_repr(inplace: bool) -> str:
    return "inplace=True" if inplace else ""


class Hardtanh(Module):
    """input clipped to [min_val, max_val] (min_val < max_val), as ``F.hardtanh``; ``inplace`` as :class:`ReLU`'s."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
        super().__init__()
        for name, value in (("min_val", min_val), ("max_val", max_val)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{type(self).__name__}: {name} must be a real number, got {value!r}")
        if not max_val > min_val:
            raise ValueError(f"{type(self).__name__}: max_val ({max_val}) must be greater than min_val ({min_val})")
        self.min_val, self.max_val, self.inplace = min_val, max_val, bool(inplace)

    def forward(self, input):
        return F.hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}" + (", inplace=True" if self.inplace else "")


class ReLU6(Hardtanh):
    """min(max(input, 0), 6): Hardtanh(0, 6), as torch's."""

    def __init__(self, inplace: bool = False):
        super().__init__(0.0, 6.0, inplace)

    def forward(self, input):
        return F.relu6(input, self.inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace)


class ELU(Module):
    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
            raise TypeError(f"{type(self).__name__}: alpha must be a real number, got {alpha!r}")
        self.alpha, self.inplace = float(alpha), bool(inplace)

    def forward(self, input):
        return F.elu(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class CELU(ELU):
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1)), as ``F.celu``; alpha must not be 0."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__(alpha, inplace)
        if self.alpha == 0:
            raise ValueError("CELU: alpha must not be 0 (the input is divided by it)")

    def forward(self, input):
        return F.celu(input, self.alpha, self.inplace)


class _InplaceActivation(Module):
    """An activation without parameters but ``inplace``, as :class:`ReLU`'s; ``function`` names its F call."""

    function = ""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = bool(inplace)

    def forward(self, input):
        return getattr(F, self.function)(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace)


class SELU(_InplaceActivation):
    """scale * elu(x, alpha) with the fixed constants of self-normalising networks, as ``F.selu``."""

    function = "selu"


class SiLU(_InplaceActivation):
    """x * sigmoid(x) (swish), as ``F.silu``."""

    function = "silu"


class Mish(_InplaceActivation):
    """x * tanh(softplus(x)), as ``F.mish``."""

    function = "mish"


class Hardswish(_InplaceActivation):
    """x * relu6(x + 3) / 6, as ``F.hardswish``."""

    function = "hardswish"


class Hardsigmoid(_InplaceActivation):
    """relu6(x + 3) / 6, as ``F.hardsigmoid``."""

    function = "hardsigmoid"


class GELU(Module):
    """x * Phi(x), Phi the standard normal CDF, or its tanh approximation (``approximate='tanh'``), as ``F.gelu``."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softplus(Module):
    """log(1 + exp(beta * x)) / beta, x itself where beta * x > threshold, as ``F.softplus``."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        for name, value in (("beta", beta), ("threshold", threshold)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"Softplus: {name} must be a real number, got {value!r}")
        if beta == 0:
            raise ValueError("Softplus: beta must not be 0 (the result is divided by it)")
        self.beta, self.threshold = beta, threshold

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class PReLU(Module):
    """x where x > 0, else weight * x, with a learned weight: one shared value (``num_parameters=1``) or one per
    channel (dim 1 of the input), each ``init`` at first, as torch.nn.PReLU."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25):
        super().__init__()
        self.num_parameters = _positive_int(num_parameters, "num_parameters", "PReLU")
        if isinstance(init, bool) or not isinstance(init, numbers.Real):
            raise TypeError(f"PReLU: init must be a real number, got {init!r}")
        self.init = float(init)
        self.weight = Parameter(numpy.full(self.num_parameters, self.init, dtype=numpy.float32))

    def reset_parameters(self) -> None:
        init.constant_(self.weight, self.init)

    def forward(self, input):
        return F.prelu(input, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class LogSigmoid(Module):
    def forward(self, input):
        return F.logsigmoid(input)


class Softsign(Module):
    def forward(self, input):
        return F.softsign(input)


class Tanhshrink(Module):
    def forward(self, input):
        return F.tanhshrink(input)


class Softmax(Module):
    """softmax along ``dim``, which must be given (PyTorch's implicit choice of dim is deprecated)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log_softmax along ``dim``, which must be given."""

    def forward(self, input):
        return F.log_softmax(input, self.dim)


class Identity(Module):
    """Its input, unchanged (a placeholder where a model has no layer, as torch's); takes and ignores any
    arguments."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Flatten(Module):
    """Flattens dims start_dim..end_dim: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        return tensor_math.flatten(as_tensor(input, "input"), self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Splits dim ``dim`` into ``unflattened_size`` (whose product must be that dim's size; one -1 takes what
    is left): (N, 12) -> (N, 3, 2, 2) with Unflatten(1, (3, 2, 2)), as torch.nn.Unflatten."""

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
            raise TypeError(f"Unflatten: dim must be an int, got {dim!r}")
        try:
            sizes = tuple(unflattened_size)
        except TypeError:
            raise TypeError(f"Unflatten: unflattened_size must be a tuple of ints, got {unflattened_size!r}") from None
        if not sizes or any(isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < -1 for n in sizes) \
                or sizes.count(-1) > 1:
            raise ValueError(f"Unflatten: unflattened_size must be non-empty sizes (at most one -1), got "
                             f"{unflattened_size!r}")
        self.dim, self.unflattened_size = int(dim), tuple(int(n) for n in sizes)

    def forward(self, input):
        x = as_tensor(input, "input")
        if not -x.ndim <= self.dim < max(x.ndim, 1):
            raise ValueError(f"Unflatten: dim {self.dim} is out of range for input shape {x.shape}")
        axis = self.dim % x.ndim
        size, known = x.shape[axis], math.prod(n for n in self.unflattened_size if n != -1)
        sizes = self.unflattened_size
        if -1 in sizes and known and size % known == 0:
            sizes = tuple(size // known if n == -1 else n for n in sizes)
        if math.prod(sizes) != size or -1 in sizes:
            raise ValueError(f"Unflatten: unflattened_size {self.unflattened_size} does not multiply to {size}, the "
                             f"size of dim {self.dim} of input shape {x.shape}")
        return tensor_math.reshape(x, x.shape[:axis] + sizes + x.shape[axis + 1:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


def _four_pads(padding, layer: str) -> tuple:
    """``padding`` (an int for every side, or (left, right, top, bottom)) as a 4-tuple of ints."""
    items = (padding,) * 4 if isinstance(padding, numbers.Integral) and not isinstance(padding, bool) else padding
    try:
        items = tuple(items)
    except TypeError:
        items = ()
    if len(items) != 4 or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in items):
        raise TypeError(f"{layer}: padding must be an int or 4 ints (left, right, top, bottom), got {padding!r}")
    return tuple(int(v) for v in items)


class _Pad2d(Module):
    """Pads the last two dims of (N, C, H, W) or (C, H, W) input in ``mode`` (see ``F.pad``): ``padding`` an int
    for every side or (left, right, top, bottom)."""

    mode, value = "", None

    def __init__(self, padding):
        super().__init__()
        self.padding = _four_pads(padding, type(self).__name__)

    def forward(self, input):
        x = as_tensor(input, "input")
        if x.ndim not in (3, 4):
            raise ValueError(f"{type(self).__name__}: expected (N, C, H, W) or unbatched (C, H, W) input, got shape "
                             f"{x.shape}")
        return F.pad(x, self.padding, self.mode, self.value)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ConstantPad2d(_Pad2d):
    """Pads the last two dims with ``value`` (a negative pad crops), as ``F.pad(input, padding, 'constant',
    value)``."""

    mode = "constant"

    def __init__(self, padding, value: float):
        super().__init__(padding)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{type(self).__name__}: value must be a real number, got {value!r}")
        self.value = value

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ZeroPad2d(ConstantPad2d):
    """Pads the last two dims with zeros (a negative pad crops), as :class:`ConstantPad2d` with value 0."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ReflectionPad2d(_Pad2d):
    """Pads the last two dims with their reflection about the edge (each pad less than that dim's size), as
    ``F.pad(input, padding, 'reflect')``."""

    mode = "reflect"


class ReplicationPad2d(_Pad2d):
    """Pads the last two dims with copies of the edge, as ``F.pad(input, padding, 'replicate')``."""

    mode = "replicate"


class Dropout(Module):
    """Zeroes each element with probability p while training (scaling the rest by 1/(1-p))."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
            raise ValueError(f"{type(self).__name__}: p must be a probability in [0, 1], got {p!r}")
        self.p, self.inplace = float(p), bool(inplace)

    def forward(self, input):
        return F.dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout2d(Dropout):
    """Zeroes each channel of (N, C, H, W) or (C, H, W) whole with probability p while training (scaling the
    rest by 1/(1-p)): neighbouring pixels are correlated, so dropping single ones regularises little."""

    def forward(self, input):
        return F.dropout2d(input, self.p, self.training, self.inplace)


class _BatchNorm(Module):
    """Batch normalisation per channel (axis 1) of input of ``RANKS`` dims, with running statistics."""

    RANKS: tuple = ()
    LAYOUT = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True):
        super().__init__()
        name = type(self).__name__
        self.num_features = _positive_int(num_features, "num_features", name)
        if not eps > 0:
            raise ValueError(f"{name}: eps must be positive, got {eps!r}")
        self.eps, self.momentum = float(eps), momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(numpy.ones(num_features, dtype=numpy.float32)) if affine else None
        self.bias = Parameter(numpy.zeros(num_features, dtype=numpy.float32)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(numpy.zeros(num_features, dtype=numpy.float32)))
            self.register_buffer("running_var", Tensor(numpy.ones(num_features, dtype=numpy.float32)))
            self.register_buffer("num_batches_tracked", Tensor(numpy.zeros((), dtype=numpy.int64)))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def forward(self, input):
        input = as_tensor(input, "input")
        if input.ndim not in self.RANKS:
            raise ValueError(f"{type(self).__name__}: expected {self.LAYOUT} input, got shape {input.shape}")
        use_batch_stats = self.training or self.running_mean is None
        momentum, batches = self.momentum, None
        if self.training and self.track_running_stats:
            batches = self.num_batches_tracked.data  # counted by the forward, this batch included
            if momentum is None:  # cumulative moving average
                momentum = 1.0 / (float(self.num_batches_tracked.item()) + 1)
        return counted_batch_norm(input, self.running_mean, self.running_var, self.weight, self.bias,
                                  use_batch_stats, 0.0 if momentum is None else momentum, self.eps, batches)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over (N, H, W) per channel of (N, C, H, W) input, with running statistics."""

    RANKS, LAYOUT = (4,), "4-D (N, C, H, W)"


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over N (and L) per feature of (N, C) or (N, C, L) input, with running statistics:
    the normalisation of a network's fully connected part."""

    RANKS, LAYOUT = (2, 3), "2-D (N, C) or 3-D (N, C, L)"


class LayerNorm(Module):
    """Normalises over the last dimensions, ``normalized_shape``, of each sample, with a learned scale and shift
    of that shape (``elementwise_affine``; the shift unless ``bias=False``), as torch.nn.LayerNorm."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, numbers.Integral) else tuple(normalized_shape)
        for size in shape:
            _positive_int(size, "normalized_shape", "LayerNorm")
        self.normalized_shape = tuple(int(n) for n in shape)
        self.eps, self.elementwise_affine = float(eps), bool(elementwise_affine)
        affine, with_bias = self.elementwise_affine, self.elementwise_affine and bias
        self.weight = Parameter(numpy.ones(self.normalized_shape, numpy.float32)) if affine else None
        self.bias = Parameter(numpy.zeros(self.normalized_shape, numpy.float32)) if with_bias else None

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class GroupNorm(Module):
    """Normalises each of ``num_groups`` groups of channels of each sample, with a learned scale and shift a
    channel (``affine``; the shift unless ``bias=False``), as torch.nn.GroupNorm."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, *,
                 bias: bool = True):
        super().__init__()
        self.num_groups = _positive_int(num_groups, "num_groups", "GroupNorm")
        self.num_channels = _positive_int(num_channels, "num_channels", "GroupNorm")
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups "
                             f"({num_groups})")
        self.eps, self.affine = float(eps), bool(affine)
        self.weight = Parameter(numpy.ones(num_channels, numpy.float32)) if affine else None
        self.bias = Parameter(numpy.zeros(num_channels, numpy.float32)) if affine and bias else None

    def forward(self, input):
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


def _class_weight_buffer(weight, layer: str):
    """None, or ``weight`` as a 1-D floating-point tensor (one value a class); errors name ``layer``."""
    if weight is None:
        return None
    weight = as_tensor(weight, f"{layer}: weight")
    if weight.ndim != 1 or weight.dtype.kind != "f":
        raise ValueError(f"{layer}: weight must be a 1-D floating-point tensor, one value per class, got shape "
                         f"{weight.shape} and dtype {weight.dtype}")
    return weight


class CrossEntropyLoss(Module):
    """Softmax cross-entropy of logits (N, C, *d) against integer class targets (N, *d), as
    ``F.cross_entropy``; ``weight`` (C,) is a buffer, so it moves with ``to`` and is in the state dict.
    PyTorch's legacy ``size_average`` and ``reduce`` are not taken: the arguments after ``weight`` are
    keyword-only."""

    def __init__(self, weight=None, *, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0):
        super().__init__()
        check_options("CrossEntropyLoss", ignore_index, reduction, label_smoothing)
        self.register_buffer("weight", _class_weight_buffer(weight, "CrossEntropyLoss"))
        self.ignore_index, self.reduction, self.label_smoothing = int(ignore_index), reduction, float(label_smoothing)

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction,
                               label_smoothing=self.label_smoothing)

    def extra_repr(self) -> str:
        return f"ignore_index={self.ignore_index}, reduction={self.reduction!r}, label_smoothing={self.label_smoothing}"


class NLLLoss(Module):
    """Negative log-likelihood of integer class targets (N, *d) under log-probabilities (N, C, *d), as
    ``F.nll_loss``; ``weight`` (C,) is a buffer, as in :class:`CrossEntropyLoss`. The arguments after ``weight``
    are keyword-only."""

    def __init__(self, weight=None, *, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__()
        check_options("NLLLoss", ignore_index, reduction, 0.0)
        self.register_buffer("weight", _class_weight_buffer(weight, "NLLLoss"))
        self.ignore_index, self.reduction = int(ignore_index), reduction

    def forward(self, input, target):
        return F.nll_loss(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"ignore_index={self.ignore_index}, reduction={self.reduction!r}"


class MSELoss(Module):
    """Mean squared error, as ``F.mse_loss``; ``reduction`` is keyword-only."""

    def __init__(self, *, reduction: str = "mean"):
        super().__init__()
        check_options("MSELoss", -100, reduction, 0.0)
        self.reduction = reduction

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class L1Loss(MSELoss):
    """Mean absolute error, as ``F.l1_loss``; ``reduction`` is keyword-only."""

    def forward(self, input, target):
        return F.l1_loss(input, target, reduction=self.reduction)


def _optional_buffer(value, name: str, layer: str):
    """None, or ``value`` as a floating-point tensor (a loss's weight, kept as a buffer)."""
    if value is None:
        return None
    value = as_tensor(value, f"{layer}: {name}")
    if value.dtype.kind != "f":
        raise TypeError(f"{layer}: {name} must be floating point, got dtype {value.dtype} (shape {value.shape})")
    return value


class BCELoss(Module):
    """Binary cross-entropy of probabilities, as ``F.binary_cross_entropy``; ``weight`` (broadcast to the input's
    shape) is a buffer. The arguments after ``weight`` are keyword-only."""

    def __init__(self, weight=None, *, reduction: str = "mean"):
        super().__init__()
        check_options("BCELoss", -100, reduction, 0.0)
        self.register_buffer("weight", _optional_buffer(weight, "weight", "BCELoss"))
        self.reduction = reduction

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, self.weight, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class BCEWithLogitsLoss(Module):
    """Binary cross-entropy of logits, as ``F.binary_cross_entropy_with_logits``; ``weight`` and ``pos_weight``
    (each broadcast to the input's shape) are buffers. The arguments after ``weight`` are keyword-only."""

    def __init__(self, weight=None, *, reduction: str = "mean", pos_weight=None):
        super().__init__()
        check_options("BCEWithLogitsLoss", -100, reduction, 0.0)
        self.register_buffer("weight", _optional_buffer(weight, "weight", "BCEWithLogitsLoss"))
        self.register_buffer("pos_weight", _optional_buffer(pos_weight, "pos_weight", "BCEWithLogitsLoss"))
        self.reduction = reduction

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, self.weight, reduction=self.reduction,
                                                  pos_weight=self.pos_weight)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class SmoothL1Loss(Module):
    """Smooth L1 loss, as ``F.smooth_l1_loss``; the options are keyword-only."""

    def __init__(self, *, reduction: str = "mean", beta: float = 1.0):
        super().__init__()
        check_options("SmoothL1Loss", -100, reduction, 0.0)
        self.reduction = reduction
        if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or beta < 0:
            raise ValueError(f"SmoothL1Loss: beta must be a non-negative number, got {beta!r}")
        self.beta = float(beta)

    def forward(self, input, target):
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, beta={self.beta}"


class HuberLoss(Module):
    """Huber loss, as ``F.huber_loss``; the options are keyword-only."""

    def __init__(self, *, reduction: str = "mean", delta: float = 1.0):
        super().__init__()
        check_options("HuberLoss", -100, reduction, 0.0)
        self.reduction = reduction
        if isinstance(delta, bool) or not isinstance(delta, numbers.Real) or not delta > 0:
            raise ValueError(f"HuberLoss: delta must be a positive number, got {delta!r}")
        self.delta = float(delta)

    def forward(self, input, target):
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, delta={self.delta}"


class KLDivLoss(Module):
    """Kullback-Leibler divergence, as ``F.kl_div`` (input log-probabilities); ``reduction`` 'batchmean' gives
    the mathematical KL divergence averaged over the batch. The options are keyword-only."""

    def __init__(self, *, reduction: str = "mean", log_target: bool = False):
        super().__init__()
        if reduction not in ("none", "batchmean", "sum", "mean"):
            raise ValueError(f"KLDivLoss: reduction must be one of ('none', 'batchmean', 'sum', 'mean'), got "
                             f"{reduction!r}")
        self.reduction, self.log_target = reduction, bool(log_target)

    def forward(self, input, target):
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, log_target={self.log_target}"
