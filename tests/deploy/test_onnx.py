"""ONNX export: ONNX Runtime runs the exported file and agrees with gpucnn on random inputs.

Agreement: every output element within 1e-4 of gpucnn's output times the largest |gpucnn output|
(relative error in the max norm, so sums that cancel to ~0 do not need an exact match). Pooling gets
an exhaustive sweep over small geometries besides the named awkward cases, because ONNX's pooling
rules (ceil_mode's last window, pads as wide as the kernel, count_include_pad with the ceil_mode
overrun) differ from gpucnn's at the edges and the exporter must bridge each difference. Activations
run on their kinks (0, +-1, +-3, +-6, the thresholds) and on far tails (+-200), where exp overflows, at the
oldest, the default and a newer opset, since some are written as their formulas before ONNX has their op.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gpucnn
from gpucnn import io, models, nn
from gpucnn.onnx import DEFAULT_OPSET, ExportError, export_onnx, export_run, to_onnx

RELATIVE_ERROR = 1e-4
ROOT = Path(__file__).resolve().parents[2]
# 21, or the newest opset the installed onnx knows where that is older (20 for onnx 1.15, the oldest supported)
NEWEST_OPSET = min(21, onnx.defs.onnx_opset_version())


def session(model_or_path):
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only
    source = model_or_path.SerializeToString() if isinstance(model_or_path, onnx.ModelProto) else str(model_or_path)
    return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def run_onnx(model_or_path, x):
    return session(model_or_path).run(["output"], {"input": x})[0]


def run_gpucnn(model, x):
    model.eval()
    with gpucnn.no_grad():
        return model(gpucnn.tensor(x, device="cpu")).numpy()


def assert_close(actual, expected, what=""):
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, gpucnn gives {expected.shape}"
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    bad = np.abs(actual.astype(np.float64) - expected) > RELATIVE_ERROR * scale
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.size} elements differ; first at {index}: onnxruntime "
                             f"{actual[index]!r}, gpucnn {expected[index]!r} (scale {scale:.3g})")


def check_model(model, input_shape, batches=(1, 3), seed=0, inputs=(), **export):
    """Exports ``model`` once and compares ONNX Runtime with gpucnn on a random batch of each size, and on each
    batch of ``inputs``; returns the proto."""
    proto = to_onnx(model, input_shape, **export)
    runner = session(proto)
    rng = np.random.default_rng(seed)
    batches = [rng.standard_normal((batch, *input_shape), dtype=np.float32) for batch in batches]
    for x in [*batches, *inputs]:
        assert_close(runner.run(["output"], {"input": x})[0], run_gpucnn(model, x), f"input {x.shape}")
    return proto


def op_types(proto):
    return [node.op_type for node in proto.graph.node]


# ------------------------------------------------------------------------------------------ Conv
@pytest.mark.parametrize("arguments, input_shape", [
    (dict(in_channels=3, out_channels=5, kernel_size=3), (3, 7, 9)),
    (dict(in_channels=3, out_channels=4, kernel_size=(2, 3), stride=(2, 1), padding=(1, 0)), (3, 8, 5)),
    (dict(in_channels=2, out_channels=4, kernel_size=3, padding="same"), (2, 6, 5)),
    (dict(in_channels=2, out_channels=4, kernel_size=4, padding="same"), (2, 7, 7)),  # even kernel: odd pad
    (dict(in_channels=2, out_channels=3, kernel_size=3, stride=2, padding="same"), (2, 8, 7)),
    (dict(in_channels=2, out_channels=3, kernel_size=(2, 5), stride=(3, 2), padding="same"), (2, 10, 9)),
    (dict(in_channels=2, out_channels=3, kernel_size=3, dilation=2, padding="same"), (2, 9, 8)),
    (dict(in_channels=2, out_channels=3, kernel_size=3, stride=2, dilation=(2, 3), padding="same"), (2, 11, 12)),
    (dict(in_channels=2, out_channels=2, kernel_size=3, padding="valid"), (2, 5, 5)),
    (dict(in_channels=4, out_channels=6, kernel_size=3, groups=2, padding=1), (4, 6, 6)),
    (dict(in_channels=4, out_channels=8, kernel_size=3, groups=4, stride=2), (4, 9, 9)),  # depthwise x2
    (dict(in_channels=3, out_channels=2, kernel_size=1, bias=False), (3, 1, 1)),
    (dict(in_channels=1, out_channels=2, kernel_size=5, padding=2, dilation=(1, 2), stride=(1, 3)), (1, 9, 13)),
])
def test_conv(arguments, input_shape):
    proto = check_model(nn.Sequential(nn.Conv2d(**arguments)), input_shape)
    (conv,) = [node for node in proto.graph.node if node.op_type == "Conv"]
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in conv.attribute}
    assert attributes["group"] == arguments.get("groups", 1)


def test_same_padding_with_stride_is_asymmetric():
    """'same' with stride 2 over an even size pads one more at the bottom/right (TensorFlow's rule)."""
    proto = check_model(nn.Sequential(nn.Conv2d(1, 1, 3, stride=2, padding="same")), (1, 8, 6))
    (conv,) = proto.graph.node
    pads = [list(a.ints) for a in conv.attribute if a.name == "pads"][0]
    assert pads == [0, 0, 1, 1]  # top, left, bottom, right


@pytest.mark.parametrize("arguments, input_shape, nodes", [
    (dict(in_channels=3, out_channels=4, kernel_size=4, stride=2, padding=1), (3, 5, 6), ["ConvTranspose"]),
    (dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=(3, 2), padding=(2, 0), output_padding=(2, 1),
          groups=2), (4, 5, 6), ["ConvTranspose"]),
    (dict(in_channels=4, out_channels=4, kernel_size=3, stride=2, padding=1, output_padding=1, groups=4), (4, 3, 3),
     ["ConvTranspose"]),
    (dict(in_channels=2, out_channels=3, kernel_size=2, stride=3, output_padding=(2, 1), bias=False), (2, 4, 5),
     ["ConvTranspose"]),
    (dict(in_channels=3, out_channels=2, kernel_size=1, dilation=2), (3, 1, 1), ["ConvTranspose"]),
    # output_padding past the stride (below the dilation), which ONNX Runtime refuses: a zero Pad, then the bias
    (dict(in_channels=2, out_channels=3, kernel_size=3, output_padding=2, dilation=3), (2, 4, 4),
     ["ConvTranspose", "Pad", "Add"]),
    (dict(in_channels=2, out_channels=3, kernel_size=3, stride=2, padding=(0, 1), output_padding=(2, 1), dilation=3,
          bias=False), (2, 4, 5), ["ConvTranspose", "Pad"]),
    (dict(in_channels=2, out_channels=3, kernel_size=3, padding=2, output_padding=2, dilation=3), (2, 4, 4),
     ["ConvTranspose"]),  # the padding takes it all: cropped less at the bottom and right
])
def test_conv_transpose(arguments, input_shape, nodes):
    proto = check_model(nn.Sequential(nn.ConvTranspose2d(**arguments)), input_shape)
    assert op_types(proto) == nodes
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in proto.graph.node[0].attribute}
    assert attributes["group"] == arguments.get("groups", 1)


def test_a_generator_exports():
    """A DCGAN-style generator, noise (100, 1, 1) to a 3x32x32 image, batch norm folded as in eval mode."""
    gpucnn.manual_seed(0)
    model = nn.Sequential(nn.ConvTranspose2d(100, 32, 4, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                          nn.ConvTranspose2d(32, 16, 4, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.ConvTranspose2d(16, 8, 4, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.ConvTranspose2d(8, 3, 4, 2, 1), nn.Tanh())
    check_model(model, (100, 1, 1))


# --------------------------------------------------------------------------------------- pooling
def pooling_layers():
    """Every small MaxPool2d/AvgPool2d geometry, including ceil_mode, padding, dilation and a divisor."""
    for kernel, stride, dilation, ceil_mode in itertools.product(range(1, 5), range(1, 5), range(1, 4), (False, True)):
        for padding in range(kernel // 2 + 1):
            yield nn.MaxPool2d(kernel, stride, padding, dilation, ceil_mode=ceil_mode)
            if dilation == 1:
                for include in (False, True):
                    yield nn.AvgPool2d(kernel, stride, padding, ceil_mode, include)
                yield nn.AvgPool2d(kernel, stride, padding, ceil_mode, divisor_override=-3)


def test_pooling_sweep():
    """All geometries above on inputs of 1 to 9 rows (and one more column): output sizes and values."""
    rng = np.random.default_rng(1)
    failures, count = [], 0
    for layer in pooling_layers():
        for height in range(1, 10):
            x = rng.standard_normal((2, 2, height, height + 1), dtype=np.float32)
            try:
                expected = run_gpucnn(layer, x)
            except ValueError:  # a window larger than the padded input: gpucnn refuses it too
                continue
            count += 1
            try:
                assert_close(run_onnx(to_onnx(layer, x.shape[1:]), x), expected, f"{layer!r} on {x.shape}")
            except (AssertionError, ExportError) as error:
                failures.append(str(error))
    assert count > 2000
    assert not failures, f"{len(failures)} of {count} differ:\n" + "\n".join(failures[:10])


@pytest.mark.parametrize("layer, input_hw, output_hw, uses_pad", [
    # ceil_mode: the last window would start in the trailing padding, so it is dropped (5 -> 3, not 4)
    (nn.MaxPool2d(2, 2, padding=1, ceil_mode=True), (5, 5), (3, 3), False),
    (nn.AvgPool2d(2, 2, padding=1, ceil_mode=True), (5, 5), (3, 3), False),
    # ceil_mode: the last window runs past the padded input and is clipped (7 -> 4)
    (nn.MaxPool2d(3, 2, ceil_mode=True), (8, 8), (4, 4), False),
    (nn.AvgPool2d(3, 2, ceil_mode=True, count_include_pad=True), (8, 8), (4, 4), False),
    # count_include_pad counts the real padding but not the ceil_mode overrun: an explicit Pad first
    (nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=True), (6, 6), (4, 4), True),
    (nn.AvgPool2d((3, 2), (2, 3), padding=(1, 0), ceil_mode=True, count_include_pad=True), (6, 7), (4, 3), True),
    (nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False), (6, 6), (4, 4), False),
    (nn.AvgPool2d(3, 1, padding=1, count_include_pad=False), (4, 5), (4, 5), False),
    # dilated max pooling, with padding and a stride other than the kernel
    (nn.MaxPool2d(3, 2, padding=1, dilation=2), (9, 10), (4, 4), False),
    (nn.MaxPool2d((2, 3), (1, 2), padding=(1, 1), dilation=(3, 2)), (7, 8), (6, 3), False),
    # dilated window that overruns with ceil_mode: pads as wide as the kernel, done with Pad(-inf)
    (nn.MaxPool2d(2, 3, dilation=2, ceil_mode=True), (1, 1), (1, 1), True),
    (nn.MaxPool2d(3, 3, padding=1, dilation=2, ceil_mode=True), (7, 9), (3, 3), True),
    # a window larger than the input still gives one clipped output with ceil_mode
    (nn.MaxPool2d(3, 2, ceil_mode=True), (2, 2), (1, 1), False),
    (nn.AvgPool2d(3, 2, ceil_mode=True), (2, 2), (1, 1), False),
])
def test_pooling_awkward_cases(layer, input_hw, output_hw, uses_pad):
    proto = check_model(nn.Sequential(layer), (3, *input_hw))
    assert [d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim[2:]] == list(output_hw)
    assert ("Pad" in op_types(proto)) == uses_pad
    for node in proto.graph.node:  # ceil_mode always becomes explicit end padding
        assert all(a.i == 0 for a in node.attribute if a.name == "ceil_mode")


def test_max_pool_ignores_padding_with_negative_inputs():
    """Padding never wins a max, also where every input value is negative."""
    model = nn.Sequential(nn.MaxPool2d(3, 2, padding=1, ceil_mode=True))
    x = -np.abs(np.random.default_rng(2).standard_normal((2, 1, 6, 6), dtype=np.float32)) - 1
    assert_close(run_onnx(to_onnx(model, x.shape[1:]), x), run_gpucnn(model, x))


# ------------------------------------------------------------------------------- random models
@st.composite
def random_models(draw):
    """(model, input_shape): a nested Sequential over every exportable layer, valid by construction."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    input_shape = (draw(st.integers(1, 4)), draw(st.integers(4, 12)), draw(st.integers(4, 12)))
    shape, layers = input_shape, []

    def add(layer):  # keeps the layer when it takes the current shape, as gpucnn sees it
        nonlocal shape
        try:
            shape = run_gpucnn(layer, np.zeros((1, *shape), np.float32)).shape[1:]
        except ValueError:
            return
        layers.append(layer)

    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["conv", "conv", "bn", "relu", "leaky", "max", "avg", "dropout", "sigmoid", "tanh",
                                     "identity", "activation", "pad"]))
        channels = shape[0]
        if kind == "conv":
            groups = draw(st.sampled_from([g for g in (1, 2, 3) if channels % g == 0]))
            padding = draw(st.one_of(st.integers(0, 2), st.sampled_from(["same", "valid"])))
            add(nn.Conv2d(channels, groups * draw(st.integers(1, 3)), draw(st.integers(1, 4)),
                          stride=draw(st.integers(1, 3)), padding=padding, dilation=draw(st.integers(1, 2)),
                          groups=groups, bias=draw(st.booleans())))
        elif kind == "bn":
            layer = nn.BatchNorm2d(channels, eps=draw(st.sampled_from([1e-5, 1e-3])), affine=draw(st.booleans()))
            layer.running_mean.data[...] = rng.standard_normal(channels)
            layer.running_var.data[...] = rng.uniform(0.5, 2.0, channels)
            if layer.affine:
                layer.weight.data[...] = rng.uniform(0.5, 1.5, channels)
                layer.bias.data[...] = rng.standard_normal(channels)
            add(layer)
        elif kind == "relu":
            add(nn.ReLU())
        elif kind == "leaky":
            add(nn.LeakyReLU(draw(st.sampled_from([0.01, 0.2, 1.5]))))
        elif kind == "dropout":
            add(nn.Dropout(0.5))
        elif kind in ("sigmoid", "tanh", "identity"):
            add({"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "identity": nn.Identity}[kind]())
        elif kind == "activation":
            add(draw(st.sampled_from([nn.ReLU6, nn.Hardswish, nn.Mish, nn.GELU, nn.SiLU, nn.ELU, nn.LogSigmoid,
                                      lambda: nn.PReLU(channels, -0.5), lambda: nn.Softplus(2.0, 3.0)]))())
        elif kind == "pad":
            padding = tuple(draw(st.lists(st.integers(0, 2), min_size=4, max_size=4)))
            add(draw(st.sampled_from([nn.ZeroPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d]))(padding))
        else:
            kernel = draw(st.integers(1, 3))
            arguments = dict(kernel_size=kernel, stride=draw(st.integers(1, 3)),
                             padding=draw(st.integers(0, kernel // 2)), ceil_mode=draw(st.booleans()))
            add(nn.MaxPool2d(dilation=draw(st.integers(1, 2)), **arguments) if kind == "max"
                else nn.AvgPool2d(count_include_pad=draw(st.booleans()), **arguments))
    head = draw(st.sampled_from(["flatten", "global", "adaptive"]))
    if head == "global":
        add(nn.AdaptiveAvgPool2d(1))
    elif head == "adaptive":
        add(nn.AdaptiveAvgPool2d((1, shape[2])))  # one window per column: a plain AveragePool
    add(nn.Flatten())
    add(nn.Linear(int(np.prod(shape)), draw(st.integers(2, 5)), bias=draw(st.booleans())))
    # nest: cut the chain at random points into Sequentials inside a Sequential
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(layers) - 1)), max_size=3))))
    groups = [layers[start:end] for start, end in zip([0, *cuts], [*cuts, len(layers)]) if layers[start:end]]
    model = nn.Sequential(*(nn.Sequential(*group) if len(group) > 1 else group[0] for group in groups))
    return model, input_shape


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_models(), st.integers(0, 1000))
def test_random_models(model_and_shape, seed):
    model, input_shape = model_and_shape
    check_model(model, input_shape, seed=seed)


# ---------------------------------------------------------------------------- layers and semantics
def test_linear_over_a_larger_tensor_and_partial_flatten():
    """Flatten(2) keeps (N, C, H*W); a Linear on that is MatMul + Add; Flatten(1, 2) is a Reshape."""
    model = nn.Sequential(nn.Flatten(2), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 2, bias=False))
    proto = check_model(model, (3, 3, 4))
    assert op_types(proto) == ["Reshape", "MatMul", "Add", "Relu", "MatMul"]
    check_model(nn.Sequential(nn.Flatten(1, 2), nn.Linear(4, 3)), (2, 3, 4))


def test_adaptive_average_pooling():
    assert op_types(check_model(nn.Sequential(nn.AdaptiveAvgPool2d(1)), (3, 5, 7))) == ["GlobalAveragePool"]
    assert op_types(check_model(nn.Sequential(nn.AdaptiveAvgPool2d((2, 3))), (3, 6, 9))) == ["AveragePool"]
    assert op_types(check_model(nn.Sequential(nn.AdaptiveAvgPool2d((None, 1))), (2, 4, 6))) == ["AveragePool"]


def test_eval_semantics_and_training_flags_restored():
    """A model in training mode exports its eval behaviour (no Dropout, BatchNorm's running stats)
    and is left in training mode."""
    gpucnn.manual_seed(3)
    batch_norm = nn.BatchNorm2d(4)
    batch_norm.running_mean.data[...] = np.arange(4, dtype=np.float32)
    batch_norm.running_var.data[...] = np.arange(1, 5, dtype=np.float32)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), batch_norm, nn.ReLU(), nn.Dropout(0.5), nn.Flatten(),
                          nn.Linear(4 * 4 * 4, 3))
    model.train()
    proto = to_onnx(model, (2, 6, 6))
    assert all(module.training for module in model.modules())
    assert op_types(proto) == ["Conv", "BatchNormalization", "Relu", "Flatten", "Gemm"]
    x = np.random.default_rng(4).standard_normal((3, 2, 6, 6), dtype=np.float32)
    assert_close(run_onnx(proto, x), run_gpucnn(model, x))


def test_only_identities_still_give_a_graph():
    proto = check_model(nn.Sequential(nn.Dropout(0.3), nn.Identity()), (2, 3, 3))
    assert op_types(proto) == ["Identity"]


def test_batch_norm_1d_after_a_linear_and_dropout2d():
    rng = np.random.default_rng(7)
    norm = nn.BatchNorm1d(6)
    norm.running_mean.data[...] = rng.standard_normal(6)
    norm.running_var.data[...] = rng.uniform(0.5, 2.0, 6)
    model = nn.Sequential(nn.Dropout2d(0.2), nn.Flatten(), nn.Linear(12, 6), norm, nn.ReLU(), nn.Linear(6, 2))
    proto = check_model(model, (3, 2, 2))
    assert op_types(proto) == ["Flatten", "Gemm", "BatchNormalization", "Relu", "Gemm"]


def test_sigmoid_and_tanh():
    proto = check_model(nn.Sequential(nn.Conv2d(2, 3, 3), nn.Tanh(), nn.Flatten(), nn.Linear(12, 2), nn.Sigmoid()),
                        (2, 4, 4))
    assert op_types(proto) == ["Conv", "Tanh", "Flatten", "Gemm", "Sigmoid"]


# ----------------------------------------------------------------------------------- activations
KINKS = [0.0, -0.5, 0.5, -1.0, 1.0, -2.0, 2.0, -3.0, 3.0, -6.0, 6.0, -14.5, 14.5, -16.0, 16.0]
TAILS = [-200.0, 200.0, -100.0, 100.0, -90.0, 90.0, -30.0, 30.0]


def awkward_inputs(input_shape, seed=0):
    """Two batches of 5, normal values times 4: the first starting with KINKS, the second with TAILS."""
    rng = np.random.default_rng(seed)
    batches = []
    for values in (KINKS, TAILS):
        x = 4 * rng.standard_normal((5, *input_shape), dtype=np.float32)
        count = min(x.size, len(values))
        x.reshape(-1)[:count] = values[:count]
        batches.append(x)
    return batches


def small_model(layer, input_shape):
    """``layer`` nested between a 3x3 convolution that keeps the shape (weights large enough to reach the
    kinks) and a linear layer."""
    channels = input_shape[0]
    conv = nn.Conv2d(channels, channels, 3, padding=1)
    conv.weight.data[...] = np.random.default_rng(1).standard_normal(conv.weight.shape)
    features = run_gpucnn(nn.Sequential(conv, layer), np.zeros((1, *input_shape), np.float32)).size
    return nn.Sequential(conv, nn.Sequential(layer, nn.Flatten()), nn.Linear(features, 4))


def prelu(channels, slopes):
    layer = nn.PReLU(channels)
    layer.weight.data[...] = slopes
    return layer


ACTIVATIONS = [
    nn.ReLU6(), nn.Hardtanh(), nn.Hardtanh(-2.5, 0.5), nn.ELU(), nn.ELU(0.3), nn.SELU(), nn.CELU(), nn.CELU(2.5),
    nn.GELU(), nn.GELU("tanh"), nn.SiLU(), nn.Mish(), nn.Hardswish(), nn.Hardsigmoid(), nn.Softplus(),
    nn.Softplus(1.0, 15.0), nn.Softplus(1.0, 2.0), nn.Softplus(2.0, 3.0), nn.Softplus(-1.5, 2.0),
    nn.Softplus(0.5, -1.0), prelu(1, -0.3), prelu(3, [-0.5, 0.25, 2.0]), nn.LogSigmoid(), nn.Softsign(),
    nn.Tanhshrink(), nn.Softmax(1), nn.Softmax(-1), nn.LogSoftmax(1), nn.LogSoftmax(-1),
]


@pytest.mark.parametrize("opset", [13, DEFAULT_OPSET, NEWEST_OPSET])
@pytest.mark.parametrize("layer", ACTIVATIONS, ids=repr)
def test_activations(layer, opset):
    """Alone on (N, 3, 5, 7), (N, 3) and (N, 3, 4) (a per-channel PReLU's slopes broadcast over each), and in
    a small model."""
    for input_shape in [(3, 5, 7), (3,), (3, 4)]:
        check_model(nn.Sequential(layer), input_shape, batches=(), inputs=awkward_inputs(input_shape), opset=opset)
    check_model(small_model(layer, (3, 4, 5)), (3, 4, 5), batches=(1,), inputs=awkward_inputs((3, 4, 5))[:1],
                opset=opset)


@pytest.mark.parametrize("layer, opset, ops", [
    (nn.ReLU6(), 13, ["Clip"]),
    (nn.Hardsigmoid(), 13, ["HardSigmoid"]),
    (nn.GELU(), 19, ["Mul", "Erf", "Add", "Mul", "Mul"]),  # ONNX's Gelu is from opset 20
    (nn.GELU("tanh"), 19, ["Mul", "Mul", "Mul", "Add", "Mul", "Tanh", "Add", "Mul", "Mul"]),
    (nn.GELU(), 20, ["Gelu"]),
    (nn.GELU("tanh"), 20, ["Gelu"]),
    (nn.Mish(), 17, ["Softplus", "Tanh", "Mul"]),  # Mish from 18
    (nn.Mish(), 18, ["Mish"]),
    (nn.Hardswish(), 13, ["HardSigmoid", "Mul"]),  # HardSwish from 14
    (nn.Hardswish(), 14, ["HardSwish"]),
    (nn.SiLU(), 17, ["Sigmoid", "Mul"]),
    (nn.Softplus(), 17, ["Softplus"]),
    (nn.Softplus(1.0, 15.0), 17, ["Softplus"]),  # from 15 on, x and softplus(x) are the same float32
    (nn.Softplus(1.0, 14.0), 17, ["Mul", "Softplus", "Div", "Greater", "Where"]),
    (nn.Softplus(2.0), 17, ["Mul", "Softplus", "Div", "Greater", "Where"]),
    (nn.LogSigmoid(), 17, ["Neg", "Softplus", "Neg"]),
    (nn.Tanhshrink(), 17, ["Tanh", "Sub"]),
])
def test_activation_ops_by_opset(layer, opset, ops):
    """Each op from the opset that has it, and the formula before."""
    proto = check_model(nn.Sequential(layer), (2, 3, 4), batches=(), inputs=awkward_inputs((2, 3, 4)), opset=opset)
    assert op_types(proto) == ops


# ------------------------------------------------------------------- padding, reshaping, pooling
@pytest.mark.parametrize("layer", [
    nn.ZeroPad2d(2), nn.ZeroPad2d((1, 0, 3, 2)), nn.ConstantPad2d((0, 2, 1, 0), -1.5),
    nn.ConstantPad2d((2, -1, -2, 1), 3.0),  # a negative pad crops
    nn.ReflectionPad2d((1, 3, 2, 0)), nn.ReflectionPad2d((2, -1, 0, 1)),
    nn.ReplicationPad2d((4, 0, 1, 3)), nn.ReplicationPad2d((-2, 1, 3, -1)),
], ids=repr)
def test_padding(layer):
    """Each side on its own, on (N, C, H, W) and on (N, H, W) (padded as an unbatched (C, H, W)), and in a
    small model."""
    assert op_types(check_model(nn.Sequential(layer), (2, 5, 6))) == ["Pad"]
    check_model(nn.Sequential(layer), (4, 7))
    check_model(small_model(layer, (2, 5, 4)), (2, 5, 4))


def test_unflatten():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 24), nn.Unflatten(1, (2, -1, 4)), nn.Conv2d(2, 3, 2),
                          nn.Unflatten(-2, (1, 2)), nn.ReLU(), nn.Flatten(2))
    proto = check_model(model, (3, 2, 2))
    assert op_types(proto) == ["Flatten", "Gemm", "Reshape", "Conv", "Reshape", "Relu", "Reshape"]


def test_adaptive_max_pooling():
    assert op_types(check_model(nn.Sequential(nn.AdaptiveMaxPool2d(1)), (3, 5, 7))) == ["GlobalMaxPool"]
    assert op_types(check_model(nn.Sequential(nn.AdaptiveMaxPool2d((2, 3))), (3, 6, 9))) == ["MaxPool"]
    assert op_types(check_model(nn.Sequential(nn.AdaptiveMaxPool2d((None, 2))), (2, 4, 6))) == ["MaxPool"]
    check_model(small_model(nn.AdaptiveMaxPool2d((3, 1)), (2, 6, 5)), (2, 6, 5))


# ---------------------------------------------------------------------------------------- ResNets
def randomize_batch_norms(model, seed=0):
    """Running statistics and affine parameters away from the identity, so that each batch norm counts."""
    rng = np.random.default_rng(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            channels = module.num_features
            module.running_mean.data[...] = 0.2 * rng.standard_normal(channels)
            module.running_var.data[...] = rng.uniform(0.5, 2.0, channels)
            module.weight.data[...] = rng.uniform(0.5, 1.5, channels)
            module.bias.data[...] = 0.2 * rng.standard_normal(channels)


@pytest.mark.parametrize("build, blocks, convolutions, input_shape, batch", [
    (models.resnet18, 8, 20, (3, 64, 64), 1),
    (models.resnet18, 8, 20, (3, 40, 36), 2),  # odd sizes from the third stage on: 5x5, then 3x3 and 2x2
    (models.resnet50, 16, 53, (3, 40, 36), 2),
], ids=["resnet18-64x64", "resnet18-40x36", "resnet50-40x36"])
def test_resnets(build, blocks, convolutions, input_shape, batch):
    """A residual Add a block, the downsample convolutions, global average pooling and Flatten before fc."""
    gpucnn.manual_seed(0)
    model = build(num_classes=7)
    randomize_batch_norms(model)
    proto = check_model(model, input_shape, batches=(batch,))
    ops = op_types(proto)
    assert (ops.count("Add"), ops.count("Conv"), ops[-3:]) == (blocks, convolutions,
                                                                ["GlobalAveragePool", "Flatten", "Gemm"])
    dims = proto.graph.output[0].type.tensor_type.shape.dim
    assert (dims[0].dim_param, [d.dim_value for d in dims[1:]]) == ("N", [7])


def test_mobilenet_v2():
    """A residual Add where a block keeps its shape (10 of 17), the depthwise convolutions as grouped Conv,
    ReLU6 as Clip, global average pooling and Flatten before the classifier."""
    gpucnn.manual_seed(2)
    model = models.mobilenet_v2(num_classes=5)
    randomize_batch_norms(model)
    proto = check_model(model, (3, 40, 36), batches=(2,))
    ops = op_types(proto)
    assert (ops.count("Add"), ops.count("Conv"), ops.count("Clip")) == (10, 52, 35)
    assert ops[-3:] == ["GlobalAveragePool", "Flatten", "Gemm"]
    groups = [attribute.i for node in proto.graph.node for attribute in node.attribute
              if node.op_type == "Conv" and attribute.name == "group"]
    assert sorted(set(groups))[-1] == 960 and groups.count(1) == 35


def test_resnet_weights_and_a_new_head():
    """The weights are initializers under their state_dict names; a head replaced by other exportable layers
    (as for fine-tuning) exports too."""
    gpucnn.manual_seed(1)
    model = models.resnet18(num_classes=7)
    initializers = {tensor.name for tensor in to_onnx(model, (3, 32, 32)).graph.initializer}
    assert {name for name in model.state_dict() if not name.endswith("num_batches_tracked")} <= initializers
    model.fc = nn.Sequential(nn.Dropout(0.2), nn.Linear(512, 3), nn.LogSoftmax(1))
    model.avgpool = nn.AdaptiveMaxPool2d(1)
    randomize_batch_norms(model, 1)
    assert op_types(check_model(model, (3, 32, 40), batches=(2,)))[-4:] == ["GlobalMaxPool", "Flatten", "Gemm",
                                                                            "LogSoftmax"]


# ------------------------------------------------------------------------------------ the file
def test_one_file_serves_every_batch_size(tmp_path):
    model = models.build("convnetjs", 3, (16, 16), 10)
    path = tmp_path / "convnetjs.onnx"
    returned = export_onnx(model, path, input_shape=(3, 16, 16))
    loaded = onnx.load(str(path))
    assert loaded == returned
    onnx.checker.check_model(loaded, full_check=True)
    (graph_input,), (graph_output,) = loaded.graph.input, loaded.graph.output
    dims = graph_input.type.tensor_type.shape.dim
    assert (dims[0].dim_param, [d.dim_value for d in dims[1:]]) == ("N", [3, 16, 16])
    dims = graph_output.type.tensor_type.shape.dim
    assert (dims[0].dim_param, [d.dim_value for d in dims[1:]]) == ("N", [10])
    runner = session(path)
    x = np.random.default_rng(5).standard_normal((3, 3, 16, 16), dtype=np.float32)
    three = runner.run(["output"], {"input": x})[0]
    assert_close(three, run_gpucnn(model, x), "batch 3")
    for index in range(3):  # the same file, batch 1: each example alone gives its row of the batch
        assert_close(runner.run(["output"], {"input": x[index:index + 1]})[0], three[index:index + 1], "batch 1")


def test_weights_are_initializers_under_state_dict_names():
    model = nn.Sequential(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)), nn.Flatten(), nn.Linear(8, 2))
    proto = to_onnx(model, (1, 4, 4))
    initializers = {tensor.name: onnx.numpy_helper.to_array(tensor) for tensor in proto.graph.initializer}
    for name, value in model.state_dict().items():
        if not name.endswith("num_batches_tracked"):
            np.testing.assert_array_equal(initializers[name], value.numpy())
    assert {"0.0.weight", "0.0.bias", "0.1.running_mean", "0.1.running_var", "2.weight", "2.bias"} <= set(initializers)


@pytest.mark.parametrize("opset", [13, DEFAULT_OPSET, NEWEST_OPSET])
def test_opsets(opset):
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding="same"), nn.BatchNorm2d(3), nn.LeakyReLU(0.1),
                          nn.MaxPool2d(2, ceil_mode=True), nn.AvgPool2d(2, padding=1, ceil_mode=True),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2))
    proto = check_model(model, (2, 7, 7), opset=opset)
    assert [(entry.domain, entry.version) for entry in proto.opset_import] == [("", opset)]
    assert proto.ir_version == onnx.helper.find_min_ir_version_for(list(proto.opset_import))


def test_export_run(tmp_path):
    """A run folder's model.safetensors -> ONNX, with classes and preprocessing in the metadata."""
    model = models.build("lenet", 1, (8, 8), 10)
    config = {"model": models.config("lenet", 1, (8, 8), 10), "dataset": "digits",
              "classes": [str(digit) for digit in range(10)], "input_shape": [1, 8, 8],
              "preprocess": {"scale": 1 / 16, "mean": [0.3], "std": [0.4]}}
    io.save_model(tmp_path / io.MODEL_FILE, model, config)
    proto = export_run(tmp_path, tmp_path / "digits.onnx")
    metadata = {entry.key: entry.value for entry in proto.metadata_props}
    assert metadata["gpucnn.dataset"] == "digits"
    assert metadata["gpucnn.classes"] == '["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]'
    assert '"std": [0.4]' in metadata["gpucnn.preprocess"]
    x = np.random.default_rng(6).standard_normal((3, 1, 8, 8), dtype=np.float32)
    assert_close(run_onnx(tmp_path / "digits.onnx", x), run_gpucnn(model, x))
    with pytest.raises(ExportError, match="no model.safetensors"):
        export_run(tmp_path / "missing", tmp_path / "other.onnx")


# ---------------------------------------------------------------------------------- errors
class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        return x + self.conv(x)


class LoudConv(nn.Conv2d):
    def forward(self, input):
        return super().forward(input) * 2


class Shuffled(nn.Sequential):
    def forward(self, input):
        return super().forward(input[:, ::-1])


@pytest.mark.parametrize("model, input_shape, message", [
    (Residual(), (2, 4, 4), r"cannot export the model \(Residual\): Residual is not a layer the exporter knows, "
                            r"and its forward may do anything"),
    (nn.Sequential(nn.ReLU(), nn.Sequential(Residual(), nn.ReLU())), (2, 4, 4), r"layer '1\.0' \(Residual\)"),
    (nn.Sequential(LoudConv(2, 2, 3)), (2, 4, 4),
     r"layer '0' \(LoudConv\): it subclasses Conv2d, which the exporter knows"),
    (nn.Sequential(Shuffled(nn.ReLU())), (2, 4, 4), r"layer '0' \(Shuffled\)"),
    (nn.Sequential(nn.CrossEntropyLoss()), (2, 4, 4), r"layer '0' \(CrossEntropyLoss\)"),
    (nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(3)), (2, 8, 8), r"layer '1' \(AdaptiveAvgPool2d.*8x8 input to 3x3"),
    (nn.Sequential(nn.AdaptiveMaxPool2d((2, 4))), (2, 5, 8), r"layer '0' \(AdaptiveMaxPool2d.*5x8 input to 2x4"),
    (nn.Sequential(nn.AdaptiveMaxPool2d(2, return_indices=True)), (2, 4, 4),
     r"layer '0' \(AdaptiveMaxPool2d with return_indices=True\)"),
    (nn.Sequential(nn.Flatten(), nn.Unflatten(0, (1, -1))), (2, 4, 4), r"layer '1' \(Unflatten with dim=0\)"),
    (nn.Sequential(nn.BatchNorm2d(2, track_running_stats=False)), (2, 4, 4),
     r"layer '0' \(BatchNorm2d with track_running_stats=False\)"),
    (nn.Sequential(nn.MaxPool2d(2, return_indices=True)), (2, 4, 4),
     r"layer '0' \(MaxPool2d with return_indices=True\)"),
    (nn.Sequential(nn.Flatten(0)), (2, 4, 4), r"layer '0' \(Flatten with start_dim=0\)"),
    (nn.Sequential(nn.Conv2d(3, 2, 3)), (2, 4, 4), r"layer '0' \(Conv2d\) does not take the shape \(1, 2, 4, 4\)"),
    (nn.Sequential(nn.Conv2d(2, 2, 3)), (2, 0, 4), r"input_shape must be"),
    (nn.Sequential(nn.Conv2d(2, 2, 3)), "2x4x4", r"input_shape must be"),
])
def test_unexportable_models_name_the_layer(model, input_shape, message):
    with pytest.raises(ExportError, match=message):
        to_onnx(model, input_shape)


class Block(models.BasicBlock):
    def forward(self, x):
        return super().forward(x) * 2


class LoudResNet(models.ResNet):
    def forward(self, x):
        return super().forward(x) * 2


def test_resnet_with_parts_the_exporter_cannot_follow_names_them():
    gpucnn.manual_seed(2)
    model = models.resnet18(num_classes=3)
    model.layer2[1] = Block(128, 128)
    with pytest.raises(ExportError, match=r"layer 'layer2\.1' \(Block\): it subclasses BasicBlock"):
        to_onnx(model, (3, 32, 32))
    model = models.resnet18(num_classes=3)
    model.fc = Residual()
    with pytest.raises(ExportError, match=r"layer 'fc' \(Residual\): Residual is not a layer the exporter knows"):
        to_onnx(model, (3, 32, 32))
    with pytest.raises(ExportError, match=r"the model \(LoudResNet\): it subclasses ResNet"):
        to_onnx(LoudResNet(models.BasicBlock, [1, 1, 1, 1], 3), (3, 32, 32))


def test_opset_out_of_range():
    with pytest.raises(ExportError, match="opset must be an int from 13"):
        to_onnx(nn.Sequential(nn.ReLU()), (1, 2, 2), opset=12)
    newest = onnx.defs.onnx_opset_version()
    with pytest.raises(ExportError, match=f"from 13 to {newest} \\(what the installed onnx knows\\), got {newest + 1}"):
        to_onnx(nn.Sequential(nn.ReLU()), (1, 2, 2), opset=newest + 1)


def test_missing_onnx_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ExportError, match=r"pip install 'gpucnn\[onnx\]'"):
        to_onnx(nn.Sequential(nn.ReLU()), (1, 2, 2))


def test_importing_the_exporter_does_not_import_onnx():
    """gpucnn.onnx loads the onnx package only when exporting, so `import gpucnn` never needs it."""
    code = "import sys, gpucnn, gpucnn.onnx; print('onnx' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.stdout.strip() == "False", result.stderr
