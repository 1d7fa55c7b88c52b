"""gpucnn.optim against torch.optim (single-tensor path, foreach=False): same parameters, same gradients,
parameters compared after every step; state dicts, validation, zero_grad and an end-to-end fit."""

import inspect
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gpucnn
from gpucnn import optim
from helpers import assert_close

NAMES = ["SGD", "Adam", "AdamW", "Adadelta"]
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
GRID = (
    [("SGD", c) for c in SGD_CONFIGS]
    + [("Adam", c) for c in ADAM_CONFIGS]
    + [("AdamW", c) for c in ADAMW_CONFIGS]
    + [("Adadelta", c) for c in ADADELTA_CONFIGS]
)
# One configuration per optimizer that creates every kind of state.
FULL = {
    "SGD": dict(lr=0.1, momentum=0.9, weight_decay=0.01),
    "Adam": dict(lr=0.01, amsgrad=True, weight_decay=0.01),
    "AdamW": dict(lr=0.01, amsgrad=True),
    "Adadelta": dict(lr=1.0, rho=0.95, eps=1e-6, weight_decay=0.01),
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
            if key != "step":
                assert value.dtype == np.float32, key


@pytest.mark.parametrize("name", NAMES)
def test_param_groups_with_different_options(name):
    second = {"SGD": dict(lr=0.3, momentum=0.5, nesterov=True), "Adam": dict(lr=0.05, amsgrad=True),
              "AdamW": dict(lr=0.05, weight_decay=0.3), "Adadelta": dict(lr=0.3, rho=0.7)}[name]
    groups = [([0, 2], {}), ([1, 3, 4], second)]
    our_optimizer, *_ = run_lockstep(name, FULL[name], groups=groups)
    assert our_optimizer.param_groups[1]["lr"] == second["lr"]
    assert our_optimizer.param_groups[0]["lr"] == FULL[name]["lr"]


@pytest.mark.parametrize("name", NAMES)
def test_nan_and_inf_gradients_propagate_as_in_torch(name):
    run_lockstep(name, FULL[name], steps=4, special=True)


@pytest.mark.parametrize("name", NAMES)
def test_parameter_without_grad_is_skipped(name):
    our_optimizer, _, ours, _ = run_lockstep(name, FULL[name], without_grad={1}, steps=3)
    # torch skips it too, so the lockstep comparison already checks its values stayed put
    assert ours[1] not in our_optimizer.state
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
    assert np.array_equal(first.numpy(), np.ones(3, np.float32)) and not optimizer.state


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


@settings(max_examples=25, deadline=None)
@given(st.one_of(
    st.tuples(st.just("SGD"), sgd_options()),
    st.tuples(st.sampled_from(["Adam", "AdamW"]), adam_options()),
    st.tuples(st.just("Adadelta"), adadelta_options()),
), st.integers(0, 2**31 - 1))
def test_random_options_match_torch(case, seed):
    name, options = case
    run_lockstep(name, options, steps=5, seed=seed)


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
    without a gradient at some steps (so their first step, or Adam's step count, differs): each
    group's float32 parameters are one launch a step, and track torch."""
    shapes = [(1023,), (1024,), (0,), (1025,), (1,), (3, 1000), (2, 3)]
    rng = np.random.default_rng(8)
    values = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    groups = [([0, 1, 2, 3], {}), ([4, 5, 6], {"lr": FULL[name]["lr"] / 3})]
    ours_optimizer, theirs_optimizer, ours, theirs = make_optimizers(name, FULL[name], values, groups, "cudasim")
    launches = record_launches(monkeypatch)
    for step in range(6):
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


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_format_and_values_match_torch(name):
    our_optimizer, their_optimizer, *_ = run_lockstep(name, FULL[name], steps=3, without_grad={2},
                                                      groups=[([0, 1, 2], {}), ([3, 4], {"lr": 0.05})])
    ours, theirs = our_optimizer.state_dict(), their_optimizer.state_dict()
    assert sorted(ours["state"]) == sorted(theirs["state"])
    for index, state in theirs["state"].items():
        assert sorted(ours["state"][index]) == sorted(state)
        for key, value in state.items():
            mine = ours["state"][index][key]
            if key == "step":
                assert mine == int(value.item())
            else:
                assert isinstance(mine, np.ndarray) and mine.shape == tuple(value.shape)
                assert_close(mine, value, atol=1e-12, rtol=1e-10, name=f"state {index} {key}")
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
])
def test_invalid_options(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_boundary_options_are_accepted():
    optim.SGD([param()], lr=0)
    optim.Adam([param()], betas=(0.0, 0.0), eps=0)
    optim.Adadelta([param()], rho=1.0)
    optim.Adadelta([param()], rho=0.0)


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
SCHEDULES = {
    "StepLR": dict(step_size=3, gamma=0.5),
    "MultiStepLR": dict(milestones=[2, 5, 5, 9], gamma=0.3),
    "ExponentialLR": dict(gamma=0.9),
    "CosineAnnealingLR": dict(T_max=4, eta_min=0.01),
}


def _two_group_optimizers():
    values = [np.ones(2), np.ones(3)]
    return make_optimizers("SGD", dict(lr=0.1, momentum=0.9), values, groups=[([0], {}), ([1], dict(lr=0.4))])[:2]


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedules_set_the_rates_of_torchs(name):
    """Each group's rate after every step, as torch's schedule sets it, over three cosine periods: a rate
    set by hand between steps carries on from there; a schedule resumed from the state it saved (and
    the optimizer's) goes on as the uninterrupted one."""
    ours, theirs = _two_group_optimizers()
    schedules = [getattr(module, name)(optimizer, **SCHEDULES[name])
                 for module, optimizer in ((optim.lr_scheduler, ours), (torch.optim.lr_scheduler, theirs))]
    assert schedules[0].get_last_lr() == schedules[1].get_last_lr() == [0.1, 0.4]
    saved = None
    for epoch in range(1, 13):
        for optimizer in (ours, theirs):
            optimizer.step()  # no gradients: nothing moves, as torch wants a step before the schedule's
        if epoch == 7:
            for optimizer in (ours, theirs):
                optimizer.param_groups[1]["lr"] = 0.2
        for schedule in schedules:
            schedule.step()
        if epoch == 4:
            saved = schedules[0].state_dict(), ours.state_dict()
        assert_close(np.array(schedules[0].get_last_lr()), np.array(schedules[1].get_last_lr()), atol=1e-15,
                     name=f"{name} epoch {epoch}")
        assert [group["lr"] for group in ours.param_groups] == schedules[0].get_last_lr()
    resumed_optimizer, _ = _two_group_optimizers()
    resumed_optimizer.load_state_dict(saved[1])
    resumed = getattr(optim.lr_scheduler, name)(resumed_optimizer, **SCHEDULES[name])
    resumed.load_state_dict(saved[0])
    reference_optimizer, _ = _two_group_optimizers()
    reference = getattr(optim.lr_scheduler, name)(reference_optimizer, **SCHEDULES[name])
    for _ in range(4):
        reference.step()
    for _ in range(5):
        resumed.step()
        reference.step()
        assert resumed.get_last_lr() == reference.get_last_lr(), name


def test_a_schedule_resumed_by_last_epoch_as_torchs():
    """last_epoch resumes a schedule in groups that hold their initial_lr, from the rates they hold, as
    torch's; without initial_lr it is an error, as are bad options."""
    for name, options in (("CosineAnnealingLR", dict(T_max=5)), ("ExponentialLR", dict(gamma=0.5)),
                          ("StepLR", dict(step_size=3))):
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


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedules_take_torchs_arguments_in_torchs_order(name):
    ours = list(inspect.signature(getattr(optim.lr_scheduler, name).__init__).parameters)
    theirs = [p for p in inspect.signature(getattr(torch.optim.lr_scheduler, name).__init__).parameters
              if p != "verbose"]
    assert ours == theirs
