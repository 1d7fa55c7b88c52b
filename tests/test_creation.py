"""Creation functions (zeros, rand, arange, ...), the top-level functions of tensors and the dtype names,
against torch's."""

import numpy as np
import pytest
import torch

import gpucnn
from helpers import assert_close, check_op

DEVICES = gpucnn.devices()


def _same(ours: gpucnn.Tensor, theirs: torch.Tensor):
    """The same shape, dtype and values (exactly)."""
    assert ours.shape == tuple(theirs.shape)
    assert ours.dtype == theirs.numpy().dtype, (ours.dtype, theirs.dtype)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("size", [(2, 3), ((2, 3),), ([4, 1, 2],), ((),), (0, 5), (7,)])
@pytest.mark.parametrize("name", ["zeros", "ones"])
def test_zeros_and_ones_take_sizes_as_torchs(name, size):
    _same(getattr(gpucnn, name)(*size), getattr(torch, name)(*size))


@pytest.mark.parametrize("device", DEVICES)
def test_creation_on_a_device_with_a_dtype_and_requires_grad(device):
    x = gpucnn.ones(2, 3, dtype=gpucnn.float64, device=device, requires_grad=True)
    assert (x.device.name, x.dtype, x.requires_grad, x.is_leaf) == (gpucnn.device(device).name, np.float64, True, True)
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 3.0))
    assert gpucnn.empty(3, 4, device=device).shape == (3, 4)
    assert gpucnn.zeros(2, dtype=gpucnn.long, device=device).dtype == np.int64
    with pytest.raises(TypeError, match="only floating-point tensors can require grad"):
        gpucnn.zeros(2, dtype=gpucnn.int64, requires_grad=True)


@pytest.mark.parametrize("value", [True, 3, -2.5, 7.0])
def test_full_takes_its_dtype_from_the_value_as_torch(value):
    _same(gpucnn.full((2, 3), value), torch.full((2, 3), value))
    _same(gpucnn.full([4], value, dtype=gpucnn.float64), torch.full([4], value, dtype=torch.float64))


@pytest.mark.parametrize("name", ["zeros_like", "ones_like", "empty_like", "rand_like", "randn_like"])
@pytest.mark.parametrize("device", DEVICES)
def test_like_keeps_shape_dtype_and_device_unless_given(name, device):
    x = gpucnn.tensor(np.arange(6.0).reshape(2, 3), device=device)  # float64
    made = getattr(gpucnn, name)(x)
    assert (made.shape, made.dtype, made.device) == ((2, 3), np.float64, x.device)
    made = getattr(gpucnn, name)(x, dtype=np.float32, device="cpu")
    assert (made.shape, made.dtype, made.device.name) == ((2, 3), np.float32, "cpu")
    made = getattr(gpucnn, name)(x.float(), dtype=np.dtype(np.float64))  # a dtype object as well as a type
    assert made.dtype == np.float64
    if name in ("zeros_like", "ones_like"):
        np.testing.assert_array_equal(made.numpy(), np.full((2, 3), float(name == "ones_like")))
    f = gpucnn.full_like(x, 4, dtype=np.int32)
    _same(f, torch.full_like(torch.zeros(2, 3), 4, dtype=torch.int32))


def test_random_values_are_in_range_with_the_right_moments():
    gpucnn.manual_seed(0)
    u = gpucnn.rand(200_000).numpy()
    assert u.dtype == np.float32 and u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.std() - (1 / 12) ** 0.5) < 0.005
    half = gpucnn.rand(100_000, dtype=gpucnn.float16).numpy()
    assert half.dtype == np.float16 and half.max() < 1 and half.min() >= 0 and abs(half.mean() - 0.5) < 0.01
    n = gpucnn.randn(4, 50_000, dtype=gpucnn.float64).numpy()
    assert n.shape == (4, 50_000) and n.dtype == np.float64
    assert abs(n.mean()) < 0.01 and abs(n.std() - 1) < 0.01
    i = gpucnn.randint(-3, 4, (100_000,)).numpy()
    assert i.dtype == np.int64 and set(np.unique(i)) == set(range(-3, 4))
    p = gpucnn.randperm(1000).numpy()
    assert p.dtype == np.int64 and sorted(p) == list(range(1000)) and not (p == np.arange(1000)).all()


@pytest.mark.parametrize("name, args", [("rand", (3, 4)), ("randn", ((2, 5),)), ("randint", (10, (6,))),
                                        ("randperm", (9,))])
def test_a_seed_gives_the_same_values_on_every_device(name, args):
    runs = []
    for device in DEVICES * 2:
        gpucnn.manual_seed(7)
        runs.append(getattr(gpucnn, name)(*args, device=device).numpy())
    for run in runs[1:]:
        np.testing.assert_array_equal(run, runs[0])
    gpucnn.manual_seed(8)
    assert not np.array_equal(getattr(gpucnn, name)(*args).numpy(), runs[0])


@pytest.mark.parametrize("args, kwargs", [((10, (3, 2)), {}), ((2, 10, (5,)), {}), ((10,), {"size": (4,)}),
                                          ((), {"low": 2, "high": 5, "size": [3]}), ((), {"high": 5, "size": (2,)}),
                                          ((0, 3, (2,)), {"dtype": "float32"})])
def test_randint_takes_torchs_forms(args, kwargs):
    ours = gpucnn.randint(*args, **{k: getattr(gpucnn, v) if k == "dtype" else v for k, v in kwargs.items()})
    theirs = torch.randint(*args, **{k: getattr(torch, v) if k == "dtype" else v for k, v in kwargs.items()})
    assert ours.shape == tuple(theirs.shape) and ours.dtype == theirs.numpy().dtype
    low = kwargs.get("low", args[0] if len(args) == 3 else 0)
    high = kwargs.get("high", args[1] if len(args) == 3 else args[0] if args else None)
    assert (ours.numpy() >= low).all() and (ours.numpy() < high).all()


@pytest.mark.parametrize("args", [(5,), (2, 10, 3), (0, 1, 0.1), (-1.5, 2.3, 0.7), (10, 0, -3), (1, 2, 0.3),
                                  (0.5,), (3, 3), (0, 100, 0.37), (-2, 5.5), (1e6, 1e6 + 1, 0.125)])
def test_arange_as_torch(args):
    """The same length and dtype; values within rounding (gpucnn computes in float64 and rounds once, torch
    in the result's dtype)."""
    for dtype in (None, "float64", "float32", "int64"):
        try:
            theirs = torch.arange(*args, dtype=dtype and getattr(torch, dtype))
        except ValueError as error:  # an integer dtype cuts the step 0.37 to 0
            with pytest.raises(ValueError, match=f"arange: {error}"):
                gpucnn.arange(*args, dtype=dtype and getattr(gpucnn, dtype))
            continue
        ours = gpucnn.arange(*args, dtype=dtype and getattr(gpucnn, dtype))
        assert (ours.shape, ours.dtype) == (tuple(theirs.shape), theirs.numpy().dtype)
        assert_close(ours, theirs, atol=0, rtol=1e-14 if ours.dtype == np.float64 else 2e-7)


@pytest.mark.parametrize("args", [(0, 1, 5), (-3.3, 7.1, 50), (2, 2, 1), (0, 1, 0), (0, 1, 2), (5, -5, 11),
                                  (0.1, 0.9, 1000)])
def test_linspace_as_torch(args):
    assert_close(gpucnn.linspace(*args), torch.linspace(*args), atol=1e-6, rtol=1e-6)
    assert gpucnn.linspace(*args).dtype == np.float32
    ours = gpucnn.linspace(*args, dtype=gpucnn.float64)
    assert_close(ours, torch.linspace(*args, dtype=torch.float64), atol=1e-15, rtol=1e-14)
    if args[2]:  # both ends exactly, as torch's
        assert (ours[0].item(), ours[-1].item()) == (args[0], args[1] if args[2] > 1 else args[0])


@pytest.mark.parametrize("args", [(3,), (2, 4), (4, 2), (0,)])
def test_eye_as_torch(args):
    _same(gpucnn.eye(*args), torch.eye(*args))


def test_from_numpy_shares_memory_and_keeps_the_dtype():
    array = np.arange(6, dtype=np.float64).reshape(2, 3)
    x = gpucnn.from_numpy(array)
    assert x.dtype == np.float64 and x.device.name == "cpu"
    array[0, 0] = 42
    assert x[0, 0].item() == 42
    with gpucnn.no_grad():
        x[1, 2] = -1
    assert array[1, 2] == -1
    with pytest.raises(TypeError, match="from_numpy: expected a numpy.ndarray, got list"):
        gpucnn.from_numpy([1, 2])
    with pytest.raises(TypeError, match="must be numeric"):
        gpucnn.from_numpy(np.array(["a"]))


@pytest.mark.parametrize("call, error, message", [
    (lambda: gpucnn.zeros(2, -1), ValueError, r"zeros: size must be non-negative ints, got \(2, -1\)"),
    (lambda: gpucnn.zeros(), TypeError, r"zeros: size is missing"),
    (lambda: gpucnn.ones((2.5,)), ValueError, "ones: size must be non-negative ints"),
    (lambda: gpucnn.empty(True), ValueError, "empty: size must be non-negative ints"),
    (lambda: gpucnn.rand(3, dtype=gpucnn.int64), TypeError, "rand: dtype must be a floating-point type"),
    (lambda: gpucnn.full((2,), "a"), TypeError, "full: fill_value must be a real number"),
    (lambda: gpucnn.zeros_like(np.zeros(2)), TypeError, "zeros_like: input must be a Tensor, got ndarray"),
    (lambda: gpucnn.randint(5, 2, (3,)), ValueError, "randint: low must be less than high, got low=5, high=2"),
    (lambda: gpucnn.randint(5), TypeError, "randint takes"),
    (lambda: gpucnn.randint(5, size=3), TypeError, "randint: size must be a tuple"),
    (lambda: gpucnn.randint(1, 2, 3, (4,)), TypeError, "randint takes"),
    (lambda: gpucnn.randint(1.5, (4,)), TypeError, "randint: high must be an int"),
    (lambda: gpucnn.randperm(-1), ValueError, "randperm: n must be non-negative"),
    (lambda: gpucnn.arange(0, 5, 0), ValueError, "arange: step must be nonzero"),
    (lambda: gpucnn.arange(0, 5, -1), ValueError, "goes against the sign of step"),
    (lambda: gpucnn.arange(float("inf")), ValueError, "must be finite"),
    (lambda: gpucnn.arange("3"), TypeError, "arange: end must be a real number"),
    (lambda: gpucnn.linspace(0, 1, -2), ValueError, "linspace: steps must be non-negative"),
    (lambda: gpucnn.eye(-1), ValueError, "eye: n and m must be non-negative"),
    (lambda: gpucnn.zeros(2, dtype=object), TypeError, "zeros: dtype must be a bool, integer or float type"),
])
def test_bad_arguments_raise_naming_them(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ----------------------------------------------------------------------------- top-level functions of tensors
@pytest.mark.parametrize("device", DEVICES)
def test_top_level_functions_are_the_methods(device, rng):
    data = rng.standard_normal((3, 4, 5)).astype(np.float32)
    x, t = gpucnn.tensor(data, device=device, requires_grad=True), torch.tensor(data, requires_grad=True)
    calls = [
        lambda m, a: m.flatten(a, 1), lambda m, a: m.reshape(a, (12, 5)), lambda m, a: m.transpose(a, 0, 2),
        lambda m, a: m.permute(a, (2, 0, 1)), lambda m, a: m.unsqueeze(a, 1), lambda m, a: m.squeeze(a[:1]),
        lambda m, a: m.sum(a, 1), lambda m, a: m.mean(a, (0, 2), True), lambda m, a: m.max(a),
        lambda m, a: m.max(a, 1).values, lambda m, a: m.min(a, 2, keepdim=True)[0], lambda m, a: m.exp(a),
        lambda m, a: m.log(m.exp(a)), lambda m, a: m.clone(a), lambda m, a: m.relu(a),
        lambda m, a: m.softmax(a, 1), lambda m, a: m.log_softmax(a, -1), lambda m, a: a.softmax(0),
        lambda m, a: a.log_softmax(2),
    ]
    weights = [rng.standard_normal(tuple(call(torch, t).shape)).astype(np.float32) for call in calls]
    ours = sum((call(gpucnn, x) * gpucnn.tensor(w, device=device)).sum() for call, w in zip(calls, weights))
    theirs = sum((call(torch, t) * torch.tensor(w)).sum() for call, w in zip(calls, weights))
    assert_close(ours, theirs.detach(), atol=1e-4)
    ours.backward()
    theirs.backward()
    assert_close(x.grad, t.grad, atol=1e-4)
    _same(gpucnn.argmax(x, 1), torch.argmax(t, 1))
    _same(gpucnn.argmin(x, 2, keepdim=True), torch.argmin(t, 2, keepdim=True))
    _same(x.argmin(), t.argmin())
    assert_close(x.relu(), t.relu().detach())
    _same(gpucnn.max(x, 0).indices, torch.max(t, 0).indices)
    assert gpucnn.numel(x) == 60 and gpucnn.is_tensor(x) and not gpucnn.is_tensor(data)
    assert gpucnn.is_tensor(gpucnn.nn.Parameter(gpucnn.zeros(1)))


def test_top_level_functions_take_arrays_and_refuse_what_they_do_not_take():
    """``gpucnn.max(outputs.data, 1)``, PyTorch's tutorials' accuracy line, where ``.data`` is the array."""
    outputs = gpucnn.tensor([[0.1, 0.7, 0.2], [0.9, 0.05, 0.05]], requires_grad=True) * 2
    _, predicted = gpucnn.max(outputs.data, 1)
    assert predicted.tolist() == [1, 0] and predicted.device.name == "cpu"
    assert gpucnn.flatten(np.zeros((2, 3, 4)), 1).shape == (2, 12)
    with pytest.raises(TypeError, match="flatten: input must be a Tensor or an array, got list"):
        gpucnn.flatten([[1, 2]], 1)


def test_dtype_names_are_torchs():
    for name in ("float32", "float", "float64", "double", "float16", "half", "int64", "long", "int32", "int", "int16",
                 "int8", "uint8", "bool"):
        assert np.dtype(getattr(gpucnn, name)) == torch.zeros(1, dtype=getattr(torch, name)).numpy().dtype, name
    assert gpucnn.tensor([1.7], dtype=gpucnn.long).tolist() == [1]


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_elementwise_maximum_and_minimum_as_torchs(name):
    """Values and gradients, with ties (half to each), NaNs (whole to both) and broadcasting; max(a, b) and
    min(a, b) are the same; central differences away from ties."""
    a = np.float32([[1.0, 2.0, 3.0, np.nan, 5.0], [0.5, -1.0, 4.0, 4.0, -2.0]])
    b = np.float32([1.0, 3.0, 2.0, 1.0, np.nan])
    for device in DEVICES:
        x, y = gpucnn.tensor(a, device=device, requires_grad=True), gpucnn.tensor(b, device=device, requires_grad=True)
        t, u = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
        ours, theirs = getattr(gpucnn, name)(x, y), getattr(torch, name)(t, u)
        assert_close(ours, theirs.detach())
        (ours * gpucnn.tensor(np.arange(1, 11, dtype=np.float32).reshape(2, 5), device=device)).sum().backward()
        (theirs * torch.arange(1, 11, dtype=torch.float32).reshape(2, 5)).sum().backward()
        assert_close(x.grad, t.grad)
        assert_close(y.grad, u.grad)
        short = name[:3]
        assert_close(getattr(gpucnn, short)(x, y), getattr(torch, short)(t, u).detach())
        assert_close(getattr(x, name)(0.5), getattr(t, name)(torch.tensor(0.5)).detach())
    rng = np.random.default_rng(30)
    check_op(lambda p, q: getattr(gpucnn, name)(p, q), lambda p, q: getattr(torch, name)(p, q),
             rng.standard_normal((3, 4)), rng.standard_normal((4,)))


def test_generators_and_seeds_as_torchs():
    """gpucnn.Generator's methods and the global seed functions behave as torch's (not its numbers)."""
    for module in (gpucnn, torch):
        generator = module.Generator()
        assert generator.manual_seed(5) is generator and generator.initial_seed() == 5
        state = generator.get_state()
        first = generator.numpy.random(3) if module is gpucnn else torch.rand(3, generator=generator)
        generator.set_state(state)
        again = generator.numpy.random(3) if module is gpucnn else torch.rand(3, generator=generator)
        assert (np.asarray(first) == np.asarray(again)).all()
        seed = generator.seed()
        assert isinstance(seed, int) and 0 <= seed < 2**64 and generator.initial_seed() == seed
        module.manual_seed(11)
        assert module.initial_seed() == 11
        seed = module.seed()
        assert module.initial_seed() == seed and isinstance(seed, int)
    gpucnn.manual_seed(3)
    drawn = gpucnn.rand(4)
    gpucnn.manual_seed(3)
    assert (gpucnn.rand(4).numpy() == drawn.numpy()).all()
    gpucnn.seed()
    assert not (gpucnn.rand(4).numpy() == drawn.numpy()).all()
    with pytest.raises(ValueError, match="seed must be a non-negative int, got -1"):
        gpucnn.Generator().manual_seed(-1)
