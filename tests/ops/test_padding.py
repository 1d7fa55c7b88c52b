"""pad in every mode against PyTorch (values and gradients on every device, then central differences), with
negative pads, the largest pads each mode takes, empty and unbatched inputs; the padding layers; bad arguments."""

import numpy as np
import pytest
import torch
import torch.nn.functional as torch_F
from helpers import assert_close, check_op

import gpucnn
from gpucnn import nn
from gpucnn.nn import functional as F


@pytest.mark.parametrize("shape, pad", [
    ((2, 3, 4, 5), (1, 2)), ((2, 3, 4, 5), (1, 2, 3, 0)), ((2, 3, 4, 5), (0, 0, 0, 0, 1, 1, 2, 0)),
    ((2, 3, 4, 5), (-1, 2, 0, -2)), ((3, 4), (-2, -2, 1, 0)), ((5,), (3, -5)), ((2, 0, 3), (1, 1, 1, 1)),
    ((2, 3), ()), ((4, 4), (-4, 0)),
])
@pytest.mark.parametrize("value", [None, 2.5])
def test_constant_pad_against_torch(shape, pad, value):
    x = np.random.default_rng(len(pad)).standard_normal(shape)
    check_op(lambda t: F.pad(t, pad, value=value), lambda t: torch_F.pad(t, pad, value=value), x,
             numerical=0 not in shape)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("shape, pad", [
    ((2, 5), (2, 1)), ((2, 3, 5), (4, 0)), ((3, 4, 5), (1, 2, 3, 0)), ((2, 3, 4, 5), (4, 4, 3, 3)),
    ((2, 3, 4, 5), (0, 1, 2, 0)), ((2, 3, 3, 4, 5), (1, 0, 2, 1, 1, 2)), ((1, 2, 3, 4, 5), (-1, 2, 1, 0, 0, 1)),
])
def test_other_modes_against_torch(mode, shape, pad):
    """The largest pads each mode takes (reflect size - 1, circular size), on 1 to 3 padded dims, batched and
    unbatched; the gradient adds up where one input element fills several output ones."""
    if mode == "reflect":
        pad = tuple(min(p, size - 1) for p, size in zip(pad, [n for n in reversed(shape) for _ in range(2)]))
    x = np.random.default_rng(len(shape)).standard_normal(shape)
    check_op(lambda t: F.pad(t, pad, mode), lambda t: torch_F.pad(t, pad, mode), x)


def test_constant_pad_of_integers_keeps_the_dtype():
    ours = F.pad(gpucnn.tensor([[1, 2], [3, 4]]), (1, 0, 0, 1), value=7)
    expected = torch_F.pad(torch.tensor([[1, 2], [3, 4]]), (1, 0, 0, 1), value=7)
    assert ours.dtype == np.int64
    np.testing.assert_array_equal(ours.numpy(), expected.numpy())


@pytest.mark.parametrize("ours, theirs", [
    (nn.ZeroPad2d(2), torch.nn.ZeroPad2d(2)), (nn.ZeroPad2d((1, 0, -1, 2)), torch.nn.ZeroPad2d((1, 0, -1, 2))),
    (nn.ConstantPad2d((1, 2, 3, 0), 3.5), torch.nn.ConstantPad2d((1, 2, 3, 0), 3.5)),
    (nn.ReflectionPad2d(2), torch.nn.ReflectionPad2d(2)), (nn.ReflectionPad2d((3, 0, 1, 2)),
                                                           torch.nn.ReflectionPad2d((3, 0, 1, 2))),
    (nn.ReplicationPad2d((0, 5, 1, 1)), torch.nn.ReplicationPad2d((0, 5, 1, 1))),
], ids=repr)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 4, 5)])
def test_pad_layers_as_torchs(ours, theirs, shape):
    assert repr(ours) == repr(theirs)
    x = np.random.default_rng(14).standard_normal(shape).astype(np.float32)
    assert_close(ours(gpucnn.tensor(x)), theirs(torch.tensor(x)))


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.pad(gpucnn.zeros(2, 3), (1, 1, 1)), ValueError, r"pad: pad must have an even length"),
    (lambda: F.pad(gpucnn.zeros(2, 3), (1, 1, 1, 1, 1, 1)), ValueError,
     r"pad: pad \(1, 1, 1, 1, 1, 1\) pads 3 dimensions, but the input \(shape \(2, 3\)\) has 2"),
    (lambda: F.pad(gpucnn.zeros(2, 3), (1.0, 1)), TypeError, r"pad: pad must be a tuple of ints, got \(1.0, 1\)"),
    (lambda: F.pad(gpucnn.zeros(2, 3), (1, 1), mode="wrap"), ValueError, "pad: mode must be one of"),
    (lambda: F.pad(gpucnn.zeros(1, 2, 3, 4), (1, 4, 0, 0), mode="reflect"), ValueError,
     r"pad: reflect pads \(1, 4\) of dim 3 must be less than its size 4 \(input shape \(1, 2, 3, 4\)\)"),
    (lambda: F.pad(gpucnn.zeros(1, 2, 3, 4), (5, 0, 0, 0), mode="circular"), ValueError,
     r"pad: circular pads \(5, 0\) of dim 3 must be at most its size 4"),
    (lambda: F.pad(gpucnn.zeros(1, 2, 0, 4), (1, 1, 1, 1), mode="replicate"), ValueError,
     "pad: mode 'replicate' cannot pad dim 2 of size 0"),
    (lambda: F.pad(gpucnn.zeros(1, 2, 3, 4), (1, 1), mode="reflect"), ValueError,
     r"pad: mode 'reflect' pads the last 1, 2 or 3 dimensions .* got 2 pads for input shape \(1, 2, 3, 4\)"),
    (lambda: F.pad(gpucnn.zeros(1, 2, 3, 4), (1, 1, 1, 1), mode="reflect", value=1.0), ValueError,
     "pad: mode 'reflect' takes no value, got value=1.0"),
    (lambda: F.pad(gpucnn.zeros(3, 4), (-3, -2)), ValueError,
     r"pad: pads \(-3, -2\) of dim 1 leave a negative size -1 \(input shape \(3, 4\)\)"),
    (lambda: F.pad(gpucnn.zeros(3, 4), (1, 1), value="1"), TypeError, "pad: value must be a real number"),
    (lambda: nn.ZeroPad2d((1, 2, 3)), TypeError, r"ZeroPad2d: padding must be an int or 4 ints"),
    (lambda: nn.ReflectionPad2d(1)(gpucnn.zeros(3, 4)), ValueError,
     r"ReflectionPad2d: expected \(N, C, H, W\) or unbatched \(C, H, W\) input, got shape \(3, 4\)"),
])
def test_bad_arguments_name_the_argument_and_shapes(call, error, message):
    with pytest.raises(error, match=message):
        call()
