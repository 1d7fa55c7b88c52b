"""gpucnn.nn.init (gains, constant, xavier, kaiming, truncated normal) and gpucnn.nn.utils (gradient clipping)
against torch.nn.init and torch.nn.utils: gains exactly, initialisers by sample statistics over large tensors,
clipping by the resulting gradients and returned norms on the cpu and cudasim devices."""

import math
import warnings

import numpy as np
import pytest
import torch

import gpucnn
from gpucnn import nn
from gpucnn.nn import init, utils
from helpers import assert_close

DEVICES = ["cpu", "cudasim"]
NONLINEARITIES = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
                  "sigmoid", "tanh", "relu", "leaky_relu", "selu"]


@pytest.fixture(autouse=True)
def seeded():
    """Both generators seeded: the sample statistics below are the same on every run."""
    gpucnn.manual_seed(0)
    torch.manual_seed(0)


def empty(shape, device="cpu", dtype=np.float32):
    return gpucnn.tensor(np.zeros(shape, dtype), device=device)


def torch_fan(shape, mode):
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    return fan_in if mode == "fan_in" else fan_out


def assert_std(values, expected, rel=0.02, what="std"):
    assert abs(values.std() - expected) <= rel * expected, f"{what}: {values.std()} vs expected {expected}"
    assert abs(values.mean()) <= 5 * expected / math.sqrt(values.size), f"{what}: mean {values.mean()}"


# ----------------------------------------------------------------- calculate_gain
@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_calculate_gain_matches_torch(nonlinearity):
    assert init.calculate_gain(nonlinearity) == torch.nn.init.calculate_gain(nonlinearity)


@pytest.mark.parametrize("param", [None, 0, 0.2, 1, math.sqrt(5), np.float64(0.3), -0.5])
def test_calculate_gain_leaky_relu_slope(param):
    assert init.calculate_gain("leaky_relu", param) == pytest.approx(torch.nn.init.calculate_gain("leaky_relu", param),
                                                                      rel=1e-15)


def test_calculate_gain_values():
    assert init.calculate_gain("tanh") == 5 / 3
    assert init.calculate_gain("relu") == math.sqrt(2)
    assert init.calculate_gain("leaky_relu") == math.sqrt(2 / (1 + 0.01**2))
    assert init.calculate_gain("leaky_relu", 0) == math.sqrt(2)
    assert init.calculate_gain("selu") == 0.75


def test_calculate_gain_rejects_bad_arguments():
    with pytest.raises(ValueError, match="Unsupported nonlinearity 'gelu'"):
        init.calculate_gain("gelu")
    for param in ("0.2", True, [0.1]):
        with pytest.raises(ValueError, match="negative_slope .* not a valid number"):
            init.calculate_gain("leaky_relu", param)


# ----------------------------------------------------------------- constant_, returns, versions, seeding
@pytest.mark.parametrize("device", DEVICES)
def test_constant_fills_exactly(device):
    tensor = empty((3, 4, 2), device)
    assert init.constant_(tensor, 0.3) is tensor
    np.testing.assert_array_equal(tensor.numpy(), torch.nn.init.constant_(torch.empty(3, 4, 2), 0.3).numpy())
    integers = empty((5,), device, np.int64)
    init.constant_(integers, 7)
    np.testing.assert_array_equal(integers.numpy(), np.full(5, 7))
    with pytest.raises(TypeError, match="constant_: val must be a real number, got str"):
        init.constant_(tensor, "1")


INITIALISERS = {
    "constant_": lambda t: init.constant_(t, 1.5),
    "xavier_uniform_": init.xavier_uniform_,
    "xavier_normal_": init.xavier_normal_,
    "kaiming_uniform_": init.kaiming_uniform_,
    "kaiming_normal_": init.kaiming_normal_,
    "trunc_normal_": init.trunc_normal_,
}


@pytest.mark.parametrize("name", sorted(INITIALISERS))
def test_initialisers_return_the_tensor_and_bump_its_version(name):
    tensor = empty((8, 6))
    array, version = tensor.data, tensor._version[0]
    assert INITIALISERS[name](tensor) is tensor
    assert tensor.data is array and tensor._version[0] == version + 1
    assert tensor.dtype == np.float32


@pytest.mark.parametrize("name", sorted(set(INITIALISERS) - {"constant_"}))
def test_manual_seed_reproduces_draws_on_every_device(name):
    draws = []
    for device in DEVICES + ["cpu"]:
        gpucnn.manual_seed(11)
        draws.append(INITIALISERS[name](empty((16, 8, 3, 3), device)).numpy())
    gpucnn.manual_seed(12)
    other = INITIALISERS[name](empty((16, 8, 3, 3))).numpy()
    for same in draws[1:]:
        np.testing.assert_array_equal(same, draws[0])
    assert not np.array_equal(other, draws[0])


def test_initialising_leaves_the_graph_alone():
    weight = gpucnn.tensor(np.zeros((4, 3), np.float32), requires_grad=True)
    init.xavier_normal_(weight)
    assert weight.is_leaf and weight.grad is None and weight.requires_grad


# ----------------------------------------------------------------- xavier and kaiming
SHAPES = [(256, 512), (128, 64, 3, 3)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("gain", [1.0, init.calculate_gain("relu")])
def test_xavier_uniform_std_and_bound(shape, gain):
    fan_in, fan_out = torch_fan(shape, "fan_in"), torch_fan(shape, "fan_out")
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    values = init.xavier_uniform_(empty(shape), gain=gain).numpy()
    assert np.abs(values).max() <= bound
    assert np.abs(values).max() >= 0.99 * bound
    assert_std(values, bound / math.sqrt(3))
    reference = torch.nn.init.xavier_uniform_(torch.empty(shape), gain=gain).numpy()
    assert_std(values, reference.std(), what="against torch's draw")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("gain", [1.0, 5 / 3])
def test_xavier_normal_std(shape, gain):
    fan_in, fan_out = torch_fan(shape, "fan_in"), torch_fan(shape, "fan_out")
    values = init.xavier_normal_(empty(shape), gain=gain).numpy()
    assert_std(values, gain * math.sqrt(2.0 / (fan_in + fan_out)))
    reference = torch.nn.init.xavier_normal_(torch.empty(shape), gain=gain).numpy()
    assert_std(values, reference.std(), what="against torch's draw")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nonlinearity, a", [("leaky_relu", 0), ("leaky_relu", 0.2), ("relu", 0), ("tanh", 0),
                                             ("linear", 0), ("selu", 0)])
def test_kaiming_normal_std(shape, mode, nonlinearity, a):
    expected = torch.nn.init.calculate_gain(nonlinearity, a) / math.sqrt(torch_fan(shape, mode))
    values = init.kaiming_normal_(empty(shape), a=a, mode=mode, nonlinearity=nonlinearity).numpy()
    assert_std(values, expected)
    reference = torch.nn.init.kaiming_normal_(torch.empty(shape), a=a, mode=mode, nonlinearity=nonlinearity).numpy()
    assert_std(values, reference.std(), what="against torch's draw")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nonlinearity, a", [("leaky_relu", 0), ("leaky_relu", math.sqrt(5)), ("relu", 0),
                                             ("tanh", 0)])
def test_kaiming_uniform_bound(shape, mode, nonlinearity, a):
    bound = torch.nn.init.calculate_gain(nonlinearity, a) * math.sqrt(3.0 / torch_fan(shape, mode))
    values = init.kaiming_uniform_(empty(shape), a=a, mode=mode, nonlinearity=nonlinearity).numpy()
    assert bound * 0.99 <= np.abs(values).max() <= bound
    assert_std(values, bound / math.sqrt(3))


def test_kaiming_default_gain_is_relu_gain():
    """a=0 with leaky_relu is a slope of 0: gain sqrt(2), not calculate_gain's default slope 0.01."""
    gpucnn.manual_seed(5)
    default = init.kaiming_uniform_(empty((64, 64))).numpy()
    gpucnn.manual_seed(5)
    relu = init.kaiming_uniform_(empty((64, 64)), nonlinearity="relu").numpy()
    np.testing.assert_array_equal(default, relu)
    assert np.abs(default).max() <= math.sqrt(2) * math.sqrt(3 / 64)
    gpucnn.manual_seed(5)
    default = init.kaiming_normal_(empty((64, 64))).numpy()
    gpucnn.manual_seed(5)
    np.testing.assert_array_equal(default, init.kaiming_normal_(empty((64, 64)), nonlinearity="relu").numpy())


def test_fan_and_mode_errors_name_the_argument_and_shape():
    for function in (init.xavier_uniform_, init.xavier_normal_, init.kaiming_uniform_, init.kaiming_normal_):
        with pytest.raises(ValueError, match=r"at least 2 dimensions, got shape \(5,\)"):
            function(empty((5,)))
    for function in (init.kaiming_uniform_, init.kaiming_normal_):
        with pytest.raises(ValueError, match=r"mode must be 'fan_in' or 'fan_out', got 'fan_avg' \(tensor of shape "
                                             r"\(3, 4\)\)"):
            function(empty((3, 4)), mode="fan_avg")
        with pytest.raises(ValueError, match="Unsupported nonlinearity 'swish'"):
            function(empty((3, 4)), nonlinearity="swish")
    with pytest.raises(TypeError, match="xavier_normal_: gain must be a real number, got str"):
        init.xavier_normal_(empty((3, 4)), gain="1")
    with pytest.raises(ValueError, match="xavier_uniform_: gain must be non-negative, got -1"):
        init.xavier_uniform_(empty((3, 4)), gain=-1)


def test_empty_weights_initialise_to_nothing():
    for function in (init.xavier_uniform_, init.xavier_normal_, init.kaiming_uniform_, init.kaiming_normal_,
                     init.trunc_normal_):
        assert function(empty((0, 4))).shape == (0, 4)
        assert function(empty((0, 0, 3, 3))).shape == (0, 0, 3, 3)


# ----------------------------------------------------------------- trunc_normal_
def truncated_moments(mean, std, a, b):
    """Mean and standard deviation of N(mean, std^2) truncated to [a, b] (closed form)."""
    alpha, beta = (a - mean) / std, (b - mean) / std
    pdf = lambda x: math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi) if math.isfinite(x) else 0.0  # noqa: E731
    cdf = lambda x: 0.5 * math.erfc(-x / math.sqrt(2))  # noqa: E731
    mass = cdf(beta) - cdf(alpha)
    shift = (pdf(alpha) - pdf(beta)) / mass
    edge = lambda x: x * pdf(x) if math.isfinite(x) else 0.0  # noqa: E731
    variance = 1 + (edge(alpha) - edge(beta)) / mass - shift**2
    return mean + std * shift, std * math.sqrt(variance)


@pytest.mark.parametrize("mean, std, a, b", [
    (0.0, 1.0, -2.0, 2.0),  # torch's defaults: the normal draws
    (0.0, 0.02, -0.04, 0.04),  # a transformer's weights
    (0.5, 1.0, 0.0, 0.25),  # a narrow window: the uniform draws
    (0.0, 1.0, 1.5, 3.0),  # a tail: the uniform draws
    (0.0, 1.0, 0.0, math.inf),  # half-normal
])
@pytest.mark.parametrize("device", DEVICES)
def test_trunc_normal_statistics(mean, std, a, b, device):
    tensor = empty((256, 1024), device)
    values = init.trunc_normal_(tensor, mean=mean, std=std, a=a, b=b).numpy()
    assert values.dtype == np.float32
    assert values.min() >= a and values.max() <= b
    expected_mean, expected_std = truncated_moments(mean, std, a, b)
    tolerance = 6 * expected_std / math.sqrt(values.size)
    assert abs(values.mean() - expected_mean) <= tolerance
    assert abs(values.std() - expected_std) <= 0.01 * expected_std
    reference = torch.nn.init.trunc_normal_(torch.empty(256, 1024), mean=mean, std=std, a=a, b=b).numpy()
    assert abs(values.mean() - reference.mean()) <= 1.5 * tolerance
    assert abs(values.std() - reference.std()) <= 0.015 * expected_std
    if math.isfinite(b):  # the whole interval is reached
        assert values.min() - a <= 0.02 * (b - a) and b - values.max() <= 0.02 * (b - a)


def test_trunc_normal_bounds_hold_in_float32():
    """b = 0.1 is not a float32: values round to at most float32(0.1), as torch's do."""
    values = init.trunc_normal_(empty((512, 512)), std=1.0, a=-0.1, b=0.1).numpy()
    assert values.min() >= np.float32(-0.1) and values.max() <= np.float32(0.1)


def test_trunc_normal_rejects_bad_arguments():
    with pytest.raises(ValueError, match="trunc_normal_: std must be positive and finite, got 0.0"):
        init.trunc_normal_(empty((3,)), std=0)
    with pytest.raises(ValueError, match=r"needs a finite mean and a < b, got mean=0.0, a=1.0, b=1.0"):
        init.trunc_normal_(empty((3,)), a=1, b=1)
    with pytest.raises(TypeError, match="trunc_normal_: a must be a real number, got NoneType"):
        init.trunc_normal_(empty((3,)), a=None)
    with pytest.raises(ValueError, match="holds no mass"), pytest.warns(UserWarning):
        init.trunc_normal_(empty((3,)), a=100, b=math.inf)
    with pytest.warns(UserWarning, match="mean is more than 2 std from"):
        values = init.trunc_normal_(empty((1000,)), mean=10, a=-2, b=2).numpy()
    assert values.min() >= -2 and values.max() <= 2 and values.mean() > 1.5


# ----------------------------------------------------------------- clip_grad_norm_
GRAD_SHAPES = [(3, 4), (5,), (), (2, 3, 1, 2), (0, 3)]


def make_parameters(device, *, dtype=np.float32, seed=0, scale=1.0, without_grad=(1,), shapes=GRAD_SHAPES):
    """gpucnn parameters on ``device`` and torch ones with the same gradients; those at ``without_grad`` have none."""
    rng = np.random.default_rng(seed)
    ours, theirs = [], []
    for index, shape in enumerate(shapes):
        value = rng.standard_normal(shape).astype(dtype)
        mine = gpucnn.tensor(value, requires_grad=True, device=device)
        reference = torch.tensor(value, requires_grad=True)
        if index not in without_grad:
            grad = (scale * rng.standard_normal(shape)).astype(dtype)
            mine.grad, reference.grad = gpucnn.tensor(grad, device=device), torch.tensor(grad)
        ours.append(mine)
        theirs.append(reference)
    return ours, theirs


def assert_same_grads(ours, theirs, **tolerance):
    for index, (mine, reference) in enumerate(zip(ours, theirs)):
        if reference.grad is None:
            assert mine.grad is None
        else:
            assert_close(mine.grad, reference.grad, name=f"grad {index}", **tolerance)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("norm_type", [2, 2.0, 1, 3.5, math.inf, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e4])  # clipping, and not
def test_clip_grad_norm_matches_torch(device, norm_type, max_norm):
    shapes = GRAD_SHAPES if norm_type in (1, 2, 3.5) else GRAD_SHAPES[:-1]  # torch has no inf norm of an empty grad
    ours, theirs = make_parameters(device, shapes=shapes)
    grads = [p.grad for p in ours]
    arrays = [g.data if g is not None else None for g in grads]
    versions = [g._version[0] if g is not None else None for g in grads]
    total = utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total, gpucnn.Tensor) and total.shape == () and total.dtype == np.float32
    assert total.device == gpucnn.device(device)
    assert_close(total, expected, atol=0, rtol=1e-6, name="total norm")
    assert_same_grads(ours, theirs, atol=1e-7, rtol=1e-6)
    for param, grad, array, version in zip(ours, grads, arrays, versions):
        assert param.grad is grad
        if grad is not None:
            assert grad.data is array and grad._version[0] == version + 1
    if max_norm == 1e4:
        assert total.item() < max_norm


@pytest.mark.parametrize("device", DEVICES)
def test_clip_grad_norm_scales_to_max_norm(device):
    ours, _ = make_parameters(device, scale=10.0)
    before = [p.grad.numpy().copy() if p.grad is not None else None for p in ours]
    total = utils.clip_grad_norm_(ours, 1.0).item()
    after = np.concatenate([p.grad.numpy().ravel() for p in ours if p.grad is not None])
    assert np.linalg.norm(after) == pytest.approx(1.0 * total / (total + 1e-6), rel=1e-6)
    assert total == pytest.approx(np.linalg.norm(np.concatenate([b.ravel() for b in before if b is not None])),
                                  rel=1e-6)


def test_clip_grad_norm_epsilon():
    """A norm equal to max_norm still scales by max_norm / (norm + 1e-6)."""
    param = gpucnn.tensor(np.zeros(2), requires_grad=True)
    reference = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    param.grad, reference.grad = gpucnn.tensor(np.array([3.0, 4.0])), torch.tensor([3.0, 4.0], dtype=torch.float64)
    total = utils.clip_grad_norm_(param, 5.0)
    torch.nn.utils.clip_grad_norm_(reference, 5.0)
    assert total.item() == 5.0 and total.dtype == np.float64
    np.testing.assert_array_equal(param.grad.numpy(), reference.grad.numpy())
    assert param.grad.numpy()[1] == 4.0 * 5.0 / (5.0 + 1e-6) != 4.0


@pytest.mark.parametrize("device", DEVICES)
def test_clip_grad_norm_float64_and_mixed_dtypes(device):
    ours, theirs = make_parameters(device, dtype=np.float64, scale=3.0)
    total = utils.clip_grad_norm_(ours, 0.1, norm_type=3.5)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 0.1, norm_type=3.5)
    assert total.dtype == np.float64
    assert_close(total, expected, atol=0, rtol=1e-12)
    assert_same_grads(ours, theirs, atol=1e-15, rtol=1e-12)
    single, _ = make_parameters(device, dtype=np.float32, seed=1)
    reference_single = [torch.tensor(p.numpy(), requires_grad=True) for p in single]
    for mine, reference in zip(single, reference_single):
        reference.grad = None if mine.grad is None else torch.tensor(mine.grad.numpy())
    ours, theirs = make_parameters(device, dtype=np.float64, seed=2)
    total = utils.clip_grad_norm_(single + ours, 0.5)
    expected = torch.nn.utils.clip_grad_norm_(reference_single + theirs, 0.5)
    assert total.dtype == np.float64 and expected.dtype == torch.float64
    assert_close(total, expected, atol=0, rtol=1e-6)
    assert_same_grads(single + ours, reference_single + theirs, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_clip_grad_norm_single_tensor(device):
    ours, theirs = make_parameters(device, without_grad=(), shapes=[(4, 5)], scale=2.0)
    total = utils.clip_grad_norm_(ours[0], 1.0, norm_type=1)
    expected = torch.nn.utils.clip_grad_norm_(theirs[0], 1.0, norm_type=1)
    assert_close(total, expected, atol=0, rtol=1e-6)
    assert_same_grads(ours, theirs, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_clip_grad_norm_nonfinite(device, bad):
    ours, theirs = make_parameters(device, without_grad=())
    ours[0].grad.data[0, 1] = bad
    theirs[0].grad[0, 1] = bad
    before = [p.grad.numpy().copy() for p in ours]
    with pytest.raises(RuntimeError, match="The total norm of order 2.0 for gradients from `parameters` is non-finite"):
        utils.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    for param, grad in zip(ours, before):
        np.testing.assert_array_equal(param.grad.numpy(), grad)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NumPy warnings either
        total = utils.clip_grad_norm_(ours, 1.0)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert_close(total, expected)
    assert_same_grads(ours, theirs)


def test_clip_grad_norm_without_gradients():
    total = utils.clip_grad_norm_([], 1.0)
    assert isinstance(total, gpucnn.Tensor) and total.shape == () and total.item() == 0.0 and total.dtype == np.float32
    ours, _ = make_parameters("cpu", without_grad=range(len(GRAD_SHAPES)))
    assert utils.clip_grad_norm_(ours, 1.0).item() == 0.0
    assert all(p.grad is None for p in ours)
    with pytest.warns(UserWarning, match="empty generator"):
        assert utils.clip_grad_norm_((p for p in []), 1.0).item() == 0.0


def test_clip_grad_norm_inf_counts_an_empty_gradient_as_zero():
    ours, _ = make_parameters("cpu", without_grad=())
    _, theirs = make_parameters("cpu", without_grad=(), shapes=GRAD_SHAPES[:-1])
    total = utils.clip_grad_norm_(ours, 0.5, norm_type="inf")
    expected = torch.nn.utils.clip_grad_norm_(theirs, 0.5, norm_type="inf")
    assert_close(total, expected, atol=0, rtol=0)
    assert_same_grads(ours[:-1], theirs, atol=0, rtol=0)


def test_clip_grad_norm_on_module_parameters():
    model = nn.Linear(6, 3)
    reference = torch.nn.Linear(6, 3)
    with torch.no_grad():
        reference.weight.copy_(torch.from_numpy(model.weight.numpy()))
        reference.bias.copy_(torch.from_numpy(model.bias.numpy()))
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    (model(gpucnn.tensor(x)) ** 2).sum().backward()
    (reference(torch.tensor(x)) ** 2).sum().backward()
    total = utils.clip_grad_norm_(model.parameters(), 0.25)
    expected = torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.25)
    assert_close(total, expected)
    assert_close(model.weight.grad, reference.weight.grad)
    assert_close(model.bias.grad, reference.bias.grad)


def test_clip_grad_norm_rejects_bad_arguments():
    ours, _ = make_parameters("cpu")
    with pytest.raises(TypeError, match="clip_grad_norm_: max_norm must be a real number, got str"):
        utils.clip_grad_norm_(ours, "1")
    with pytest.raises(ValueError, match="clip_grad_norm_: max_norm must be non-negative, got -1"):
        utils.clip_grad_norm_(ours, -1)
    with pytest.raises(ValueError, match="clip_grad_norm_: max_norm must be non-negative, got nan"):
        utils.clip_grad_norm_(ours, math.nan)
    for norm_type in (0, -2, math.nan, "-inf"):
        with pytest.raises(ValueError, match="norm_type must be positive"):
            utils.clip_grad_norm_(ours, 1.0, norm_type=norm_type)
    with pytest.raises(ValueError, match="norm_type must be a number or 'inf', got 'fro'"):
        utils.clip_grad_norm_(ours, 1.0, norm_type="fro")
    with pytest.raises(TypeError, match="norm_type must be a real number or 'inf', got NoneType"):
        utils.clip_grad_norm_(ours, 1.0, norm_type=None)
    with pytest.raises(TypeError, match="error_if_nonfinite must be True or False"):
        utils.clip_grad_norm_(ours, 1.0, error_if_nonfinite="yes")
    with pytest.raises(TypeError, match="foreach must be None, True or False"):
        utils.clip_grad_norm_(ours, 1.0, foreach=1)
    with pytest.raises(TypeError, match="clip_grad_norm_: parameters must be Tensors, but parameter 1 is a ndarray"):
        utils.clip_grad_norm_([ours[0], np.ones(3)], 1.0)
    with pytest.raises(TypeError, match="clip_grad_norm_: parameters must be a Tensor or an iterable of Tensors, "
                                        "got int"):
        utils.clip_grad_norm_(5, 1.0)
    before = [p.grad.numpy().copy() if p.grad is not None else None for p in ours]
    with pytest.raises(TypeError):
        utils.clip_grad_norm_(ours + [np.ones(3)], 1e-3)
    for param, grad in zip(ours, before):  # checked before any gradient changes
        assert grad is None or np.array_equal(param.grad.numpy(), grad)


# ----------------------------------------------------------------- clip_grad_value_
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("clip_value", [0.5, 1, 100.0])
def test_clip_grad_value_matches_torch(device, clip_value):
    ours, theirs = make_parameters(device, scale=2.0)
    ours[0].grad.data[1, 2] = math.nan
    theirs[0].grad[1, 2] = math.nan
    grads = [p.grad for p in ours]
    versions = [g._version[0] if g is not None else None for g in grads]
    assert utils.clip_grad_value_(ours, clip_value) is None
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    assert_same_grads(ours, theirs, atol=0, rtol=0)
    for param, grad, version in zip(ours, grads, versions):
        assert param.grad is grad
        if grad is not None:
            assert grad._version[0] == version + 1
            assert np.nanmax(np.abs(grad.numpy()), initial=0) <= clip_value


@pytest.mark.parametrize("device", DEVICES)
def test_clip_grad_value_single_tensor(device):
    ours, theirs = make_parameters(device, without_grad=(), shapes=[(6, 7)], scale=3.0)
    utils.clip_grad_value_(ours[0], 0.1)
    torch.nn.utils.clip_grad_value_(theirs[0], 0.1)
    assert_same_grads(ours, theirs, atol=0, rtol=0)


def test_clip_grad_value_rejects_bad_arguments():
    ours, _ = make_parameters("cpu")
    with pytest.raises(TypeError, match="clip_grad_value_: clip_value must be a real number, got NoneType"):
        utils.clip_grad_value_(ours, None)
    with pytest.raises(ValueError, match="clip_grad_value_: clip_value must be non-negative, got -0.5"):
        utils.clip_grad_value_(ours, -0.5)
    with pytest.raises(TypeError, match="clip_grad_value_: parameters must be Tensors, but parameter 0 is a list"):
        utils.clip_grad_value_([[1.0]], 1.0)


def test_utils_is_exported():
    assert "utils" in nn.__all__ and nn.utils is utils
    assert utils.__all__ == ["clip_grad_norm_", "clip_grad_value_"]
