"""The Tensor and autograd API of torch's scripts beyond the ops: new_* tensors, memory layout, casts, the
named arithmetic and comparisons, in-place random fills, hooks, retain_grad, grad_fn, autograd.grad and
autograd.backward, cumprod and mv, each against torch on every device."""

import numpy as np
import pytest
import torch

import gpucnn
from helpers import assert_close, check_op

DEVICES = gpucnn.devices()
rng = np.random.default_rng(7)


def same(ours, theirs, what=""):
    """Equal values, shapes and dtypes, as torch's."""
    theirs = theirs.detach()
    assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch."), (what, ours.dtype, theirs.dtype)
    assert ours.shape == tuple(theirs.shape), (what, ours.shape, tuple(theirs.shape))
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=str(what))


def pair(array, device="cpu", requires_grad=False):
    return (gpucnn.tensor(array, device=device, requires_grad=requires_grad),
            torch.tensor(array, requires_grad=requires_grad))


# ----------------------------------------------------------------------------- new tensors
@pytest.mark.parametrize("device", DEVICES)
def test_new_tensors_take_the_tensor_dtype_and_device_as_torch(device):
    for array in (np.arange(6, dtype=np.int32).reshape(2, 3), np.ones((2, 3), np.float64)):
        ours, theirs = pair(array, device)
        for name in ("new_zeros", "new_ones"):
            for size in ((2, 3), ((2, 3),), ([4],), ((),)):
                result = getattr(ours, name)(*size)
                same(result, getattr(theirs, name)(*size), (name, size))
                assert result.device == ours.device
            same(getattr(ours, name)(2, dtype=np.int64), getattr(theirs, name)(2, dtype=torch.int64), name)
        empty = ours.new_empty(3, 2)
        assert empty.shape == (3, 2) and empty.dtype == ours.dtype and empty.device == ours.device
        same(ours.new_full((2,), 2.7), theirs.new_full((2,), 2.7), "new_full")
        same(ours.new_full([1, 2], True), theirs.new_full([1, 2], True), "new_full")
        same(ours.new_tensor([1.5, 2.7]), theirs.new_tensor([1.5, 2.7]), "new_tensor")
        same(ours.new_tensor([1, 2], dtype=np.float32), theirs.new_tensor([1, 2], dtype=torch.float32), "new_tensor")
    assert gpucnn.ones(2).new_zeros(3, device="cpu").device == "cpu"
    made = gpucnn.ones(2, device=device).new_ones(3, requires_grad=True)
    assert made.requires_grad and made.is_leaf and made.device == device


def test_new_tensor_copies_and_cuts_from_the_graph():
    x = gpucnn.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    copied = x.new_tensor(y)
    assert not copied.requires_grad and copied.is_leaf and copied.tolist() == [2.0, 4.0]
    copied.data[0] = 9
    assert y.tolist() == [2.0, 4.0]
    integers = gpucnn.tensor([1, 2]).new_tensor(y)
    assert integers.dtype == np.int64 and integers.tolist() == [2, 4]
    with pytest.raises(TypeError, match="only floating-point tensors can require grad"):
        gpucnn.tensor([1, 2]).new_zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match=r"zeros: size must be non-negative ints, got \(2, -1\)"):
        x.new_zeros(2, -1)


def test_view_as_reshape_as_and_expand_as():
    x, t = pair(np.arange(6.0, dtype=np.float32))
    other, other_t = gpucnn.zeros(2, 3), torch.zeros(2, 3)
    same(x.view_as(other), t.view_as(other_t))
    same(x.reshape_as(other), t.reshape_as(other_t))
    same(x[:3].expand_as(other), t[:3].expand_as(other_t))
    with pytest.raises(ValueError, match=r"cannot reshape a tensor of shape \(6,\) \(6 elements\) to \(4,\)"):
        x.view_as(gpucnn.zeros(4))
    with pytest.raises(TypeError, match="reshape_as: other must be a Tensor, got tuple"):
        x.reshape_as((2, 3))
    check_op(lambda a, b: a.view_as(b) * b, lambda a, b: a.view_as(b) * b,
             rng.standard_normal(6), rng.standard_normal((3, 2)))


# ----------------------------------------------------------------------------- memory layout and dtype queries
@pytest.mark.parametrize("device", DEVICES)
def test_strides_contiguity_and_sizes_as_torch(device):
    x, t = pair(np.ones((3, 4, 5), np.float32), device)
    views = [(x, t), (x.transpose(0, 2), t.transpose(0, 2)), (x[:, ::2], t[:, ::2]), (x[:, 1], t[:, 1]),
             (x[1:2], t[1:2]), (x.expand(2, 3, 4, 5), t.expand(2, 3, 4, 5)), (x.permute(1, 0, 2), t.permute(1, 0, 2))]
    for ours, theirs in views:
        assert ours.stride() == theirs.stride(), (ours.shape, ours.stride(), theirs.stride())
        assert ours.is_contiguous() == theirs.is_contiguous(), ours.shape
        assert [ours.stride(d) for d in range(-ours.ndim, ours.ndim)] == [
            theirs.stride(d) for d in range(-theirs.dim(), theirs.dim())]
    for array in (np.ones((2, 3), np.float64), np.ones(5, np.int16), np.ones((), np.float32), np.zeros((0, 3), bool)):
        ours, theirs = pair(array, device)
        assert ours.element_size() == theirs.element_size() and ours.itemsize == theirs.itemsize
        assert ours.nbytes == theirs.nbytes and ours.stride() == theirs.stride()
        assert ours.ndimension() == theirs.ndimension() == ours.dim()
        assert ours.is_floating_point() is theirs.is_floating_point() is gpucnn.is_floating_point(ours)
    assert gpucnn.ones(2, device=device).is_cuda is False  # cudasim runs the kernels on the host
    with pytest.raises(IndexError, match=r"stride: dimension 3 is out of range for a tensor of shape \(3, 4, 5\)"):
        x.stride(3)


def test_is_cuda_follows_the_device_type(monkeypatch):
    x = gpucnn.ones(2)
    monkeypatch.setattr(x.device, "type", "cuda")
    assert x.is_cuda is True


@pytest.mark.parametrize("device", DEVICES)
def test_casts_as_torch(device):
    for array in (np.array([1.7, -2.5, 0.0], np.float32), np.array([3, 0, -1])):
        ours, theirs = pair(array, device)
        for name in ("int", "bool", "half", "float", "double", "long"):
            same(getattr(ours, name)(), getattr(theirs, name)(), name)
    x, t = pair(np.array([1.5, -2.0], np.float32), device, requires_grad=True)
    (x.half() * 3).float().sum().backward()
    (t.half() * 3).float().sum().backward()
    same(x.grad, t.grad)
    assert not x.int().requires_grad and not x.bool().requires_grad


# ----------------------------------------------------------------------------- named arithmetic and comparisons
@pytest.mark.parametrize("device", DEVICES)
def test_named_arithmetic_as_torch(device):
    a, ta = pair(np.array([7, -7, 5, -5]), device)
    b, tb = pair(np.array([2, 2, -3, -3]), device)
    same(a.add(b, alpha=2), ta.add(tb, alpha=2))
    same(a.sub(b, alpha=3), ta.sub(tb, alpha=3))
    same(a.add(1.5), ta.add(1.5))
    same(a.mul(b), ta.mul(tb))
    same(a.div(b), ta.div(tb))
    same(gpucnn.add(a, b, alpha=-1), torch.add(ta, tb, alpha=-1))
    same(gpucnn.sub(a, 2), torch.sub(ta, 2))
    same(gpucnn.mul(a, 2.5), torch.mul(ta, 2.5))
    same(gpucnn.rsub(a, b, alpha=2), torch.rsub(ta, tb, alpha=2))
    same(gpucnn.rsub(a, 1), torch.rsub(ta, 1))
    for mode in ("trunc", "floor"):
        same(a.div(b, rounding_mode=mode), ta.div(tb, rounding_mode=mode), mode)
        same(a.div(2, rounding_mode=mode), ta.div(2, rounding_mode=mode), mode)
        same(a.div(2.0, rounding_mode=mode), ta.div(2.0, rounding_mode=mode), mode)
        same(gpucnn.div(a, -3, rounding_mode=mode), torch.div(ta, -3, rounding_mode=mode), mode)
    special = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 3.0, -3.0, 7.0, 5.5], np.float32)
    x_values, y_values = (np.ascontiguousarray(v) for v in np.meshgrid(special, np.append(special[:-2], 0.1)))
    x, tx = pair(x_values, device)
    y, ty = pair(y_values, device)
    for mode in ("trunc", "floor"):
        same(x.div(y, rounding_mode=mode), tx.div(ty, rounding_mode=mode), mode)


def test_named_arithmetic_gradients_as_torch():
    a, b = rng.standard_normal((3, 4)) * 4, rng.standard_normal(4) + 0.1
    check_op(lambda x, y: x.add(y, alpha=2.5), lambda x, y: x.add(y, alpha=2.5), a, b)
    check_op(lambda x, y: gpucnn.sub(x, y, alpha=-2), lambda x, y: torch.sub(x, y, alpha=-2), a, b)
    check_op(lambda x, y: gpucnn.rsub(x, y, alpha=3), lambda x, y: torch.rsub(x, y, alpha=3), a, b)
    check_op(lambda x, y: x.mul(y).div(y + 5), lambda x, y: x.mul(y).div(y + 5), a, b)
    for mode in ("trunc", "floor"):  # a step function: zero gradients, not None
        check_op(lambda x, y: x.div(y, rounding_mode=mode) * x, lambda x, y: x.div(y, rounding_mode=mode) * x,
                 a, b, numerical=False)


def test_named_arithmetic_errors():
    ints, floats = gpucnn.tensor([1, 2]), gpucnn.tensor([1.0, 2.0])
    with pytest.raises(TypeError, match=r"add: alpha=2.5 is not an integer, and neither input \(int64\)"):
        ints.add(ints, alpha=2.5)
    with pytest.raises(TypeError, match=r"sub: alpha=2.0 is not an integer"):
        ints.sub(1, alpha=2.0)
    assert floats.add(ints, alpha=2.5).tolist() == [3.5, 7.0] and ints.add(1.5, alpha=2).tolist() == [4.0, 5.0]
    with pytest.raises(TypeError, match="add: alpha must be a real number, got str"):
        floats.add(1, alpha="2")
    with pytest.raises(ValueError, match=r"div: rounding_mode must be None, 'trunc' or 'floor', got 'round'"):
        ints.div(ints, rounding_mode="round")
    with pytest.raises(ZeroDivisionError, match=r"div: integer division by zero \(rounding_mode='floor'\)"):
        ints.div(gpucnn.tensor([1, 0]), rounding_mode="floor")
    with pytest.raises(TypeError, match=r"div: rounding_mode='trunc' takes numbers, not bools"):
        gpucnn.tensor([True]).div(gpucnn.tensor([True]), rounding_mode="trunc")
    with pytest.raises(ValueError, match=r"div: shapes \(2,\) \(input\) and \(3,\) \(other\) do not broadcast"):
        ints.div(gpucnn.tensor([1, 2, 3]), rounding_mode="trunc")
    with pytest.raises(ValueError, match=r"shapes \(2,\) and \(3,\) do not broadcast"):
        floats.add(gpucnn.ones(3), alpha=2)


@pytest.mark.parametrize("device", DEVICES)
def test_comparisons_and_logical_ops_as_torch(device):
    a, ta = pair(np.array([[1.0, 0.0, np.nan], [2.0, -1.0, 0.0]], np.float32), device)
    b, tb = pair(np.array([1, 0, 3]), device)
    for name in ("eq", "ne", "lt", "le", "gt", "ge"):
        same(getattr(a, name)(b), getattr(ta, name)(tb), name)
        same(getattr(a, name)(0.5), getattr(ta, name)(0.5), name)
        same(getattr(gpucnn, name)(b, a), getattr(torch, name)(tb, ta), name)
    for name in ("logical_and", "logical_or", "logical_xor"):
        same(getattr(a, name)(b), getattr(ta, name)(tb), name)
        same(getattr(gpucnn, name)(b, a), getattr(torch, name)(tb, ta), name)
        same(getattr(a, name)(b.bool()), getattr(ta, name)(tb.bool()), name)
    same(a.logical_not(), ta.logical_not())
    same(gpucnn.logical_not(b), torch.logical_not(tb))
    with pytest.raises(ValueError, match=r"logical_or: shapes \(2, 3\) \(input\) and \(2,\) \(other\) do not "):
        a.logical_or(gpucnn.ones(2, device=device))


def test_logical_ops_refuse_two_devices():
    with pytest.raises(RuntimeError, match="logical_and: input is on cpu and other on cudasim"):
        gpucnn.ones(2).logical_and(gpucnn.ones(2, device="cudasim"))


# ----------------------------------------------------------------------------- in place
@pytest.mark.parametrize("device", DEVICES)
def test_clamp_in_place_as_torch(device):
    values = rng.standard_normal((3, 4)).astype(np.float32)
    for kwargs in ({"min": -0.5, "max": 0.5}, {"min": 0.2}, {"max": -0.1}, {"min": 1, "max": 0}):
        for name in ("clamp_", "clip_"):
            x, t = pair(values, device)
            assert getattr(x, name)(**kwargs) is x
            getattr(t, name)(**kwargs)
            same(x, t, (name, kwargs))
    x = gpucnn.tensor([1, 5])
    with pytest.raises(TypeError, match=r"clamp: min=2.5 is not an integer, and the tensor's dtype is int64"):
        x.clamp_(2.5)
    leaf = gpucnn.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"clamp_ on a tensor \(shape \(2,\)\) cannot be recorded"):
        leaf.clamp_(0, 0.5)
    with gpucnn.no_grad():
        leaf.clamp_(0, 0.5)
    assert leaf.tolist() == [0.5, 0.5] and leaf._version[0] == 1


@pytest.mark.parametrize("device", DEVICES)
def test_uniform_and_normal_fill_in_place_from_the_global_generator(device):
    for dtype in (np.float32, np.float64):
        x = gpucnn.zeros(200, 30, dtype=dtype, device=device)
        gpucnn.manual_seed(3)
        assert x.uniform_() is x
        gpucnn.manual_seed(3)
        np.testing.assert_array_equal(x.numpy(), gpucnn.rand(200, 30, dtype=dtype).numpy())
        x.uniform_(-2, 5)
        values = x.numpy()
        assert values.dtype == dtype and values.min() >= -2 and values.max() < 5 and values.std() > 1.8
        gpucnn.manual_seed(4)
        x.normal_()
        gpucnn.manual_seed(4)
        np.testing.assert_array_equal(x.numpy(), gpucnn.randn(200, 30, dtype=dtype).numpy())
        x.normal_(mean=3, std=0.5)
        assert abs(x.numpy().mean() - 3) < 0.05 and abs(x.numpy().std() - 0.5) < 0.05
        x.normal_(1.0, 0.0)
        assert (x.numpy() == 1).all()
        assert x.device == device and x._version[0] == 5
    a, b = gpucnn.zeros(5).uniform_(generator=gpucnn.Generator().manual_seed(1)), gpucnn.zeros(5)
    assert a.equal(b.uniform_(generator=gpucnn.Generator().manual_seed(1))) and not a.equal(b.uniform_())


def test_uniform_and_normal_errors_as_torch():
    with pytest.raises(ValueError, match="uniform_: a=1 is greater than b=0"):
        gpucnn.ones(3).uniform_(1, 0)
    with pytest.raises(ValueError, match="normal_: std must be at least 0, got -1"):
        gpucnn.ones(3).normal_(0, -1)
    for name in ("uniform_", "normal_"):
        with pytest.raises(TypeError, match=f"{name} needs a floating-point tensor, got dtype int64"):
            getattr(gpucnn.ones(3, dtype=np.int64), name)()
        with pytest.raises(RuntimeError, match=rf"{name} \(shape \(2,\)\) cannot be recorded"):
            getattr(gpucnn.ones(2, requires_grad=True), name)()
    weight = gpucnn.ones(2, requires_grad=True)
    with gpucnn.no_grad():
        weight.normal_(0, 0.01)
    assert weight.requires_grad and weight.is_leaf and not (weight.numpy() == 1).any()


def test_detach_in_place_cuts_the_graph():
    x = gpucnn.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    assert y.grad_fn is not None and not y.is_leaf
    assert y.detach_() is y
    assert y.grad_fn is None and y.is_leaf and not y.requires_grad
    assert x.requires_grad_() is x and x.requires_grad
    with pytest.raises(RuntimeError, match="backward\\(\\) on a tensor that does not require grad"):
        (y * 3).sum().backward()


# ----------------------------------------------------------------------------- grad_fn, hooks and retain_grad
def test_grad_fn_is_none_for_leaves_only():
    x = gpucnn.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    assert x.grad_fn is None and y.grad_fn is not None and y.grad_fn is not (x + 1).grad_fn
    assert gpucnn.ones(2).grad_fn is None and y.detach().grad_fn is None
    with gpucnn.no_grad():
        assert (x * 2).grad_fn is None


@pytest.mark.parametrize("device", DEVICES)
def test_hooks_and_retain_grad_as_torch(device):
    """Hooks run in a backward's order, each on one tensor in the order registered, each seeing the last one's
    result; a returned gradient flows on; retain_grad keeps the gradient after all hooks, summed over
    backward calls; a removed hook is not called."""
    results = {}
    for library, tensor in (("gpucnn", lambda v: gpucnn.tensor(v, device=device, requires_grad=True)),
                            ("torch", lambda v: torch.tensor(v, requires_grad=True))):
        calls = []
        x = tensor([1.0, 2.0])
        y = x * 2
        z = y * 3
        w = (z + y).sum()
        handle = x.register_hook(lambda g: calls.append(("x", g.tolist())))
        y.register_hook(lambda g: calls.append(("y1", g.tolist())) or g * 10)
        y.retain_grad()
        y.register_hook(lambda g: calls.append(("y2", g.tolist())))
        z.register_hook(lambda g: calls.append(("z", g.tolist())))
        w.backward(retain_graph=True)
        first = (list(calls), y.grad.tolist(), x.grad.tolist(), y.retains_grad, z.retains_grad, x.retains_grad)
        calls.clear()
        handle.remove()
        handle.remove()
        w.backward()
        results[library] = first, list(calls), y.grad.tolist(), x.grad.tolist()
    assert results["gpucnn"] == results["torch"]
    assert results["gpucnn"][0][0] == [("z", [1.0, 1.0]), ("y1", [4.0, 4.0]), ("y2", [40.0, 40.0]),
                                       ("x", [80.0, 80.0])]


@pytest.mark.parametrize("device", DEVICES)
def test_leaf_hook_sees_the_summed_gradient_once_and_replaces_it(device):
    for library, make in (("gpucnn", lambda: gpucnn.tensor([1.0, 3.0], device=device, requires_grad=True)),
                          ("torch", lambda: torch.tensor([1.0, 3.0], requires_grad=True))):
        a, calls = make(), []
        a.register_hook(lambda g: calls.append(g.tolist()))
        a.register_hook(lambda g: g * 2)
        a.register_hook(lambda g: calls.append(g.tolist()))
        (a * 2 + a * a).sum().backward()
        assert calls == [[4.0, 8.0], [8.0, 16.0]], library
        assert a.grad.tolist() == [8.0, 16.0], library
        b = make()
        b.register_hook(lambda g: g + 1)
        b.sum().backward()  # the root itself a leaf
        assert b.grad.tolist() == [2.0, 2.0], library
    s = gpucnn.tensor([1.0, 2.0], device=device, requires_grad=True) * 2
    out = s.sum()
    out.register_hook(lambda g: g * 3)
    out.retain_grad()
    out.backward()
    assert out.grad.item() == 3.0


def test_hook_errors():
    x = gpucnn.tensor([1.0, 2.0], requires_grad=True)
    for name in ("register_hook", "retain_grad"):
        with pytest.raises(RuntimeError, match=rf"{name} on a tensor that does not require grad \(shape \(2,\)\)"):
            getattr(gpucnn.ones(2), name)(*([print] if name == "register_hook" else []))
    y = x * 2

    def summed(g):
        return g.sum()

    y.register_hook(summed)
    with pytest.raises(RuntimeError, match=r"hook 'summed' has changed the size of the gradient: it returned shape "
                                           r"\(\) for a gradient of shape \(2,\)"):
        y.sum().backward()
    z = x * 3
    z.register_hook(lambda g: g.numpy())
    with pytest.raises(TypeError, match="hook '<lambda>' returned ndarray; a hook returns a Tensor or None"):
        z.sum().backward()
    leaf = gpucnn.tensor([1.0], requires_grad=True)
    leaf.retain_grad()  # nothing on a leaf
    assert not leaf.retains_grad
    with leaf.register_hook(lambda g: g * 0):
        leaf.sum().backward()
    leaf.sum().backward()  # the with block removed the hook
    assert leaf.grad.tolist() == [1.0]


# ----------------------------------------------------------------------------- autograd.grad and backward
@pytest.mark.parametrize("device", DEVICES)
def test_grad_with_several_outputs_and_inputs_as_torch(device):
    xs = rng.standard_normal((2, 3)).astype(np.float32)
    ws = rng.standard_normal((3, 4)).astype(np.float32)
    upstream = rng.standard_normal((2, 4)).astype(np.float32)
    found = {}
    for library, lib, make in (("gpucnn", gpucnn, lambda v: gpucnn.tensor(v, device=device, requires_grad=True)),
                               ("torch", torch, lambda v: torch.tensor(v, requires_grad=True))):
        x, w = make(xs), make(ws)
        h = (x @ w).tanh()
        loss = (h * h).sum()
        extra = (x * x).sum()
        seed = gpucnn.tensor(upstream, device=device) if lib is gpucnn else torch.tensor(upstream)
        grads = lib.autograd.grad([h, loss, extra], [w, x, h], [seed, None, None], retain_graph=True)
        assert x.grad is None and w.grad is None and h.grad_fn is not None
        single = lib.autograd.grad(loss, x)
        found[library] = [g.numpy() if library == "gpucnn" else g.detach().numpy() for g in grads + single]
        if library == "gpucnn":
            assert all(g.device == device and not g.requires_grad for g in grads)
    for ours, theirs in zip(found["gpucnn"], found["torch"]):
        assert_close(ours, theirs)


def test_grad_leaves_grad_alone_runs_hooks_and_keeps_retained_gradients_as_torch():
    results = {}
    for library, lib in (("gpucnn", gpucnn), ("torch", torch)):
        calls = []
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        y.retain_grad()
        x.register_hook(lambda g: calls.append(("x", g.tolist())) or g * 100)
        y.register_hook(lambda g: calls.append(("y", g.tolist())))
        gx, gy = lib.autograd.grad((y * y).sum(), [x, y])
        results[library] = gx.tolist(), gy.tolist(), calls, x.grad, y.grad.tolist()
    assert results["gpucnn"] == results["torch"]


def test_grad_of_leaves_and_repeated_outputs_as_torch():
    for lib in (gpucnn, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        assert lib.autograd.grad(x.sum(), x)[0].tolist() == [1.0, 1.0]
        assert lib.autograd.grad(x, x, lib.tensor([2.0, 3.0]))[0].tolist() == [2.0, 3.0]
        (g,) = lib.autograd.grad([x, x * x], [x], [lib.tensor([2.0, 3.0]), lib.tensor([1.0, 1.0])])
        assert g.tolist() == [4.0, 7.0]
        y = x * 3
        gy, gx = lib.autograd.grad(y * y, [y, x], grad_outputs=lib.tensor([1.0, 2.0]))
        assert gy.tolist() == [6.0, 24.0] and gx.tolist() == [18.0, 72.0]


def test_grad_unused_inputs_as_torch():
    for lib in (gpucnn, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        unused = lib.tensor([1.0], requires_grad=True)
        loss = (x * 2).sum()
        with pytest.raises(RuntimeError, match="not .*used in the graph"):
            lib.autograd.grad(loss, [x, unused], retain_graph=True)
        gx, none = lib.autograd.grad(loss, [x, unused], allow_unused=True, retain_graph=True)
        assert gx.tolist() == [2.0, 2.0] and none is None
        gx, zeros = lib.autograd.grad(loss, [x, unused], materialize_grads=True, retain_graph=True)
        assert zeros.tolist() == [0.0] and zeros.dtype == x.dtype
        with pytest.raises(ValueError, match="allow_unused"):
            lib.autograd.grad(loss, [x, unused], allow_unused=False, materialize_grads=True)
        assert x.grad is None


def test_grad_skips_the_branches_that_lead_to_no_input():
    """Only the Functions between the outputs and the inputs run backward: a failing one elsewhere is not
    reached."""
    x = gpucnn.tensor([1.0, 2.0], requires_grad=True)
    weight = gpucnn.tensor([3.0, 4.0], requires_grad=True)
    h = x * weight
    calls = []
    h.register_hook(lambda g: calls.append("h"))
    weight.register_hook(lambda g: calls.append("weight"))
    (gh,) = gpucnn.autograd.grad((h * h).sum(), h)
    assert gh.tolist() == [6.0, 16.0] and calls == ["h"]
    (gw,) = gpucnn.autograd.grad((h * h).sum(), weight)
    assert gw.tolist() == [6.0, 32.0] and calls == ["h", "h", "weight"]
    (gx,) = gpucnn.autograd.grad((h * h).sum(), x)  # weight's gradient is computed on the way, not delivered
    assert gx.tolist() == [18.0, 64.0] and calls == ["h", "h", "weight", "h"] and weight.grad is None

    class Fails(gpucnn.autograd.Function):
        def forward(self, a):
            return a.copy()

        def backward(self, grad):
            raise AssertionError("a backward that leads to no input ran")

    other = gpucnn.tensor([5.0], requires_grad=True)
    loss = (h * h).sum() + Fails().apply(other * 2).sum()
    assert gpucnn.autograd.grad(loss, h)[0].tolist() == [6.0, 16.0]
    assert gpucnn.autograd.grad(loss, [x, weight])[1].tolist() == [6.0, 32.0]
    with pytest.raises(AssertionError, match="a backward that leads to no input ran"):
        gpucnn.autograd.grad(loss, [other])


def test_grad_errors_as_torch():
    x = gpucnn.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    cases = [
        ({"outputs": y, "inputs": x}, RuntimeError,
         r"grad: a gradient can be implicitly created only for outputs of one element; output 0 has shape \(2,\)"),
        ({"outputs": y.sum(), "inputs": gpucnn.ones(1)}, RuntimeError,
         r"grad: inputs\[0\] \(shape \(1,\)\) does not require grad"),
        ({"outputs": y, "inputs": x, "grad_outputs": gpucnn.ones(3)}, RuntimeError,
         r"grad: mismatch in shape: gradient 0 has shape \(3,\) and output 0 has shape \(2,\)"),
        ({"outputs": gpucnn.ones(1), "inputs": x}, RuntimeError,
         r"grad: element 0 of the tensors \(shape \(1,\)\) does not require grad"),
        ({"outputs": [y.sum(), y.sum()], "inputs": x, "grad_outputs": [None]}, RuntimeError,
         "grad: got 2 tensors and 1 gradients"),
        ({"outputs": y.sum(), "inputs": x, "create_graph": True}, NotImplementedError, "create_graph=True"),
        ({"outputs": y.sum(), "inputs": [x, "x"]}, TypeError, r"grad: inputs\[1\] must be a Tensor, got str"),
        ({"outputs": y.sum(), "inputs": []}, RuntimeError, "grad: outputs and inputs must not be empty"),
        ({"outputs": y, "inputs": x, "grad_outputs": gpucnn.ones(2, device="cudasim")}, RuntimeError,
         "grad: gradient 0 is on cudasim and output 0 on cpu"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            gpucnn.autograd.grad(**kwargs)
    assert x.grad is None


def test_a_second_backward_works_and_retain_graph_is_accepted():
    """gpucnn keeps the graph as long as its tensors live: where torch refuses a second backward without
    retain_graph=True, gpucnn's adds the gradients again."""
    x = gpucnn.tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    loss.backward(retain_graph=False)
    assert x.grad.tolist() == [6.0, 12.0]
    t = torch.tensor([1.0, 2.0], requires_grad=True)
    torch_loss = (t * t).sum()
    torch_loss.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        torch_loss.backward()
    with pytest.raises(NotImplementedError, match="create_graph=True"):
        loss.backward(create_graph=True)


@pytest.mark.parametrize("device", DEVICES)
def test_autograd_backward_and_backward_inputs_as_torch(device):
    results = {}
    for library, lib, make in (("gpucnn", gpucnn, lambda v: gpucnn.tensor(v, device=device, requires_grad=True)),
                               ("torch", torch, lambda v: torch.tensor(v, requires_grad=True))):
        x, u = make([1.0, 2.0]), make([5.0])
        found = []
        lib.autograd.backward([(x * 2).sum(), (x * x).sum()])
        found.append(x.grad.tolist())
        x.grad = None
        seeds = [lib.ones(2), lib.tensor([1.0, 3.0])]
        lib.autograd.backward([x * 2, x * x], [seed.to(device) for seed in seeds] if lib is gpucnn else seeds)
        found.append(x.grad.tolist())
        x.grad = None
        lib.autograd.backward((x * u).sum())
        found.append((x.grad.tolist(), u.grad.tolist()))
        (x * u).sum().backward(inputs=[u])
        found.append((x.grad.tolist(), u.grad.tolist()))
        y = x * 3
        (y * y).sum().backward(inputs=[y, x])
        found.append((y.grad.tolist(), x.grad.tolist(), u.grad.tolist()))
        results[library] = found
    assert results["gpucnn"] == results["torch"]
    x = gpucnn.ones(2, device=device, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"backward: inputs\[0\] \(shape \(2,\)\) does not require grad"):
        (x * 2).sum().backward(inputs=[gpucnn.ones(2)])
    with pytest.raises(TypeError, match=r"backward: tensors\[0\] must be a Tensor, got list"):
        gpucnn.autograd.backward([[x]])
    with pytest.raises(RuntimeError, match="backward: inputs is empty"):
        (x * 2).sum().backward(inputs=[])


def test_hooks_and_retain_grad_cost_nothing_when_unused():
    """A graph without hooks runs the plain path: Functions and leaves keep no hook state."""
    x = gpucnn.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    (y * y).sum().backward()
    assert y.grad_fn._hooks is None and y.grad_fn.retained is None and "_hooks" not in vars(x)
    assert y.grad is None and not y.retains_grad


# ----------------------------------------------------------------------------- cumprod and mv
def test_cumprod_as_torch_with_zeros():
    for values in (rng.standard_normal((3, 4, 5)), np.array([[2.0, 0.0, 3.0, 4.0], [0.0, 1.5, 0.0, 2.0]]),
                   np.array([0.0, 0.0, 2.0]), np.array([1.5, -2.0, 0.5, 0.0])):
        for dim in range(-values.ndim, values.ndim):
            check_op(lambda x: x.cumprod(dim), lambda x: x.cumprod(dim), values)
            check_op(lambda x: gpucnn.cumprod(x, dim), lambda x: torch.cumprod(x, dim), values, numerical=False)
    check_op(lambda x: x.cumprod(0), lambda x: x.cumprod(0), np.array(2.5))


@pytest.mark.parametrize("device", DEVICES)
def test_cumprod_dtypes_as_torch(device):
    for array, kwargs in ((np.array([1, 2, 3]), {}), (np.array([True, False]), {}), (np.array(3.0), {}),
                          (np.array([1, 2], np.int32), {"dtype": np.float64}), (np.zeros((0, 2)), {})):
        ours, theirs = pair(array, device)
        torch_kwargs = {"dtype": torch.float64} if kwargs else {}
        same(ours.cumprod(0, **kwargs), theirs.cumprod(0, **torch_kwargs), array)
    with pytest.raises(ValueError, match="cumprod: dimension 2 is out of range for a tensor with 2 dimensions"):
        gpucnn.ones(2, 3).cumprod(2)


def test_mv_as_torch():
    check_op(lambda m, v: m.mv(v), lambda m, v: m.mv(v), rng.standard_normal((3, 4)), rng.standard_normal(4))
    check_op(lambda m, v: gpucnn.mv(m, v), lambda m, v: torch.mv(m, v), rng.standard_normal((1, 2)),
             rng.standard_normal(2), numerical=False)
    with pytest.raises(ValueError, match=r"mv: the sizes do not match: input \(2, 3\), vec \(4,\)"):
        gpucnn.ones(2, 3).mv(gpucnn.ones(4))
    with pytest.raises(ValueError, match=r"mv: input must be a matrix \(2-D\) and vec a vector \(1-D\), got input "
                                         r"\(2,\) and vec \(2,\)"):
        gpucnn.ones(2).mv(gpucnn.ones(2))
    with pytest.raises(ValueError, match=r"got input \(2, 3\) and vec \(3, 1\)"):
        gpucnn.mv(gpucnn.ones(2, 3), gpucnn.ones(3, 1))
