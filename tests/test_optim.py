"""gpucnn.optim against torch.optim (single-tensor path, foreach=False): same parameters, same gradients,
parameters compared after every step; state dicts, validation, zero_grad and an end-to-end fit."""

import inspect
import pickle
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gpucnn
from gpucnn import optim
from helpers import assert_close

NAMES = ["SGD", "Adam", "AdamW", "Adadelta", "RMSprop", "Adagrad", "Adamax", "NAdam", "RAdam"]
# A 0-d parameter, an empty one and a 4-d one among ordinary shapes.
SHAPES = [(3, 4), (5,), (2, 3, 1, 2), (), (0, 3)]
TOLERANCE = {np.float64: dict(atol=1e-12, rtol=1e-10), np.float32: dict(atol=1e-6, rtol=1e-5)}


def make_optimizers(name, options, values, groups=None, device="cpu"):
    """gpucnn (on ``device``) and torch optimizers over parameters holding ``values``.

    groups: None (one group) or a list of (indices into values, per-group options).
    """
    ours = [gpucnn.tensor(v, requires_grad=True, device=device) for v in values]
    theirs = [torch.tensor(v, requires_grad=True) for v in values]
    if groups is None:
        our_params, their_params = ours, theirs
    else:
        our_params = [{"params": [ours[i] for i in indices], **extra} for indices, extra in groups]
        their_params = [{"params": [theirs[i] for i in indices], **extra} for indices, extra in groups]
    our_optimizer = getattr(optim, name)(our_params, **options)
    their_optimizer = getattr(torch.optim, name)(their_params, foreach=False, **options)
    return our_optimizer, their_optimizer, ours, theirs


def run_lockstep(name, options, *, dtype=np.float64, groups=None, steps=10, seed=0, without_grad=(),
                 special=False, device="cpu"):
    """Steps both optimizers on the same random gradients, comparing every parameter after each step.

    without_grad: indices of parameters whose grad stays None. special: put NaN and inf in the gradients.
    """
    rng = np.random.default_rng(seed)
    values = [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]
    our_optimizer, their_optimizer, ours, theirs = make_optimizers(name, options, values, groups, device)
    arrays = [p.data for p in ours]
    for step in range(steps):
        for index, (mine, reference) in enumerate(zip(ours, theirs)):
            if index in without_grad:
                continue
            grad = rng.standard_normal(mine.shape).astype(dtype)
            if special and index == 0 and step == 2:
                grad[0, 0], grad[1, 1] = np.nan, np.inf
            mine.grad, reference.grad = gpucnn.tensor(grad, device=device), torch.tensor(grad)
        our_optimizer.step()
        their_optimizer.step()
        for index, (mine, reference, array) in enumerate(zip(ours, theirs, arrays)):
            assert mine.data is array, "the update must happen in place on param.data"
            assert mine.dtype == dtype
            assert_close(mine, reference, **TOLERANCE[dtype], name=f"{name} {options} parameter {index} step {step}")
    return our_optimizer, their_optimizer, ours, theirs


SGD_CONFIGS = [
    {},
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.5),
    dict(lr=0.1, momentum=0.9, nesterov=True),
    dict(lr=0.1, weight_decay=0.1),
    dict(lr=0.1, maximize=True),
    dict(lr=0.1, momentum=0.5, weight_decay=0.01, nesterov=True, maximize=True),
    dict(lr=0.1, momentum=0.9, dampening=1.0, weight_decay=0.2),
]
ADAM_CONFIGS = [
    {},
    dict(lr=0.01),
    dict(lr=0.01, amsgrad=True),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.01, betas=(0.5, 0.9), eps=1e-3),
    dict(lr=0.01, betas=(0.3, 0.0)),  # beta1 < 0.5: the other branch of lerp
    dict(lr=0.01, maximize=True, amsgrad=True, weight_decay=0.05),
    dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
]
ADAMW_CONFIGS = [
    {},
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.01, weight_decay=0),
    dict(lr=0.01, amsgrad=True, maximize=True),
    dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.5, amsgrad=True),
]
ADADELTA_CONFIGS = [
    {},
    dict(rho=0.95, eps=1e-6),  # the ConvNetJS CIFAR-10 demo
    dict(lr=0.5, weight_decay=0.1),
    dict(maximize=True, rho=0.5),
    dict(rho=1.0),
    dict(rho=0.0, eps=1e-3, weight_decay=0.01, maximize=True),
]
RMSPROP_CONFIGS = [
    {},
    dict(lr=0.02, centered=True),
    dict(lr=0.02, momentum=0.9),
    dict(lr=0.02, centered=True, momentum=0.9),
    dict(lr=0.02, weight_decay=0.1),
    dict(lr=0.02, maximize=True),
    dict(lr=0.01, alpha=0.3, eps=1e-3, centered=True),  # 1 - alpha >= 0.5: the other branch of lerp
    dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.05, maximize=True),
    dict(lr=0.01, alpha=0.0, momentum=0.5),
]
ADAGRAD_CONFIGS = [
    {},
    dict(lr=0.1),
    dict(lr=0.1, lr_decay=0.1),
    dict(lr=0.1, initial_accumulator_value=0.5),
    dict(lr=0.1, weight_decay=0.1),
    dict(lr=0.1, maximize=True),
    dict(lr=0.05, lr_decay=0.05, weight_decay=0.05, initial_accumulator_value=0.1, eps=1e-3, maximize=True),
]
ADAMAX_CONFIGS = [
    {},
    dict(lr=0.01),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.01, betas=(0.5, 0.9), eps=1e-3),
    dict(lr=0.01, betas=(0.3, 0.0)),  # beta1 < 0.5: the other branch of lerp; beta2 0: u = |g| + eps
    dict(lr=0.01, maximize=True, weight_decay=0.05),
]
NADAM_CONFIGS = [
    {},
    dict(lr=0.01),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
    dict(lr=0.01, momentum_decay=0.5),
    dict(lr=0.01, momentum_decay=0.0),
    dict(lr=0.01, betas=(0.3, 0.5), eps=1e-3),  # the other branch of lerp
    dict(lr=0.01, maximize=True, weight_decay=0.05, momentum_decay=0.1),
]
# rho_t > 5 from step 6 with beta2 0.999 or 0.9, never with beta2 0.5: steps 1 to 5 unrectified, then rectified
RADAM_CONFIGS = [
    {},
    dict(lr=0.01),
    dict(lr=0.01, betas=(0.9, 0.9)),
    dict(lr=0.01, betas=(0.9, 0.5)),
    dict(lr=0.01, betas=(0.3, 0.99), eps=1e-3),  # the other branch of lerp
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
    dict(lr=0.01, maximize=True, weight_decay=0.05),
]
GRID = (
    [("SGD", c) for c in SGD_CONFIGS]
    + [("Adam", c) for c in ADAM_CONFIGS]
    + [("AdamW", c) for c in ADAMW_CONFIGS]
    + [("Adadelta", c) for c in ADADELTA_CONFIGS]
    + [("RMSprop", c) for c in RMSPROP_CONFIGS]
    + [("Adagrad", c) for c in ADAGRAD_CONFIGS]
    + [("Adamax", c) for c in ADAMAX_CONFIGS]
    + [("NAdam", c) for c in NADAM_CONFIGS]
    + [("RAdam", c) for c in RADAM_CONFIGS]
)
# One configuration per optimizer that creates every kind of state.
FULL = {
    "SGD": dict(lr=0.1, momentum=0.9, weight_decay=0.01),
    "Adam": dict(lr=0.01, amsgrad=True, weight_decay=0.01),
    "AdamW": dict(lr=0.01, amsgrad=True),
    "Adadelta": dict(lr=1.0, rho=0.95, eps=1e-6, weight_decay=0.01),
    "RMSprop": dict(lr=0.01, alpha=0.9, momentum=0.9, centered=True, weight_decay=0.01),
    "Adagrad": dict(lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1),
    "Adamax": dict(lr=0.01, weight_decay=0.01),
    "NAdam": dict(lr=0.01, weight_decay=0.01, momentum_decay=0.01),
    "RAdam": dict(lr=0.01, weight_decay=0.01),
}


@pytest.mark.parametrize("name, options", GRID, ids=[f"{n}-{c}" for n, c in GRID])
def test_matches_torch(name, options):
    run_lockstep(name, options)


@pytest.mark.parametrize("name", NAMES)
def test_float32_matches_torch_and_stays_float32(name):
    # lr as a NumPy float64 scalar must not promote float32 parameters or state
    options = dict(FULL[name], lr=np.float64(FULL[name]["lr"]))
    our_optimizer, *_ = run_lockstep(name, options, dtype=np.float32)
    for state in our_optimizer.state.values():
        for key, value in state.items():
            if key not in ("step", "mu_product"):  # NAdam's mu_product: a number, float32 as torch's
                assert value.dtype == np.float32, key


@pytest.mark.parametrize("name", NAMES)
def test_param_groups_with_different_options(name):
    second = {"SGD": dict(lr=0.3, momentum=0.5, nesterov=True), "Adam": dict(lr=0.05, amsgrad=True),
              "AdamW": dict(lr=0.05, weight_decay=0.3), "Adadelta": dict(lr=0.3, rho=0.7),
              "RMSprop": dict(lr=0.03, momentum=0, centered=False),
              # torch's Adagrad starts every sum at the defaults' initial_accumulator_value, whatever a group sets
              "Adagrad": dict(lr=0.3, lr_decay=0.1, initial_accumulator_value=0.7, maximize=True),
              "Adamax": dict(lr=0.05, betas=(0.3, 0.9)), "NAdam": dict(lr=0.05, decoupled_weight_decay=True,
                                                                     momentum_decay=0.1),
              "RAdam": dict(lr=0.05, betas=(0.8, 0.9), decoupled_weight_decay=True)}[name]
    groups = [([0, 2], {}), ([1, 3, 4], second)]
    our_optimizer, *_ = run_lockstep(name, FULL[name], groups=groups)
    assert our_optimizer.param_groups[1]["lr"] == second["lr"]
    assert our_optimizer.param_groups[0]["lr"] == FULL[name]["lr"]


@pytest.mark.parametrize("name", NAMES)
def test_nan_and_inf_gradients_propagate_as_in_torch(name):
    run_lockstep(name, FULL[name], steps=4, special=True)


@pytest.mark.parametrize("name", NAMES)
def test_parameter_without_grad_is_skipped(name):
    our_optimizer, their_optimizer, ours, theirs = run_lockstep(name, FULL[name], without_grad={1}, steps=3)
    # torch skips it too, so the lockstep comparison already checks its values stayed put; Adagrad's state is
    # made in its constructor, as torch's
    assert (ours[1] in our_optimizer.state) == (theirs[1] in their_optimizer.state) == (name == "Adagrad")
    assert ours[1].grad is None


def test_skipped_parameter_keeps_its_values():
    p, q = gpucnn.tensor([1.0, 2.0], requires_grad=True), gpucnn.tensor([3.0, 4.0], requires_grad=True)
    optimizer = optim.Adam([p, q], lr=0.1)
    p.grad = gpucnn.tensor([1.0, -1.0])
    optimizer.step()
    np.testing.assert_array_equal(q.numpy(), [3.0, 4.0])
    assert_close(p, [0.9, 2.1])  # Adam's first step moves each entry by lr * sign(grad)
    assert q not in optimizer.state


@pytest.mark.parametrize("name", NAMES)
def test_non_contiguous_parameter_is_updated_in_place(name):
    rng = np.random.default_rng(1)
    base = rng.standard_normal((4, 6))
    view = base[:, ::2].T  # (3, 4), strided
    p = gpucnn.Tensor._from_array(view, gpucnn.device("cpu"), requires_grad=True)
    reference = torch.tensor(view.copy(), requires_grad=True)
    ours = getattr(optim, name)([p], **FULL[name])
    theirs = getattr(torch.optim, name)([reference], foreach=False, **FULL[name])
    for _ in range(3):
        grad = rng.standard_normal((3, 4))
        p.grad, reference.grad = gpucnn.tensor(grad), torch.tensor(grad)
        ours.step()
        theirs.step()
    assert p.data is view
    assert_close(base[:, ::2].T, reference)


def test_gradient_of_another_dtype_is_cast_and_wrong_shape_raises():
    p = gpucnn.tensor(np.ones(3), requires_grad=True)
    optimizer = optim.SGD([p], lr=0.5)
    p.grad = gpucnn.tensor(np.array([1.0, 2.0, 3.0], dtype=np.float32))
    optimizer.step()
    assert p.dtype == np.float64
    assert_close(p, [0.5, 0.0, -0.5])
    p.grad = gpucnn.tensor(np.ones(4))
    with pytest.raises(ValueError, match=r"SGD.step: gradient of shape \(4,\) for a parameter of shape \(3,\)"):
        optimizer.step()


def test_a_gradient_on_another_device_is_refused():
    param = gpucnn.tensor(np.ones(3, np.float32), device="cudasim", requires_grad=True)
    param.grad = gpucnn.tensor(np.ones(3, np.float32), device="cpu")
    with pytest.raises(ValueError, match=r"SGD.step: the gradient of a parameter on cudasim is on cpu "
                                         r"\(shape \(3,\)\)"):
        optim.SGD([param], lr=0.1).step()
    assert np.array_equal(param.numpy(), np.ones(3, np.float32))


@pytest.mark.parametrize("device", ["cpu", "cudasim"])
@pytest.mark.parametrize("name", NAMES)
def test_a_wrong_gradient_shape_changes_nothing(name, device):
    """A gradient of the wrong shape in the last group raises before any parameter or state changes."""
    first, second = (gpucnn.tensor(np.ones(3, np.float32), device=device, requires_grad=True) for _ in range(2))
    optimizer = getattr(optim, name)([{"params": [first]}, {"params": [second]}], **FULL[name])
    first.grad, second.grad = (gpucnn.tensor(np.ones(shape, np.float32), device=device) for shape in ((3,), (2,)))
    with pytest.raises(ValueError, match=rf"{name}.step: gradient of shape \(2,\) for a parameter of shape \(3,\)"):
        optimizer.step()
    assert np.array_equal(first.numpy(), np.ones(3, np.float32))
    assert all(state["step"] == 0 for state in optimizer.state.values())  # Adagrad's, made in its constructor
    assert bool(optimizer.state) == (name == "Adagrad")


OPTION = {
    "lr": st.floats(0.0, 1.0),
    "weight_decay": st.one_of(st.just(0.0), st.floats(0.0, 0.5)),
    "maximize": st.booleans(),
}


@st.composite
def sgd_options(draw):
    options = dict(lr=draw(OPTION["lr"]), momentum=draw(st.sampled_from([0.0, 0.5, 0.9]) | st.floats(0.0, 0.99)),
                   dampening=draw(st.floats(0.0, 1.0)), weight_decay=draw(OPTION["weight_decay"]),
                   nesterov=draw(st.booleans()), maximize=draw(OPTION["maximize"]))
    if options["nesterov"]:
        options.update(dampening=0.0, momentum=max(options["momentum"], 0.1))
    return options


@st.composite
def adam_options(draw):
    return dict(lr=draw(st.floats(1e-4, 0.5)), betas=(draw(st.floats(0.0, 0.99)), draw(st.floats(0.0, 0.9999))),
                eps=draw(st.floats(1e-10, 1e-2)), weight_decay=draw(OPTION["weight_decay"]),
                amsgrad=draw(st.booleans()), maximize=draw(OPTION["maximize"]))


@st.composite
def adadelta_options(draw):
    return dict(lr=draw(st.floats(0.01, 2.0)), rho=draw(st.floats(0.0, 1.0)), eps=draw(st.floats(1e-8, 1e-2)),
                weight_decay=draw(OPTION["weight_decay"]), maximize=draw(OPTION["maximize"]))


@st.composite
def rmsprop_options(draw):
    # Centered, alpha near 0 leaves the variance v - m^2 to rounding (two near-equal numbers), and at alpha 0
    # (v = m^2 = g^2) torch's fused v - m*m keeps the product's rounding error, NaN where it is negative,
    # where gpucnn's difference is 0: so alpha 0 is drawn without centered only.
    centered = draw(st.booleans())
    alphas = st.sampled_from([0.5, 0.99] if centered else [0.0, 0.5, 0.99]) | st.floats(0.01, 0.999)
    return dict(lr=draw(st.floats(1e-4, 0.1)), alpha=draw(alphas), eps=draw(st.floats(1e-10, 1e-2)),
                weight_decay=draw(OPTION["weight_decay"]),
                momentum=draw(st.sampled_from([0.0, 0.9]) | st.floats(0.0, 0.99)), centered=centered,
                maximize=draw(OPTION["maximize"]))


@st.composite
def adagrad_options(draw):
    return dict(lr=draw(st.floats(1e-4, 0.5)), lr_decay=draw(st.just(0.0) | st.floats(0.0, 1.0)),
                weight_decay=draw(OPTION["weight_decay"]), initial_accumulator_value=draw(st.floats(0.0, 1.0)),
                eps=draw(st.floats(1e-10, 1e-2)), maximize=draw(OPTION["maximize"]))


@st.composite
def adamax_options(draw):
    return dict(lr=draw(st.floats(1e-4, 0.5)), betas=(draw(st.floats(0.0, 0.99)), draw(st.floats(0.0, 0.9999))),
                eps=draw(st.floats(1e-10, 1e-2)), weight_decay=draw(OPTION["weight_decay"]),
                maximize=draw(OPTION["maximize"]))


@st.composite
def nadam_options(draw):
    return dict(draw(adamax_options()), momentum_decay=draw(st.sampled_from([0.0, 4e-3]) | st.floats(0.0, 0.5)),
                decoupled_weight_decay=draw(st.booleans()))


@st.composite
def radam_options(draw):
    options = dict(draw(adamax_options()), decoupled_weight_decay=draw(st.booleans()))
    options["betas"] = (options["betas"][0], draw(st.sampled_from([0.5, 0.9, 0.999]) | st.floats(0.0, 0.9999)))
    return options


@settings(max_examples=25, deadline=None)
@given(st.one_of(
    st.tuples(st.just("SGD"), sgd_options()),
    st.tuples(st.sampled_from(["Adam", "AdamW"]), adam_options()),
    st.tuples(st.just("Adadelta"), adadelta_options()),
    st.tuples(st.just("RMSprop"), rmsprop_options()),
    st.tuples(st.just("Adagrad"), adagrad_options()),
    st.tuples(st.just("Adamax"), adamax_options()),
    st.tuples(st.just("NAdam"), nadam_options()),
    st.tuples(st.just("RAdam"), radam_options()),
), st.integers(0, 2**31 - 1))
def test_random_options_match_torch(case, seed):
    name, options = case
    run_lockstep(name, options, steps=8 if name == "RAdam" else 5, seed=seed)  # RAdam rectifies from step 6


def record_launches(monkeypatch) -> list:
    """The number of parameters of each launch of a kernel of cuda/optim.cu, as the steps go."""
    launches = []
    launch = optim.Optimizer._launch
    monkeypatch.setattr(optim.Optimizer, "_launch", lambda self, index, device, rows, *args: launches.append(
        len(rows)) or launch(self, index, device, rows, *args))
    return launches


@pytest.mark.parametrize("name, options", GRID, ids=[f"{n}-{c}" for n, c in GRID])
def test_kernel_updates_match_torch(monkeypatch, name, options):
    """On cudasim, a step updates the float32 parameters in one launch of a kernel of cuda/optim.cu
    (the empty one too: it has no blocks), which tracks torch as the cpu half does, NaN and inf
    gradients included."""
    launches = record_launches(monkeypatch)
    run_lockstep(name, options, dtype=np.float32, special=True, device="cudasim")
    assert launches == [len(SHAPES)] * 10


@pytest.mark.parametrize("name", NAMES)
def test_one_launch_per_group_of_parameters_of_any_size(monkeypatch, name):
    """Two groups (another lr each) of parameters of 0, 1 and around a block's 1024 elements, some
    without a gradient at some steps (so their first step, or Adam's step count, differs; RAdam's
    rectification starts at another step of the group's): each group's float32 parameters are one
    launch a step, and track torch."""
    shapes = [(1023,), (1024,), (0,), (1025,), (1,), (3, 1000), (2, 3)]
    rng = np.random.default_rng(8)
    values = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    groups = [([0, 1, 2, 3], {}), ([4, 5, 6], {"lr": FULL[name]["lr"] / 3})]
    ours_optimizer, theirs_optimizer, ours, theirs = make_optimizers(name, FULL[name], values, groups, "cudasim")
    launches = record_launches(monkeypatch)
    for step in range(9):
        present = [index for index in range(len(shapes)) if (step + index) % 3]
        for index in range(len(shapes)):
            grad = rng.standard_normal(shapes[index]).astype(np.float32) if index in present else None
            ours[index].grad = None if grad is None else gpucnn.tensor(grad, device="cudasim")
            theirs[index].grad = None if grad is None else torch.tensor(grad)
        ours_optimizer.step()
        theirs_optimizer.step()
        for index, (mine, reference) in enumerate(zip(ours, theirs)):
            assert_close(mine, reference, **TOLERANCE[np.float32], name=f"{name} parameter {index} step {step}")
        assert launches[-2:] == [sum(index in present for index in indices) for indices, _ in groups]


def test_adam_kernel_keeps_a_nan_maximum_as_numpy_does():
    """With amsgrad, a NaN in the running maximum (from a loaded state) stays NaN beside a finite second
    moment, as numpy.maximum keeps it on the cpu."""
    results = []
    for device in ("cpu", "cudasim"):
        param = gpucnn.tensor(np.ones(3, np.float32), device=device, requires_grad=True)
        optimizer = optim.Adam([param], lr=0.1, amsgrad=True)
        param.grad = gpucnn.tensor(np.full(3, 0.5, np.float32), device=device)
        optimizer.step()
        optimizer.state[param]["max_exp_avg_sq"][0] = np.nan
        optimizer.step()
        results.append(param.numpy())
    assert np.isnan(results[1][0]) and np.isnan(results[0][0])
    assert_close(results[1][1:], results[0][1:], atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("dtype, device", [(np.float64, "cpu"), (np.float32, "cpu"), (np.float32, "cudasim")])
@pytest.mark.parametrize("options", RMSPROP_CONFIGS, ids=str)
def test_rmsprop_in_two_groups_matches_torch(monkeypatch, options, dtype, device):
    """Each RMSprop configuration beside a second group of another lr and alpha, centered and momentum
    switched: parameters after each of ten steps, then the state (its keys too), as torch's; on cudasim
    the float32 groups are one kernel launch each a step."""
    second = dict(lr=0.005, alpha=0.8, centered=not options.get("centered", False),
                  momentum=0 if options.get("momentum") else 0.5)
    launches = record_launches(monkeypatch)
    our_optimizer, their_optimizer, *_ = run_lockstep("RMSprop", options, dtype=dtype, device=device,
                                                      groups=[([0, 2], {}), ([1, 3, 4], second)])
    assert launches == ([2, 3] * 10 if device == "cudasim" else [])
    ours, theirs = our_optimizer.state_dict()["state"], their_optimizer.state_dict()["state"]
    assert sorted(ours) == sorted(theirs) == list(range(len(SHAPES)))
    for index, state in theirs.items():
        assert sorted(ours[index]) == sorted(state), f"state keys of parameter {index}"
        assert ours[index]["step"] == int(state["step"].item()) == 10
        for key in set(state) - {"step"}:
            assert_close(ours[index][key], state[key], **TOLERANCE[dtype], name=f"state {index} {key}")


def assert_kernel_matches_the_array_update(monkeypatch, name, options, second, steps=5, skip=False):
    """The kernel of optimizer ``name`` on cudasim, launched from packed arguments and called directly
    (CuPy's way), gives the bits of the NumPy update on the cpu, parameters and state, NaN and inf
    gradients included: two groups (the second with the options ``second`` besides), parameters of 0 to
    1025 elements. skip: some parameters lack a gradient at some steps, so a launch's parameters are at
    different steps."""
    shapes = [(1025,), (0,), (3, 4), (1,), ()]
    groups = [([0, 1], {}), ([2, 3, 4], second)]

    def present(step, index):
        return not skip or (step + index) % 4 != 3

    def run(device_name):
        rng = np.random.default_rng(11)
        params = [gpucnn.tensor(rng.standard_normal(shape).astype(np.float32), device=device_name,
                                requires_grad=True) for shape in shapes]
        optimizer = getattr(optim, name)([{"params": [params[i] for i in indices], **extra}
                                          for indices, extra in groups], **options)
        for step in range(steps):
            for index, param in enumerate(params):
                grad = rng.standard_normal(param.shape).astype(np.float32)
                if step == 2 and grad.size > 2:
                    grad.reshape(-1)[:2] = np.nan, np.inf
                param.grad = gpucnn.tensor(grad, device=device_name) if present(step, index) else None
            optimizer.step()
        state = optimizer.state_dict()["state"]
        return [param.numpy() for param in params] + [state[i][key] for i in sorted(state) for key in sorted(state[i])
                                                      if key != "step"]

    def direct(self, file, name, fixed=()):
        kernel = self.kernel(file, name)
        return lambda grid, block, leading: kernel(grid, block, tuple(leading) + fixed)

    expected = run("cpu")
    launches = record_launches(monkeypatch)
    packed = run("cudasim")
    assert launches == [sum(present(step, index) for index in indices)
                        for step in range(steps) for indices, _ in groups]
    with monkeypatch.context() as patch:
        patch.setattr(type(gpucnn.device("cudasim")), "launcher", direct)
        called = run("cudasim")
    assert len(expected) == len(packed) == len(called)
    for index, (ours, direct_ones, reference) in enumerate(zip(packed, called, expected)):
        np.testing.assert_array_equal(ours, reference, err_msg=f"array {index}, packed launch")
        np.testing.assert_array_equal(direct_ones, reference, err_msg=f"array {index}, direct call")


@pytest.mark.parametrize("options", RMSPROP_CONFIGS, ids=str)
def test_rmsprop_kernel_matches_the_array_update_bit_for_bit(monkeypatch, options):
    """optim_rmsprop on cudasim gives the bits of the NumPy update on the cpu, over five steps."""
    second = dict(lr=0.03, alpha=0.5, centered=not options.get("centered", False))
    assert_kernel_matches_the_array_update(monkeypatch, "RMSprop", options, second)


# The second group of each kernel's bit-for-bit test: another lr, the other branch of lerp (beta1 < 0.5), the
# flags the first group does not set.
def _second_group(name, options):
    second = {"Adagrad": dict(lr=0.03, lr_decay=0.2), "Adamax": dict(lr=0.03, betas=(0.2, 0.5)),
              "NAdam": dict(lr=0.03, betas=(0.2, 0.9), weight_decay=0.1, momentum_decay=0.2),
              "RAdam": dict(lr=0.03, betas=(0.2, 0.9), weight_decay=0.1)}[name]
    second["maximize"] = not options.get("maximize", False)
    if name in ("NAdam", "RAdam"):
        second["decoupled_weight_decay"] = not options.get("decoupled_weight_decay", False)
    return second


KERNEL_GRID = [case for case in GRID if case[0] in ("Adagrad", "Adamax", "NAdam", "RAdam")]


@pytest.mark.parametrize("name, options", KERNEL_GRID, ids=[f"{n}-{c}" for n, c in KERNEL_GRID])
def test_kernel_matches_the_array_update_bit_for_bit(monkeypatch, name, options):
    """optim_adagrad, optim_adamax, optim_nadam and optim_radam on cudasim give the bits of the NumPy update
    on the cpu over nine steps, parameters of a launch at different steps (RAdam's rectified and not in one
    launch)."""
    assert_kernel_matches_the_array_update(monkeypatch, name, options, _second_group(name, options), steps=9,
                                           skip=True)


def test_radam_rectifies_from_the_step_where_rho_t_exceeds_5(monkeypatch):
    """RAdam's rows carry the rectification term from step 6 on with beta2 0.999 (rho_t 4.99 at step 5, 5.99
    at step 6), 0 before, and never with beta2 0.5 (rho_t below 3); the parameters track torch's throughout."""
    terms = []
    launch = optim.Optimizer._launch
    monkeypatch.setattr(optim.Optimizer, "_launch", lambda self, index, device, rows, *args: terms.append(
        [row.values[2] for row in rows]) or launch(self, index, device, rows, *args))
    run_lockstep("RAdam", dict(lr=0.01), dtype=np.float32, device="cudasim", groups=[([0, 1, 2], {}),
                                                                                     ([3, 4], dict(betas=(0.9, 0.5)))])
    assert [min(values) > 0 for values in terms[::2]] == [False] * 5 + [True] * 5
    assert [max(values) for values in terms[::2]][:5] == [0.0] * 5
    assert all(values == [0.0, 0.0] for values in terms[1::2])


@pytest.mark.parametrize("device", ["cpu", "cudasim"])
def test_rmsprop_momentum_and_centered_switched_on_later_start_from_zero(device):
    """Momentum and centered turned on in a group after some steps: their state starts at zero (torch's
    step fails on the missing state; given zeros, it goes on as ours)."""
    rng = np.random.default_rng(12)
    values = [rng.standard_normal(shape).astype(np.float32) for shape in ((3, 4), (5,))]
    our_optimizer, their_optimizer, ours, theirs = make_optimizers("RMSprop", dict(lr=0.01), values, device=device)
    for step in range(6):
        if step == 3:
            for optimizer in (our_optimizer, their_optimizer):
                optimizer.param_groups[0].update(momentum=0.9, centered=True)
            for reference in theirs:
                their_optimizer.state[reference].update(momentum_buffer=torch.zeros_like(reference),
                                                        grad_avg=torch.zeros_like(reference))
        for mine, reference in zip(ours, theirs):
            grad = rng.standard_normal(mine.shape).astype(np.float32)
            mine.grad, reference.grad = gpucnn.tensor(grad, device=device), torch.tensor(grad)
        our_optimizer.step()
        their_optimizer.step()
        for index, (mine, reference) in enumerate(zip(ours, theirs)):
            assert_close(mine, reference, **TOLERANCE[np.float32], name=f"parameter {index} step {step}")
    assert sorted(our_optimizer.state_dict()["state"][0]) == ["grad_avg", "momentum_buffer", "square_avg", "step"]


@pytest.mark.parametrize("name", NAMES)
def test_kernel_updates_leave_other_parameters_to_the_array_update(monkeypatch, name):
    """A float64 or a non-contiguous parameter on cudasim takes the array-module update, with the same result."""
    monkeypatch.setattr(optim.Optimizer, "_launch", lambda *args: pytest.fail("a kernel was launched"))
    rng = np.random.default_rng(6)
    base = rng.standard_normal((4, 6))
    results = []
    for device in ("cpu", "cudasim"):
        storage = gpucnn.tensor(base.astype(np.float32), device=device)
        strided = gpucnn.Tensor._from_array(storage.data[:, ::2], storage.device, True)  # a view, stride 2
        wide = gpucnn.tensor(base, device=device, requires_grad=True)  # float64
        optimizer = getattr(optim, name)([strided, wide], **FULL[name])
        for step in range(3):
            strided.grad = gpucnn.tensor(np.full((4, 3), step + 1, np.float32), device=device)
            wide.grad = gpucnn.tensor(np.full((4, 6), step - 1.0), device=device)
            optimizer.step()
        results.append((storage.numpy(), wide.numpy()))
    for ours, reference in zip(*results[::-1]):
        assert_close(ours, reference, atol=1e-6, rtol=1e-6)


# ----------------------------------------------------------------------------- state dicts
def copy_of(values):
    return [gpucnn.tensor(np.array(v), requires_grad=True) for v in values]


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_continues_like_an_uninterrupted_run(name):
    rng = np.random.default_rng(3)
    shapes = [(3, 4), (), (2, 5)]
    params = [gpucnn.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]
    groups = [{"params": params[:2]}, {"params": params[2:], "lr": FULL[name]["lr"] / 2}]
    optimizer = getattr(optim, name)(groups, **FULL[name])
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(7)]

    def step(parameters, opt, k):
        for p, g in zip(parameters, grads[k]):
            p.grad = gpucnn.tensor(g)
        opt.step()

    for k in range(3):
        step(params, optimizer, k)
    saved = pickle.loads(pickle.dumps(optimizer.state_dict()))  # saveable: plain Python and NumPy
    snapshot = pickle.dumps(saved)
    resumed_params = copy_of([p.numpy() for p in params])
    other_defaults = dict(FULL[name], lr=123.0)
    resumed = getattr(optim, name)([{"params": resumed_params[:2]}, {"params": resumed_params[2:]}], **other_defaults)
    resumed.load_state_dict(saved)
    for k in range(3, 7):
        step(params, optimizer, k)
        step(resumed_params, resumed, k)
        for a, b in zip(params, resumed_params):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert pickle.dumps(saved) == snapshot, "later steps must not change a saved state dict"
    assert resumed.param_groups[1]["lr"] == FULL[name]["lr"] / 2
    assert resumed.param_groups[1]["params"][0] is resumed_params[2]


def assert_state_matches_torch(our_optimizer, their_optimizer, atol=1e-12, rtol=1e-10):
    """The state of both state dicts: the same parameters and keys, the step counts and NAdam's mu_product
    (a float32 number in torch) equal, the arrays NumPy arrays of the parameters' shapes and close."""
    ours, theirs = our_optimizer.state_dict(), their_optimizer.state_dict()
    assert sorted(ours["state"]) == sorted(theirs["state"])
    for index, state in theirs["state"].items():
        assert sorted(ours["state"][index]) == sorted(state)
        for key, value in state.items():
            mine = ours["state"][index][key]
            if key == "step":
                assert mine == int(value.item())
            elif key == "mu_product":
                assert value.dtype == torch.float32 and mine == value.item(), f"state {index} {key}"
            else:
                assert isinstance(mine, np.ndarray) and mine.shape == tuple(value.shape)
                assert_close(mine, value, atol=atol, rtol=rtol, name=f"state {index} {key}")
    return ours, theirs


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_format_and_values_match_torch(name):
    our_optimizer, their_optimizer, *_ = run_lockstep(name, FULL[name], steps=3, without_grad={2},
                                                      groups=[([0, 1, 2], {}), ([3, 4], {"lr": 0.05})])
    ours, theirs = assert_state_matches_torch(our_optimizer, their_optimizer)
    for mine, reference in zip(ours["param_groups"], theirs["param_groups"]):
        assert mine["params"] == reference["params"]
        for key, value in mine.items():
            assert reference[key] == value, key


def test_load_state_dict_casts_to_parameter_dtype():
    source = optim.Adam([gpucnn.tensor(np.ones(3), requires_grad=True)], lr=0.1)
    source.param_groups[0]["params"][0].grad = gpucnn.tensor(np.ones(3))
    source.step()
    p = gpucnn.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    target = optim.Adam([p], lr=0.1)
    target.load_state_dict(source.state_dict())
    assert target.state[p]["exp_avg"].dtype == np.float32
    assert target.state[p]["step"] == 1
    p.grad = gpucnn.tensor(np.ones(3, dtype=np.float32))
    target.step()
    assert p.dtype == np.float32


@pytest.mark.parametrize("device", ["cpu", "cudasim"])
def test_load_state_dict_takes_a_non_contiguous_state_array(device):
    """A state array in another memory order (a Fortran-ordered momentum buffer) loads as the same
    values: the kernel devices' update reads it flat, so it must not keep that order."""
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    results = []
    for buffer in (values * 10, np.asfortranarray(values * 10)):
        w = gpucnn.tensor(values, device=device, requires_grad=True)
        optimizer = optim.SGD([w], lr=0.1, momentum=0.9)
        saved = optimizer.state_dict()
        saved["state"] = {0: {"momentum_buffer": buffer}}
        optimizer.load_state_dict(saved)
        w.grad = gpucnn.tensor(np.ones((2, 3), np.float32), device=device)
        optimizer.step()
        results.append(w.numpy())
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_allclose(results[0], values - 0.1 * (0.9 * values * 10 + 1), rtol=1e-6)


def sgd_with_state(shapes=((3,), (2,)), groups=1):
    params = [gpucnn.tensor(np.ones(s), requires_grad=True) for s in shapes]
    groups = [{"params": params}] if groups == 1 else [{"params": [p]} for p in params]
    optimizer = optim.SGD(groups, lr=0.1, momentum=0.9)
    for p in params:
        p.grad = gpucnn.tensor(np.ones(p.shape))
    optimizer.step()
    return optimizer


def test_load_state_dict_errors():
    saved = sgd_with_state().state_dict()
    with pytest.raises(ValueError, match="loaded state dict has 1 parameter groups, but the optimizer has 2"):
        sgd_with_state(groups=2).load_state_dict(saved)
    with pytest.raises(ValueError, match="group 0 has 2 parameters in the state dict and 3 in the optimizer"):
        sgd_with_state(shapes=((3,), (2,), (1,))).load_state_dict(saved)
    with pytest.raises(ValueError, match=r"'momentum_buffer' of parameter 1 has shape \(2,\), but the parameter has "
                                         r"shape \(4,\)"):
        sgd_with_state(shapes=((3,), (4,))).load_state_dict(saved)
    with pytest.raises(ValueError, match=r"lacks the Adam options \['amsgrad', 'betas'"):
        optim.Adam([gpucnn.tensor(np.ones(3), requires_grad=True), gpucnn.tensor(np.ones(2), requires_grad=True)]) \
            .load_state_dict(saved)
    with pytest.raises(ValueError, match="state for parameter 7, which no group lists"):
        sgd_with_state().load_state_dict({"state": {7: {}}, "param_groups": saved["param_groups"]})
    with pytest.raises(ValueError, match="expected a dict with keys 'state' and 'param_groups'"):
        sgd_with_state().load_state_dict({"state": {}})
    bad = pickle.loads(pickle.dumps(saved))
    bad["param_groups"][0]["lr"] = -1
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        sgd_with_state().load_state_dict(bad)


@pytest.mark.parametrize("device, dtype", [("cpu", np.float64), ("cpu", np.float32), ("cudasim", np.float32)])
def test_adagrad_state_is_made_in_the_constructor_as_torchs(device, dtype):
    """Adagrad's state (step 0, the sum at initial_accumulator_value) exists for every parameter from the
    constructor on, at the defaults' initial_accumulator_value whatever a group sets, as torch's; a group
    added later gets its state at its first step, from the defaults' value again: parameters and state
    as torch's, the state loaded into a new optimizer goes on alike."""
    rng = np.random.default_rng(9)
    values = [rng.standard_normal(shape).astype(dtype) for shape in ((3, 4), (5,), (2,))]
    our_optimizer, their_optimizer, ours, theirs = make_optimizers(
        "Adagrad", dict(lr=0.1, initial_accumulator_value=0.25), values[:2],
        [([0], {}), ([1], dict(initial_accumulator_value=2.0))], device)
    tolerance = TOLERANCE[dtype]
    assert_state_matches_torch(our_optimizer, their_optimizer, **tolerance)
    assert np.array_equal(our_optimizer.state_dict()["state"][1]["sum"], np.full(5, 0.25, dtype))
    extra = gpucnn.tensor(values[2], device=device, requires_grad=True), torch.tensor(values[2], requires_grad=True)
    for optimizer, param in zip((our_optimizer, their_optimizer), extra):
        optimizer.add_param_group({"params": [param], "initial_accumulator_value": 3.0})
    assert sorted(our_optimizer.state_dict()["state"]) == sorted(their_optimizer.state_dict()["state"]) == [0, 1]
    ours, theirs = ours + [extra[0]], theirs + [extra[1]]
    for step in range(4):
        if step == 2:  # resumed from the state dict, the parameters still the same
            resumed = optim.Adagrad([{"params": [ours[0]]}, {"params": [ours[1]]}, {"params": [ours[2]]}])
            resumed.load_state_dict(pickle.loads(pickle.dumps(our_optimizer.state_dict())))
            our_optimizer = resumed
        for mine, reference in zip(ours, theirs):
            grad = rng.standard_normal(mine.shape).astype(dtype)
            mine.grad, reference.grad = gpucnn.tensor(grad, device=device), torch.tensor(grad)
        our_optimizer.step()
        their_optimizer.step()
        for index, (mine, reference) in enumerate(zip(ours, theirs)):
            assert_close(mine, reference, **tolerance, name=f"parameter {index} step {step}")
    assert_state_matches_torch(our_optimizer, their_optimizer, **tolerance)


@pytest.mark.parametrize("device", ["cpu", "cudasim"])
def test_nadam_mu_product_is_a_float32_number_as_torchs(device):
    """NAdam's mu_product is rounded to float32 at every step, as torch's float32 tensor: after 60 steps of
    momentum_decay 0.3 it equals torch's (a product taken in float64 would not), and a state dict holding
    it as a 0-d array, or torch's tensor, loads as that number."""
    rng = np.random.default_rng(10)
    values = [rng.standard_normal(4)]
    our_optimizer, their_optimizer, ours, theirs = make_optimizers("NAdam", dict(lr=0.01, momentum_decay=0.3),
                                                                   values, device=device)
    exact = 1.0
    for step in range(1, 61):
        grad = rng.standard_normal(4)
        ours[0].grad, theirs[0].grad = gpucnn.tensor(grad, device=device), torch.tensor(grad)
        our_optimizer.step()
        their_optimizer.step()
        exact *= 0.9 * (1.0 - 0.5 * (0.96 ** (step * 0.3)))
    mu_product = their_optimizer.state[theirs[0]]["mu_product"]
    assert our_optimizer.state[ours[0]]["mu_product"] == mu_product.item() != exact
    saved = our_optimizer.state_dict()
    for stored in (np.array(mu_product.item(), np.float32), mu_product):
        saved["state"][0]["mu_product"] = stored
        our_optimizer.load_state_dict(saved)
        assert our_optimizer.state[ours[0]]["mu_product"] == mu_product.item()


def test_adamw_keeps_decoupled_decay_after_loading_an_adam_state_dict():
    params = [gpucnn.tensor(np.ones(2), requires_grad=True)]
    adamw = optim.AdamW(params)
    adamw.load_state_dict(optim.Adam([gpucnn.tensor(np.ones(2), requires_grad=True)]).state_dict())
    assert adamw.param_groups[0]["decoupled_weight_decay"] is True


# ----------------------------------------------------------------------------- validation
def param():
    return gpucnn.tensor(np.ones(3), requires_grad=True)


@pytest.mark.parametrize("make, error, message", [
    (lambda: optim.SGD([param()], lr=-1), ValueError, "Invalid learning rate: -1"),
    (lambda: optim.SGD([param()], lr=float("nan")), ValueError, "Invalid learning rate: nan"),
    (lambda: optim.SGD([param()], lr="fast"), TypeError, "Invalid learning rate: 'fast'"),
    (lambda: optim.SGD([param()], momentum=-0.5), ValueError, "Invalid momentum value: -0.5"),
    (lambda: optim.SGD([param()], weight_decay=-1), ValueError, "Invalid weight_decay value: -1"),
    (lambda: optim.SGD([param()], nesterov=True), ValueError, "Nesterov momentum requires a momentum and zero damp"),
    (lambda: optim.SGD([param()], momentum=0.9, dampening=0.1, nesterov=True), ValueError,
     r"Nesterov momentum requires .* \(momentum=0.9, dampening=0.1\)"),
    (lambda: optim.SGD([param()], nesterov="yes"), TypeError, "Invalid nesterov: 'yes'"),
    (lambda: optim.SGD([{"params": [param()], "lr": -2}], lr=0.1), ValueError, "Invalid learning rate: -2"),
    (lambda: optim.Adam([param()], lr=-1), ValueError, "Invalid learning rate: -1"),
    (lambda: optim.Adam([param()], eps=-1e-8), ValueError, "Invalid epsilon value: -1e-08"),
    (lambda: optim.Adam([param()], betas=(1.0, 0.999)), ValueError, "Invalid beta parameter at index 0: 1.0"),
    (lambda: optim.Adam([param()], betas=(-0.1, 0.999)), ValueError, r"Invalid beta parameter at index 0: -0.1"),
    (lambda: optim.Adam([param()], betas=(0.9, 1.0)), ValueError, "Invalid beta parameter at index 1: 1.0"),
    (lambda: optim.Adam([param()], betas=(0.9,)), ValueError, r"Invalid betas: \(0.9,\)"),
    (lambda: optim.Adam([param()], weight_decay=-0.1), ValueError, "Invalid weight_decay value: -0.1"),
    (lambda: optim.Adam([param()], amsgrad=1), TypeError, "Invalid amsgrad: 1"),
    (lambda: optim.Adam([param()], maximize=None), TypeError, "Invalid maximize: None"),
    (lambda: optim.AdamW([param()], lr=-1), ValueError, "Invalid learning rate: -1"),
    (lambda: optim.AdamW([param()], betas=(0.9, 2)), ValueError, "Invalid beta parameter at index 1: 2"),
    (lambda: optim.AdamW([param()], eps=-1), ValueError, "Invalid epsilon value: -1"),
    (lambda: optim.AdamW([param()], weight_decay=-1), ValueError, "Invalid weight_decay value: -1"),
    (lambda: optim.Adadelta([param()], lr=-1), ValueError, "Invalid learning rate: -1"),
    (lambda: optim.Adadelta([param()], rho=1.1), ValueError, "Invalid rho value: 1.1"),
    (lambda: optim.Adadelta([param()], rho=-0.1), ValueError, "Invalid rho value: -0.1"),
    (lambda: optim.Adadelta([param()], eps=-1), ValueError, "Invalid epsilon value: -1"),
    (lambda: optim.Adadelta([param()], weight_decay=-1), ValueError, "Invalid weight_decay value: -1"),
    (lambda: optim.RMSprop([param()], lr=-1), ValueError, "Invalid learning rate: -1"),
    (lambda: optim.RMSprop([param()], eps=-1e-8), ValueError, "Invalid epsilon value: -1e-08"),
    (lambda: optim.RMSprop([param()], momentum=-0.5), ValueError, "Invalid momentum value: -0.5"),
    (lambda: optim.RMSprop([param()], weight_decay=-1), ValueError, "Invalid weight_decay value: -1"),
    (lambda: optim.RMSprop([param()], alpha=-0.1), ValueError, "Invalid alpha value: -0.1"),
    (lambda: optim.RMSprop([param()], alpha=float("nan")), ValueError, "Invalid alpha value: nan"),
    (lambda: optim.RMSprop([param()], centered="yes"), TypeError, "Invalid centered: 'yes'"),
    (lambda: optim.RMSprop([param()], maximize=None), TypeError, "Invalid maximize: None"),
    (lambda: optim.RMSprop([{"params": [param()], "alpha": -1}]), ValueError, "Invalid alpha value: -1"),
    (lambda: optim.RMSprop([param()], 0.01, 0.99, 1e-8, 0, 0, False, False), TypeError, "positional argument"),
    (lambda: optim.RMSprop([param()], foreach=False), TypeError, "unexpected keyword argument 'foreach'"),
    (lambda: optim.Adagrad([param()], lr=-1), ValueError, "Invalid learning rate: -1"),
    (lambda: optim.Adagrad([param()], lr_decay=-0.1), ValueError, "Invalid lr_decay value: -0.1"),
    (lambda: optim.Adagrad([param()], weight_decay=-1), ValueError, "Invalid weight_decay value: -1"),
    (lambda: optim.Adagrad([param()], initial_accumulator_value=-1), ValueError,
     "Invalid initial_accumulator_value value: -1"),
    (lambda: optim.Adagrad([param()], eps=-1), ValueError, "Invalid epsilon value: -1"),
    (lambda: optim.Adagrad([param()], maximize="yes"), TypeError, "Invalid maximize: 'yes'"),
    (lambda: optim.Adagrad([{"params": [param()], "lr_decay": float("nan")}]), ValueError,
     "Invalid lr_decay value: nan"),
    (lambda: optim.Adagrad([param()], 0.01, 0, 0, 0, 1e-10, False), TypeError, "positional argument"),
    (lambda: optim.Adamax([param()], lr=-1), ValueError, "Invalid learning rate: -1"),
    (lambda: optim.Adamax([param()], eps=-1), ValueError, "Invalid epsilon value: -1"),
    (lambda: optim.Adamax([param()], betas=(1.0, 0.9)), ValueError, "Invalid beta parameter at index 0: 1.0"),
    (lambda: optim.Adamax([param()], betas=(0.9, 1.5)), ValueError, "Invalid beta parameter at index 1: 1.5"),
    (lambda: optim.Adamax([param()], betas=0.9), ValueError, "Invalid betas: 0.9"),
    (lambda: optim.Adamax([param()], weight_decay=-1), ValueError, "Invalid weight_decay value: -1"),
    (lambda: optim.Adamax([param()], maximize=0), TypeError, "Invalid maximize: 0"),
    (lambda: optim.NAdam([param()], lr=-1), ValueError, "Invalid learning rate: -1"),
    (lambda: optim.NAdam([param()], eps=-1), ValueError, "Invalid epsilon value: -1"),
    (lambda: optim.NAdam([param()], betas=(-0.1, 0.9)), ValueError, "Invalid beta parameter at index 0: -0.1"),
    (lambda: optim.NAdam([param()], weight_decay=-0.5), ValueError, "Invalid weight_decay value: -0.5"),
    (lambda: optim.NAdam([param()], momentum_decay=-0.1), ValueError, "Invalid momentum_decay value: -0.1"),
    (lambda: optim.NAdam([param()], decoupled_weight_decay=1), TypeError, "Invalid decoupled_weight_decay: 1"),
    (lambda: optim.NAdam([param()], 2e-3, (0.9, 0.999), 1e-8, 0, 4e-3, False, None), TypeError,
     "positional argument"),
    (lambda: optim.RAdam([param()], lr=-1), ValueError, "Invalid learning rate: -1"),
    (lambda: optim.RAdam([param()], eps=-1e-8), ValueError, "Invalid epsilon value: -1e-08"),
    (lambda: optim.RAdam([param()], betas=(0.9, 1.0)), ValueError, "Invalid beta parameter at index 1: 1.0"),
    (lambda: optim.RAdam([param()], weight_decay=-1), ValueError, "Invalid weight_decay value: -1"),
    (lambda: optim.RAdam([param()], decoupled_weight_decay="no"), TypeError, "Invalid decoupled_weight_decay: 'no'"),
    (lambda: optim.RAdam([param()], maximize=None), TypeError, "Invalid maximize: None"),
])
def test_invalid_options(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_boundary_options_are_accepted():
    optim.SGD([param()], lr=0)
    optim.Adam([param()], betas=(0.0, 0.0), eps=0)
    optim.Adadelta([param()], rho=1.0)
    optim.Adadelta([param()], rho=0.0)
    optim.RMSprop([param()], lr=0, alpha=0.0, eps=0, momentum=0, weight_decay=0)
    optim.RMSprop([param()], alpha=1.5)  # torch sets alpha no upper bound
    optim.Adagrad([param()], lr=0, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=0)
    optim.Adamax([param()], lr=0, betas=(0.0, 0.0), eps=0, weight_decay=0)
    optim.NAdam([param()], lr=0, betas=(0.0, 0.0), eps=0, weight_decay=0, momentum_decay=0)
    optim.RAdam([param()], lr=0, betas=(0.0, 0.0), eps=0, weight_decay=0)


def test_invalid_parameters():
    p = param()
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        optim.SGD([])
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        optim.Adam(x for x in [])
    with pytest.raises(TypeError, match=r"should be an iterable of Tensors or dicts, but got a Tensor of shape \(3,\)"):
        optim.SGD(p)
    with pytest.raises(TypeError, match=r"should be an iterable of Tensors or dicts, but got int 5$"):
        optim.SGD(5)
    with pytest.raises(TypeError, match="not a set"):
        optim.SGD({p})
    with pytest.raises(TypeError, match="not a set"):
        optim.SGD([{"params": {p}}])
    with pytest.raises(TypeError, match="optimizer can only optimize Tensors, but parameter 1 of group 0 is a ndarray"):
        optim.SGD([p, np.ones(3)])
    with pytest.raises(TypeError, match="floating-point Tensors, but parameter 0 of group 0 is int64"):
        optim.SGD([gpucnn.tensor(np.arange(3))])
    with pytest.raises(ValueError, match=r"parameter 0 of group 0 \(shape \(2,\)\) that does not require grad"):
        optim.SGD([gpucnn.tensor(np.ones(2))])
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        optim.SGD([p * 2])
    with pytest.raises(ValueError, match="group 0 contains the same parameter more than once"):
        optim.SGD([p, p])
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [param(), p]}])
    optimizer = optim.SGD([p])
    with pytest.raises(TypeError, match="param_group must be a dict, but got list"):
        optimizer.add_param_group([param()])
    with pytest.raises(ValueError, match="param_group must have a 'params' entry"):
        optimizer.add_param_group({"lr": 0.1})
    with pytest.raises(ValueError, match="more than one parameter group"):
        optimizer.add_param_group({"params": p})


def test_defaults_match_torch():
    for name in NAMES:
        ours = inspect.signature(getattr(optim, name)).parameters
        theirs = inspect.signature(getattr(torch.optim, name)).parameters
        for key, parameter in ours.items():
            if parameter.default is not inspect.Parameter.empty:
                assert parameter.default == theirs[key].default, f"{name}({key}=...)"
    assert optim.SGD([param()]).defaults["lr"] == 1e-3
    assert optim.AdamW([param()]).defaults["weight_decay"] == 1e-2
    assert optim.RMSprop([param()]).defaults == dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                                                     centered=False, maximize=False)
    assert optim.Adagrad([param()]).defaults == dict(lr=1e-2, lr_decay=0, eps=1e-10, weight_decay=0,
                                                     initial_accumulator_value=0, maximize=False)
    assert optim.Adamax([param()]).defaults == dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                                                    maximize=False)
    assert optim.NAdam([param()]).defaults == dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                                                   momentum_decay=4e-3, decoupled_weight_decay=False, maximize=False)
    assert optim.RAdam([param()]).defaults == dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                                                   decoupled_weight_decay=False, maximize=False)


# torch's arguments that gpucnn.optim leaves out (no foreach or fused paths, no graph capture, no autograd
# through the step).
LEFT_OUT = {"foreach", "fused", "capturable", "differentiable"}


@pytest.mark.parametrize("name", NAMES)
def test_optimizers_take_torchs_arguments_in_torchs_order(name):
    """torch's arguments but LEFT_OUT, named as there; the positional ones in torch's order up to the first
    left out or keyword-only one of torch's, the rest keyword-only (RMSprop's maximize, positional in torch
    after capturable and foreach), so no positional call of torch's means something else here."""
    ours = inspect.signature(getattr(optim, name)).parameters
    theirs = inspect.signature(getattr(torch.optim, name)).parameters
    assert set(ours) == set(theirs) - LEFT_OUT
    positional = [key for key, parameter in ours.items() if parameter.kind is parameter.POSITIONAL_OR_KEYWORD]
    assert positional == list(theirs)[:len(positional)]
    following = list(theirs.values())[len(positional):]
    assert not following or following[0].name in LEFT_OUT or following[0].kind is inspect.Parameter.KEYWORD_ONLY
    assert all(parameter.kind is parameter.KEYWORD_ONLY for key, parameter in ours.items() if key not in positional)


# ----------------------------------------------------------------------------- other API
def test_sgd_without_momentum_keeps_no_state():
    p = param()
    optimizer = optim.SGD([p], lr=0.1)
    p.grad = gpucnn.tensor(np.ones(3))
    optimizer.step()
    assert optimizer.state_dict()["state"] == {} and p not in optimizer.state


def test_zero_grad():
    p, q, r = param(), param(), param()
    optimizer = optim.SGD([p, q, r], lr=0.1)
    p.grad, q.grad = gpucnn.tensor(np.ones(3)), gpucnn.tensor(np.ones(3))
    grad_array = q.grad.data
    optimizer.zero_grad(set_to_none=False)
    assert q.grad.data is grad_array
    np.testing.assert_array_equal(q.grad.numpy(), np.zeros(3))
    assert r.grad is None
    optimizer.zero_grad()
    assert p.grad is None and q.grad is None


def test_add_param_group_and_named_parameters():
    p, q = param(), param()
    optimizer = optim.SGD([("weight", p)], lr=0.1, momentum=0.9)
    optimizer.add_param_group({"params": [("bias", q)], "lr": 0.5})
    assert optimizer.param_groups[0]["param_names"] == ["weight"]
    assert optimizer.param_groups[1]["momentum"] == 0.9 and optimizer.param_groups[1]["lr"] == 0.5
    q.grad = gpucnn.tensor(np.ones(3))
    optimizer.step()
    assert_close(q, np.full(3, 0.5))
    assert optimizer.state_dict()["param_groups"][1]["param_names"] == ["bias"]


def test_step_with_closure_and_repr():
    p = param()
    optimizer = optim.SGD([p], lr=0.25)
    calls = []

    def closure():
        calls.append(1)
        optimizer.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = optimizer.step(closure)
    assert len(calls) == 1 and loss.item() == 3.0
    assert_close(p, np.full(3, 0.5))  # p - 0.25 * 2p
    assert "SGD (" in repr(optimizer) and "Parameter Group 0" in repr(optimizer) and "lr: 0.25" in repr(optimizer)


@pytest.mark.parametrize("make, steps", [
    (lambda ps: optim.SGD(ps, lr=0.1), 50),
    (lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True), 100),
    (lambda ps: optim.Adam(ps, lr=0.1), 200),
    (lambda ps: optim.AdamW(ps, lr=0.1, weight_decay=1e-4), 200),
    (lambda ps: optim.Adadelta(ps, lr=1.0, rho=0.95, eps=1e-6), 600),
], ids=["sgd", "sgd-nesterov", "adam", "adamw", "adadelta-convnetjs"])
def test_minimises_a_quadratic(make, steps):
    rng = np.random.default_rng(5)
    target = gpucnn.tensor(rng.standard_normal((4, 5)).astype(np.float32))
    x = gpucnn.tensor(np.zeros((4, 5), dtype=np.float32), requires_grad=True)
    optimizer = make([x])
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = ((x - target) ** 2).sum()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert x.dtype == np.float32
    assert losses[-1] < 1e-2 * losses[0], losses[::max(1, steps // 10)]


def test_module_parameters_are_updated_in_place():
    model = gpucnn.nn.Linear(4, 3)
    weight_array, before = model.weight.data, model.weight.numpy().copy()
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(gpucnn.tensor(np.ones((2, 4), dtype=np.float32))).sum().backward()
    optimizer.step()
    assert model.weight.data is weight_array
    assert_close(model.weight, before - 0.1 * 2.0)  # d(sum)/d(weight) = sum of the 2 input rows of ones
    assert optim.Adam(model.named_parameters()).param_groups[0]["param_names"] == ["weight", "bias"]


# ----------------------------------------------------------------------------- learning-rate schedules
class Halving:
    """A callable object for LambdaLR, whose attributes its state_dict keeps."""

    def __init__(self, every):
        self.every = every

    def __call__(self, epoch):
        return 0.5 ** (epoch // self.every)


# (schedule, its options, the optimizer of _two_group_optimizers)
SCHEDULES = [
    pytest.param("StepLR", dict(step_size=3, gamma=0.5), "SGD", id="StepLR"),
    pytest.param("MultiStepLR", dict(milestones=[2, 5, 5, 9], gamma=0.3), "SGD", id="MultiStepLR"),
    pytest.param("ExponentialLR", dict(gamma=0.9), "SGD", id="ExponentialLR"),
    pytest.param("CosineAnnealingLR", dict(T_max=4, eta_min=0.01), "SGD", id="CosineAnnealingLR"),
    pytest.param("LambdaLR", dict(lr_lambda=lambda epoch: 0.8**epoch + epoch % 3), "SGD", id="LambdaLR-one"),
    pytest.param("LambdaLR", dict(lr_lambda=[lambda epoch: 1 / (epoch + 1), Halving(4)]), "Adam", id="LambdaLR-list"),
    pytest.param("LinearLR", {}, "SGD", id="LinearLR"),
    pytest.param("LinearLR", dict(start_factor=0.5, end_factor=0.1, total_iters=8), "Adam", id="LinearLR-down"),
    pytest.param("OneCycleLR", dict(max_lr=1.0, total_steps=12), "SGD", id="OneCycleLR-cos-SGD"),
    pytest.param("OneCycleLR", dict(max_lr=[1.0, 2.0], total_steps=12, anneal_strategy="linear"), "Adam",
                 id="OneCycleLR-linear-Adam"),
    pytest.param("OneCycleLR", dict(max_lr=0.5, epochs=4, steps_per_epoch=3, pct_start=0.4, three_phase=True,
                                    base_momentum=[0.8, 0.7], max_momentum=0.9, div_factor=10.0,
                                    final_div_factor=100.0), "SGD", id="OneCycleLR-three-phase-SGD"),
    pytest.param("OneCycleLR", dict(max_lr=1.0, total_steps=12, anneal_strategy="linear", three_phase=True), "AdamW",
                 id="OneCycleLR-linear-three-phase-AdamW"),
    pytest.param("OneCycleLR", dict(max_lr=1.0, total_steps=12, cycle_momentum=False), "Adadelta",
                 id="OneCycleLR-no-momentum-Adadelta"),
    pytest.param("MultiplicativeLR", dict(lr_lambda=lambda epoch: 0.9 + 0.05 * (epoch % 2)), "SGD",
                 id="MultiplicativeLR-one"),
    pytest.param("MultiplicativeLR", dict(lr_lambda=[lambda epoch: 0.8, Halving(3)]), "Adam",
                 id="MultiplicativeLR-list"),
    pytest.param("ConstantLR", {}, "SGD", id="ConstantLR"),
    pytest.param("ConstantLR", dict(factor=0.5, total_iters=9), "Adam", id="ConstantLR-past-the-hand-set-rate"),
    pytest.param("PolynomialLR", {}, "SGD", id="PolynomialLR"),
    pytest.param("PolynomialLR", dict(total_iters=10, power=2.5), "Adam", id="PolynomialLR-power"),
    pytest.param("CosineAnnealingWarmRestarts", dict(T_0=4, eta_min=0.01), "SGD", id="CosineAnnealingWarmRestarts"),
    pytest.param("CosineAnnealingWarmRestarts", dict(T_0=2, T_mult=2), "Adam", id="CosineAnnealingWarmRestarts-mult"),
    pytest.param("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=3), "SGD", id="CyclicLR-triangular-SGD"),
    pytest.param("CyclicLR", dict(base_lr=[0.01, 0.02], max_lr=0.5, step_size_up=2, step_size_down=3,
                                  mode="triangular2", base_momentum=0.7, max_momentum=[0.9, 0.95]), "Adam",
                 id="CyclicLR-triangular2-Adam"),
    pytest.param("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=2, mode="exp_range", gamma=0.9), "SGD",
                 id="CyclicLR-exp-range"),
    pytest.param("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=4, scale_fn=Halving(1),
                                  scale_mode="iterations", cycle_momentum=False), "Adadelta",
                 id="CyclicLR-scale-fn-Adadelta"),
]
SCHEDULE_NAMES = sorted({case.values[0] for case in SCHEDULES} | {"ReduceLROnPlateau", "SequentialLR",
                                                                   "ChainedScheduler"})


def _two_group_optimizers(name="SGD"):
    options = dict(lr=0.1, momentum=0.9) if name == "SGD" else dict(lr=0.1)
    values = [np.ones(2), np.ones(3)]
    return make_optimizers(name, options, values, groups=[([0], {}), ([1], dict(lr=0.4))])[:2]


def _momenta(optimizer):
    """Each group's momentum (SGD's momentum, Adam's betas[0]), None where it has neither."""
    return [group["betas"][0] if "betas" in group else group.get("momentum") for group in optimizer.param_groups]


@pytest.mark.parametrize("name, options, optimizer_name", SCHEDULES)
def test_schedules_set_the_rates_of_torchs(name, options, optimizer_name):
    """Each group's rate (and momentum) after every step, as torch's schedule sets it, over three cosine periods:
    a rate set by hand between steps carries on from there in a chainable schedule and is overwritten at the
    next step in the others, as torch's; a schedule resumed from the state it saved (and the optimizer's, loaded
    after the schedule is made, as torch's documentation asks) goes on as the uninterrupted one."""
    ours, theirs = _two_group_optimizers(optimizer_name)
    schedules = [getattr(module, name)(optimizer, **options)
                 for module, optimizer in ((optim.lr_scheduler, ours), (torch.optim.lr_scheduler, theirs))]
    saved = None
    for epoch in range(13):
        if epoch:
            for optimizer in (ours, theirs):
                optimizer.step()  # no gradients: nothing moves, as torch wants a step before the schedule's
            if epoch == 7:
                for optimizer in (ours, theirs):
                    optimizer.param_groups[1]["lr"] = 0.2
            for schedule in schedules:
                schedule.step()
        if epoch == 4:
            saved = pickle.loads(pickle.dumps((schedules[0].state_dict(), ours.state_dict())))
        assert_close(np.array(schedules[0].get_last_lr()), np.array(schedules[1].get_last_lr()), atol=1e-15,
                     name=f"{name} epoch {epoch}")
        assert_close(np.array(_momenta(ours), float), np.array(_momenta(theirs), float), atol=1e-15,
                     name=f"{name} momentum at epoch {epoch}")
        assert [group["lr"] for group in ours.param_groups] == schedules[0].get_last_lr()
    resumed_optimizer, _ = _two_group_optimizers(optimizer_name)
    resumed = getattr(optim.lr_scheduler, name)(resumed_optimizer, **options)  # before the optimizer's state
    resumed_optimizer.load_state_dict(saved[1])  # (LinearLR's first step would scale the loaded rates)
    resumed.load_state_dict(saved[0])
    reference_optimizer, _ = _two_group_optimizers(optimizer_name)
    reference = getattr(optim.lr_scheduler, name)(reference_optimizer, **options)
    for _ in range(4):
        reference.step()
    for _ in range(5):
        resumed.step()
        reference.step()
        assert resumed.get_last_lr() == reference.get_last_lr(), name
        assert _momenta(resumed_optimizer) == _momenta(reference_optimizer), name


# (schedules as (name, options), milestones), each over the optimizer SequentialLR gets
SEQUENCES = [
    pytest.param([("LinearLR", dict(start_factor=0.1, total_iters=4)), ("CosineAnnealingLR", dict(T_max=6))], [4],
                 id="warm-up-then-cosine"),
    pytest.param([("ConstantLR", dict(factor=0.5, total_iters=2)), ("ExponentialLR", dict(gamma=0.8)),
                  ("StepLR", dict(step_size=2, gamma=0.5))], [3, 7], id="three"),
    pytest.param([("ExponentialLR", dict(gamma=0.9)), ("LambdaLR", dict(lr_lambda=lambda epoch: 1 / (epoch + 1))),
                  ("MultiplicativeLR", dict(lr_lambda=lambda epoch: 0.7))], [2, 9], id="without-closed-forms"),
    pytest.param([("MultiStepLR", dict(milestones=[1, 1, 3], gamma=0.5)), ("PolynomialLR", dict(power=2.0)),
                  ("LinearLR", dict(start_factor=0.25))], [5, 6], id="adjacent-milestones"),
]


def _sequence(module, optimizer, schedules, milestones):
    made = [getattr(module, name)(optimizer, **options) for name, options in schedules]
    return module.SequentialLR(optimizer, made, milestones=milestones)


@pytest.mark.parametrize("schedules, milestones", SEQUENCES)
def test_sequential_lr_sets_the_rates_of_torchs(schedules, milestones):
    """SequentialLR's rates epoch by epoch as torch's, a rate set by hand between steps included, and resumed
    from its state dict as the uninterrupted one goes on."""
    ours, theirs = _two_group_optimizers()
    sequences = [_sequence(optim.lr_scheduler, ours, schedules, milestones),
                 _sequence(torch.optim.lr_scheduler, theirs, schedules, milestones)]
    assert [group["lr"] for group in ours.param_groups] == [group["lr"] for group in theirs.param_groups]
    for epoch in range(1, 13):
        if epoch == 8:
            for optimizer in (ours, theirs):
                optimizer.param_groups[0]["lr"] = 0.3
        for optimizer, sequence in zip((ours, theirs), sequences):
            optimizer.step()
            sequence.step()
        if epoch == 4:
            saved = pickle.loads(pickle.dumps((sequences[0].state_dict(), ours.state_dict())))
        assert_close(np.array(sequences[0].get_last_lr()), np.array(sequences[1].get_last_lr()), atol=1e-15,
                     name=f"epoch {epoch}")
        assert_close(np.array([group["lr"] for group in ours.param_groups]),
                     np.array([group["lr"] for group in theirs.param_groups]), atol=1e-15, name=f"epoch {epoch}")
    resumed_optimizer, _ = _two_group_optimizers()
    resumed = _sequence(optim.lr_scheduler, resumed_optimizer, schedules, milestones)
    resumed_optimizer.load_state_dict(saved[1])
    resumed.load_state_dict(saved[0])
    reference_optimizer, _ = _two_group_optimizers()
    reference = _sequence(optim.lr_scheduler, reference_optimizer, schedules, milestones)
    for _ in range(4):
        reference.step()
    for _ in range(6):
        resumed.step()
        reference.step()
        assert resumed.get_last_lr() == reference.get_last_lr()


def test_sequential_lr_milestone_errors():
    optimizer = _two_group_optimizers()[0]
    schedules = [optim.lr_scheduler.StepLR(optimizer, 2), optim.lr_scheduler.ExponentialLR(optimizer, 0.5)]
    with pytest.raises(ValueError, match="^SequentialLR: give one milestone fewer than schedules: 2 schedules and 2 "
                                         "milestones$"):
        optim.lr_scheduler.SequentialLR(optimizer, schedules, [3, 4])
    with pytest.raises(ValueError, match=r"^SequentialLR: milestones must be ints, got \[2.5\]$"):
        optim.lr_scheduler.SequentialLR(optimizer, schedules, [2.5])


def test_chained_scheduler_sets_the_rates_of_torchs():
    ours, theirs = _two_group_optimizers("Adam")
    chains = []
    for module, optimizer in ((optim.lr_scheduler, ours), (torch.optim.lr_scheduler, theirs)):
        parts = [module.ConstantLR(optimizer, factor=0.1, total_iters=2), module.ExponentialLR(optimizer, gamma=0.9)]
        chains.append(module.ChainedScheduler(parts))  # the optimizer: the first schedule's
    assert chains[0].get_last_lr() == chains[1].get_last_lr()
    for epoch in range(8):
        for optimizer, chain in zip((ours, theirs), chains):
            optimizer.step()
            chain.step()
        assert_close(np.array(chains[0].get_last_lr()), np.array(chains[1].get_last_lr()), atol=1e-15,
                     name=f"epoch {epoch}")
    state = chains[0].state_dict()
    assert [part["last_epoch"] for part in state["_schedulers"]] == [8, 8]


def test_cyclic_lr_made_after_another_schedule_as_torchs():
    """A group that holds an initial_lr already (another schedule's) starts CyclicLR from it, then cycles from
    base_lr, as torch's."""
    ours, theirs = _two_group_optimizers()
    schedules = []
    for module, optimizer in ((optim.lr_scheduler, ours), (torch.optim.lr_scheduler, theirs)):
        module.ExponentialLR(optimizer, gamma=0.5)
        schedules.append(module.CyclicLR(optimizer, base_lr=0.01, max_lr=0.05, step_size_up=2))
    for epoch in range(5):
        assert_close(np.array(schedules[0].get_last_lr()), np.array(schedules[1].get_last_lr()), atol=1e-15,
                     name=f"epoch {epoch}")
        for optimizer, schedule in zip((ours, theirs), schedules):
            optimizer.step()
            schedule.step()


def test_cosine_annealing_warm_restarts_stepped_by_fractions_of_epochs_as_torchs():
    """step(epoch) with the epoch a fraction (a batch at a time), as torch's, across restarts of growing periods."""
    ours, theirs = _two_group_optimizers()
    schedules = [module.CosineAnnealingWarmRestarts(optimizer, T_0=2, T_mult=3, eta_min=0.001)
                 for module, optimizer in ((optim.lr_scheduler, ours), (torch.optim.lr_scheduler, theirs))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's warns that step(epoch) is deprecated
        for epoch in [0.25, 0.5, 1.75, 2.0, 2.5, 7.9, 8.0, 8.1, 30.2, 1.5, 4]:
            for optimizer, schedule in zip((ours, theirs), schedules):
                optimizer.step()
                schedule.step(epoch)
            assert_close(np.array(schedules[0].get_last_lr()), np.array(schedules[1].get_last_lr()), atol=1e-15,
                         name=f"epoch {epoch}")
            assert schedules[0].last_epoch == schedules[1].last_epoch
            schedules[0].step()
            schedules[1].step()
            assert_close(np.array(schedules[0].get_last_lr()), np.array(schedules[1].get_last_lr()), atol=1e-15,
                         name=f"the epoch after {epoch}")
    with pytest.raises(ValueError, match="CosineAnnealingWarmRestarts.step: epoch must be a number of 0 or more, "
                                         "got -1"):
        schedules[0].step(-1)


def test_a_schedule_resumed_by_last_epoch_as_torchs():
    """last_epoch resumes a schedule in groups that hold their initial_lr, from the rates they hold, as
    torch's; without initial_lr it is an error, as are bad options."""
    for name, options in (("CosineAnnealingLR", dict(T_max=5)), ("ExponentialLR", dict(gamma=0.5)),
                          ("StepLR", dict(step_size=3)), ("LinearLR", dict(start_factor=0.25, total_iters=6)),
                          ("LambdaLR", dict(lr_lambda=lambda epoch: 1 / (epoch + 1)))):
        rates = []
        for module, optimizer in ((optim.lr_scheduler, _two_group_optimizers()[0]),
                                  (torch.optim.lr_scheduler, _two_group_optimizers()[1])):
            for group in optimizer.param_groups:
                group["initial_lr"] = group["lr"] * 2
            schedule = getattr(module, name)(optimizer, last_epoch=3, **options)
            rates.append([schedule.get_last_lr()])
            for _ in range(6):
                optimizer.step()
                schedule.step()
                rates[-1].append(schedule.get_last_lr())
        assert_close(np.array(rates[0]), np.array(rates[1]), atol=1e-15, name=f"resumed {name}")
    with pytest.raises(KeyError, match="StepLR: last_epoch=3 resumes a schedule, but parameter group 0 has no"):
        optim.lr_scheduler.StepLR(_two_group_optimizers()[0], step_size=2, last_epoch=3)
    for make, message in ((lambda o: optim.lr_scheduler.StepLR(o, step_size=0), "StepLR: step_size must be"),
                          (lambda o: optim.lr_scheduler.ExponentialLR(o, gamma=0), "ExponentialLR: gamma must be"),
                          (lambda o: optim.lr_scheduler.MultiStepLR(o, [1.5]), "MultiStepLR: milestones must be"),
                          (lambda o: optim.lr_scheduler.CosineAnnealingLR(o, 0), "CosineAnnealingLR: T_max must")):
        with pytest.raises(ValueError, match=f"^{message}"):
            make(_two_group_optimizers()[0])
    with pytest.raises(TypeError, match="^StepLR needs an Optimizer, got list"):
        optim.lr_scheduler.StepLR([], step_size=1)


@pytest.mark.parametrize("optimizer_name", ["SGD", "Adam"])
def test_one_cycle_resumed_by_last_epoch_as_torchs(optimizer_name):
    """A OneCycleLR made with last_epoch=k on groups that hold the bounds a first one set goes on from step
    k + 1, rates and momenta, as torch's; on groups without them it is a KeyError."""
    options = dict(max_lr=[0.5, 1.0], total_steps=10, three_phase=True)
    history = []
    for module, optimizer in zip((optim.lr_scheduler, torch.optim.lr_scheduler),
                                 _two_group_optimizers(optimizer_name)):
        first = module.OneCycleLR(optimizer, **options)
        for _ in range(3):
            optimizer.step()
            first.step()
        schedule = module.OneCycleLR(optimizer, last_epoch=3, **options)
        history.append([schedule.get_last_lr() + _momenta(optimizer)])
        for _ in range(6):
            optimizer.step()
            schedule.step()
            history[-1].append(schedule.get_last_lr() + _momenta(optimizer))
    assert_close(np.array(history[0]), np.array(history[1]), atol=1e-15, name="resumed OneCycleLR")
    optimizer = _two_group_optimizers(optimizer_name)[0]
    for group in optimizer.param_groups:
        group["initial_lr"] = group["lr"]
    with pytest.raises(KeyError, match=r"OneCycleLR: last_epoch=3 resumes a schedule, but parameter group 0 lacks "
                                       r"\['max_lr', 'min_lr', 'max_momentum', 'base_momentum'\]"):
        optim.lr_scheduler.OneCycleLR(optimizer, last_epoch=3, **options)


def test_one_cycle_stepped_past_total_steps_raises_as_torchs():
    """total_steps calls of step() are allowed (the last one carries the schedule a step past its end, as
    torch's); the next raises, in both, and changes nothing in ours; epochs * steps_per_epoch counts as
    total_steps."""
    ours, theirs = _two_group_optimizers()
    schedules = [optim.lr_scheduler.OneCycleLR(ours, max_lr=1.0, epochs=2, steps_per_epoch=3),
                 torch.optim.lr_scheduler.OneCycleLR(theirs, max_lr=1.0, total_steps=6)]
    for _ in range(6):
        for optimizer, schedule in zip((ours, theirs), schedules):
            optimizer.step()
            schedule.step()
    assert_close(np.array(schedules[0].get_last_lr()), np.array(schedules[1].get_last_lr()), atol=1e-15)
    before = schedules[0].state_dict(), [dict(group) for group in ours.param_groups]
    with pytest.raises(ValueError, match=r"^OneCycleLR: tried to step 7 times, past total_steps=6$"):
        schedules[0].step()
    with pytest.raises(ValueError, match="Tried to step 7 times"):
        schedules[1].step()
    assert schedules[0].state_dict() == before[0] and ours.param_groups == before[1]
    with pytest.raises(ValueError, match=r"^OneCycleLR: tried to step 7 times, past total_steps=6$"):
        optim.lr_scheduler.OneCycleLR(ours, max_lr=1.0, total_steps=6, last_epoch=6)


def test_one_cycle_phase_of_no_steps_ends_at_its_end():
    """pct_start * total_steps of 1 makes a first phase of no steps, where torch's divides by zero: the
    schedule starts at max_lr and falls from there as torch's second phase does."""
    optimizer = _two_group_optimizers()[0]
    schedule = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1.0, total_steps=10, pct_start=0.1)
    rates = [schedule.get_last_lr()[0]]
    assert rates[0] == 1.0 and _momenta(optimizer)[0] == pytest.approx(0.85)  # the first phase's end
    for _ in range(9):
        schedule.step()
        rates.append(schedule.get_last_lr()[0])
    assert all(a > b for a, b in zip(rates, rates[1:])), rates
    assert rates[-1] == pytest.approx(1.0 / 25 / 1e4)


@pytest.mark.parametrize("device, dtype", [("cpu", np.float64), ("cudasim", np.float32)])
@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_one_cycle_momentum_reaches_the_updates(name, device, dtype):
    """The rates and momenta OneCycleLR writes into the groups take effect at the optimizer's next step (the
    kernel updates too): parameters track torch's under the same schedule."""
    rng = np.random.default_rng(3)
    values = [rng.standard_normal(shape).astype(dtype) for shape in ((3, 4), (5,))]
    options = dict(lr=0.1, momentum=0.9) if name in ("SGD", "RMSprop") else dict(lr=0.1)
    ours_optimizer, theirs_optimizer, ours, theirs = make_optimizers(name, options, values,
                                                                     [([0], {}), ([1], dict(lr=0.4))], device)
    schedules = [module.OneCycleLR(optimizer, max_lr=[0.05, 0.1], total_steps=8, base_momentum=0.5)
                 for module, optimizer in ((optim.lr_scheduler, ours_optimizer),
                                           (torch.optim.lr_scheduler, theirs_optimizer))]
    for step in range(8):
        for mine, reference in zip(ours, theirs):
            grad = rng.standard_normal(mine.shape).astype(dtype)
            mine.grad, reference.grad = gpucnn.tensor(grad, device=device), torch.tensor(grad)
        ours_optimizer.step()
        theirs_optimizer.step()
        for schedule in schedules:
            schedule.step()
        for index, (mine, reference) in enumerate(zip(ours, theirs)):
            assert_close(mine, reference, **TOLERANCE[dtype], name=f"{name} parameter {index} step {step}")


def test_lambda_lr_state_dict_leaves_functions_out_as_torchs():
    """lr_lambdas in the state dict: None for a function, the attributes of a callable object; loading them
    sets those attributes."""
    ours, theirs = _two_group_optimizers()
    lambdas = [lambda epoch: 0.5, Halving(3)]
    saved = optim.lr_scheduler.LambdaLR(ours, lambdas).state_dict()
    assert saved["lr_lambdas"] == [None, {"every": 3}]
    assert saved["lr_lambdas"] == torch.optim.lr_scheduler.LambdaLR(theirs, lambdas).state_dict()["lr_lambdas"]
    saved = pickle.loads(pickle.dumps(saved))
    saved["lr_lambdas"][1]["every"] = 5
    fresh = Halving(1)
    schedule = optim.lr_scheduler.LambdaLR(_two_group_optimizers()[0], [lambda epoch: 1.0, fresh])
    schedule.load_state_dict(saved)
    assert fresh.every == 5 and schedule.lr_lambdas[1] is fresh and "lr_lambdas" in saved


# Falls, stalls (below the relative threshold of 1e-4 too), falls a little (0.46 betters 0.5 by a relative
# 0.05 but not by an absolute 0.05), improves, stalls for long.
METRICS = [1.0, 0.9, 0.9, 0.9, 0.89995, 0.9, 0.8, 0.8, 0.5, 0.5, 0.46, 0.46, 0.5, 0.44, 0.44, 0.44, 0.3] + [0.3] * 14
PLATEAUS = [
    {},
    dict(patience=2),
    dict(patience=1, threshold=0.05),
    dict(patience=1, threshold=0.05, threshold_mode="abs"),
    dict(mode="max", patience=1, factor=0.5),
    dict(mode="max", patience=0, threshold=0.05, threshold_mode="abs"),
    dict(patience=0, cooldown=2, factor=0.5),
    dict(patience=1, cooldown=1, threshold=0.0),
    dict(patience=0, min_lr=0.01, factor=0.3),
    dict(patience=0, min_lr=[0.05, 0.001], factor=0.5),
    dict(patience=0, factor=0.5, eps=0.02),
]


@pytest.mark.parametrize("options", PLATEAUS, ids=[str(options) for options in PLATEAUS])
def test_reduce_lr_on_plateau_sets_the_rates_of_torchs(options):
    """Rates, best, bad-epoch and cooldown counts after every step as torch's, for a metric that falls,
    stalls, falls and stalls (rising in mode 'max'), given as a number or a one-element Tensor; a schedule
    resumed from the state it saved (and the optimizer's) goes on as the uninterrupted one."""
    metrics = [2 - value for value in METRICS] if options.get("mode") == "max" else METRICS
    ours, theirs = _two_group_optimizers()
    schedules = [module.ReduceLROnPlateau(optimizer, **options)
                 for module, optimizer in ((optim.lr_scheduler, ours), (torch.optim.lr_scheduler, theirs))]
    history, saved = [], None
    for epoch, value in enumerate(metrics):
        given = (value, gpucnn.tensor(np.array(value)), gpucnn.tensor(np.array([value])))[epoch % 3]
        schedules[0].step(given)
        schedules[1].step(value)
        for key in ("best", "num_bad_epochs", "cooldown_counter", "last_epoch"):
            assert getattr(schedules[0], key) == getattr(schedules[1], key), f"{key} at epoch {epoch}"
        assert schedules[0].get_last_lr() == schedules[1].get_last_lr() == [g["lr"] for g in ours.param_groups], \
            f"epoch {epoch}"
        history.append(schedules[0].get_last_lr())
        if epoch == 12:
            saved = pickle.loads(pickle.dumps((schedules[0].state_dict(), ours.state_dict())))
    assert history[-1] != history[0], "the rates never changed"
    assert sorted(saved[0]) == sorted(schedules[1].state_dict())
    resumed_optimizer, _ = _two_group_optimizers()
    resumed_optimizer.load_state_dict(saved[1])
    resumed = optim.lr_scheduler.ReduceLROnPlateau(resumed_optimizer, **options)
    resumed.load_state_dict(saved[0])
    for epoch in range(13, len(metrics)):
        resumed.step(metrics[epoch])
        assert resumed.get_last_lr() == history[epoch], f"resumed, epoch {epoch}"


def test_reduce_lr_on_plateau_takes_an_added_group():
    """A group added after the schedule was made takes the one min_lr, as torch's; with a min_lr a group, it is
    an error."""
    rates = []
    for module, optimizer in zip((optim.lr_scheduler, torch.optim.lr_scheduler), _two_group_optimizers()):
        schedule = module.ReduceLROnPlateau(optimizer, patience=0, min_lr=0.02)
        extra = (gpucnn if module is optim.lr_scheduler else torch).tensor(np.ones(2), requires_grad=True)
        optimizer.add_param_group({"params": [extra], "lr": 0.15})
        schedule.step(1.0)
        schedule.step(1.0)
        rates.append(schedule.get_last_lr())
        assert schedule.min_lrs == [0.02] * 3
    assert rates[0] == rates[1] == pytest.approx([0.02, 0.04, 0.02])
    ours = _two_group_optimizers()[0]
    schedule = optim.lr_scheduler.ReduceLROnPlateau(ours, patience=0, min_lr=[0.0, 0.0])
    ours.add_param_group({"params": [gpucnn.tensor(np.ones(2), requires_grad=True)]})
    schedule.step(1.0)
    with pytest.raises(RuntimeError, match="ReduceLROnPlateau: the optimizer has 3 parameter groups, but min_lr"):
        schedule.step(1.0)


def _one_cycle(optimizer, **options):
    return optim.lr_scheduler.OneCycleLR(optimizer, **dict(dict(max_lr=1.0, total_steps=10), **options))


@pytest.mark.parametrize("make, error, message", [
    (lambda o: optim.lr_scheduler.LambdaLR(o, [lambda epoch: 1.0]), ValueError,
     r"LambdaLR: lr_lambda must be a function or a list of 2 \(one a parameter group\), got 1"),
    (lambda o: optim.lr_scheduler.LambdaLR(o, 0.5), ValueError, "LambdaLR: lr_lambda must be callable, got 0.5"),
    (lambda o: optim.lr_scheduler.LambdaLR(o, lambda epoch: 1.0, last_epoch=-2), ValueError,
     "LambdaLR: last_epoch must be an int of -1 or more, got -2"),
    (lambda o: optim.lr_scheduler.LinearLR(o, start_factor=0), ValueError, "LinearLR: start_factor must be a number"),
    (lambda o: optim.lr_scheduler.LinearLR(o, start_factor=1.5), ValueError, "LinearLR: start_factor must be"),
    (lambda o: optim.lr_scheduler.LinearLR(o, end_factor=-0.1), ValueError, "LinearLR: end_factor must be"),
    (lambda o: optim.lr_scheduler.LinearLR(o, end_factor="1"), ValueError, "LinearLR: end_factor must be"),
    (lambda o: optim.lr_scheduler.LinearLR(o, total_iters=0), ValueError,
     "LinearLR: total_iters must be an int of 1 or more, got 0"),
    (lambda o: optim.lr_scheduler.OneCycleLR(o, 1.0), ValueError,
     "OneCycleLR: total_steps, or epochs and steps_per_epoch, must be given"),
    (lambda o: optim.lr_scheduler.OneCycleLR(o, 1.0, epochs=3), ValueError, "OneCycleLR: total_steps, or epochs"),
    (lambda o: _one_cycle(o, total_steps=0), ValueError, "OneCycleLR: total_steps must be an int of 1 or more"),
    (lambda o: _one_cycle(o, total_steps=None, epochs=2, steps_per_epoch=2.5), ValueError,
     "OneCycleLR: steps_per_epoch must be an int"),
    (lambda o: _one_cycle(o, total_steps=None, epochs=0, steps_per_epoch=2), ValueError, "OneCycleLR: epochs must be"),
    (lambda o: _one_cycle(o, pct_start=1.5), ValueError, "OneCycleLR: pct_start must be a number from 0 to 1"),
    (lambda o: _one_cycle(o, anneal_strategy="tan"), ValueError,
     "OneCycleLR: anneal_strategy must be 'cos' or 'linear', got 'tan'"),
    (lambda o: _one_cycle(o, max_lr=[1.0]), ValueError,
     r"OneCycleLR: max_lr must be a number or a list of 2 \(one a parameter group\), got 1$"),
    (lambda o: _one_cycle(o, max_lr=-1), ValueError, "OneCycleLR: max_lr must be a positive number, got -1"),
    (lambda o: _one_cycle(o, base_momentum=[0.8, -0.1]), ValueError, "OneCycleLR: base_momentum must be"),
    (lambda o: _one_cycle(o, max_momentum=None), ValueError, "OneCycleLR: max_momentum must be"),
    (lambda o: _one_cycle(o, div_factor=0), ValueError, "OneCycleLR: div_factor must be a positive number"),
    (lambda o: _one_cycle(o, final_div_factor=-1.0), ValueError, "OneCycleLR: final_div_factor must be"),
    (lambda o: _one_cycle(o, three_phase=1), ValueError, "OneCycleLR: three_phase must be True or False"),
    (lambda o: _one_cycle(o, cycle_momentum="yes"), ValueError, "OneCycleLR: cycle_momentum must be True or False"),
    (lambda o: _one_cycle(o, last_epoch=1.0), ValueError, "OneCycleLR: last_epoch must be an int"),
    (lambda o: _one_cycle(_two_group_optimizers("Adadelta")[0]), ValueError,
     r"OneCycleLR: cycle_momentum needs an optimizer with momentum or betas, and Adadelta has neither"),
    (lambda o: _one_cycle([]), TypeError, "OneCycleLR needs an Optimizer, got list"),
    (lambda o: optim.lr_scheduler.ReduceLROnPlateau(o, mode="avg"), ValueError,
     "ReduceLROnPlateau: mode must be 'min' or 'max', got 'avg'"),
    (lambda o: optim.lr_scheduler.ReduceLROnPlateau(o, factor=1.0), ValueError,
     "ReduceLROnPlateau: factor must be a number from 0 to below 1, got 1.0"),
    (lambda o: optim.lr_scheduler.ReduceLROnPlateau(o, patience=-1), ValueError,
     "ReduceLROnPlateau: patience must be an int of 0 or more, got -1"),
    (lambda o: optim.lr_scheduler.ReduceLROnPlateau(o, threshold=-0.1), ValueError,
     "ReduceLROnPlateau: threshold must be"),
    (lambda o: optim.lr_scheduler.ReduceLROnPlateau(o, threshold_mode="pct"), ValueError,
     "ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got 'pct'"),
    (lambda o: optim.lr_scheduler.ReduceLROnPlateau(o, cooldown=1.5), ValueError,
     "ReduceLROnPlateau: cooldown must be an int"),
    (lambda o: optim.lr_scheduler.ReduceLROnPlateau(o, min_lr=[0.1]), ValueError,
     "ReduceLROnPlateau: min_lr must be a number or a list of 2"),
    (lambda o: optim.lr_scheduler.ReduceLROnPlateau(o, min_lr=-1), ValueError, "ReduceLROnPlateau: min_lr must be"),
    (lambda o: optim.lr_scheduler.ReduceLROnPlateau(o, eps=-1e-8), ValueError, "ReduceLROnPlateau: eps must be"),
    (lambda o: optim.lr_scheduler.ReduceLROnPlateau(o).step(gpucnn.tensor(np.ones(2))), ValueError,
     r"ReduceLROnPlateau.step: metrics must be a number or a one-element tensor, got Tensor of shape \(2,\)"),
    (lambda o: optim.lr_scheduler.ReduceLROnPlateau(o).step(None), ValueError,
     "ReduceLROnPlateau.step: metrics must be a number or a one-element tensor, got NoneType"),
    (lambda o: optim.lr_scheduler.ReduceLROnPlateau(None), TypeError, "ReduceLROnPlateau needs an Optimizer"),
    (lambda o: optim.lr_scheduler.ConstantLR(o, factor=0), ValueError,
     "ConstantLR: factor must be a number above 0 and at most 1, got 0"),
    (lambda o: optim.lr_scheduler.ConstantLR(o, total_iters=-1), ValueError, "ConstantLR: total_iters must be"),
    (lambda o: optim.lr_scheduler.PolynomialLR(o, total_iters=0), ValueError,
     "PolynomialLR: total_iters must be an int of 1 or more, got 0"),
    (lambda o: optim.lr_scheduler.PolynomialLR(o, power="2"), ValueError, "PolynomialLR: power must be a number"),
    (lambda o: optim.lr_scheduler.MultiplicativeLR(o, 0.9), ValueError,
     "MultiplicativeLR: lr_lambda must be callable, got 0.9"),
    (lambda o: optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=0), ValueError,
     "CosineAnnealingWarmRestarts: T_0 must be an int of 1 or more, got 0"),
    (lambda o: optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=1.5), ValueError,
     "CosineAnnealingWarmRestarts: T_mult must be an int"),
    (lambda o: optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=2, eta_min=-1), ValueError,
     "CosineAnnealingWarmRestarts: eta_min must be"),
    (lambda o: optim.lr_scheduler.CyclicLR(o, 0.1, 1.0, mode="sine"), ValueError,
     "CyclicLR: mode must be 'triangular', 'triangular2' or 'exp_range' \\(or give scale_fn\\), got 'sine'"),
    (lambda o: optim.lr_scheduler.CyclicLR(o, 0.1, 1.0, step_size_up=0), ValueError,
     "CyclicLR: step_size_up must be an int of 1 or more, got 0"),
    (lambda o: optim.lr_scheduler.CyclicLR(o, 0.1, [1.0]), ValueError, "CyclicLR: max_lr must be a number or a list"),
    (lambda o: optim.lr_scheduler.CyclicLR(o, 0.1, 1.0, scale_mode="epoch"), ValueError,
     "CyclicLR: scale_mode must be 'cycle' or 'iterations', got 'epoch'"),
    (lambda o: optim.lr_scheduler.CyclicLR(_two_group_optimizers("Adadelta")[0], 0.1, 1.0), ValueError,
     "CyclicLR: cycle_momentum needs an optimizer with momentum or betas, and Adadelta has neither"),
    (lambda o: optim.lr_scheduler.SequentialLR(o, [], []), ValueError, "SequentialLR: give at least one schedule"),
    (lambda o: optim.lr_scheduler.SequentialLR(o, [optim.lr_scheduler.ReduceLROnPlateau(o)], []), ValueError,
     "SequentialLR: schedule 0 is a ReduceLROnPlateau"),
    (lambda o: optim.lr_scheduler.SequentialLR(o, [optim.lr_scheduler.StepLR(_two_group_optimizers()[0], 2)], []),
     ValueError, "SequentialLR: schedule 0 \\(StepLR\\) is over another optimizer than the SGD given"),
    (lambda o: optim.lr_scheduler.ChainedScheduler([o]), TypeError,
     "ChainedScheduler: schedule 0 must be a learning-rate schedule, got SGD"),
])
def test_schedule_argument_errors(make, error, message):
    optimizer = _two_group_optimizers()[0]
    before = [dict(group) for group in optimizer.param_groups]
    with pytest.raises(error, match=f"^{message}"):
        make(optimizer)
    assert optimizer.param_groups == before, "a refused schedule changed the groups"


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_schedules_take_torchs_arguments_in_torchs_order(name):
    ours = inspect.signature(getattr(optim.lr_scheduler, name).__init__).parameters
    theirs = {key: p for key, p in inspect.signature(getattr(torch.optim.lr_scheduler, name).__init__).parameters
              .items() if key != "verbose"}
    assert list(ours) == list(theirs)
    for key, parameter in ours.items():
        assert parameter.default == theirs[key].default, f"{name}({key}=...)"


def test_schedules_are_exported():
    assert set(SCHEDULE_NAMES) <= set(optim.lr_scheduler.__all__)
    assert all(issubclass(getattr(optim.lr_scheduler, name), optim.lr_scheduler.LRScheduler) for name in SCHEDULE_NAMES)
