"""conv_transpose2d and nn.ConvTranspose2d against PyTorch (values and gradients on every usable device,
central differences in float64), on conv2d's cpu paths and kernel paths, a DCGAN generator trained a few
steps, output_size, initialisation, and the errors of bad arguments."""

import math

import numpy as np
import pytest
import torch
from helpers import assert_close, check_against_torch, check_op

import gpucnn
from gpucnn import nn, optim
from gpucnn.nn import functional as F
from gpucnn.ops.conv2d import Conv2d, kernel_path, kernel_paths

# A transposed convolution's output sums C_in/groups*R*S products, its weight gradient N*H*W of them:
# float32 sums in another order than torch's differ by more than helpers' default atol of 1e-5.
ATOL = 1e-4


def torch_conv_transpose(**kwargs):
    return lambda x, w, b=None: torch.nn.functional.conv_transpose2d(x, w, b, **kwargs)


def ours(**kwargs):
    return lambda x, w, b=None: F.conv_transpose2d(x, w, b, **kwargs)


def arrays(x_shape, w_shape, groups=1, bias=True, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    return (x, w, rng.standard_normal(w_shape[1] * groups)) if bias else (x, w)


# (input shape, weight shape, arguments, bias)
CASES = [
    ((2, 3, 4, 5), (3, 2, 3, 3), dict(stride=2, padding=1, output_padding=1), True),
    ((1, 2, 3, 3), (2, 3, 2, 2), dict(stride=3, padding=1, output_padding=2), True),  # stride past the kernel
    ((2, 2, 3, 4), (2, 3, 3, 2), dict(stride=(2, 3), padding=(1, 0), output_padding=(0, 2)), True),
    ((1, 2, 4, 3), (2, 2, 3, 3), dict(dilation=2, padding=1), False),
    ((2, 2, 3, 4), (2, 3, 4, 4), dict(stride=2, padding=3), True),  # padding past half the kernel
    # output_padding past the stride (smaller than the dilation): rows and columns no input reaches
    ((2, 2, 3, 4), (2, 2, 3, 2), dict(dilation=(3, 2), output_padding=(2, 1)), True),
    ((1, 2, 3, 3), (2, 2, 3, 3), dict(stride=(1, 2), dilation=3, padding=(1, 0), output_padding=2), True),
    ((2, 4, 3, 3), (4, 3, 3, 3), dict(stride=2, groups=2), True),
    ((2, 3, 4, 4), (3, 1, 3, 3), dict(stride=2, padding=1, output_padding=1, groups=3), True),  # depthwise
    ((2, 3, 2, 4), (3, 2, 3, 3), dict(stride=2, groups=3), False),  # groups of 1 in and 2 out channels
    ((2, 3, 4, 4), (3, 5, 1, 1), dict(), True),  # 1x1
    ((1, 2, 3, 4), (2, 3, 1, 1), dict(stride=2, output_padding=1), True),  # 1x1 at stride 2: pixels apart
    ((1, 2, 5, 2), (2, 1, 2, 3), dict(stride=(1, 3), padding=(0, 1)), True),  # batch 1, non-square
    ((3, 4, 1, 1), (4, 3, 4, 4), dict(), False),  # a DCGAN generator's first layer: noise to 4x4
    ((2, 2, 3, 3), (2, 2, 4, 4), dict(stride=2, padding=1), True),  # a DCGAN generator's doubling layer
]


@pytest.mark.parametrize("x_shape, w_shape, kwargs, bias", CASES)
def test_against_torch_and_central_differences(x_shape, w_shape, kwargs, bias):
    check_op(ours(**kwargs), torch_conv_transpose(**kwargs),
             *arrays(x_shape, w_shape, kwargs.get("groups", 1), bias), atol=ATOL)


@pytest.mark.parametrize("x_shape, w_shape, kwargs", [
    ((3, 4, 5), (3, 2, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ((2, 3, 3), (2, 3, 2, 2), dict(stride=(2, 1), dilation=(1, 2))),
])
def test_unbatched_input(x_shape, w_shape, kwargs):
    check_op(ours(**kwargs), torch_conv_transpose(**kwargs), *arrays(x_shape, w_shape), atol=ATOL)


# Wider layers, on the kernels conv2d takes for more channels: backward-data tiled, with and without
# the taps kernels (16 dividing C_in), its pixels kernel at stride 1, Winograd for the input gradient.
WIDE_CASES = [
    ((2, 16, 5, 6), (16, 12, 4, 4), dict(stride=2, padding=1)),
    ((2, 16, 6, 5), (16, 16, 3, 3), dict(padding=1)),
    ((1, 12, 4, 5), (12, 10, 3, 2), dict(stride=(3, 2), padding=(1, 0), output_padding=(2, 1), groups=2)),
    ((2, 32, 4, 4), (32, 9, 3, 3), dict(stride=2, dilation=(1, 2), output_padding=1)),
]


@pytest.mark.parametrize("x_shape, w_shape, kwargs", WIDE_CASES)
def test_wider_layers_against_torch(x_shape, w_shape, kwargs):
    data = arrays(x_shape, w_shape, kwargs.get("groups", 1))
    check_op(ours(**kwargs), torch_conv_transpose(**kwargs), *data, atol=ATOL, numerical=False)


@pytest.mark.parametrize("x_shape, w_shape, kwargs", WIDE_CASES[:3] + [CASES[5][:3], CASES[8][:3]])
def test_every_kernel_path_on_cudasim(x_shape, w_shape, kwargs):
    """cudasim runs cuda/conv2d.cu as a GPU would: on every kernel path of conv2d's launcher, the op
    matches torch (Winograd's forward, for the input gradient, within its error)."""
    data = arrays(x_shape, w_shape, kwargs.get("groups", 1))
    device = gpucnn.device("cudasim")
    for path in kernel_paths(device):
        with kernel_path(path):
            atol = 1e-3 if path.startswith("winograd") else ATOL
            check_against_torch(ours(**kwargs), torch_conv_transpose(**kwargs), *data, atol=atol, device="cudasim")


@pytest.mark.parametrize("setting", ["default", "chunks", "phases", "parts", "blocks"])
def test_conv2d_cpu_paths(monkeypatch, setting):
    """On the cpu the op takes conv2d's paths: its forward (conv2d's input gradient) on wide rows at
    stride 1, the strided adds or (``phases``) the stride-2 phases, in chunks of one image (``chunks``);
    its input gradient (conv2d's forward) on the columns, in parts of the batch on threads (``parts``),
    on the 2x2 blocks (``blocks``) or by Winograd (the 32-channel 3x3 layer at stride 1)."""
    if setting == "chunks":
        monkeypatch.setattr(Conv2d, "SPLIT_BYTES", 0)
        monkeypatch.setattr(Conv2d, "CHUNK_BYTES", 1)
    elif setting == "phases":
        monkeypatch.setattr(Conv2d, "PHASES_MIN_VALUES", 0)
    elif setting == "parts":
        monkeypatch.setattr(Conv2d, "PARTS_MIN_MACS", 1)
        monkeypatch.setattr(Conv2d, "PARTS_MIN_TILES", 1)
    elif setting == "blocks":
        monkeypatch.setattr(Conv2d, "BLOCKED_CPU_RULE", ((4.0, 1 << 30, 1, 1),))
        monkeypatch.setattr(Conv2d, "BLOCKED_CPU_MIN_MACS", 0)
        monkeypatch.setattr(Conv2d, "BY_IMAGE_ROWS_MAX", 0)
    for x_shape, w_shape, kwargs in [((2, 4, 5, 9), (4, 3, 3, 3), dict(stride=2, padding=1, output_padding=1)),
                                     ((3, 4, 5, 6), (4, 3, 3, 3), dict(padding=1)),
                                     ((3, 2, 3, 4), (2, 2, 3, 2), dict(dilation=(3, 2), output_padding=(2, 1))),
                                     ((4, 32, 12, 12), (32, 32, 3, 3), dict(padding=1))]:
        data = arrays(x_shape, w_shape)
        check_against_torch(ours(**kwargs), torch_conv_transpose(**kwargs), *data, atol=1e-3 if w_shape[0] == 32
                            else ATOL)


def test_input_or_weight_gradient_alone():
    """Each gradient alone (a generator's noise needs none; a frozen weight's layer the input's only)."""
    x, w, b = arrays((2, 3, 4, 4), (3, 2, 3, 3), seed=1)
    tx, tw, tb = (torch.tensor(a, dtype=torch.float32) for a in (x, w, b))
    upstream = np.random.default_rng(2).standard_normal((2, 2, 10, 10)).astype(np.float32)
    for device in gpucnn.devices():
        for wanted in ("input", "weight"):
            gx = gpucnn.tensor(x.astype(np.float32), device=device, requires_grad=wanted == "input")
            gw = gpucnn.tensor(w.astype(np.float32), device=device, requires_grad=wanted == "weight")
            F.conv_transpose2d(gx, gw, gpucnn.tensor(b.astype(np.float32), device=device), stride=2,
                               output_padding=1).backward(upstream)
            reference = torch.tensor(x if wanted == "input" else w, dtype=torch.float32, requires_grad=True)
            inputs = (reference, tw) if wanted == "input" else (tx, reference)
            torch.nn.functional.conv_transpose2d(*inputs, tb, stride=2, output_padding=1).backward(
                torch.from_numpy(upstream))
            assert (gx.grad is None) == (wanted == "weight") and (gw.grad is None) == (wanted == "input")
            assert_close((gx if wanted == "input" else gw).grad, reference.grad, atol=ATOL, name=f"{wanted} {device}")


def test_empty_batch():
    for device in gpucnn.devices():
        x = gpucnn.zeros(0, 3, 4, 4, device=device, requires_grad=True)
        w = gpucnn.ones(3, 2, 3, 3, device=device, requires_grad=True)
        y = F.conv_transpose2d(x, w, gpucnn.ones(2, device=device), stride=2)
        assert y.shape == (0, 2, 9, 9)
        y.sum().backward()
        assert x.grad.shape == (0, 3, 4, 4)
        assert_close(w.grad, np.zeros((3, 2, 3, 3), np.float32))


def test_arguments_as_lists_and_numpy_ints():
    x, w = arrays((1, 2, 3, 3), (2, 2, 3, 3), bias=False)
    expected = torch_conv_transpose(stride=(2, 1), padding=1, output_padding=(1, 0))(
        torch.tensor(x), torch.tensor(w))
    y = F.conv_transpose2d(x, w, stride=[np.int64(2), 1], padding=np.int32(1), output_padding=[1, 0],
                           groups=np.int64(1), dilation=[1, 1])
    assert_close(y, expected)


# ------------------------------------------------------------------------------------- the layer
def copy_of(torch_module):
    """nn.ConvTranspose2d with torch_module's arguments and weights."""
    t = torch_module
    layer = nn.ConvTranspose2d(t.in_channels, t.out_channels, t.kernel_size, t.stride, t.padding, t.output_padding,
                               t.groups, t.bias is not None, t.dilation)
    layer.load_state_dict({key: value.detach().numpy() for key, value in t.state_dict().items()})
    return layer


@pytest.mark.parametrize("arguments", [
    dict(in_channels=8, out_channels=6, kernel_size=4, stride=2, padding=1),
    dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=(2, 3), padding=(1, 0), output_padding=(1, 2),
         groups=2, dilation=(1, 2), bias=False),
])
def test_layer_matches_torch(arguments):
    torch.manual_seed(0)
    reference = torch.nn.ConvTranspose2d(**arguments)
    layer = copy_of(reference)
    assert repr(layer) == repr(reference)
    x = np.random.default_rng(0).standard_normal((2, arguments["in_channels"], 4, 5)).astype(np.float32)
    assert_close(layer(x), reference(torch.from_numpy(x)), atol=ATOL)
    assert_close(layer(x[0]), reference(torch.from_numpy(x[0])), atol=ATOL)  # unbatched


@pytest.mark.parametrize("in_channels, out_channels, kernel_size, groups", [(64, 32, 4, 1), (16, 48, (3, 5), 4),
                                                                             (8, 8, 3, 8)])
def test_parameter_shapes_and_initialisation_as_torch(in_channels, out_channels, kernel_size, groups):
    """Weight (C_in, C_out/groups, R, S); weight and bias uniform within 1/sqrt(fan_in), fan_in =
    C_out/groups * R * S as torch counts it (kaiming_uniform with a = sqrt(5))."""
    gpucnn.manual_seed(0)
    torch.manual_seed(0)
    layer = nn.ConvTranspose2d(in_channels, out_channels, kernel_size, groups=groups)
    reference = torch.nn.ConvTranspose2d(in_channels, out_channels, kernel_size, groups=groups)
    assert layer.weight.shape == tuple(reference.weight.shape)
    assert layer.bias.shape == tuple(reference.bias.shape)
    bound = 1 / math.sqrt(reference.weight[0].numel())
    for ours_values, theirs in ((layer.weight.numpy(), reference.weight), (layer.bias.numpy(), reference.bias)):
        theirs = theirs.detach().numpy()
        assert np.abs(ours_values).max() <= bound and np.abs(theirs).max() <= bound
        if ours_values.size > 100:  # uniform on [-bound, bound]: reaches near it, spread bound/sqrt(3)
            assert np.abs(ours_values).max() > 0.95 * bound
            assert ours_values.std() == pytest.approx(theirs.std(), rel=0.1)
            assert ours_values.std() == pytest.approx(bound / math.sqrt(3), rel=0.1)
    assert [name for name, _ in layer.named_parameters()] == [name for name, _ in reference.named_parameters()]
    assert nn.ConvTranspose2d(4, 6, 3, bias=False).bias is None


def test_output_size_picks_output_padding_as_torch():
    torch.manual_seed(0)
    reference = torch.nn.ConvTranspose2d(3, 2, 3, stride=(3, 2), padding=1, dilation=(1, 2))
    layer = copy_of(reference)
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    tx = torch.from_numpy(x)
    for size in [(10, 11), (12, 12), (11, 12), [2, 2, 12, 11]]:
        assert_close(layer(x, output_size=size), reference(tx, output_size=size), atol=ATOL)
    assert_close(layer(x[0], output_size=(2, 11, 12)), reference(tx[0], output_size=(2, 11, 12)), atol=ATOL)
    assert layer(gpucnn.tensor(x), output_size=gpucnn.tensor(x).shape[:2] + (12, 11)).shape == (2, 2, 12, 11)
    with pytest.raises(ValueError, match=r"requested an output size of \(13, 13\), but valid sizes range from "
                                         r"\(10, 11\) to \(12, 12\) \(for an input of \(4, 5\)"):
        layer(x, output_size=(13, 13))
    with pytest.raises(ValueError, match=r"output size of \(9, 12\)"):
        layer(x, output_size=(9, 12))
    with pytest.raises(ValueError, match=r"for a 4-D input, output_size must be 2 or 4 ints, got \(11,\)"):
        layer(x, output_size=(11,))
    with pytest.raises(ValueError, match=r"output_size must be 2 or 4 ints, got \(11\.0, 13\)"):
        layer(x, output_size=(11.0, 13))
    with pytest.raises(TypeError, match="output_size must be a sequence of ints, got 11"):
        layer(x, output_size=11)


def test_output_size_overrides_an_output_padding_too_large():
    """As torch: the layer's own output_padding (here too large) counts only where output_size is not given."""
    layer = nn.ConvTranspose2d(1, 1, 3, output_padding=1)
    x = np.ones((1, 1, 4, 4), np.float32)
    assert layer(x, output_size=(6, 6)).shape == (1, 1, 6, 6)
    with pytest.raises(ValueError, match="output_padding"):
        layer(x)


def test_dcgan_generator_trains_as_torch():
    """A DCGAN generator (noise -> 4x4 -> 8x8 -> 16x16 RGB) from torch's initial weights: a few SGD steps
    with momentum on an MSE loss give torch's losses and weights."""
    torch.manual_seed(0)

    def generator(module):
        return module.Sequential(
            module.ConvTranspose2d(8, 16, 4, 1, 0, bias=False), module.BatchNorm2d(16), module.ReLU(),
            module.ConvTranspose2d(16, 8, 4, 2, 1, bias=False), module.BatchNorm2d(8), module.ReLU(),
            module.ConvTranspose2d(8, 3, 4, 2, 1), module.Tanh())

    reference = generator(torch.nn)
    state = {key: value.detach().numpy().copy() for key, value in reference.state_dict().items()}
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((4, 8, 1, 1)).astype(np.float32)
    target = rng.uniform(-1, 1, (4, 3, 16, 16)).astype(np.float32)
    torch_optimizer = torch.optim.SGD(reference.parameters(), lr=0.5, momentum=0.9)
    expected = []
    for _ in range(4):
        torch_optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(reference(torch.from_numpy(noise)), torch.from_numpy(target))
        loss.backward()
        torch_optimizer.step()
        expected.append(loss.item())
    assert expected[-1] < 0.9 * expected[0]  # it learns: the comparison below is of a moving model
    for device in gpucnn.devices():
        model = generator(nn)
        model.load_state_dict(state)
        model.to(device)
        optimizer = optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
        losses = []
        for _ in range(4):
            optimizer.zero_grad()
            loss = nn.MSELoss()(model(gpucnn.tensor(noise, device=device)), gpucnn.tensor(target, device=device))
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        np.testing.assert_allclose(losses, expected, rtol=1e-4, err_msg=device)
        for key, value in reference.state_dict().items():
            assert_close(model.state_dict()[key], value, atol=1e-4, rtol=1e-3, name=f"{key} on {device}")


def test_summary_shows_the_layer():
    result = gpucnn.summary(nn.Sequential(nn.ConvTranspose2d(8, 4, 4, 2, 1), nn.ReLU()), (8, 5, 5),
                            print_table=False)
    assert result.rows[0] == ("0", "ConvTranspose2d", (-1, 4, 10, 10), 8 * 4 * 16 + 4)


# ------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("x_shape, w_shape, kwargs, error, message", [
    ((1, 3, 4, 4), (3, 2, 3), {}, ValueError,
     r"weight must be 4-D \(C_in, C_out/groups, R, S\), got shape \(3, 2, 3\)"),
    ((1, 3, 4, 4), (4, 2, 3, 3), {}, ValueError,
     r"input has 3 channels but weight \(4, 2, 3, 3\) expects 4 .*input shape \(1, 3, 4, 4\)"),
    ((1, 3, 4, 4), (3, 2, 3, 3), dict(groups=2), ValueError,
     r"groups=2 does not divide the input's 3 channels \(input shape \(1, 3, 4, 4\), weight shape \(3, 2, 3, 3\)\)"),
    ((1, 2, 4, 4), (2, 2, 3, 3), dict(groups=0), ValueError, "groups must be at least 1, got 0"),
    ((1, 2, 4, 4), (2, 2, 3, 3), dict(groups=1.0), TypeError, "groups must be an int, got 1.0"),
    ((1, 2, 4, 4), (2, 2, 3, 3), dict(stride=2, output_padding=2), ValueError,
     r"output_padding \(2, 2\) must be smaller than either the stride \(2, 2\) or the dilation \(1, 1\).*"
     r"input shape \(1, 2, 4, 4\), weight shape \(2, 2, 3, 3\)"),
    ((1, 2, 4, 4), (2, 2, 3, 3), dict(output_padding=(0, 1)), ValueError,
     r"output_padding \(0, 1\) must be smaller than either the stride \(1, 1\) or the dilation \(1, 1\)"),
    ((1, 2, 4, 4), (2, 2, 3, 3), dict(output_padding=-1), ValueError, "output_padding must be at least 0, got -1"),
    ((1, 2, 4, 4), (2, 2, 3, 3), dict(padding=-1), ValueError, "padding must be at least 0, got -1"),
    ((1, 2, 4, 4), (2, 2, 3, 3), dict(padding="same"), TypeError, "padding must be an int or a pair of ints"),
    ((1, 2, 4, 4), (2, 2, 3, 3), dict(stride=(1, 0)), ValueError, r"stride must be at least 1, got \(1, 0\)"),
    ((1, 2, 4, 4), (2, 2, 3, 3), dict(dilation=(1, 2, 3)), TypeError, r"dilation must be an int or a pair of ints"),
    ((1, 2, 2, 2), (2, 2, 1, 1), dict(padding=1), ValueError,
     r"the output would be 0x0 .* too small: input shape \(1, 2, 2, 2\), weight shape \(2, 2, 1, 1\)"),
    ((1, 2, 0, 3), (2, 2, 3, 3), {}, ValueError,
     r"the input must have at least one row and one column, got input shape \(1, 2, 0, 3\)"),
    # unbatched (C, H, W): the shape named is the batch of one it becomes, as conv2d's
    ((3, 4, 4), (2, 2, 3, 3), {}, ValueError, r"input has 3 channels but weight .* input shape \(1, 3, 4, 4\)"),
    ((4, 4), (2, 2, 3, 3), {}, ValueError,
     r"input must be \(N, C, H, W\) or unbatched \(C, H, W\), got shape \(4, 4\)"),
])
def test_bad_arguments_name_themselves_and_the_shapes(x_shape, w_shape, kwargs, error, message):
    with pytest.raises(error, match=f"conv_transpose2d: {message}"):
        F.conv_transpose2d(np.zeros(x_shape, np.float32), np.zeros(w_shape, np.float32), **kwargs)


def test_bad_bias_and_dtypes():
    x, w = np.zeros((1, 4, 3, 3), np.float32), np.zeros((4, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"bias must have shape \(6,\) \(weight.shape\[1\] \* groups\) for weight "
                                         r"\(4, 3, 3, 3\) with groups=2, got \(3,\)"):
        F.conv_transpose2d(x, w, np.zeros(3, np.float32), groups=2)
    with pytest.raises(TypeError, match="input has dtype float64 but weight has dtype float32"):
        F.conv_transpose2d(x.astype(np.float64), w)
    with pytest.raises(TypeError, match="bias has dtype float64 but input and weight have dtype float32"):
        F.conv_transpose2d(x, w, np.zeros(3))
    with pytest.raises(TypeError, match="input must be a floating-point tensor, got dtype int64"):
        F.conv_transpose2d(x.astype(np.int64), w)
    with pytest.raises(TypeError, match="weight must be a floating-point tensor, got dtype int32"):
        F.conv_transpose2d(x, w.astype(np.int32))
    kernels = [name for name in gpucnn.devices() if gpucnn.device(name).runs_kernels]
    for device in kernels:
        with pytest.raises(TypeError, match=r"conv_transpose2d: the kernels of device .* take float32 only, got dtype "
                                            r"float64 \(input shape \(1, 4, 3, 3\), weight shape \(4, 3, 3, 3\)\)"):
            F.conv_transpose2d(gpucnn.tensor(x.astype(np.float64), device=device),
                               gpucnn.tensor(w.astype(np.float64), device=device))


@pytest.mark.parametrize("arguments, message", [
    (dict(in_channels=3, out_channels=4, kernel_size=3, groups=2), "in_channels=3 is not divisible by groups=2"),
    (dict(in_channels=4, out_channels=3, kernel_size=3, groups=2), "out_channels=3 is not divisible by groups=2"),
    (dict(in_channels=0, out_channels=3, kernel_size=3), "in_channels must be a positive int, got 0"),
    (dict(in_channels=2, out_channels=3, kernel_size=0), r"kernel_size must be at least 1, got 0"),
    (dict(in_channels=2, out_channels=3, kernel_size=3, output_padding=-1), "output_padding must be at least 0"),
    (dict(in_channels=2, out_channels=3, kernel_size=3, padding_mode="reflect"), "padding_mode must be 'zeros'"),
])
def test_bad_layer_arguments(arguments, message):
    with pytest.raises(ValueError, match=f"ConvTranspose2d: {message}"):
        nn.ConvTranspose2d(**arguments)
