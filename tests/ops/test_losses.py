"""nll_loss, mse_loss and l1_loss against PyTorch (every reduction, class weights, ignored and spatial targets),
gradients, and bad input."""

import numpy as np
import pytest
import torch
import torch.nn.functional as torch_F
from helpers import assert_close, check_op

import gpucnn
from gpucnn.nn import functional as F

REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(5, 4), (4,), (3, 4, 2, 3), (1, 1), (0, 3)])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_against_torch(shape, reduction, weighted):
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape)
    classes = shape[0] if len(shape) == 1 else shape[1]
    target = rng.integers(0, classes, () if len(shape) == 1 else (shape[0],) + shape[2:])
    if target.ndim and target.size > 2:
        target.reshape(-1)[1] = 7  # ignored (ignore_index=7)
    weight = rng.uniform(0.5, 2.0, classes) if weighted else None

    def ours(x, t):
        w = None if weight is None else gpucnn.tensor(weight, dtype=x.dtype, device=x.device)
        return F.nll_loss(x, t, w, ignore_index=7, reduction=reduction)

    def theirs(x, t):
        w = None if weight is None else torch.tensor(weight, dtype=x.dtype)
        return torch_F.nll_loss(x, t, w, ignore_index=7, reduction=reduction)

    check_op(ours, theirs, x, target, numerical=shape[0] > 0)


def test_nll_loss_of_log_softmax_is_cross_entropy_and_ignores_nan_rows():
    rng = np.random.default_rng(2)
    x = gpucnn.tensor(rng.standard_normal((6, 5)).astype(np.float32), requires_grad=True)
    y = gpucnn.tensor([0, 4, 2, 2, 1, 3])
    assert_close(F.nll_loss(F.log_softmax(x, 1), y), F.cross_entropy(x, y), atol=1e-6)
    data = rng.standard_normal((3, 4)).astype(np.float32)
    data[1] = np.nan
    for reduction in REDUCTIONS:
        ours = gpucnn.tensor(data, requires_grad=True)
        theirs = torch.tensor(data, requires_grad=True)
        loss = F.nll_loss(ours, gpucnn.tensor([2, -100, 0]), reduction=reduction)
        expected = torch_F.nll_loss(theirs, torch.tensor([2, -100, 0]), reduction=reduction)
        assert_close(loss, expected.detach())
        loss.sum().backward()
        expected.sum().backward()
        assert_close(ours.grad, theirs.grad)
    x = gpucnn.zeros(2, 3, requires_grad=True)
    everything_ignored = F.nll_loss(x, gpucnn.tensor([-100, -100]))
    everything_ignored.backward()
    assert np.isnan(everything_ignored.item())  # 0 / 0, as torch's, whose gradient is 0 there
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((2, 3)))


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.nll_loss(gpucnn.zeros(2, 3), gpucnn.tensor([0, 3])), ValueError,
     r"nll_loss: target value 3 is out of range \[0, 3\) \(input shape \(2, 3\), target shape \(2,\)\)"),
    (lambda: F.nll_loss(gpucnn.zeros(2, 3), gpucnn.tensor([0, 1, 2])), ValueError,
     "nll_loss: input batch size 2 does not match target batch size 3"),
    (lambda: F.nll_loss(gpucnn.zeros(2, 3), gpucnn.tensor([0.0, 1.0])), TypeError,
     "nll_loss: target must hold integer class indices, got dtype float32"),
    (lambda: F.nll_loss(gpucnn.zeros(2, 3), gpucnn.tensor([0, 1]), gpucnn.ones(4)), ValueError,
     r"nll_loss: weight must have shape \(3,\)"),
    (lambda: F.nll_loss(gpucnn.zeros(2, 3), gpucnn.tensor([0, 1]), reduction="avg"), ValueError,
     "nll_loss: reduction must be one of"),
    (lambda: F.mse_loss(gpucnn.zeros(4, 1), gpucnn.zeros(4)), ValueError,
     r"mse_loss: input shape \(4, 1\) and target shape \(4,\) must be the same"),
    (lambda: F.l1_loss(gpucnn.zeros(4), gpucnn.tensor([1, 2, 3, 4])), TypeError,
     "l1_loss: input and target must be floating point, got dtypes float32 and int64"),
    (lambda: F.mse_loss(gpucnn.zeros(2), gpucnn.zeros(2), reduction="avg"), ValueError,
     "mse_loss: reduction must be one of"),
])
def test_loss_errors_name_the_argument_and_shapes(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
@pytest.mark.parametrize("shape", [(7,), (3, 4, 5), ()])
def test_regression_losses_against_torch(name, reduction, shape):
    """Both the input's and the target's gradients, as torch's."""
    rng = np.random.default_rng(5)
    x, t = rng.standard_normal(shape), rng.standard_normal(shape)
    check_op(lambda a, b: getattr(F, name)(a, b, reduction=reduction),
             lambda a, b: getattr(torch_F, name)(a, b, reduction=reduction), x, t)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
def test_weighted_regression_losses_against_torch(name, reduction):
    rng = np.random.default_rng(6)
    x, t, w = rng.standard_normal((4, 3)), rng.standard_normal((4, 3)), rng.uniform(0.1, 2, (4, 3))
    check_op(lambda a, b, c: getattr(F, name)(a, b, reduction=reduction, weight=c),
             lambda a, b, c: getattr(torch_F, name)(a, b, reduction=reduction, weight=c), x, t, w)
    with pytest.raises(ValueError, match=rf"{name}: weight must have the input's shape \(4, 3\), got shape \(3,\)"):
        getattr(F, name)(gpucnn.tensor(x), gpucnn.tensor(t), weight=gpucnn.ones(3))


def test_l1_loss_gradient_at_equal_values_is_zero_as_torchs():
    x = gpucnn.tensor([1.0, 2.0, 3.0], requires_grad=True)
    F.l1_loss(x, gpucnn.tensor([1.0, 0.0, 5.0])).backward()
    t = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    torch_F.l1_loss(t, torch.tensor([1.0, 0.0, 5.0])).backward()
    assert_close(x.grad, t.grad)
