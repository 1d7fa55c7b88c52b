"""nll_loss, mse_loss, l1_loss, binary_cross_entropy (of probabilities and of logits), smooth_l1_loss, huber_loss,
kl_div and one_hot against PyTorch (every reduction, weights, ignored and spatial targets), the loss layers,
gradients, and bad input."""

import numpy as np
import pytest
import torch
import torch.nn.functional as torch_F
from helpers import assert_close, check_against_torch, check_op

import gpucnn
from gpucnn import nn
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


# ---------------------------------------------------------------------------- binary cross-entropy, smooth L1,
# Huber, KL divergence, one_hot
def probabilities(rng, shape):
    """Probabilities in (0.02, 0.98), away from the clamped logs' ends."""
    return rng.uniform(0.02, 0.98, shape)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape, weight_shape", [((4, 3), None), ((4, 3), (4, 3)), ((4, 3), (3,)), ((2, 3, 4), (3, 1)),
                                                 ((), None), ((0, 3), (3,))])
def test_binary_cross_entropy_against_torch(shape, weight_shape, reduction):
    """Gradients of the input and the target as torch's; the weight's (broadcast to the input's shape), which
    torch does not give, against central differences."""
    rng = np.random.default_rng(8)
    arrays = [probabilities(rng, shape), rng.uniform(0, 1, shape)]
    if weight_shape is not None:
        arrays.append(rng.uniform(0.1, 2, weight_shape))
    check_op(lambda *a: F.binary_cross_entropy(*a, reduction=reduction),
             lambda x, t, *w: torch_F.binary_cross_entropy(x, t, *[v.detach() for v in w], reduction=reduction),
             *arrays, numerical=0 not in shape)


def test_binary_cross_entropy_clamps_its_logs_at_0_and_1_as_torch():
    """x = 0 or 1 gives at most 100 (log clamped to -100) and a finite input gradient; the target's gradient is
    torch's unclamped log(1 - x) - log(x)."""
    x, t = np.array([0.0, 1.0, 0.0, 1.0, 0.5, 1e-30]), np.array([1.0, 0.0, 0.0, 1.0, 0.5, 1.0])
    for reduction in REDUCTIONS:
        check_against_torch(lambda a, b: F.binary_cross_entropy(a, b, reduction=reduction),
                            lambda a, b: torch_F.binary_cross_entropy(a, b, reduction=reduction), x, t)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight_shape, pos_weight_shape", [(None, None), ((5, 3), None), (None, (3,)), ((3,), (3,)),
                                                            ((5, 1), (5, 3))])
def test_binary_cross_entropy_with_logits_against_torch(weight_shape, pos_weight_shape, reduction):
    rng = np.random.default_rng(9)
    arrays = [rng.standard_normal((5, 3)) * 3, rng.uniform(0, 1, (5, 3))]
    for shape in (weight_shape, pos_weight_shape):
        arrays.append(None if shape is None else rng.uniform(0.2, 3, shape))
    w, p = arrays[2:]
    present = [a for a in arrays if a is not None]

    def call(module, function):
        def run(x, t, *rest):
            rest = list(rest)
            weight = rest.pop(0) if w is not None else None
            pos_weight = rest.pop(0) if p is not None else None
            if module is torch_F:  # torch gives the weights no gradient: central differences check ours
                weight = None if weight is None else weight.detach()
                pos_weight = None if pos_weight is None else pos_weight.detach()
            return getattr(module, function)(x, t, weight, reduction=reduction, pos_weight=pos_weight)
        return run

    check_op(call(F, "binary_cross_entropy_with_logits"), call(torch_F, "binary_cross_entropy_with_logits"), *present)


def test_binary_cross_entropy_with_logits_is_stable_at_large_logits():
    """|x| = 100 and 1000 neither overflow nor lose the loss: (1 - t) x + log(1 + exp(-x)), as torch's."""
    x = np.array([-1000.0, -100.0, -30.0, 0.0, 30.0, 100.0, 1000.0])
    t = np.array([1.0, 0.0, 0.3, 0.5, 1.0, 0.0, 0.7])
    check_against_torch(lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction="none"),
                        lambda a, b: torch_F.binary_cross_entropy_with_logits(a, b, reduction="none"), x, t)
    check_against_torch(lambda a, b, p: F.binary_cross_entropy_with_logits(a, b, pos_weight=p),
                        lambda a, b, p: torch_F.binary_cross_entropy_with_logits(a, b, pos_weight=p.detach()), x, t,
                        np.full(7, 2.5))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", [1.0, 0.5, 2.0, 0.0])
def test_smooth_l1_loss_against_torch(beta, reduction):
    rng = np.random.default_rng(10)
    x, t = rng.standard_normal((4, 5)) * 2, rng.standard_normal((4, 5))
    check_op(lambda a, b: F.smooth_l1_loss(a, b, reduction=reduction, beta=beta),
             lambda a, b: torch_F.smooth_l1_loss(a, b, reduction=reduction, beta=beta), x, t)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("delta", [1.0, 0.5, 3.0])
def test_huber_loss_against_torch(delta, reduction):
    rng = np.random.default_rng(11)
    x, t, w = rng.standard_normal((4, 5)) * 2, rng.standard_normal((4, 5)), rng.uniform(0.1, 2, (4, 5))
    check_op(lambda a, b: F.huber_loss(a, b, reduction=reduction, delta=delta),
             lambda a, b: torch_F.huber_loss(a, b, reduction=reduction, delta=delta), x, t)
    check_op(lambda a, b, c: F.huber_loss(a, b, reduction=reduction, delta=delta, weight=c),
             lambda a, b, c: torch_F.huber_loss(a, b, reduction=reduction, delta=delta, weight=c), x, t, w)


def test_smooth_l1_and_huber_at_the_switch_and_at_zero_as_torch():
    """Differences of exactly +-beta (+-delta), 0, and the gradient there."""
    x = np.array([1.5, -1.5, 0.0, 0.75, 3.0])
    t = np.array([0.0, 0.0, 0.0, 0.0, 3.0])
    for beta in (1.5, 0.75, 0.0):
        check_against_torch(lambda a, b: F.smooth_l1_loss(a, b, reduction="none", beta=beta),
                            lambda a, b: torch_F.smooth_l1_loss(a, b, reduction="none", beta=beta), x, t)
    for delta in (1.5, 0.75):
        check_against_torch(lambda a, b: F.huber_loss(a, b, reduction="none", delta=delta),
                            lambda a, b: torch_F.huber_loss(a, b, reduction="none", delta=delta), x, t)


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss")
@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("shape, target_shape", [((4, 5), (4, 5)), ((3, 2, 4), (4,)), ((), ())])
def test_kl_div_against_torch(shape, target_shape, reduction, log_target):
    """Input log-probabilities; target probabilities or log-probabilities, broadcast against the input."""
    rng = np.random.default_rng(12)
    x = np.log(rng.uniform(0.05, 1, shape))
    t = rng.uniform(0.05, 1, target_shape)
    t = np.log(t) if log_target else t
    check_op(lambda a, b: F.kl_div(a, b, reduction=reduction, log_target=log_target),
             lambda a, b: torch_F.kl_div(a, b, reduction=reduction, log_target=log_target), x, t)


def test_kl_div_target_of_zero_contributes_nothing_as_torch():
    """t = 0 gives 0 (0 log 0 = 0), whatever the input; the target's gradient there is torch's NaN."""
    x, t = np.array([-1.0, -2.0, -0.5]), np.array([0.0, 0.3, 0.7])
    check_against_torch(lambda a, b: F.kl_div(a, b, reduction="sum"),
                        lambda a, b: torch_F.kl_div(a, b, reduction="sum"), x, t)


@pytest.mark.parametrize("device", gpucnn.devices())
def test_one_hot_as_torch(device):
    for values, classes in [([0, 2, 1, 2], -1), ([[1, 0], [3, 3]], 5), ([], 3), (4, -1), ([0], 1)]:
        ours = F.one_hot(gpucnn.tensor(np.array(values, np.int64), device=device), classes)
        expected = torch_F.one_hot(torch.tensor(values, dtype=torch.int64), classes)
        assert ours.dtype == np.int64 and ours.device == gpucnn.device(device)
        np.testing.assert_array_equal(ours.numpy(), expected.numpy())


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss")
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_loss_layers_as_their_functions(reduction):
    rng = np.random.default_rng(13)
    p, x, t = probabilities(rng, (4, 3)), rng.standard_normal((4, 3)), rng.uniform(0, 1, (4, 3))
    w, pw = rng.uniform(0.5, 2, (3,)), rng.uniform(0.5, 2, (3,))
    pairs = [
        (nn.BCELoss(w, reduction=reduction), torch.nn.BCELoss(torch.tensor(w), reduction=reduction), p),
        (nn.BCEWithLogitsLoss(w, reduction=reduction, pos_weight=pw),
         torch.nn.BCEWithLogitsLoss(torch.tensor(w), reduction=reduction, pos_weight=torch.tensor(pw)), x),
        (nn.SmoothL1Loss(reduction=reduction, beta=0.5), torch.nn.SmoothL1Loss(reduction=reduction, beta=0.5), x),
        (nn.HuberLoss(reduction=reduction, delta=0.5), torch.nn.HuberLoss(reduction=reduction, delta=0.5), x),
        (nn.KLDivLoss(reduction=reduction, log_target=True), torch.nn.KLDivLoss(reduction=reduction, log_target=True),
         x),
    ]
    for ours, theirs, input in pairs:
        assert_close(ours(gpucnn.tensor(input), gpucnn.tensor(t)), theirs(torch.tensor(input), torch.tensor(t)))
    bce = nn.BCEWithLogitsLoss(w, pos_weight=pw)
    assert sorted(bce.state_dict()) == ["pos_weight", "weight"]
    assert repr(bce) == "BCEWithLogitsLoss(reduction='mean')"
    assert repr(nn.KLDivLoss(reduction="batchmean")) == "KLDivLoss(reduction='batchmean', log_target=False)"
    assert repr(nn.SmoothL1Loss(beta=0.5)) == "SmoothL1Loss(reduction='mean', beta=0.5)"
    assert repr(nn.HuberLoss()) == "HuberLoss(reduction='mean', delta=1.0)"


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.binary_cross_entropy(gpucnn.tensor([0.5, 1.5]), gpucnn.ones(2)), ValueError,
     r"binary_cross_entropy: every element of input must be between 0 and 1 .* input shape \(2,\)"),
    (lambda: F.binary_cross_entropy(gpucnn.tensor([0.5, np.nan]), gpucnn.ones(2)), ValueError,
     "every element of input must be between 0 and 1"),
    (lambda: F.binary_cross_entropy(gpucnn.full((2, 3), 0.5), gpucnn.ones(3)), ValueError,
     r"binary_cross_entropy: input shape \(2, 3\) and target shape \(3,\) must be the same"),
    (lambda: F.binary_cross_entropy(gpucnn.full((2, 3), 0.5), gpucnn.ones(2, 3), gpucnn.ones(2)), ValueError,
     r"binary_cross_entropy: weight of shape \(2,\) does not broadcast to the input's shape \(2, 3\)"),
    (lambda: F.binary_cross_entropy_with_logits(gpucnn.zeros(2, 3), gpucnn.ones(2, 3), pos_weight=gpucnn.ones(4)),
     ValueError, r"pos_weight of shape \(4,\) does not broadcast to the input's shape \(2, 3\)"),
    (lambda: F.binary_cross_entropy_with_logits(gpucnn.zeros(2), gpucnn.tensor([1, 0])), TypeError,
     "binary_cross_entropy_with_logits: input and target must be floating point, got dtypes float32 and int64"),
    (lambda: F.binary_cross_entropy_with_logits(gpucnn.zeros(2), gpucnn.ones(2), reduction="batchmean"),
     ValueError, "binary_cross_entropy_with_logits: reduction must be one of"),
    (lambda: F.smooth_l1_loss(gpucnn.zeros(2), gpucnn.ones(2), beta=-1.0), ValueError,
     "smooth_l1_loss: beta must be non-negative, got -1.0"),
    (lambda: F.huber_loss(gpucnn.zeros(2), gpucnn.ones(2), delta=0), ValueError,
     "huber_loss: delta must be positive, got 0"),
    (lambda: F.huber_loss(gpucnn.zeros(2, 2), gpucnn.ones(2, 2), weight=gpucnn.ones(2)), ValueError,
     r"huber_loss: weight must have the input's shape \(2, 2\), got shape \(2,\)"),
    (lambda: nn.HuberLoss(delta=-1.0), ValueError, "HuberLoss: delta must be a positive number"),
    (lambda: F.kl_div(gpucnn.zeros(2, 3), gpucnn.ones(2), reduction="sum"), ValueError,
     r"kl_div: input shape \(2, 3\) and target shape \(2,\) do not broadcast"),
    (lambda: F.kl_div(gpucnn.zeros(2), gpucnn.ones(2), reduction="avg"), ValueError,
     r"kl_div: reduction must be one of \('none', 'batchmean', 'sum', 'mean'\), got 'avg'"),
    (lambda: nn.KLDivLoss(reduction="avg"), ValueError, "KLDivLoss: reduction must be one of"),
    (lambda: F.one_hot(gpucnn.tensor([0, 3]), 3), ValueError,
     r"one_hot: class value 3 is out of range for num_classes=3 \(shape \(2,\)\)"),
    (lambda: F.one_hot(gpucnn.tensor([0, -1])), ValueError, "one_hot: class values must be non-negative, got -1"),
    (lambda: F.one_hot(gpucnn.tensor(np.zeros(0, np.int64))), ValueError,
     r"one_hot: num_classes=-1 cannot be inferred from an empty tensor \(shape \(0,\)\)"),
    (lambda: F.one_hot(gpucnn.tensor([1.0])), TypeError, "one_hot: tensor must hold integer class indices, got dtype"),
    (lambda: F.one_hot(gpucnn.tensor([1]), -2), ValueError, "one_hot: num_classes must be a non-negative int"),
])
def test_more_loss_errors_name_the_argument_and_shapes(call, error, message):
    with pytest.raises(error, match=message):
        call()
