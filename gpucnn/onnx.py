"""ONNX export: a gpucnn model as an ONNX graph, checked by ``onnx.checker`` and runnable in ONNX
Runtime and TensorRT.

    >>> gpucnn.export_onnx(model, "model.onnx", input_shape=(3, 32, 32))
    >>> export_run("runs/cifar10", "cifar10.onnx")     # what ``gpucnn export DIR --onnx FILE`` does

The graph has one input ``input`` (N, C, H, W) float32 and one output ``output``, N dynamic, so one
file serves every batch size. It is built with ``onnx.helper`` from the layers (no tracing through
another framework) with eval-mode semantics: Dropout is left out, BatchNorm2d uses its running
statistics. Weights are initializers under their ``state_dict`` names.

The model is an ``nn.Sequential`` (nested ones too) of the layers in :data:`EXPORTERS`: Conv2d, ConvTranspose2d,
Linear, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d and AdaptiveMaxPool2d (to output sizes that divide the input),
BatchNorm2d, BatchNorm1d, Flatten, Unflatten, Dropout, Dropout2d, Identity, ZeroPad2d, ConstantPad2d, ReflectionPad2d,
ReplicationPad2d and the activations ReLU, LeakyReLU, ReLU6, Hardtanh, ELU, SELU, CELU, GELU, SiLU, Mish, Hardswish,
Hardsigmoid, Softplus, PReLU, Sigmoid, LogSigmoid, Tanh, Softsign, Tanhshrink, Softmax and LogSoftmax; or a model
built of known blocks, :data:`COMPOSITES`: torchvision's ResNets (``models.ResNet`` of ``BasicBlock`` or
``Bottleneck``) and MobileNetV2 (``models.MobileNetV2`` of ``InvertedResidual``). Anything else, and a custom Module whose ``forward`` the exporter cannot follow, raises
:class:`ExportError` naming the layer.

A composite module writes its own subgraph: its ``COMPOSITES`` entry, ``(graph, layer, module, x) -> x``, calls
``graph.module(path, child, x)`` for each child in the order its forward runs them (a child may be a composite in
turn) and writes what the forward does between them itself: a block's residual ``Add``, the ``Flatten`` before
ResNet's ``fc``. ``x`` is a :class:`Traced`, the value's name in the graph and gpucnn's value there for a zero
batch of one, whose shape the layers' exporters read.

Ops newer than the opset are written as their formulas: GELU (``Gelu`` from opset 20) as
0.5 x (1 + Erf(x / sqrt 2)) or its tanh approximation's formula, Mish (from 18) as x Tanh(Softplus(x)), Hardswish
(from 14) as x HardSigmoid(x). ONNX has no SiLU, LogSigmoid or Tanhshrink: x Sigmoid(x), -Softplus(-x),
x - Tanh(x). Softplus is ONNX's with beta 1 and a threshold of 15 or more (from 15 on, x and softplus(x) are the
same float32); otherwise Where(beta x > threshold, x, Softplus(beta x) / beta).

Pooling with ``ceil_mode`` is written as ``ceil_mode=0`` with the extra trailing padding it implies.
gpucnn (like PyTorch) drops a last window that would start in the trailing padding; ONNX Runtime
does too, but ONNX's own shape inference uses the bare ceil formula, so with ``ceil_mode=1`` the
declared and the computed output sizes of one file could differ. Explicit pads leave nothing to
interpret. MaxPool ignores padding (it never wins); AveragePool leaves the extra padding out of its
divisor, which takes an explicit zero ``Pad`` in front when ``count_include_pad`` must still count
the real padding. A ``divisor_override`` becomes a zero ``Pad`` to every window's full size, the
AveragePool and a ``Mul`` by kh * kw / divisor.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy

from .autograd import no_grad
from .models import BasicBlock, Bottleneck, InvertedResidual, MobileNetV2, ResNet
from .nn import functional as nn_functional
from .nn import layers
from .nn.module import Module, Sequential
from .ops._shapes import conv_padding
from .ops.activations import SELU_ALPHA, SELU_SCALE
from .ops.maxpool2d import pool_geometry
from .tensor import Tensor, tensor

# 17: the newest opset TensorRT 8.5 (JetPack 5) reads. 13: the oldest one the tests run.
DEFAULT_OPSET = 17
MIN_OPSET = 13
INSTALL_HINT = "pip install 'gpucnn[onnx]'"
# From here on, x and softplus(x) = x + log1p(exp(-x)) are the same float32: Softplus's threshold changes nothing.
SOFTPLUS_SAME_FROM = 15.0


class ExportError(ValueError):
    """The model (or one of its layers) cannot be written as ONNX; the message names the layer."""


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ExportError(f"ONNX export needs the onnx package: {INSTALL_HINT}") from None
    return onnx


class Traced(NamedTuple):
    """A value as the graph is written: its name in the graph, and gpucnn's value there for the zero batch of one
    (whose shape the exporters read)."""

    name: str
    value: Tensor


class _Graph:
    """Nodes and initializers as they are added, with unique tensor names, for one opset."""

    def __init__(self, onnx, opset: int):
        self.onnx, self.helper, self.opset = onnx, onnx.helper, opset
        self.nodes, self.initializers, self.used = [], [], set()

    def name(self, wanted: str) -> str:
        name, index = wanted, 1
        while name in self.used:
            index += 1
            name = f"{wanted}_{index}"
        self.used.add(name)
        return name

    def constant(self, name: str, array) -> str:
        array = numpy.ascontiguousarray(array)
        name = self.name(name)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list, layer: str, **attributes) -> str:
        output = self.name(f"{layer}/{op}" if layer else op)
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def module(self, layer: str, module: Module, x: Traced) -> Traced:
        """Writes ``module`` (``layer``: its dotted path in the model) on ``x``; returns its output.

        A composite writes itself through its :data:`COMPOSITES` entry; a layer runs on ``x.value`` (for the
        shape of its output) and is written by its :data:`EXPORTERS` entry.
        """
        composite = _composite(module)
        if composite is not None:
            return composite(self, layer, module, x)
        if type(module) not in EXPORTERS:
            raise _unknown(layer, module)
        if getattr(module, "return_indices", False):
            raise ExportError(f"cannot export {_where(layer)} ({type(module).__name__} with return_indices=True): "
                              "its output is a pair of tensors, not one")
        try:
            output = module(x.value)
        except (ValueError, TypeError) as error:
            raise ExportError(f"{_where(layer)} ({type(module).__name__}) does not take the shape "
                              f"{tuple(x.value.shape)} that reaches it: {error}") from None
        name = EXPORTERS[type(module)](self, layer, module, x.name, tuple(x.value.shape), tuple(output.shape))
        return Traced(name, output)


def _where(layer: str) -> str:
    """How an error names a layer: by its dotted path in the model, or the model itself at the top."""
    return f"layer '{layer}'" if layer else "the model"


def _join(layer: str, part: str) -> str:
    """The dotted path of ``part`` in ``layer`` (``part`` itself in the model at the top)."""
    return f"{layer}.{part}" if layer else part


def _weight(graph: _Graph, layer: str, name: str, value) -> str:
    return graph.constant(_join(layer, name), value.numpy().astype(numpy.float32))


def _scalar(graph: _Graph, layer: str, name: str, value) -> str:
    """A float32 scalar initializer named ``layer.name``."""
    return graph.constant(_join(layer, name), numpy.array(value, numpy.float32))


def _conv(graph, layer, module, x, input_shape, output_shape):
    top, bottom, left, right = conv_padding(module.padding, input_shape[2:], module.kernel_size, module.stride,
                                            module.dilation, f"Conv2d '{layer}'")
    inputs = [x, _weight(graph, layer, "weight", module.weight)]
    if module.bias is not None:
        inputs.append(_weight(graph, layer, "bias", module.bias))
    return graph.node("Conv", inputs, layer, kernel_shape=list(module.kernel_size), strides=list(module.stride),
                      dilations=list(module.dilation), group=module.groups, pads=[top, left, bottom, right])


def _conv_transpose(graph, layer, module, x, input_shape, output_shape):
    # output_padding adds rows and columns at the bottom and right: first by cropping less of the full
    # output there, then past it. ONNX Runtime refuses an output_padding as large as the stride (PyTorch
    # allows one smaller than the dilation): those rows and columns, which no input reaches, are then a
    # zero Pad, and the bias comes after it.
    (pad_h, pad_w), (extra_h, extra_w) = module.padding, module.output_padding
    pads = [pad_h, pad_w, max(0, pad_h - extra_h), max(0, pad_w - extra_w)]
    beyond = [max(0, extra_h - pad_h), max(0, extra_w - pad_w)]
    padded = any(more >= step for more, step in zip(beyond, module.stride))
    inputs = [x, _weight(graph, layer, "weight", module.weight)]  # ONNX's layout too: (C_in, C_out/groups, R, S)
    if module.bias is not None and not padded:
        inputs.append(_weight(graph, layer, "bias", module.bias))
    y = graph.node("ConvTranspose", inputs, layer, kernel_shape=list(module.kernel_size), strides=list(module.stride),
                   dilations=list(module.dilation), group=module.groups, pads=pads,
                   output_padding=[0, 0] if padded else beyond)
    if not padded:
        return y
    widths = graph.constant(f"{layer}.pads", numpy.array([0, 0, 0, 0, 0, 0, *beyond], numpy.int64))
    y = graph.node("Pad", [y, widths], layer, mode="constant")
    if module.bias is None:
        return y
    name = f"{layer}.bias" if layer else "bias"
    return graph.node("Add", [y, graph.constant(name, module.bias.numpy().reshape(-1, 1, 1).astype(numpy.float32))],
                      layer)


def _linear(graph, layer, module, x, input_shape, output_shape):
    bias = [_weight(graph, layer, "bias", module.bias)] if module.bias is not None else []
    if len(input_shape) == 2:
        return graph.node("Gemm", [x, _weight(graph, layer, "weight", module.weight)] + bias, layer, transB=1)
    # Gemm is 2-D only; a Linear over the last axis of a larger tensor is MatMul with W^T, then Add.
    name = f"{layer}.weight_t" if layer else "weight_t"
    y = graph.node("MatMul", [x, graph.constant(name, module.weight.numpy().T.astype(numpy.float32))], layer)
    return graph.node("Add", [y] + bias, layer) if bias else y


def _extra_end_pads(geometry) -> list:
    """Per axis, how far the last window runs past the symmetrically padded input (0 without ceil_mode)."""
    extra = []
    for axis in range(2):
        reach = ((geometry.output_hw[axis] - 1) * geometry.stride[axis]
                 + geometry.dilation[axis] * (geometry.kernel[axis] - 1) + 1)
        extra.append(max(0, reach - (geometry.input_hw[axis] + 2 * geometry.padding[axis])))
    return extra


def _max_pool(graph, layer, module, x, input_shape, output_shape):
    g = pool_geometry(f"MaxPool2d '{layer}'", (1,) + tuple(input_shape[1:]), module.kernel_size, module.stride,
                      module.padding, module.dilation, module.ceil_mode)
    extra = _extra_end_pads(g)
    pads = [g.padding[0], g.padding[1], g.padding[0] + extra[0], g.padding[1] + extra[1]]
    if any(pad >= kernel for pad, kernel in zip(pads, g.kernel * 2)):
        # ONNX Runtime refuses pads as wide as the (undilated) kernel, which a dilated window that overruns
        # the input with ceil_mode can need: pad with -inf beforehand instead (-inf never wins a max).
        widths = graph.constant(f"{layer}.pads", numpy.array([0, 0, *pads[:2], 0, 0, *pads[2:]], numpy.int64))
        fill = graph.constant(f"{layer}.pad_value", numpy.array(-numpy.inf, numpy.float32))
        x, pads = graph.node("Pad", [x, widths, fill], layer, mode="constant"), [0, 0, 0, 0]
    return graph.node("MaxPool", [x], layer, kernel_shape=list(g.kernel), strides=list(g.stride),
                      dilations=list(g.dilation), pads=pads, ceil_mode=0)


def _avg_pool(graph, layer, module, x, input_shape, output_shape):
    g = pool_geometry(f"AvgPool2d '{layer}'", (1,) + tuple(input_shape[1:]), module.kernel_size, module.stride,
                      module.padding, 1, module.ceil_mode)
    extra = _extra_end_pads(g)
    (pad_h, pad_w), attributes = g.padding, dict(kernel_shape=list(g.kernel), strides=list(g.stride), ceil_mode=0)
    if module.divisor_override is not None:
        # ONNX has no divisor of its own choosing: pad with zeros to every window's full reach, so that
        # AveragePool divides each window's sum by kh * kw, and rescale that to the divisor.
        if pad_h or pad_w or any(extra):
            widths = [0, 0, pad_h, pad_w, 0, 0, pad_h + extra[0], pad_w + extra[1]]
            x = graph.node("Pad", [x, graph.constant(f"{layer}.pads", numpy.array(widths, numpy.int64))], layer,
                           mode="constant")
        mean = graph.node("AveragePool", [x], layer, **attributes)
        scale = numpy.array(g.kernel[0] * g.kernel[1] / module.divisor_override, numpy.float32)
        return graph.node("Mul", [mean, graph.constant(f"{layer}.scale", scale)], layer)
    if module.count_include_pad and (pad_h or pad_w) and any(extra):
        # The divisor counts the real padding but not the ceil_mode overrun: pad with zeros first, so the
        # real padding is input, then let AveragePool leave the overrun out of the count.
        pads = graph.constant(f"{layer}.pads", numpy.array([0, 0, pad_h, pad_w, 0, 0, pad_h, pad_w], numpy.int64))
        x = graph.node("Pad", [x, pads], layer, mode="constant")
        return graph.node("AveragePool", [x], layer, pads=[0, 0, extra[0], extra[1]], count_include_pad=0,
                          **attributes)
    # Without the real padding, count_include_pad changes nothing in gpucnn (the window is clipped to the
    # input), but ONNX would count the extra end padding: so it is 0 then.
    include = int(bool(module.count_include_pad) and not any(extra))
    return graph.node("AveragePool", [x], layer, pads=[pad_h, pad_w, pad_h + extra[0], pad_w + extra[1]],
                      count_include_pad=include, **attributes)


def _adaptive_pool(graph, layer, module, x, input_shape, output_shape):
    """AdaptiveAvgPool2d and AdaptiveMaxPool2d, whose windows are a plain pooling's where the output divides the
    input."""
    op = "MaxPool" if isinstance(module, layers.AdaptiveMaxPool2d) else "AveragePool"
    (height, width), (out_h, out_w) = input_shape[2:], output_shape[2:]
    if (out_h, out_w) == (1, 1):
        return graph.node(f"Global{op}", [x], layer)
    if height % out_h == 0 and width % out_w == 0:  # equal windows side by side: a plain pooling
        kernel = [height // out_h, width // out_w]
        return graph.node(op, [x], layer, kernel_shape=kernel, strides=kernel)
    raise ExportError(f"cannot export {_where(layer)} ({type(module).__name__} with output_size="
                      f"{module.output_size!r}): its windows over a {height}x{width} input to {out_h}x{out_w} are not "
                      f"all the same size; only output_size 1 (Global{op}) or one that divides the input can be "
                      "exported")


def _relu(graph, layer, module, x, input_shape, output_shape):
    return graph.node("Relu", [x], layer)


def _leaky_relu(graph, layer, module, x, input_shape, output_shape):
    return graph.node("LeakyRelu", [x], layer, alpha=module.negative_slope)


def _sigmoid(graph, layer, module, x, input_shape, output_shape):
    return graph.node("Sigmoid", [x], layer)


def _tanh(graph, layer, module, x, input_shape, output_shape):
    return graph.node("Tanh", [x], layer)


def _hardtanh(graph, layer, module, x, input_shape, output_shape):
    """Hardtanh and ReLU6 (Hardtanh(0, 6)): Clip, its bounds as inputs."""
    bounds = [_scalar(graph, layer, "min_val", module.min_val), _scalar(graph, layer, "max_val", module.max_val)]
    return graph.node("Clip", [x, *bounds], layer)


def _elu(graph, layer, module, x, input_shape, output_shape):
    return graph.node("Elu", [x], layer, alpha=module.alpha)


def _selu(graph, layer, module, x, input_shape, output_shape):
    return graph.node("Selu", [x], layer, alpha=SELU_ALPHA, gamma=SELU_SCALE)


def _celu(graph, layer, module, x, input_shape, output_shape):
    return graph.node("Celu", [x], layer, alpha=module.alpha)


def _gelu(graph, layer, module, x, input_shape, output_shape):
    if graph.opset >= 20:
        return graph.node("Gelu", [x], layer, approximate=module.approximate)
    if module.approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
        cube = graph.node("Mul", [graph.node("Mul", [x, x], layer), x], layer)
        inner = graph.node("Add", [x, graph.node("Mul", [cube, _scalar(graph, layer, "kappa", 0.044715)], layer)],
                           layer)
        inner = graph.node("Mul", [inner, _scalar(graph, layer, "beta", (2 / numpy.pi) ** 0.5)], layer)
        cdf = graph.node("Tanh", [inner], layer)
    else:  # 0.5 x (1 + erf(x / sqrt 2))
        cdf = graph.node("Erf", [graph.node("Mul", [x, _scalar(graph, layer, "sqrt_half", 0.5 ** 0.5)], layer)],
                         layer)
    cdf = graph.node("Add", [cdf, _scalar(graph, layer, "one", 1.0)], layer)
    return graph.node("Mul", [graph.node("Mul", [x, cdf], layer), _scalar(graph, layer, "half", 0.5)], layer)


def _silu(graph, layer, module, x, input_shape, output_shape):
    return graph.node("Mul", [x, graph.node("Sigmoid", [x], layer)], layer)


def _mish(graph, layer, module, x, input_shape, output_shape):
    if graph.opset >= 18:
        return graph.node("Mish", [x], layer)
    return graph.node("Mul", [x, graph.node("Tanh", [graph.node("Softplus", [x], layer)], layer)], layer)


def _hardsigmoid(graph, layer, module, x, input_shape, output_shape):
    return graph.node("HardSigmoid", [x], layer, alpha=1 / 6, beta=0.5)


def _hardswish(graph, layer, module, x, input_shape, output_shape):
    if graph.opset >= 14:
        return graph.node("HardSwish", [x], layer)
    return graph.node("Mul", [x, _hardsigmoid(graph, layer, module, x, input_shape, output_shape)], layer)


def _softplus(graph, layer, module, x, input_shape, output_shape):
    if module.beta == 1 and module.threshold >= SOFTPLUS_SAME_FROM:
        return graph.node("Softplus", [x], layer)
    beta = _scalar(graph, layer, "beta", module.beta)
    scaled = graph.node("Mul", [x, beta], layer)
    smooth = graph.node("Div", [graph.node("Softplus", [scaled], layer), beta], layer)
    linear = graph.node("Greater", [scaled, _scalar(graph, layer, "threshold", module.threshold)], layer)
    return graph.node("Where", [linear, x, smooth], layer)


def _prelu(graph, layer, module, x, input_shape, output_shape):
    slope = module.weight.numpy().astype(numpy.float32)
    if slope.size > 1:  # one per channel (axis 1): shaped to broadcast over the axes after it
        slope = slope.reshape((-1,) + (1,) * (len(input_shape) - 2))
    return graph.node("PRelu", [x, graph.constant(_join(layer, "weight"), slope)], layer)


def _logsigmoid(graph, layer, module, x, input_shape, output_shape):
    return graph.node("Neg", [graph.node("Softplus", [graph.node("Neg", [x], layer)], layer)], layer)


def _softsign(graph, layer, module, x, input_shape, output_shape):
    return graph.node("Softsign", [x], layer)


def _tanhshrink(graph, layer, module, x, input_shape, output_shape):
    return graph.node("Sub", [x, graph.node("Tanh", [x], layer)], layer)


def _softmax(graph, layer, module, x, input_shape, output_shape):
    op = "LogSoftmax" if isinstance(module, layers.LogSoftmax) else "Softmax"
    return graph.node(op, [x], layer, axis=module.dim % len(input_shape))


def _pad(graph, layer, module, x, input_shape, output_shape):
    """The 2-d padding layers: Pad of the last two axes, ONNX's pads being every axis' start, then every end."""
    (left, right, top, bottom), before = module.padding, [0] * (len(input_shape) - 2)
    widths = graph.constant(_join(layer, "pads"), numpy.array([*before, top, left, *before, bottom, right],
                                                               numpy.int64))
    if module.mode == "constant":
        return graph.node("Pad", [x, widths, _scalar(graph, layer, "value", module.value)], layer, mode="constant")
    return graph.node("Pad", [x, widths], layer, mode={"reflect": "reflect", "replicate": "edge"}[module.mode])


def _dropout(graph, layer, module, x, input_shape, output_shape):
    return x  # identity in eval mode (and Identity's own)


def _reshape(graph, layer, x, output_shape):
    """A Reshape to the traced shape, with 0 to copy the (dynamic) batch size."""
    target = graph.constant(_join(layer, "shape"), numpy.array((0,) + tuple(output_shape[1:]), dtype=numpy.int64))
    return graph.node("Reshape", [x, target], layer)


def _flatten(graph, layer, module, x, input_shape, output_shape):
    rank = len(input_shape)
    start, end = module.start_dim % rank, module.end_dim % rank
    if start == 0:
        raise ExportError(f"cannot export {_where(layer)} (Flatten with start_dim={module.start_dim}): it merges the "
                          "batch axis into the others, so the output would have no batch dimension")
    if start == 1 and end == rank - 1:
        return graph.node("Flatten", [x], layer, axis=1)  # (N, rest): ONNX Flatten's own 2-D result
    return _reshape(graph, layer, x, output_shape)


def _unflatten(graph, layer, module, x, input_shape, output_shape):
    if module.dim % len(input_shape) == 0:
        raise ExportError(f"cannot export {_where(layer)} (Unflatten with dim={module.dim}): it splits the batch "
                          "axis, whose size the file leaves open")
    return _reshape(graph, layer, x, output_shape)


def _batch_norm(graph, layer, module, x, input_shape, output_shape):
    if module.running_mean is None:
        raise ExportError(f"cannot export {_where(layer)} ({type(module).__name__} with track_running_stats=False): "
                          "in eval mode it normalises with each batch's own statistics, which ONNX "
                          "BatchNormalization does not do")
    channels = module.num_features
    scale = module.weight.numpy() if module.weight is not None else numpy.ones(channels, numpy.float32)
    shift = module.bias.numpy() if module.bias is not None else numpy.zeros(channels, numpy.float32)
    name = (lambda part: f"{layer}.{part}") if layer else (lambda part: part)
    inputs = [x, graph.constant(name("weight"), scale.astype(numpy.float32)),
              graph.constant(name("bias"), shift.astype(numpy.float32)),
              graph.constant(name("running_mean"), module.running_mean.numpy().astype(numpy.float32)),
              graph.constant(name("running_var"), module.running_var.numpy().astype(numpy.float32))]
    return graph.node("BatchNormalization", inputs, layer, epsilon=module.eps)


# The layers, each by its exact type, and the function (graph, layer, module, x, input_shape, output_shape) -> name
# that writes it: ``x`` the name of its input in the graph, the shapes those traced for a batch of one.
EXPORTERS = {
    layers.Conv2d: _conv, layers.ConvTranspose2d: _conv_transpose, layers.Linear: _linear,
    layers.MaxPool2d: _max_pool, layers.AvgPool2d: _avg_pool, layers.AdaptiveAvgPool2d: _adaptive_pool,
    layers.AdaptiveMaxPool2d: _adaptive_pool, layers.BatchNorm2d: _batch_norm, layers.BatchNorm1d: _batch_norm,
    layers.Flatten: _flatten, layers.Unflatten: _unflatten, layers.Dropout: _dropout, layers.Dropout2d: _dropout,
    layers.Identity: _dropout, layers.ZeroPad2d: _pad, layers.ConstantPad2d: _pad, layers.ReflectionPad2d: _pad,
    layers.ReplicationPad2d: _pad, layers.ReLU: _relu, layers.LeakyReLU: _leaky_relu, layers.ReLU6: _hardtanh,
    layers.Hardtanh: _hardtanh, layers.ELU: _elu, layers.SELU: _selu, layers.CELU: _celu, layers.GELU: _gelu,
    layers.SiLU: _silu, layers.Mish: _mish, layers.Hardswish: _hardswish, layers.Hardsigmoid: _hardsigmoid,
    layers.Softplus: _softplus, layers.PReLU: _prelu, layers.Sigmoid: _sigmoid, layers.LogSigmoid: _logsigmoid,
    layers.Tanh: _tanh, layers.Softsign: _softsign, layers.Tanhshrink: _tanhshrink, layers.Softmax: _softmax,
    layers.LogSoftmax: _softmax,
}


def _sequential(graph, layer, module, x):
    """Sequential: its children in order."""
    for child, sub in module.named_children():
        x = graph.module(_join(layer, child), sub, x)
    return x


# What each residual block runs on its input before the residual Add, in its forward's order.
_BLOCK_PATHS = {BasicBlock: ("conv1", "bn1", "relu", "conv2", "bn2"),
                Bottleneck: ("conv1", "bn1", "relu", "conv2", "bn2", "relu", "conv3", "bn3")}


def _residual_block(graph, layer, module, x):
    """BasicBlock and Bottleneck: their path of convolutions plus the input (through ``downsample`` where it is
    set), then ReLU."""
    identity = x if module.downsample is None else graph.module(_join(layer, "downsample"), module.downsample, x)
    out = x
    for child in _BLOCK_PATHS[type(module)]:
        out = graph.module(_join(layer, child), getattr(module, child), out)
    if tuple(out.value.shape) != tuple(identity.value.shape):
        raise ExportError(f"cannot export {_where(layer)} ({type(module).__name__}): its residual path gives the "
                          f"shape {tuple(out.value.shape)} but its input (through downsample) "
                          f"{tuple(identity.value.shape)}")
    total = Traced(graph.node("Add", [out.name, identity.name], layer), out.value + identity.value)
    return graph.module(_join(layer, "relu"), module.relu, total)


def _inverted_residual(graph, layer, module, x):
    """MobileNetV2's InvertedResidual: its ``conv`` Sequential, plus the input where the block keeps the shape."""
    out = graph.module(_join(layer, "conv"), module.conv, x)
    if not module.use_res_connect:
        return out
    return Traced(graph.node("Add", [x.name, out.name], layer), x.value + out.value)


def _global_pool_head(graph, layer, x, head: str, module) -> Traced:
    """Flatten of x, then the module's ``head`` child: the classifier after a global pooling."""
    x = Traced(graph.node("Flatten", [x.name], layer, axis=1), x.value.flatten(1))
    return graph.module(_join(layer, head), getattr(module, head), x)


def _mobilenet_v2(graph, layer, module, x):
    """MobileNetV2: its features, global average pooling, then Flatten and the classifier."""
    x = graph.module(_join(layer, "features"), module.features, x)
    pooled = nn_functional.adaptive_avg_pool2d(x.value, (1, 1))
    return _global_pool_head(graph, layer, Traced(graph.node("GlobalAveragePool", [x.name], layer), pooled),
                             "classifier", module)


def _resnet(graph, layer, module, x):
    """ResNet: the stem, the four stages and the average pooling, then Flatten and fc."""
    for child in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool"):
        x = graph.module(_join(layer, child), getattr(module, child), x)
    return _global_pool_head(graph, layer, x, "fc", module)


# The modules built of others, each by its exact type (a Sequential also by a subclass that keeps its forward),
# and the function (graph, layer, module, x: Traced) -> Traced that writes it, through graph.module for each child.
COMPOSITES = {Sequential: _sequential, BasicBlock: _residual_block, Bottleneck: _residual_block, ResNet: _resnet,
              InvertedResidual: _inverted_residual, MobileNetV2: _mobilenet_v2}


def _composite(module: Module):
    """The COMPOSITES entry that writes ``module``; None for anything else."""
    if isinstance(module, Sequential) and type(module).forward is Sequential.forward:
        return COMPOSITES[Sequential]
    return COMPOSITES.get(type(module))


def _unknown(layer: str, module: Module) -> ExportError:
    """The error for a module neither in EXPORTERS nor in COMPOSITES: why the exporter cannot follow it."""
    kind = type(module)
    known = [base for base in kind.__mro__ if base in EXPORTERS or base in COMPOSITES]
    if isinstance(module, Sequential):
        reason = "it is a Sequential with its own forward, which may do more than run its layers in order"
    elif known:
        reason = (f"it subclasses {known[0].__name__}, which the exporter knows, and its forward may differ from "
                  "that one's")
    else:
        reason = (f"{kind.__name__} is not a layer the exporter knows, and its forward may do anything; build the "
                  "model as an nn.Sequential of " + ", ".join(sorted(layer.__name__ for layer in EXPORTERS))
                  + ", or of the blocks " + ", ".join(sorted(block.__name__ for block in COMPOSITES
                                                             if block is not Sequential)))
    return ExportError(f"cannot export {_where(layer)} ({kind.__name__}): {reason}")


def _check_input_shape(input_shape) -> tuple:
    try:
        shape = tuple(int(size) for size in input_shape)
    except (TypeError, ValueError):
        shape = ()
    if not shape or any(size < 1 for size in shape) or any(isinstance(s, bool) for s in input_shape):
        raise ExportError(f"input_shape must be the shape of one example, e.g. (C, H, W), got {input_shape!r}")
    return shape


def to_onnx(model: Module, input_shape, opset: int = DEFAULT_OPSET, metadata: dict | None = None):
    """The checked ``onnx.ModelProto`` of ``model`` for inputs (N, *input_shape), N dynamic.

    ``metadata`` (str -> str) goes into the file's ``metadata_props``. The model is run once on a
    zero batch of one, in eval mode (its training flags are restored), to learn each layer's input
    shape: 'same' padding and pooling windows depend on it.
    """
    onnx = _onnx()
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise ExportError(f"opset must be an int from {MIN_OPSET} to {newest} (what the installed onnx knows), "
                          f"got {opset!r}")
    if not isinstance(model, Module):
        raise ExportError(f"model must be a gpucnn.nn.Module, got {type(model).__name__}")
    input_shape = _check_input_shape(input_shape)
    graph = _Graph(onnx, opset)
    graph.used.update(("input", "output"))
    device = next((parameter.device for parameter in model.parameters()), "cpu")
    modes = {id(module): module.training for module in model.modules()}
    model.eval()
    x = Traced("input", tensor(numpy.zeros((1,) + input_shape, numpy.float32), device=device))
    try:
        with no_grad():
            name, value = graph.module("", model, x)
    finally:
        for module in model.modules():
            object.__setattr__(module, "training", modes.get(id(module), module.training))
    if name == "input":  # nothing but identities: ONNX needs a node to give the output its own name
        name = graph.node("Identity", [name], "")
    for node in graph.nodes:  # the node that writes the last value writes the graph output directly
        node.output[:] = ["output" if out == name else out for out in node.output]
    helper = onnx.helper
    inputs = [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["N", *input_shape])]
    outputs = [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, ["N", *value.shape[1:]])]
    body = helper.make_graph(graph.nodes, type(model).__name__, inputs, outputs, graph.initializers)
    opset_id = helper.make_opsetid("", opset)
    proto = helper.make_model(body, opset_imports=[opset_id], producer_name="gpucnn", producer_version=_version())
    # The lowest IR version that carries this opset, so older runtimes (TensorRT on Jetson) load it.
    proto.ir_version = helper.find_min_ir_version_for([opset_id], ignore_unknown=True)
    for key, text in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = str(key), str(text)
    try:  # full_check also runs strict shape inference against the declared output shape
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise ExportError(f"the exported graph fails onnx.checker: {error}") from None
    return proto


def export_onnx(model: Module, path, input_shape, opset: int = DEFAULT_OPSET, metadata: dict | None = None):
    """Writes ``model`` as ONNX to ``path`` (see :func:`to_onnx`); returns the ``onnx.ModelProto``.

    Args:
        model: an nn.Sequential (nested ones too) of exportable layers, or a model of COMPOSITES, on any device.
        path: the .onnx file to write; replaced atomically.
        input_shape: one example's shape, e.g. (C, H, W); the file takes (N, C, H, W) for any N.
        opset: the ONNX opset (default 17: TensorRT 8.5 on JetPack 5 reads it).
        metadata: str -> str pairs stored in the file's metadata_props.
    """
    from .io import atomic_write

    proto = to_onnx(model, input_shape, opset, metadata)
    atomic_write(Path(path), proto.SerializeToString())
    return proto


def export_run(run_dir, path, opset: int = DEFAULT_OPSET):
    """Exports the model a ``gpucnn train`` run saved in ``run_dir`` to ``path``; returns the ModelProto.

    The file's metadata carries the dataset, the class names (JSON list, in output order) and the
    input preprocessing (JSON: ``input = (pixels * scale - mean[c]) / std[c]``), so whoever deploys the
    file can feed it the inputs it was trained on.
    """
    from . import io

    folder = Path(run_dir)
    model_file = folder / io.MODEL_FILE
    if not model_file.is_file():
        raise ExportError(f"{folder}: no {io.MODEL_FILE} there (it is written by gpucnn train)")
    model, config = io.load_model(model_file, "cpu")
    model_config = config.get("model", {})
    input_shape = config.get("input_shape") or [model_config.get("in_channels"), *model_config.get("image_size", [])]
    metadata = {"gpucnn.model": json.dumps(model_config)}
    for key in ("dataset", "classes", "preprocess"):
        if key in config:
            metadata[f"gpucnn.{key}"] = config[key] if isinstance(config[key], str) else json.dumps(config[key])
    return export_onnx(model, path, input_shape, opset, metadata)


def _version() -> str:
    from . import __version__

    return __version__


__all__ = ["COMPOSITES", "DEFAULT_OPSET", "EXPORTERS", "ExportError", "Traced", "export_onnx", "export_run",
           "to_onnx"]
