"""layer_norm and group_norm (and their layers) against PyTorch: values, gradients of the input, weight and
bias, central differences, awkward shapes and bad arguments."""

import numpy as np
import pytest
import torch
import torch.nn.functional as torch_F
from helpers import assert_close, check_op

import gpucnn
from gpucnn import nn
from gpucnn.nn import functional as F


@pytest.mark.parametrize("shape, normalized", [((4, 6), 6), ((2, 3, 5), (3, 5)), ((2, 3, 4, 5), (5,)), ((7,), 7),
                                               ((3, 1), 1)])
@pytest.mark.parametrize("affine", [False, True])
def test_layer_norm_against_torch(shape, normalized, affine):
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape) * 3 + 1
    dims = (normalized,) if isinstance(normalized, int) else normalized
    if affine:
        w, b = rng.standard_normal(dims), rng.standard_normal(dims)
        check_op(lambda t, u, v: F.layer_norm(t, normalized, u, v, eps=1e-3),
                 lambda t, u, v: torch_F.layer_norm(t, dims, u, v, eps=1e-3), x, w, b, atol=1e-4)
    else:
        check_op(lambda t: F.layer_norm(t, normalized), lambda t: torch_F.layer_norm(t, dims), x, atol=1e-4)


@pytest.mark.parametrize("shape, groups", [((2, 6, 3, 4), 3), ((3, 4, 5), 1), ((2, 4, 2, 2), 4), ((4, 6), 2),
                                           ((0, 4, 2, 2), 2)])
@pytest.mark.parametrize("affine", [False, True])
def test_group_norm_against_torch(shape, groups, affine):
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape) * 2 - 1
    if affine:
        w, b = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
        check_op(lambda t, u, v: F.group_norm(t, groups, u, v), lambda t, u, v: torch_F.group_norm(t, groups, u, v),
                 x, w, b, atol=1e-4)
    else:
        check_op(lambda t: F.group_norm(t, groups), lambda t: torch_F.group_norm(t, groups), x, atol=1e-4)


@pytest.mark.parametrize("device", gpucnn.devices())
def test_layers_as_torchs(device):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)
    pairs = [(nn.LayerNorm((3, 3)), torch.nn.LayerNorm((3, 3))),
             (nn.LayerNorm(3, elementwise_affine=False), torch.nn.LayerNorm(3, elementwise_affine=False)),
             (nn.LayerNorm(3, bias=False), torch.nn.LayerNorm(3, bias=False)),
             (nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4)), (nn.GroupNorm(4, 4, affine=False),
                                                             torch.nn.GroupNorm(4, 4, affine=False))]
    for ours, theirs in pairs:
        ours.to(device)
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        for p, q in zip(ours.parameters(), theirs.parameters()):
            p.data[...] = ours.weight.device.asarray(rng.standard_normal(p.shape).astype(np.float32))
            q.data = torch.from_numpy(p.numpy().copy())
        mine, reference = gpucnn.tensor(x, device=device, requires_grad=True), torch.tensor(x, requires_grad=True)
        out, expected = ours(mine), theirs(reference)
        assert_close(out, expected.detach(), atol=1e-5)
        out.sum().backward()
        (expected * 1).sum().backward()
        assert_close(mine.grad, reference.grad, atol=1e-5)
        for p, q in zip(ours.parameters(), theirs.parameters()):
            assert_close(p.grad, q.grad, atol=1e-4)


def test_bad_arguments_raise_naming_them():
    for call, error, message in (
            (lambda: F.layer_norm(gpucnn.ones(2, 3), (2,)), ValueError,
             r"layer_norm: normalized_shape \(2,\) must be the last dimensions of the input's shape \(2, 3\)"),
            (lambda: F.layer_norm(gpucnn.ones(2, 3), 3, gpucnn.ones(2)), ValueError,
             r"layer_norm: weight must have shape \(3,\), got \(2,\)"),
            (lambda: F.group_norm(gpucnn.ones(2, 6, 2), 4), ValueError,
             "group_norm: num_groups must be a positive int that divides the 6 channels"),
            (lambda: F.group_norm(gpucnn.ones(2, 4), 2, bias=gpucnn.ones(2)), ValueError,
             r"group_norm: bias must have shape \(4,\), got \(2,\)"),
            (lambda: F.layer_norm(gpucnn.tensor([[1, 2]]), 2), TypeError,
             "layer_norm: input must be a floating-point tensor, got dtype int64"),
            (lambda: F.layer_norm(gpucnn.ones(2, 3), 3, eps=-1), ValueError, "layer_norm: eps must be a non-negative"),
            (lambda: nn.GroupNorm(3, 4), ValueError, r"GroupNorm: num_channels \(4\) must be divisible by num_groups"),
            (lambda: nn.LayerNorm(0), ValueError, "LayerNorm: normalized_shape")):
        with pytest.raises(error, match=message):
            call()
