"""The activations of gpucnn.ops.activations against PyTorch (values and gradients on every device, at their
kinks, at NaN and at large |x|), central differences away from the kinks, inplace=True, erfc's accuracy,
PReLU's learned weight, the nn layers and bad arguments."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as torch_F
from helpers import assert_close, check_against_torch, check_op

import gpucnn
from gpucnn import nn
from gpucnn.nn import functional as F
from gpucnn.ops.elementwise import erfc_array as erfc

# name: (arguments, the points where the gradient jumps or the formula switches)
ACTIVATIONS = {
    "hardtanh": ((), (-1.0, 1.0)),
    "relu6": ((), (0.0, 6.0)),
    "elu": ((0.5,), (0.0,)),
    "selu": ((), (0.0,)),
    "celu": ((0.7,), (0.0,)),
    "gelu": ((), ()),
    "silu": ((), ()),
    "mish": ((), ()),
    "hardswish": ((), (-3.0, 3.0)),
    "hardsigmoid": ((), (-3.0, 3.0)),
    "softplus": ((2.0, 5.0), (2.5,)),
    "logsigmoid": ((), ()),
    "softsign": ((), ()),
    "tanhshrink": ((), ()),
}
LARGE = [-100.0, -30.0, -12.0, 12.0, 30.0, 100.0]


def ours_and_theirs(name, args, **kwargs):
    return (lambda x: getattr(F, name)(x, *args, **kwargs)), (lambda x: getattr(torch_F, name)(x, *args, **kwargs))


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 4, 4), (), (0, 3)])
def test_against_torch_and_central_differences(name, shape):
    """Values spread over the interesting range (x4 a standard normal), every device, then float64 central
    differences, none of them near a kink."""
    args, kinks = ACTIVATIONS[name]
    x = np.random.default_rng(len(shape)).standard_normal(shape) * 4
    for kink in kinks:
        assert not (np.abs(x - kink) < 1e-3).any()
    check_op(*ours_and_theirs(name, args), x)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_at_the_kinks_at_large_values_and_at_nan_as_torch(name):
    """The gradients at the kinks (one-sided, as torch picks), far out where a naive exp overflows, and NaN."""
    args, kinks = ACTIVATIONS[name]
    values = [0.0, -0.0, *kinks, *LARGE, np.nan]
    check_against_torch(*ours_and_theirs(name, args), np.array(values))


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_float64_as_torchs_to_double_precision(name):
    """In float64 the values and gradients match torch's to 1e-12: the constants (SELU's, GELU's) and erfc
    carry double precision, which float32 comparisons could not tell. (celu takes alpha 0.5: torch rounds
    1 / alpha to float32; so hardsigmoid's slope 1/6, whose gradient is compared to 1e-7.)"""
    args = (0.5,) if name == "celu" else ACTIVATIONS[name][0]
    x = np.concatenate([np.random.default_rng(2).standard_normal(200) * 4, [-20.0, -8.0, 8.0, 20.0]])
    for kwargs in [{}, {"approximate": "tanh"}] if name == "gelu" else [{}]:
        ours = gpucnn.tensor(x, requires_grad=True)
        theirs = torch.tensor(x, requires_grad=True)
        result, expected = getattr(F, name)(ours, *args, **kwargs), getattr(torch_F, name)(theirs, *args, **kwargs)
        assert result.dtype == np.float64
        assert_close(result, expected.detach(), atol=1e-12, rtol=1e-12)
        result.sum().backward()
        expected.sum().backward()
        tolerance = 1e-7 if name == "hardsigmoid" else 1e-12
        assert_close(ours.grad, theirs.grad, atol=tolerance, rtol=tolerance)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_both_forms(approximate):
    x = np.concatenate([np.random.default_rng(3).standard_normal(50) * 3, [0.0, -5.0, 5.0, -10.0, 10.0] + LARGE])
    check_op(*ours_and_theirs("gelu", (), approximate=approximate), x)


@pytest.mark.parametrize("beta, threshold", [(1.0, 20.0), (0.5, 3.0), (-1.0, 2.0), (3.0, 100.0)])
def test_softplus_beta_and_threshold(beta, threshold):
    """Either side of the threshold (where softplus turns into x itself) and a negative beta."""
    x = np.concatenate([np.random.default_rng(4).standard_normal(40) * 8, [-50.0, 50.0]])
    x = x[np.abs(x * beta - threshold) > 1e-2]
    check_op(*ours_and_theirs("softplus", (beta, threshold)), x)


def test_softplus_does_not_overflow_below_a_large_threshold():
    """log(1 + exp(beta x)) for beta x = 90 < threshold: 90 (torch's float32 gives inf there)."""
    y = F.softplus(gpucnn.tensor([90.0, -90.0]), threshold=1000.0).numpy()
    assert_close(y, np.float32([90.0, 0.0]))


@pytest.mark.parametrize("min_val, max_val", [(-2.0, 3.0), (0.5, 0.5), (-0.25, 4)])
def test_hardtanh_bounds(min_val, max_val):
    x = np.array([-3.0, -2.0, -0.25, 0.0, 0.5, 1.0, 3.0, 4.0, 7.0])
    check_against_torch(*ours_and_theirs("hardtanh", (min_val, max_val)), x)


@pytest.mark.parametrize("device", gpucnn.devices())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["hardtanh", "relu6", "hardsigmoid"])
def test_masked_gradients_stop_inf_and_nan_as_torchs(name, dtype, device):
    """Where the slope is 0 (at and past the bounds), an inf or NaN upstream gradient gives 0, as torch's masks,
    and passes where the slope is not (NaN input included); an upstream gradient that sum's backward broadcasts
    too. The outputs keep -0.0 as torch does from NumPy 2.1 on."""
    if device != "cpu" and dtype is np.float64:
        pytest.skip("the kernel devices' activations are compared in float32")
    args = ACTIVATIONS[name][0]
    data = np.array([-7.0, -3.0, -1.0, -0.0, 0.0, 0.5, 1.0, 3.0, 6.0, 9.0, np.nan], dtype=dtype)
    upstream = np.resize(np.array([np.inf, np.nan, -np.inf], dtype=dtype), data.shape)
    for summed in (False, True):
        x = gpucnn.tensor(data, device=device, requires_grad=True)
        reference = torch.tensor(data, requires_grad=True)
        result, expected = getattr(F, name)(x, *args), getattr(torch_F, name)(reference, *args)
        if summed:
            result.sum().backward()
            expected.sum().backward()
        else:
            result.backward(gpucnn.tensor(upstream, device=device))
            expected.backward(torch.tensor(upstream))
        # torch's float64 hardsigmoid slope is float32's 1/6 (see test_float64_as_torchs_to_double_precision)
        assert np.allclose(x.grad.numpy(), reference.grad.numpy(), rtol=1e-7, atol=0, equal_nan=True), (
            x.grad, reference.grad)
        if device == "cpu" and np.lib.NumpyVersion(np.__version__) >= "2.1.0":
            assert np.array_equal(np.signbit(result.numpy()), torch.signbit(expected).numpy()), (result, expected)


def test_erfc_accuracy_in_float64_and_float32():
    """Max |error| against math.erfc below 1e-15 in float64 over [-30, 30] (denser near the branch points 0.46875
    and 4), and within float32's resolution in float32; NaN stays NaN, +-inf give 0 and 2."""
    x = np.concatenate([np.linspace(-30, 30, 200001), np.linspace(-5, 5, 200001),
                        [0.46875, -0.46875, 4.0, -4.0, 0.0, 1e-300, -1e-12]])
    expected = np.array([math.erfc(v) for v in x])
    assert np.abs(erfc(np, x) - expected).max() < 1e-15
    x32 = x.astype(np.float32)
    ours32 = erfc(np, x32)
    assert ours32.dtype == np.float32
    assert np.abs(ours32 - np.array([math.erfc(float(v)) for v in x32])).max() < 3e-7
    special = erfc(np, np.array([np.nan, np.inf, -np.inf, 1e300, -1e300]))
    assert np.isnan(special[0]) and special[1:].tolist() == [0.0, 2.0, 0.0, 2.0]


INPLACE = ["hardtanh", "relu6", "elu", "selu", "celu", "silu", "mish", "hardswish", "hardsigmoid"]


@pytest.mark.parametrize("device", gpucnn.devices())
@pytest.mark.parametrize("name", INPLACE)
def test_inplace_as_torchs(name, device):
    """Where autograd records nothing, inplace=True overwrites the input and returns it; where it records the
    op, the result is a new tensor with torch's gradient and the input is left as it was."""
    args = ACTIVATIONS[name][0]
    data = np.float32([[-4.5, -1.0, 0.0], [0.5, 2.0, 7.0]])
    x = gpucnn.tensor(data, device=device)
    assert getattr(F, name)(x, *args, inplace=True) is x
    assert_close(x, getattr(torch_F, name)(torch.tensor(data), *args, inplace=True))
    x = gpucnn.tensor(data, device=device, requires_grad=True)
    hidden = x * 1.0
    result = getattr(F, name)(hidden, *args, inplace=True)
    assert result is not hidden and np.array_equal(hidden.numpy(), data)
    reference = torch.tensor(data, requires_grad=True)
    expected = getattr(torch_F, name)(reference * 1.0, *args, inplace=True)
    assert_close(result, expected.detach())
    result.backward(gpucnn.ones(2, 3, device=device))
    expected.backward(torch.ones(2, 3))
    assert_close(x.grad, reference.grad)


@pytest.mark.parametrize("x_shape, w_shape", [((2, 3, 4, 4), (3,)), ((2, 3, 4, 4), (1,)), ((5, 3), (3,)),
                                               ((7,), (1,)), ((), (1,)), ((2, 4, 5), ()), ((0, 3), (3,))])
def test_prelu_against_torch_with_the_weights_gradient(x_shape, w_shape):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(x_shape)
    x[np.abs(x) < 1e-3] = 0.5
    check_op(F.prelu, torch_F.prelu, x, rng.uniform(-0.5, 0.5, w_shape), numerical=0 not in x_shape)


def test_prelu_at_zero_and_nan_as_torch():
    check_against_torch(F.prelu, torch_F.prelu, np.array([0.0, -0.0, np.nan, -2.0, 3.0]), np.array([0.25]))


def test_prelu_layer_learns_one_weight_per_channel_as_torchs():
    layer = nn.PReLU(3, init=0.1)
    reference = torch.nn.PReLU(3, init=0.1)
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    assert_close(layer.weight, reference.weight.detach())
    x = np.random.default_rng(6).standard_normal((2, 3, 4, 4)).astype(np.float32)
    ours, theirs = layer(gpucnn.tensor(x)), reference(torch.tensor(x))
    assert_close(ours, theirs.detach())
    (ours * ours).sum().backward()
    (theirs * theirs).sum().backward()
    assert_close(layer.weight.grad, reference.weight.grad)
    with gpucnn.no_grad():
        layer.weight.fill_(3.0)
    layer.reset_parameters()
    assert layer.weight.tolist() == pytest.approx([0.1] * 3)


@pytest.mark.parametrize("ours, theirs", [
    (nn.ReLU6(), torch.nn.ReLU6()), (nn.ReLU6(inplace=True), torch.nn.ReLU6(inplace=True)),
    (nn.Hardtanh(), torch.nn.Hardtanh()), (nn.Hardtanh(-2.0, 3.0, True), torch.nn.Hardtanh(-2.0, 3.0, True)),
    (nn.ELU(), torch.nn.ELU()), (nn.ELU(0.5, True), torch.nn.ELU(0.5, True)), (nn.SELU(), torch.nn.SELU()),
    (nn.SELU(True), torch.nn.SELU(True)), (nn.CELU(0.5), torch.nn.CELU(0.5)), (nn.GELU(), torch.nn.GELU()),
    (nn.GELU("tanh"), torch.nn.GELU("tanh")), (nn.SiLU(), torch.nn.SiLU()), (nn.Mish(True), torch.nn.Mish(True)),
    (nn.Hardswish(), torch.nn.Hardswish()), (nn.Hardsigmoid(), torch.nn.Hardsigmoid()),
    (nn.Softplus(), torch.nn.Softplus()), (nn.Softplus(2.0, 5.0), torch.nn.Softplus(2.0, 5.0)),
    (nn.PReLU(), torch.nn.PReLU()), (nn.LogSigmoid(), torch.nn.LogSigmoid()), (nn.Softsign(), torch.nn.Softsign()),
    (nn.Tanhshrink(), torch.nn.Tanhshrink()),
], ids=repr)
def test_layers_as_torchs(ours, theirs):
    """The same repr and output (the layer's defaults are torch's)."""
    assert repr(ours) == repr(theirs)
    x = np.random.default_rng(7).standard_normal((2, 3, 5)).astype(np.float32) * 4
    assert_close(ours(gpucnn.tensor(x)), theirs(torch.tensor(x)).detach())


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.gelu(gpucnn.zeros(2), approximate="erf"), ValueError, "gelu: approximate must be 'none' or 'tanh'"),
    (lambda: nn.GELU("fast"), ValueError, "GELU: approximate must be 'none' or 'tanh', got 'fast'"),
    (lambda: F.hardtanh(gpucnn.zeros(2), 2.0, 1.0), ValueError, r"hardtanh: min_val \(2.0\) must not be greater"),
    (lambda: nn.Hardtanh(1.0, 1.0), ValueError, r"Hardtanh: max_val \(1.0\) must be greater than min_val"),
    (lambda: F.celu(gpucnn.zeros(2), 0.0), ValueError, "celu: alpha must not be 0"),
    (lambda: nn.CELU(0), ValueError, "CELU: alpha must not be 0"),
    (lambda: F.softplus(gpucnn.zeros(2), beta=0), ValueError, "softplus: beta must not be 0"),
    (lambda: F.elu(gpucnn.zeros(2), "1"), TypeError, "elu: alpha must be a real number, got '1'"),
    (lambda: F.silu(gpucnn.tensor([1, 2])), TypeError, r"silu: input must be a floating-point tensor, got dtype int64"),
    (lambda: F.mish(np.array([1.0]), inplace=True), TypeError, "mish: inplace=True needs a Tensor input"),
    (lambda: F.prelu(gpucnn.zeros(2, 3), gpucnn.ones(4)), ValueError,
     r"prelu: weight has 4 values \(shape \(4,\)\) but the input \(shape \(2, 3\)\) has 3 channels"),
    (lambda: F.prelu(gpucnn.zeros(3), gpucnn.ones(3)), ValueError, "has 1 channels"),
    (lambda: F.prelu(gpucnn.zeros(2, 3), gpucnn.ones(3, 1)), ValueError, r"weight must be a scalar or 1-D tensor"),
    (lambda: F.prelu(gpucnn.zeros(2, 3), gpucnn.ones(3, dtype=np.float64)), TypeError,
     "prelu: weight has dtype float64 but input has dtype float32"),
    (lambda: nn.PReLU(0), ValueError, "PReLU: num_parameters must be a positive int, got 0"),
])
def test_bad_arguments_name_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()
