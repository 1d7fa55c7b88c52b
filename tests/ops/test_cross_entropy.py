"""cross_entropy against PyTorch (every reduction, label smoothing, spatial targets), gradients, bad input."""

import numpy as np
import pytest
import torch
import torch.nn.functional as torch_F
from helpers import assert_close, check_against_torch, check_gradients, check_op
from hypothesis import given, settings
from hypothesis import strategies as st

import gpucnn
from gpucnn.ops.cross_entropy import cross_entropy

REDUCTIONS = ["mean", "sum", "none"]


def ours(reduction="mean", label_smoothing=0.0):
    return lambda x, t: cross_entropy(x, t, reduction=reduction, label_smoothing=label_smoothing)


def theirs(reduction="mean", label_smoothing=0.0):
    # PyTorch wants int64 targets; gpucnn accepts any integer dtype.
    return lambda x, t: torch_F.cross_entropy(x, t.long(), reduction=reduction, label_smoothing=label_smoothing)


@st.composite
def problems(draw):
    n = draw(st.integers(1, 5))
    classes = draw(st.integers(1, 6))
    spatial = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=2)))
    return n, classes, spatial


@settings(max_examples=50, deadline=None)
@given(problem=problems(), reduction=st.sampled_from(REDUCTIONS),
       label_smoothing=st.sampled_from([0.0, 0.1, 0.5, 1.0]) | st.floats(0.0, 1.0), seed=st.integers(0, 2**16))
def test_random_problems_against_torch(problem, reduction, label_smoothing, seed):
    n, classes, spatial = problem
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, classes) + spatial) * 3
    target = rng.integers(0, classes, (n,) + spatial)
    check_against_torch(ours(reduction, label_smoothing), theirs(reduction, label_smoothing), logits, target, seed=seed)


@st.composite
def weightings(draw, classes, target_shape, seed):
    """(weight or None, ignore_index, target): class weights of either sign or None; an ignore_index
    outside the classes (PyTorch's -100, or C + 2) or one of them; targets of which some are ignored."""
    rng = np.random.default_rng(seed)
    weight = draw(st.sampled_from([None, "positive", "signed"]))
    if weight is not None:
        weight = rng.uniform(0.1 if weight == "positive" else -1.0, 3.0, classes)
    ignore_index = draw(st.sampled_from([-100, classes + 2, int(rng.integers(0, classes))]))
    target = rng.integers(0, classes, target_shape)
    target[rng.random(target_shape) < draw(st.sampled_from([0.0, 0.3, 1.0]))] = ignore_index
    return weight, ignore_index, target


@settings(max_examples=60, deadline=None)
@given(problem=problems(), reduction=st.sampled_from(REDUCTIONS), label_smoothing=st.sampled_from([0.0, 0.3]),
       device=st.sampled_from(["cpu", "cudasim"]), seed=st.integers(0, 2**16), data=st.data())
def test_weights_and_ignored_targets_against_torch(problem, reduction, label_smoothing, device, seed, data):
    """Class weights and ignore_index as in PyTorch on both devices (every target ignored: a NaN mean)."""
    n, classes, spatial = problem
    weight, ignore_index, target = data.draw(weightings(classes, (n,) + spatial, seed))
    logits = np.random.default_rng(seed + 1).standard_normal((n, classes) + spatial) * 3
    options = dict(ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing)
    weight = None if weight is None else weight.astype(np.float32)

    def ours(x, t):
        return cross_entropy(x, t, weight, **options)

    def theirs(x, t):
        return torch_F.cross_entropy(x, t, None if weight is None else torch.from_numpy(weight), **options)

    check_against_torch(ours, theirs, logits, target, seed=seed, device=device)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_weights_and_ignored_targets_numerical_gradients(reduction, label_smoothing):
    rng = np.random.default_rng(6)
    weight = rng.uniform(-1.0, 2.0, 3)
    spatial_target = np.array([[[7, 1], [2, 0]], [[1, 1], [7, 2]]])
    for shape, target in [((4, 3), np.array([0, 2, 7, 1])), ((2, 3, 2, 2), spatial_target)]:
        check_gradients(lambda x, t: cross_entropy(x, t, gpucnn.tensor(weight), ignore_index=7, reduction=reduction,
                                                   label_smoothing=label_smoothing), rng.standard_normal(shape), target)


def test_weights_and_ignored_targets_hand_computed():
    """Equal logits over 3 classes: each loss is log 3 times its class weight, and the mean divides by
    the weights of the targets counted."""
    logits, weight = np.zeros((3, 3), np.float32), np.array([1.0, 2.0, 3.0], np.float32)
    log3 = np.log(3.0)
    assert_close(cross_entropy(logits, [0, 2, 1], weight, reduction="none"), np.array([1, 3, 2]) * log3)
    assert_close(cross_entropy(logits, [0, 2, 1], weight), log3)  # (1 + 3 + 2) log 3 / (1 + 3 + 2)
    assert_close(cross_entropy(logits, [0, -100, 2], weight, reduction="sum"), 4 * log3)
    assert_close(cross_entropy(logits, [0, 1, 1], ignore_index=1, reduction="none"), np.array([log3, 0.0, 0.0]))
    x = gpucnn.tensor(logits, requires_grad=True)
    cross_entropy(x, [0, 2, 2], weight, ignore_index=2, reduction="sum").backward()
    assert_close(x.grad, np.array([[-2 / 3, 1 / 3, 1 / 3], [0, 0, 0], [0, 0, 0]]))  # w[0] (softmax - one_hot)


@pytest.mark.parametrize("device", ["cpu", "cudasim"])
def test_ignored_samples_add_nothing_even_with_nan_logits(device):
    """An ignored sample's loss and gradient are 0 even where its logits are NaN (PyTorch's gradient is
    NaN there); every target ignored gives a NaN mean and zero gradients, as PyTorch's."""
    logits = np.array([[np.nan, 1.0, 2.0], [0.5, 1.0, -2.0]], np.float32)
    x = gpucnn.tensor(logits, device=device, requires_grad=True)
    loss = cross_entropy(x, gpucnn.tensor([-100, 1], device=device), label_smoothing=0.1)
    expected = torch_F.cross_entropy(torch.tensor(logits[1:]), torch.tensor([1]), label_smoothing=0.1)
    assert_close(loss, expected)
    loss.backward()
    reference = torch.tensor(logits[1:], requires_grad=True)
    torch_F.cross_entropy(reference, torch.tensor([1]), label_smoothing=0.1).backward()
    assert_close(x.grad, np.concatenate([np.zeros((1, 3), np.float32), reference.grad.numpy()]))
    x = gpucnn.tensor(logits, device=device, requires_grad=True)
    loss = cross_entropy(x, gpucnn.tensor([-100, -100], device=device), gpucnn.tensor([1.0, 2.0, 3.0], device=device))
    loss.backward()
    assert np.isnan(loss.numpy()) and np.array_equal(x.grad.numpy(), np.zeros((2, 3), np.float32))


def test_ignore_index_may_be_any_int64():
    """An ignored value need not be a class; a class may be ignored; other targets are still checked."""
    logits = np.random.default_rng(7).standard_normal((4, 3)).astype(np.float32)
    for ignore_index, target in [(5, [5, 0, 2, 5]), (1, [1, 0, 2, 1]), (-(2**63), [0, -(2**63), 2, 1]),
                                 (2**63 - 1, [0, 1, 2**63 - 1, 1])]:
        expected = torch_F.cross_entropy(torch.tensor(logits), torch.tensor(target), ignore_index=ignore_index)
        assert_close(cross_entropy(logits, np.array(target), ignore_index=ignore_index), expected)
    with pytest.raises(ValueError, match=r"target value 5 is out of range \[0, 3\)"):
        cross_entropy(logits, np.array([5, 0, 2, 1]), ignore_index=4)


def test_hand_computed():
    """Two classes with equal logits: the loss is log 2; smoothing does not change a uniform softmax."""
    logits, target = np.array([[0.0, 0.0], [np.log(3.0), 0.0]]), np.array([0, 0])
    assert_close(cross_entropy(logits, target, reduction="none"), np.array([np.log(2.0), np.log(4 / 3)]))
    assert_close(cross_entropy(logits[:1], target[:1], label_smoothing=0.7), np.log(2.0))
    x = gpucnn.tensor(logits, requires_grad=True)
    cross_entropy(x, target, reduction="sum").backward()
    assert_close(x.grad, np.array([[-0.5, 0.5], [-0.25, 0.25]]))  # softmax - one_hot


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_numerical_gradients_float64(reduction, label_smoothing):
    rng = np.random.default_rng(1)
    for shape, target_shape in [((4, 3), (4,)), ((2, 3, 2, 3), (2, 2, 3)), ((5,), ())]:
        logits, target = rng.standard_normal(shape), rng.integers(0, shape[1 if len(shape) > 1 else 0], target_shape)
        check_gradients(ours(reduction, label_smoothing), logits, target)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_unbatched_input(reduction):
    logits, target = np.random.default_rng(2).standard_normal(5), np.array(3)
    check_op(ours(reduction, 0.1), theirs(reduction, 0.1), logits, target)
    assert cross_entropy(logits, target, reduction=reduction).shape == ()


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (3, 1, 4), (2, 3, 1, 1, 2)])
def test_awkward_shapes(shape):
    rng = np.random.default_rng(3)
    target = rng.integers(0, shape[1], shape[:1] + shape[2:])
    for reduction in REDUCTIONS:
        check_op(ours(reduction, 0.3), theirs(reduction, 0.3), rng.standard_normal(shape), target)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_empty_batch_matches_torch(reduction, label_smoothing):
    """reduction='mean' of nothing is NaN, as in PyTorch; 'sum' is 0; 'none' is empty."""
    logits, target = np.zeros((0, 4), dtype=np.float32), np.zeros(0, dtype=np.int64)
    loss = cross_entropy(logits, target, reduction=reduction, label_smoothing=label_smoothing)
    expected = torch_F.cross_entropy(torch.tensor(logits), torch.tensor(target), reduction=reduction,
                                     label_smoothing=label_smoothing)
    assert_close(loss, expected)
    x = gpucnn.tensor(np.zeros((0, 4, 2), dtype=np.float32), requires_grad=True)
    out = cross_entropy(x, np.zeros((0, 2), dtype=np.int64), reduction=reduction, label_smoothing=label_smoothing)
    out.backward(np.ones(out.shape, dtype=np.float32))
    assert x.grad.shape == (0, 4, 2)


def test_large_logits_do_not_overflow():
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 1e4]], dtype=np.float32)
    target = np.array([1, 2])
    for reduction in REDUCTIONS:
        check_against_torch(ours(reduction, 0.1), theirs(reduction, 0.1), logits, target)
    assert_close(cross_entropy(logits, target, reduction="none"), np.array([1e4, np.log(2.0)]))


def test_nan_and_inf_match_torch():
    """NaN or +inf logits make that sample's loss and gradient NaN; -inf at a non-target class is fine."""
    logits = np.array([[np.nan, 1.0, 2.0], [np.inf, 1.0, 2.0], [-np.inf, 1.0, 2.0], [0.0, 1.0, 2.0]], dtype=np.float32)
    target = np.array([1, 1, 1, 1])
    for reduction in REDUCTIONS:
        for label_smoothing in (0.0, 0.1):
            check_against_torch(ours(reduction, label_smoothing), theirs(reduction, label_smoothing), logits, target)
    loss = cross_entropy(logits, target, reduction="none").numpy()
    assert np.isnan(loss[:2]).all() and np.isfinite(loss[2:]).all()


def test_float64_and_float32_keep_dtype():
    for dtype in (np.float32, np.float64):
        x = gpucnn.tensor(np.zeros((2, 3), dtype=dtype), requires_grad=True)
        loss = cross_entropy(x, np.array([0, 2]), label_smoothing=0.1)
        loss.backward()
        assert loss.dtype == x.grad.dtype == dtype


def test_any_integer_target_dtype():
    logits = np.random.default_rng(4).standard_normal((3, 4)).astype(np.float32)
    expected = torch_F.cross_entropy(torch.tensor(logits), torch.tensor([3, 0, 2]))
    for dtype in (np.int64, np.int32, np.uint8, np.int16):
        assert_close(cross_entropy(logits, np.array([3, 0, 2], dtype=dtype)), expected)
    assert_close(cross_entropy(logits.tolist(), [3, 0, 2]), expected)
    assert_close(cross_entropy(logits[0], 3), torch_F.cross_entropy(torch.tensor(logits[0]), torch.tensor(3)))


def test_non_contiguous_input_and_target():
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((6, 4, 5)).transpose(2, 1, 0)[::2]  # (3, 4, 6)
    target = rng.integers(0, 4, (6, 3)).T  # (3, 6)
    assert not logits.flags.c_contiguous and not target.flags.c_contiguous
    for reduction in REDUCTIONS:
        check_against_torch(ours(reduction, 0.2), theirs(reduction, 0.2), logits, target)


def test_reduction_and_label_smoothing_are_keyword_only():
    with pytest.raises(TypeError):
        cross_entropy(np.zeros((2, 3)), np.array([0, 1]), "sum")


X = np.zeros((2, 3), dtype=np.float32)


@pytest.mark.parametrize("target, message", [
    (np.array([0, 3]),
     r"cross_entropy: target value 3 is out of range \[0, 3\) \(input shape \(2, 3\), target shape \(2,\)\)"),
    (np.array([-1, 2]), r"cross_entropy: target value -1 is out of range \[0, 3\)"),
    (np.array([-101, 1]), r"target value -101 is out of range"),
    (np.array([0, 1, 2]),
     r"cross_entropy: input batch size 2 does not match target batch size 3 "
     r"\(input shape \(2, 3\), target shape \(3,\)\)"),
    (np.array([[0], [1]]),
     r"cross_entropy: target must have shape \(2,\) for input shape \(2, 3\), target shape \(2, 1\)"),
    (np.array(1), r"cross_entropy: target must have shape \(2,\) for input shape \(2, 3\), target shape \(\)"),
])
def test_bad_targets(target, message):
    with pytest.raises(ValueError, match=message):
        cross_entropy(X, target)


def test_bad_spatial_and_unbatched_shapes():
    with pytest.raises(ValueError, match=r"target must have shape \(2, 4, 5\) for input shape \(2, 3, 4, 5\), "
                                         r"target shape \(2, 4, 6\)"):
        cross_entropy(np.zeros((2, 3, 4, 5)), np.zeros((2, 4, 6), dtype=np.int64))
    with pytest.raises(ValueError, match=r"target must have shape \(2, 4, 5\) .*target shape \(2, 4\)"):
        cross_entropy(np.zeros((2, 3, 4, 5)), np.zeros((2, 4), dtype=np.int64))
    with pytest.raises(ValueError, match=r"target must have shape \(\) for input shape \(3,\), target shape \(1,\)"):
        cross_entropy(np.zeros(3), np.array([1]))
    with pytest.raises(ValueError, match=r"cross_entropy: input must be \(C,\), \(N, C\) or \(N, C, d1, \.\.\.\), "
                                         r"got input shape \(\)"):
        cross_entropy(np.array(1.0), np.array(0))
    with pytest.raises(ValueError, match=r"cross_entropy: input has no classes \(C = 0\) \(input shape \(2, 0\)"):
        cross_entropy(np.zeros((2, 0)), np.array([0, 0]))


def test_bad_types():
    with pytest.raises(TypeError, match=r"cross_entropy: target must hold integer class indices or floating-point "
                                        r"class probabilities, got dtype bool"):
        cross_entropy(X, np.array([True, False]))
    with pytest.raises(TypeError, match=r"cross_entropy: input must be floating-point logits, got dtype int64"):
        cross_entropy(np.zeros((2, 3), dtype=np.int64), np.array([0, 1]))
    with pytest.raises(TypeError, match=r"cross_entropy: label_smoothing must be a real number in \[0, 1\], got '0.1'"):
        cross_entropy(X, np.array([0, 1]), label_smoothing="0.1")


@pytest.mark.parametrize("reduction", ["avg", "MEAN", None, "elementwise_mean"])
def test_bad_reduction(reduction):
    with pytest.raises(ValueError, match=r"cross_entropy: reduction must be one of \('mean', 'sum', 'none'\), got"):
        cross_entropy(X, np.array([0, 1]), reduction=reduction)


@pytest.mark.parametrize("label_smoothing", [-0.1, 1.5, float("nan")])
def test_label_smoothing_out_of_range(label_smoothing):
    with pytest.raises(ValueError, match=r"cross_entropy: label_smoothing must be between 0.0 and 1.0, got"):
        cross_entropy(X, np.array([0, 1]), label_smoothing=label_smoothing)


@pytest.mark.parametrize("weight, error, message", [
    (np.ones(4, np.float32), ValueError,
     r"cross_entropy: weight must have shape \(3,\), one value per class, got shape \(4,\) "
     r"\(input shape \(2, 3\), target shape \(2,\)\)"),
    (np.ones((3, 1), np.float32), ValueError,
     r"weight must have shape \(3,\), one value per class, got shape \(3, 1\)"),
    (np.ones(3), TypeError, r"cross_entropy: weight has dtype float64 but input has dtype float32; they must match"),
    (gpucnn.tensor(np.ones(3, np.float32), requires_grad=True), ValueError,
     r"cross_entropy: weight takes no gradient, so it cannot require grad; pass weight.detach\(\)"),
    (["a", "b", "c"], TypeError, r"cross_entropy: weight must be numeric"),
])
def test_bad_weights(weight, error, message):
    with pytest.raises(error, match=message):
        cross_entropy(X, np.array([0, 1]), weight)


def test_weight_on_another_device():
    with pytest.raises(ValueError, match=r"cross_entropy: weight is on cudasim but input is on cpu"):
        cross_entropy(X, np.array([0, 1]), gpucnn.tensor(np.ones(3, np.float32), device="cudasim"))


@pytest.mark.parametrize("ignore_index, error, message", [
    (1.0, TypeError, r"cross_entropy: ignore_index must be an int, got 1.0"),
    (True, TypeError, r"cross_entropy: ignore_index must be an int, got True"),
    (2**63, ValueError, r"cross_entropy: ignore_index must fit in int64, got 9223372036854775808"),
])
def test_bad_ignore_index(ignore_index, error, message):
    with pytest.raises(error, match=message):
        cross_entropy(X, np.array([0, 1]), ignore_index=ignore_index)


def test_weight_takes_no_gradient_only_where_one_would_be_recorded():
    weight = gpucnn.tensor(np.ones(3, np.float32), requires_grad=True)
    with gpucnn.no_grad():
        assert_close(cross_entropy(X, np.array([0, 1]), weight), np.log(3.0))


# ------------------------------------------------------------------------------ class-probability targets
@settings(max_examples=40, deadline=None)
@given(problem=problems(), reduction=st.sampled_from(REDUCTIONS), label_smoothing=st.sampled_from([0.0, 0.25, 1.0]),
       weighted=st.booleans(), device=st.sampled_from(["cpu", "cudasim"]), seed=st.integers(0, 2**16))
def test_class_probabilities_against_torch(problem, reduction, label_smoothing, weighted, device, seed):
    """Float targets of the input's shape, as PyTorch takes them (not normalised here either), with
    their gradient: check_against_torch also compares the target's."""
    n, classes, spatial = problem
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, classes) + spatial) * 3
    target = rng.random((n, classes) + spatial)
    weight = rng.uniform(-0.5, 2.0, classes).astype(np.float32) if weighted else None
    options = dict(reduction=reduction, label_smoothing=label_smoothing)

    def theirs(x, t):
        return torch_F.cross_entropy(x, t, None if weight is None else torch.from_numpy(weight), **options)

    check_against_torch(lambda x, t: cross_entropy(x, t, weight, **options), theirs, logits, target, seed=seed,
                        device=device)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_class_probabilities_numerical_gradients(reduction):
    rng = np.random.default_rng(12)
    weight = gpucnn.tensor(rng.uniform(0.5, 2.0, 3))
    for shape in [(4, 3), (2, 3, 2, 2), (3,)]:
        check_gradients(lambda x, t: cross_entropy(x, t, weight, reduction=reduction, label_smoothing=0.2),
                        rng.standard_normal(shape), rng.random(shape))


def test_class_probabilities_hand_computed_and_empty():
    """Equal logits over 4 classes: log_softmax is -log 4 everywhere, so the loss is log 4 times the
    target's sum; an empty batch's mean is NaN, as PyTorch's."""
    loss = cross_entropy(np.zeros((2, 4), np.float32), np.array([[0.5, 0.5, 0, 0], [1, 1, 1, 1]], np.float32),
                         reduction="none")
    assert_close(loss, np.array([1.0, 4.0]) * np.log(4.0))
    for device in ("cpu", "cudasim"):
        empty = cross_entropy(gpucnn.tensor(np.zeros((0, 3), np.float32), device=device),
                              gpucnn.tensor(np.zeros((0, 3), np.float32), device=device))
        assert np.isnan(empty.numpy())


@pytest.mark.parametrize("target, options, error, message", [
    (np.ones((2, 4), np.float32), {}, ValueError,
     r"cross_entropy: class-probability targets must have the input's shape \(input shape \(2, 3\), target shape "
     r"\(2, 4\)\)"),
    (np.ones((2, 3)), {}, TypeError,
     r"cross_entropy: class-probability targets have dtype float64 but input has dtype float32; they must match"),
    (np.ones((2, 3), np.float32), dict(ignore_index=1), ValueError,
     r"cross_entropy: ignore_index is for class indices, not class-probability targets \(got ignore_index=1;"),
])
def test_bad_class_probabilities(target, options, error, message):
    with pytest.raises(error, match=message):
        cross_entropy(X, target, **options)
