"""adaptive_max_pool2d against PyTorch (values, indices, gradients with overlapping windows and ties, NaN,
unbatched input, the max_pool2d path for dividing sizes), its layer, and nn.Unflatten."""

import numpy as np
import pytest
import torch
import torch.nn.functional as torch_F
from helpers import assert_close, check_op

import gpucnn
from gpucnn import nn
from gpucnn.nn import functional as F


@pytest.mark.parametrize("shape, output_size", [
    ((2, 3, 7, 5), (3, 2)), ((2, 3, 7, 5), 4), ((1, 2, 5, 5), (5, 3)), ((2, 3, 6, 4), (3, 2)), ((2, 3, 6, 4), 1),
    ((3, 7, 9), (2, None)), ((2, 3, 3, 3), (7, 7)), ((0, 2, 5, 5), 2),
])
def test_against_torch(shape, output_size):
    """Uneven, overlapping, dividing (max_pool2d's path), global, unbatched, None-kept, larger-than-input sizes;
    values and gradients (which add up where windows overlap), then central differences."""
    x = np.random.default_rng(len(shape)).standard_normal(shape)
    check_op(lambda t: F.adaptive_max_pool2d(t, output_size), lambda t: torch_F.adaptive_max_pool2d(t, output_size),
             x, numerical=0 not in shape)


@pytest.mark.parametrize("device", gpucnn.devices())
@pytest.mark.parametrize("output_size", [(1, 2), (2, 3), 1, (3, 4)])
def test_indices_ties_and_nan_as_torch(device, output_size):
    """The first maximum in row-major order among ties, the last NaN where a window has NaN, as torch's."""
    data = np.float32([[[[1, 1, 3, 0], [2, 3, 0, 3], [3, 1, 1, 2]],
                        [[1, np.nan, 3, 1], [2, np.nan, np.nan, 7], [0, 0, 0, 0]]]])
    x = gpucnn.tensor(data, device=device, requires_grad=True)
    reference = torch.tensor(data, requires_grad=True)
    values, indices = F.adaptive_max_pool2d(x, output_size, return_indices=True)
    expected, expected_indices = torch_F.adaptive_max_pool2d(reference, output_size, return_indices=True)
    assert_close(values, expected.detach())
    assert indices.dtype == np.int64
    np.testing.assert_array_equal(indices.numpy(), expected_indices.numpy())
    values.sum().backward()
    expected.sum().backward()
    assert_close(x.grad, reference.grad)
    unbatched, unbatched_indices = F.adaptive_max_pool2d(gpucnn.tensor(data[0], device=device), output_size, True)
    np.testing.assert_array_equal(unbatched_indices.numpy(), expected_indices.numpy()[0])


def test_layer_as_torchs():
    for arguments in [(3,), ((2, None),), ((2, 3), True)]:
        ours, theirs = nn.AdaptiveMaxPool2d(*arguments), torch.nn.AdaptiveMaxPool2d(*arguments)
        assert repr(ours) == repr(theirs)
        x = np.random.default_rng(15).standard_normal((2, 3, 7, 6)).astype(np.float32)
        result, expected = ours(gpucnn.tensor(x)), theirs(torch.tensor(x))
        if len(arguments) == 2:
            np.testing.assert_array_equal(result[1].numpy(), expected[1].numpy())
            result, expected = result[0], expected[0]
        assert_close(result, expected)


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.adaptive_max_pool2d(gpucnn.zeros(2, 3), 1), ValueError,
     r"adaptive_max_pool2d: input must be \(N, C, H, W\) or unbatched \(C, H, W\), got shape \(2, 3\)"),
    (lambda: F.adaptive_max_pool2d(gpucnn.zeros(1, 2, 3, 3), 0), ValueError,
     "adaptive_max_pool2d: output_size must be at least 1"),
    (lambda: F.adaptive_max_pool2d(gpucnn.zeros(1, 2, 0, 3), 2), ValueError,
     "adaptive_max_pool2d: input height and width must be non-zero"),
    (lambda: F.adaptive_max_pool2d(gpucnn.zeros(1, 2, 3, 3), 2, return_indices=1), TypeError,
     "adaptive_max_pool2d: return_indices must be a bool"),
])
def test_bad_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("dim, sizes, shape", [(1, (2, 3), (4, 6)), (-1, (2, -1, 2), (3, 4, 8)), (0, (1, 5), (5,)),
                                               (1, (3, 1, 1), (2, 3))])
def test_unflatten_as_torchs(dim, sizes, shape):
    ours, theirs = nn.Unflatten(dim, sizes), torch.nn.Unflatten(dim, sizes)
    assert repr(ours) == repr(theirs)
    x = np.random.default_rng(16).standard_normal(shape)
    check_op(ours, theirs, x)


@pytest.mark.parametrize("call, error, message", [
    (lambda: nn.Unflatten(1, (2, 4))(gpucnn.zeros(3, 6)), ValueError,
     r"Unflatten: unflattened_size \(2, 4\) does not multiply to 6, the size of dim 1 of input shape \(3, 6\)"),
    (lambda: nn.Unflatten(1, (4, -1))(gpucnn.zeros(3, 6)), ValueError, "does not multiply to 6"),
    (lambda: nn.Unflatten(2, (2, 3))(gpucnn.zeros(3, 6)), ValueError,
     r"Unflatten: dim 2 is out of range for input shape \(3, 6\)"),
    (lambda: nn.Unflatten(1, (-1, -1)), ValueError, "at most one -1"),
    (lambda: nn.Unflatten(1, 6), TypeError, "Unflatten: unflattened_size must be a tuple of ints"),
])
def test_unflatten_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()
