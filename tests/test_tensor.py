"""Tensor creation, dtype rules, autograd of arithmetic and shape ops, and bad input."""

import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gpucnn
from gpucnn.ops import _memory
from helpers import assert_close, check_op


# ----------------------------------------------------------------------------- creation and dtypes
def test_dtype_rules():
    assert gpucnn.tensor(np.zeros(3, dtype=np.float64)).dtype == np.float64
    assert gpucnn.tensor(np.zeros(3, dtype=np.float16)).dtype == np.float16
    assert gpucnn.tensor(1.5).dtype == np.float32
    assert gpucnn.tensor([[1.0, 2.0]]).dtype == np.float32
    assert gpucnn.tensor([1, 2]).dtype == np.int64
    assert gpucnn.tensor(np.arange(3, dtype=np.int32)).dtype == np.int32
    assert gpucnn.tensor([1, 2], dtype=np.float64).dtype == np.float64
    assert gpucnn.tensor([True, False]).dtype == np.bool_


_DTYPES = ["bool", "int32", "int64", "float32", "float64"]
_OPS = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y, "div": lambda x, y: x / y}


@pytest.mark.parametrize("op", list(_OPS))
@pytest.mark.parametrize("first, second", [(a, b) for a in _DTYPES for b in _DTYPES] + [
    (a, scalar) for a in _DTYPES for scalar in (2, 2.5, True)])
def test_binary_op_dtypes_as_pytorch(op, first, second):
    """Result dtype and values as torch's, for every pair of tensor dtypes and for Python numbers: a
    float tensor beside an integer one keeps its dtype, integer division gives float32, bool and int
    add as int64 (NumPy: float64, float64, and logical or)."""
    if op == "sub" and ("bool" in (first, second) or second is True):
        pytest.skip("torch refuses to subtract bools")

    def operands(make):
        a = make(np.array([[1, 0, 2]]).astype(first))
        return a, (make(np.array([[3], [1]]).astype(second)) if isinstance(second, str) else second)

    expected = _OPS[op](*operands(torch.tensor))
    for device in gpucnn.devices():
        actual = _OPS[op](*operands(lambda array: gpucnn.tensor(array, device=device)))
        assert str(actual.dtype) == str(expected.dtype).removeprefix("torch."), (device, actual.dtype, expected.dtype)
        assert_close(actual.numpy().astype(np.float64), expected.numpy().astype(np.float64),
                     name=f"{first} {op} {second}")


@pytest.mark.parametrize("op", list(_OPS))
@pytest.mark.parametrize("first, second, recycled", [
    ("float32", "float32", True), ("int64", "int64", True),
    ("int32", "float32", True),  # the int32 operand becomes float32
    ("float64", "float32", False), ("int64", "int32", False), ("bool", "int64", False)])
def test_large_binary_results_as_pytorch_in_recycled_memory(op, first, second, recycled):
    """On the cpu the result of two operands of one dtype, one of them of 256 KiB / 8 values or more,
    comes from ops._memory, whose recycled blocks cost no page faults; values and dtype as torch's,
    broadcast included, whatever the dtypes."""
    if op == "sub" and "bool" in (first, second):
        pytest.skip("torch refuses to subtract bools")
    rng = np.random.default_rng(0)
    a, b = rng.integers(1, 5, (300, 256)).astype(first), rng.integers(1, 5, (300, 1)).astype(second)
    for pair in ((a, b), (b, a)):
        expected = _OPS[op](*(torch.tensor(x) for x in pair))
        actual = _OPS[op](*(gpucnn.tensor(x) for x in pair))
        assert str(actual.dtype) == str(expected.dtype).removeprefix("torch.")
        assert_close(actual.numpy().astype(np.float64), expected.numpy().astype(np.float64),
                     name=f"{first} {op} {second}")
        # division turns integer and bool operands into float32 first
        assert _memory.whole_block(actual.data) == (recycled or op == "div" and "float" not in first + second)


def test_tensor_copies_its_data():
    array = np.ones(3, dtype=np.float32)
    t = gpucnn.tensor(array)
    array[0] = 5
    assert t.numpy()[0] == 1


def test_attributes():
    t = gpucnn.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert t.shape == (2, 3) and t.ndim == 2 and t.numel() == 6 and t.size(1) == 3 and len(t) == 2
    assert t.device == gpucnn.device("cpu") and str(t.device) == "cpu"
    assert t.requires_grad and t.grad is None and t.is_leaf
    assert gpucnn.tensor([[2.5]]).item() == 2.5
    d = t.detach()
    assert not d.requires_grad and d.numpy() is t.numpy()
    assert t.to("cpu") is t
    assert t.to(np.float32).dtype == np.float32
    assert "requires_grad=True" in repr(t)


@pytest.mark.parametrize("bad, match", [
    ("text", "numeric"),
    ([1 + 2j], "complex"),
    (np.array([1 + 1j]), "complex"),
    ([[1, 2], [3]], "numeric"),
    (object(), "numeric"),
])
def test_bad_data(bad, match):
    with pytest.raises(TypeError, match=match):
        gpucnn.tensor(bad)


def test_bad_device_and_requires_grad():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        gpucnn.tensor([1.0], device="tpu")
    with pytest.raises(TypeError, match="device must be a str"):
        gpucnn.tensor([1.0], device=3)
    with pytest.raises(TypeError, match="floating-point"):
        gpucnn.tensor([1, 2], requires_grad=True)
    with pytest.raises(ValueError, match="item"):
        gpucnn.tensor([1.0, 2.0]).item()


def test_default_device_from_environment(monkeypatch):
    monkeypatch.setenv("GPUCNN_DEVICE", "cudasim")
    assert gpucnn.tensor([1.0]).device.name == "cudasim"
    monkeypatch.setenv("GPUCNN_DEVICE", "nowhere")
    with pytest.raises(ValueError, match="nowhere"):
        gpucnn.tensor([1.0])


# ----------------------------------------------------------------------------- autograd
def test_backward_errors():
    x = gpucnn.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="scalar"):
        y.backward()
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\)"):
        y.backward(np.ones(3))
    y.backward(gradient=np.ones(2))  # torch's name for it
    assert_close(x.grad, [2.0, 2.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        gpucnn.tensor([1.0]).sum().backward()


def test_gradients_accumulate_and_reused_inputs():
    x = gpucnn.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = x * x + x  # x used three times
    y.sum().backward()
    assert_close(x.grad, 2 * x.numpy() + 1)
    y2 = (x * 3).sum()
    y2.backward()
    assert_close(x.grad, 2 * x.numpy() + 1 + 3)


def test_gradients_summed_at_a_branch_go_to_recycled_memory(monkeypatch):
    """On the cpu the gradients that reach a node by two paths are summed into a recycled block of
    ops._memory (fresh megabytes cost a page fault a page), with the values of the sum."""
    from gpucnn import autograd

    sums, original = [], autograd._sum
    monkeypatch.setattr(autograd, "_sum", lambda a, b: sums.append(original(a, b)) or sums[-1])
    x = gpucnn.tensor(np.full((300, 256), 2.0, np.float32), requires_grad=True)
    h = x * 1.5
    (h * 2 + h * h).sum().backward()  # three gradients reach h: two sums
    assert len(sums) == 2 and all(_memory.whole_block(total) for total in sums)
    assert_close(x.grad, np.full((300, 256), 1.5 * (2 + 2 * 3.0)), atol=0)


@pytest.mark.parametrize("name, fn", [
    ("residual, the input first", lambda h: h + (h * 3).exp() * 0.1),
    ("residual, the input last", lambda h: (h * 3).exp() * 0.1 + h),
    ("times its own sum", lambda h: h * h.sum()),
    ("minus its own mean", lambda h: (h - h.mean()) * h),
    ("three paths of three lengths", lambda h: (h + (h * 2).exp()) * ((h - 1) * 0.5).sum() + h),
])
def test_gradients_through_paths_of_different_lengths(name, fn):
    """A tensor that reaches the output along paths of different lengths gets every path's gradient,
    whichever operand comes first: backward runs each op only after every op that consumed its output."""
    data = np.array([0.3, -1.2, 2.0, 0.7])
    x = gpucnn.tensor(data, requires_grad=True)
    fn(x * 2).sum().backward()
    x_t = torch.tensor(data, requires_grad=True)
    fn(x_t * 2).sum().backward()
    assert_close(x.grad, x_t.grad, name=name)


# Ops from two (3, 4) tensors to one, written once for gpucnn and torch alike.
_GRAPH_OPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 1),
    "times the other's sum": lambda a, b: a * b.sum(),
    "minus the other's row means": lambda a, b: a - b.mean(1, keepdim=True),
    "products": lambda a, b: (a @ b.transpose(0, 1)) @ b * 0.1,
    "rows taken twice": lambda a, b: a[[2, 0, 2]] + b,
    "exp": lambda a, b: (a * 0.3).exp(),
    "softmax": lambda a, b: a.softmax(1) if isinstance(a, torch.Tensor) else gpucnn.nn.functional.softmax(a, 1),
}


@pytest.mark.parametrize("seed", range(40))
def test_random_graphs_against_torch(seed):
    """Random graphs of the ops above, each op on any two earlier tensors, so that tensors feed later
    ops along paths of every length: the output and every leaf's gradient match torch's (float64)."""
    rng = np.random.default_rng(seed)
    leaves = [rng.standard_normal((3, 4)) for _ in range(3)]
    steps = int(rng.integers(3, 9))
    program = [(rng.choice(list(_GRAPH_OPS)), *rng.integers(0, 3 + step, size=2)) for step in range(steps)]
    weights = rng.standard_normal((3, 4))

    def run(tensor, make_leaf):
        nodes = [make_leaf(leaf) for leaf in leaves]
        for op, first, second in program:
            nodes.append(_GRAPH_OPS[op](nodes[first], nodes[second]))
        output = (nodes[-1] * tensor(weights)).sum() + nodes[-2].sum()
        output.backward()
        return output, nodes[:3]

    output, ours = run(gpucnn.tensor, lambda leaf: gpucnn.tensor(leaf, requires_grad=True))
    expected, theirs = run(torch.tensor, lambda leaf: torch.tensor(leaf, requires_grad=True))
    assert_close(output, expected, name=f"output of {program}")
    for index, (mine, torch_leaf) in enumerate(zip(ours, theirs)):
        if torch_leaf.grad is None:  # no path from this leaf to the output
            assert mine.grad is None, f"leaf {index} of {program}"
        else:
            assert_close(mine.grad, torch_leaf.grad, name=f"gradient of leaf {index} of {program}")


class _Returns(gpucnn.autograd.Function):
    """y = a + b, whose backward returns what ``make(grad)`` gives; it keeps what it returned."""

    def __init__(self, make):
        self.make = make

    def forward(self, a, b):
        return a + b

    def backward(self, grad):
        self.received, self.returned = grad, self.make(grad)
        return self.returned


@pytest.mark.parametrize("device", ["cpu", "cudasim"])
def test_leaf_gradients_share_no_memory(device):
    """A new array that a backward returns once becomes the leaf's .grad itself; the incoming
    gradient, a view, or an array returned twice is copied, so that writing into one .grad changes
    no other array."""
    makers = {
        "new, each once": lambda grad: (grad * 1, grad * 2),
        "the incoming gradient": lambda grad: (grad, grad * 2),
        "the incoming gradient to both": lambda grad: (grad, grad),
        "one new array to both": lambda grad: (grad * 2,) * 2,
        "views": lambda grad: (grad[::-1][::-1], (grad * 2)[:]),
    }
    for case, make in makers.items():
        a, b = (gpucnn.tensor(np.zeros(3, np.float32), device=device, requires_grad=True) for _ in range(2))
        upstream = gpucnn.tensor([1.0, 2.0, 3.0], device=device)
        function = _Returns(make)
        function.apply(a, b).backward(upstream)
        taken = case == "new, each once"
        assert (a.grad.data is function.returned[0] and b.grad.data is function.returned[1]) == taken, case
        others = [upstream.data, b.grad.data] + [array for array in function.returned if array is not a.grad.data]
        before = [array.copy() for array in others]
        a.grad.data[...] = -7
        for array, values in zip(others, before):
            assert np.array_equal(array, values), case
    x = gpucnn.tensor([1.0, 2.0], device=device, requires_grad=True)  # backward on a leaf: the caller's gradient
    given = gpucnn.tensor([3.0, 4.0], device=device)
    x.backward(given)
    x.grad.data[...] = 0
    assert given.numpy().tolist() == [3.0, 4.0]


def _block(values):
    """``values`` in a block of gpucnn.ops._memory (an array of at least its MIN_BYTES: a view of the block's)."""
    array = _memory.empty(values.shape, values.dtype)
    array[...] = values
    return array


@pytest.mark.parametrize("device", ["cpu", "cudasim"])
def test_leaf_gradients_in_recycled_blocks_share_no_memory(device):
    """The cpu ops return their large arrays as views of recycled blocks (ops._memory): one that spans
    its block, which no other gradient returned and not the incoming gradient shares, becomes the
    leaf's .grad itself; the others are copied."""
    size = _memory.MIN_BYTES // 4

    def halves(grad):
        both = _block(np.concatenate([grad, 2 * grad]))
        return both[:size], both[size:]

    makers = {
        "a block each": lambda grad: (_block(grad * 1), _block(grad * 2)),
        "one block to both": lambda grad: (_block(grad * 2),) * 2,
        "two views of one block": lambda grad: (lambda block: (block, block.reshape(-1)))(_block(grad * 2)),
        "halves of one block": halves,
        "a view of the incoming gradient's block": lambda grad: (grad.reshape(-1), grad * 2),
        "a view of an array held elsewhere": lambda grad: (held.reshape(-1), grad * 2),
    }
    held = np.ones(size, np.float32)
    for case, make in makers.items():
        a, b = (gpucnn.tensor(np.zeros(size, np.float32), device=device, requires_grad=True) for _ in range(2))
        upstream = _block(np.arange(size, dtype=np.float32))
        function = _Returns(make)
        function.apply(a, b).backward(upstream)
        assert function.received is upstream  # the backward was given the block itself
        taken = case == "a block each"
        assert (a.grad.data is function.returned[0] and b.grad.data is function.returned[1]) == taken, case
        others = [upstream, held, b.grad.data] + [array for array in function.returned if array is not a.grad.data]
        before = [array.copy() for array in others]
        a.grad.data[...] = -7
        for array, values in zip(others, before):
            assert np.array_equal(array, values), case


def test_a_conv2d_input_gradient_is_taken_without_a_copy():
    """conv2d's input gradient (an array of a recycled block) becomes the input's .grad as it is."""
    x = gpucnn.tensor(np.ones((4, 8, 48, 48), np.float32), requires_grad=True)
    w = gpucnn.tensor(np.ones((8, 8, 3, 3), np.float32))
    y = gpucnn.nn.functional.conv2d(x, w, padding=1)
    y.backward(np.ones(y.shape, np.float32))
    assert _memory.whole_block(x.grad.data)
    assert x.grad.numpy()[0, 0, 1:-1, 1:-1].tolist() == [[72.0] * 46] * 46  # 8 channels of 9 taps


def test_no_grad():
    x = gpucnn.tensor([1.0], requires_grad=True)
    with gpucnn.no_grad():
        y = x * 2
        assert not gpucnn.is_grad_enabled()
    assert gpucnn.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf


def test_no_grad_is_per_thread():
    """no_grad in one thread leaves another's graphs alone, as in PyTorch; a new thread records graphs."""
    import threading

    x = gpucnn.tensor([1.0], requires_grad=True)
    seen = []

    def other():
        seen.append((x * 2).requires_grad)
        with gpucnn.no_grad():
            seen.append((x * 2).requires_grad)
        seen.append(gpucnn.is_grad_enabled())

    with gpucnn.no_grad():
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        assert not (x * 2).requires_grad
    assert seen == [True, False, True]
    assert (x * 2).requires_grad


def test_grad_modes_as_torchs():
    """no_grad, enable_grad, inference_mode and set_grad_enabled, as blocks, as decorators (bare too), nested,
    recursive, through an exception, and set_grad_enabled as a plain call: each state step by step as
    torch's."""
    def trace(module):
        states = []

        def see():
            states.append(module.is_grad_enabled())

        @module.no_grad()
        def decorated(depth):
            see()
            if depth:
                with module.enable_grad():
                    see()
                    decorated(depth - 1)
                    see()
            see()

        @module.no_grad
        def bare():
            see()

        @module.set_grad_enabled(False)
        def switched_off():
            see()

        see()  # decorating switched nothing off
        decorated(2)
        with module.no_grad():
            decorated(1)  # its inner call starts with recording on, this one with it off
            see()
        bare()
        switched_off()
        see()
        with module.no_grad():
            see()
            with module.set_grad_enabled(True):
                see()
            see()
            with module.enable_grad():
                see()
            see()
        with module.inference_mode():
            see()
            with module.inference_mode(False):
                see()
        try:
            with module.no_grad():
                raise KeyError
        except KeyError:
            see()
        module.set_grad_enabled(False)
        see()
        module.set_grad_enabled(True)
        see()
        return states

    assert trace(gpucnn) == trace(torch)
    x = gpucnn.ones(2, requires_grad=True)
    with gpucnn.inference_mode():
        assert not (x * 2).requires_grad
    with pytest.raises(TypeError, match="set_grad_enabled: mode must be True or False, got 'no'"):
        gpucnn.set_grad_enabled("no")


def test_deep_graph_does_not_recurse():
    x = gpucnn.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(5000):
        y = y + 1.0
    y.sum().backward()
    assert x.grad.item() == 1.0


def test_int_and_bool_tensors_stay_out_of_the_graph():
    x = gpucnn.tensor([1.0, 2.0], requires_grad=True)
    mask = x > 1.5
    assert mask.dtype == np.bool_ and not mask.requires_grad
    (x * mask).sum().backward()
    assert_close(x.grad, [0.0, 1.0])


shapes = st.sampled_from([((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((1,), (5, 2)), ((2, 3), (2, 3)), ((), (2, 2)),
                          ((4, 1, 1), (1, 3, 2))])


@settings(max_examples=25, deadline=None)
@given(shapes=shapes, op=st.sampled_from(["add", "sub", "mul", "div"]), seed=st.integers(0, 2**16))
def test_broadcasting_binary_ops_against_torch(shapes, op, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shapes[0])
    b = rng.standard_normal(shapes[1]) + (3.0 if op == "div" else 0.0)
    fns = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y, "div": lambda x, y: x / y}
    check_op(fns[op], fns[op], a, b)


@pytest.mark.parametrize("device", gpucnn.devices())
@pytest.mark.parametrize("op, name", [(lambda x, y: x + y, "add"), (lambda x, y: x - y, "sub"),
                                      (lambda x, y: x * y, "mul"), (lambda x, y: x / y, "div")])
def test_binary_ops_name_the_shapes_that_do_not_broadcast(device, op, name):
    a, b = (gpucnn.tensor(np.ones(shape, np.float32), device=device) for shape in ((2, 3), (4,)))
    with pytest.raises(ValueError, match=rf"^{name}: shapes \(2, 3\) and \(4,\) do not broadcast together"):
        op(a, b)
    with pytest.raises(ValueError, match=rf"^{name}: shapes \(4,\) and \(2, 3\)"):
        op(b, a)


def test_scalar_and_array_operands():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((2, 3))
    check_op(lambda x: 2.0 - x * 3 + 1 / (x * x + 1.0), lambda x: 2.0 - x * 3 + 1 / (x * x + 1.0), a)
    check_op(lambda x: -(x**3) + x**0.5 * 0 + x**2, lambda x: -(x**3) + x**0.5 * 0 + x**2, np.abs(a) + 0.5)
    check_op(lambda x: (x.exp() + 1).log(), lambda x: (x.exp() + 1).log(), a)
    t = gpucnn.tensor(a.astype(np.float32))
    assert_close(np.ones((2, 3)) + t, a + 1, atol=1e-6)
    assert (t * 2).dtype == np.float32 and (t + 1).dtype == np.float32


_ELEMENTWISE = {
    "sigmoid": (lambda x: x.sigmoid(), lambda x: x.sigmoid()),
    "tanh": (lambda x: x.tanh(), lambda x: x.tanh()),
    "sqrt": (lambda x: (x * x + 0.5).sqrt(), lambda x: (x * x + 0.5).sqrt()),
    "abs": (lambda x: abs(x) * x.abs(), lambda x: abs(x) * x.abs()),
    "clamp": (lambda x: x.clamp(-0.5, 0.7) + x.clamp(min=0.2) + x.clip(max=-0.1),
              lambda x: x.clamp(-0.5, 0.7) + x.clamp(min=0.2) + x.clip(max=-0.1)),
}


@pytest.mark.parametrize("name", list(_ELEMENTWISE))
def test_elementwise_functions_against_torch(name):
    """Values and gradients against torch and central differences, on inputs away from the kinks."""
    a = np.random.default_rng(11).standard_normal((3, 5, 7)) * 2
    a[np.abs(a) < 0.05] = 0.3
    for bound in (-0.5, 0.7, 0.2, -0.1):
        a[np.abs(a - bound) < 0.01] = 1.1
    check_op(*_ELEMENTWISE[name], a)


def test_elementwise_functions_at_their_edges_as_torch():
    """Huge inputs (no overflow into NaN), exact kinks (abs at 0, clamp at its bounds: torch's gradients),
    NaN, integer input, and min above max."""
    values = np.array([-1e4, -100.0, -0.5, -0.0, 0.0, 0.5, 0.7, 100.0, 1e4, np.nan], dtype=np.float32)
    calls = [lambda m, x: m.sigmoid(x), lambda m, x: m.tanh(x), lambda m, x: m.abs(x),
             lambda m, x: m.clamp(x, -0.5, 0.7), lambda m, x: m.clamp(x, 0.7, -0.5), lambda m, x: m.sqrt(m.abs(x))]
    for device in gpucnn.devices():
        for call in calls:
            x, t = gpucnn.tensor(values, device=device, requires_grad=True), torch.tensor(values, requires_grad=True)
            with np.errstate(divide="ignore", invalid="ignore"):
                ours, theirs = call(gpucnn, x), call(torch, t)
                ours.backward(gpucnn.ones_like(ours))
            theirs.backward(torch.ones_like(theirs))
            assert_close(ours, theirs.detach(), atol=1e-7, rtol=1e-6)
            assert_close(x.grad, t.grad, atol=1e-7, rtol=1e-6)
    for name in ("sigmoid", "tanh", "sqrt"):
        ours, theirs = getattr(gpucnn, name)(gpucnn.tensor([1, 4])), getattr(torch, name)(torch.tensor([1, 4]))
        assert ours.dtype == np.float32 and theirs.dtype == torch.float32
        assert_close(ours, theirs)
    with np.errstate(over="raise", invalid="raise"):  # a large negative value takes no exp of a large positive one
        assert gpucnn.sigmoid(gpucnn.tensor([-1e4, 1e4], dtype=gpucnn.float32)).tolist() == [0.0, 1.0]
    assert abs(gpucnn.tensor([-3, 2])).tolist() == [3, 2]
    assert gpucnn.tensor([-3, 2, 9]).clamp(0, 5).tolist() == [0, 2, 5]
    assert_close(gpucnn.nn.functional.sigmoid([0.0, 1.0]), torch.sigmoid(torch.tensor([0.0, 1.0])))
    with pytest.raises(ValueError, match="clamp: at least one of min and max must be a number"):
        gpucnn.ones(2).clamp()
    with pytest.raises(TypeError, match="clamp: max=2.5 is not an integer, and the tensor's dtype is int64"):
        gpucnn.tensor([1, 2]).clamp(0, 2.5)
    with pytest.raises(TypeError, match="clamp: min must be a real number or None, got Tensor"):
        gpucnn.ones(2).clamp(gpucnn.zeros(2))


@pytest.mark.parametrize("a_shape, b_shape", [((3, 4), (4, 5)), ((4,), (4, 2)), ((3, 4), (4,)), ((4,), (4,)),
                                              ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 2))])
def test_matmul_against_torch(a_shape, b_shape):
    rng = np.random.default_rng(2)
    check_op(lambda a, b: a @ b, lambda a, b: a @ b, rng.standard_normal(a_shape), rng.standard_normal(b_shape))


def test_matmul_shape_error():
    with pytest.raises(ValueError, match=r"\(3, 4\) and \(5, 2\)"):
        gpucnn.tensor(np.ones((3, 4))) @ gpucnn.tensor(np.ones((5, 2)))


@pytest.mark.parametrize("dim, keepdim", [(None, False), (0, False), (1, True), ((0, 2), False), (-1, True)])
def test_reductions_against_torch(dim, keepdim):
    a = np.random.default_rng(3).standard_normal((2, 3, 4))
    check_op(lambda x: x.sum(dim, keepdim), lambda x: x.sum(dim=dim, keepdim=keepdim) if dim is not None else x.sum(), a)
    check_op(lambda x: x.mean(dim, keepdim), lambda x: x.mean(dim=dim, keepdim=keepdim) if dim is not None else x.mean(), a)


def test_numpy_style_reduction_names():
    x = gpucnn.tensor(np.ones((2, 3)))
    assert x.sum(axis=1, keepdims=True).shape == (2, 1)
    assert x.mean(axis=0).shape == (3,)
    with pytest.raises(ValueError, match="out of range"):
        x.sum(axis=2)
    with pytest.raises(TypeError, match="dim must be"):
        x.sum(dim=1.5)
    with pytest.raises(ValueError, match="repeats"):
        x.mean(dim=(1, -1))


def test_shape_ops_against_torch():
    a = np.random.default_rng(4).standard_normal((2, 3, 4))
    check_op(lambda x: x.reshape(4, 6) * 2, lambda x: x.reshape(4, 6) * 2, a)
    check_op(lambda x: x.flatten(1), lambda x: x.flatten(1), a)
    check_op(lambda x: x.transpose(0, 2) @ x.transpose(0, 2).transpose(1, 2),
             lambda x: x.transpose(0, 2) @ x.transpose(0, 2).transpose(1, 2), a)
    check_op(lambda x: x.permute(2, 0, 1) * 1.5, lambda x: x.permute(2, 0, 1) * 1.5, a)
    check_op(lambda x: x[:, 1:, ::2] * 2, lambda x: x[:, 1:, ::2] * 2, a)
    check_op(lambda x: x[0, [0, 0, 2]], lambda x: x[0, [0, 0, 2]], a)


_TORCH_INDICES = [
    (0, slice(None), [1, 3, 1]),  # NumPy: (3, 4, 6), the list's axis first; PyTorch: (4, 3, 6)
    (slice(None), 1, slice(None), [2, 0]),
    (1, slice(1, None), [0, 0], slice(None)),
    (slice(None), [2, 0], -1, [1, 1]),  # lists apart only across an integer: together in PyTorch
    (Ellipsis, 2, [0, 4]),
    (None, 1, slice(None), [3]),
    ([True, False, True], 0, slice(None), [1, 2]),  # a mask takes one axis here
    (True, 0, slice(None), [1, 2]),  # True, as None, adds one
    (0, [[0, 1], [2, 2]], slice(None), 3),
]


@pytest.mark.parametrize("index", _TORCH_INDICES)
def test_indexing_with_integers_and_lists_as_pytorch(index):
    """PyTorch's integers are basic indices; NumPy's integers and lists together are advanced ones,
    whose axes NumPy moves to the front when a slice parts them."""
    a = np.random.default_rng(5).standard_normal((3, 4, 5, 6))
    check_op(lambda x: x[index] * 2, lambda x: x[index] * 2, a)


def test_shape_op_errors():
    x = gpucnn.tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"cannot reshape a tensor of shape \(2, 3\)"):
        x.reshape(4, 2)
    with pytest.raises(ValueError, match="out of range"):
        x.transpose(0, 2)
    with pytest.raises(ValueError, match="not a permutation"):
        x.permute(0, 0)


def test_nan_and_inf_propagate():
    x = gpucnn.tensor([np.nan, np.inf, 1.0], requires_grad=True)
    y = (x * 2).sum()
    y.backward()
    assert np.isnan(y.item())
    assert_close(x.grad, [2.0, 2.0, 2.0])


def test_float64_end_to_end():
    x = gpucnn.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward()
    assert y.dtype == np.float64 and x.grad.dtype == np.float64


def test_mixed_dtype_gradient_keeps_input_dtype():
    a = gpucnn.tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    b = gpucnn.tensor(np.ones(2, dtype=np.float64), requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64


def test_argmax_matches_torch():
    a = np.random.default_rng(5).standard_normal((3, 5)).astype(np.float32)
    assert gpucnn.tensor(a).argmax(dim=1).tolist() == torch.tensor(a).argmax(dim=1).tolist()
    assert gpucnn.tensor(a).argmax().item() == torch.tensor(a).argmax().item()


_COMPARISONS = {"eq": lambda x, y: x == y, "ne": lambda x, y: x != y, "lt": lambda x, y: x < y,
                "le": lambda x, y: x <= y, "gt": lambda x, y: x > y, "ge": lambda x, y: x >= y}


@pytest.mark.parametrize("device", gpucnn.devices())
@pytest.mark.parametrize("op", list(_COMPARISONS))
def test_comparisons_elementwise_as_pytorch(device, op):
    """Every comparison is elementwise, a bool tensor as torch's: between tensors of one dtype or of two
    (float32 and int64), broadcast, with NaN (unequal to itself), against Python numbers on either side
    and against a NumPy array on the left."""
    compare = _COMPARISONS[op]
    a = np.array([[1.0, np.nan, -0.0, 2.5, 3.0]], dtype=np.float32)
    b = np.array([[1.0], [np.nan], [0.0], [3.0]], dtype=np.float32)
    c = np.array([1, 0, 0, 2, 3], dtype=np.int64)
    ours = {name: gpucnn.tensor(array, device=device) for name, array in (("a", a), ("b", b), ("c", c))}
    theirs = {name: torch.tensor(array) for name, array in (("a", a), ("b", b), ("c", c))}
    for left, right in (("a", "b"), ("b", "a"), ("a", "c"), ("c", "a"), ("c", "c"), ("a", 3), (3, "a"), ("c", 2.5)):
        actual = compare(ours.get(left, left), ours.get(right, right))
        expected = compare(theirs.get(left, left), theirs.get(right, right))
        assert actual.dtype == np.bool_ and actual.device == ours["a"].device, (left, right, actual)
        np.testing.assert_array_equal(actual.numpy(), expected.numpy(), err_msg=f"{left} {op} {right}")
    actual = compare(np.float32(2.5) * np.ones(5, np.float32), ours["a"])
    assert isinstance(actual, gpucnn.Tensor), actual
    np.testing.assert_array_equal(actual.numpy(), compare(torch.full((5,), 2.5), theirs["a"]).numpy())


def test_accuracy_idiom_and_one_element_conversions():
    """(logits.argmax(1) == labels).float().mean() gives the accuracy; bool(), float() and int() take a
    one-element tensor's value, and bool() of more elements is an error that names the shape, never
    True. Tensors stay hashable by identity."""
    logits = gpucnn.tensor([[0.1, 2.0], [3.0, -1.0], [0.0, 0.5]])
    labels = gpucnn.tensor([1, 1, 1])
    assert (logits.argmax(1) == labels).float().mean().item() == pytest.approx(2 / 3)
    assert (logits.argmax(1) != labels).sum().item() == 1
    loss = gpucnn.tensor(0.25)
    assert bool(loss < 1) and not bool(loss > 1) and not gpucnn.tensor([0.0])
    assert float(loss) == 0.25 and int(gpucnn.tensor([[7]])) == 7 and float(gpucnn.tensor(3)) == 3.0
    with pytest.raises(ValueError, match=r"^bool\(\) of a tensor of shape \(3,\) is ambiguous"):
        bool(labels == 1)
    with pytest.raises(ValueError, match=r"one element, got shape \(0,\)"):
        float(gpucnn.tensor(np.zeros(0, np.float32)))
    assert {labels: "labels"}[labels] == "labels" and labels in {labels}
    assert (labels == None) is False and (labels != None) is True  # noqa: E711  as torch's


_IN_PLACE = {"+=": lambda x, y: x.__iadd__(y), "-=": lambda x, y: x.__isub__(y), "*=": lambda x, y: x.__imul__(y),
             "/=": lambda x, y: x.__itruediv__(y)}


@pytest.mark.parametrize("device", gpucnn.devices())
@pytest.mark.parametrize("op", list(_IN_PLACE))
def test_in_place_arithmetic_as_pytorch(device, op):
    """x op= y changes x's own array, as torch's: values (a broadcast tensor, an integer tensor, a Python
    number), the same object, seen by every alias and view of x but not by its copy on another device
    (cpu and cudasim both hold NumPy arrays), and x's dtype kept; a result x's dtype cannot hold and an
    operand that does not broadcast to x's shape are errors naming them."""
    rng = np.random.default_rng(3)
    x_data = rng.standard_normal((3, 4)).astype(np.float32)
    for operand in (rng.standard_normal((1, 4)).astype(np.float32) + 2, np.array([1, 2, 3, 4]), 2.5, 3):
        ours, theirs = gpucnn.tensor(x_data, device=device), torch.tensor(x_data)
        alias, view, moved = ours, ours.reshape(12), ours.to("cudasim" if device == "cpu" else "cpu")
        wrap = (lambda array, make: make(array)) if isinstance(operand, np.ndarray) else (lambda value, make: value)
        result = _IN_PLACE[op](ours, wrap(operand, lambda a: gpucnn.tensor(a, device=device)))
        _IN_PLACE[op](theirs, wrap(operand, torch.tensor))
        assert result is ours and result.dtype == np.float32, (operand, result)
        assert_close(ours.numpy(), theirs.numpy(), atol=1e-6, name=f"{op} {operand!r}")
        np.testing.assert_array_equal(alias.numpy(), ours.numpy())
        np.testing.assert_array_equal(view.numpy(), ours.numpy().reshape(12))
        np.testing.assert_array_equal(moved.numpy(), x_data)  # another device's copy
    counts = gpucnn.tensor(np.array([1, 2, 3]), device=device)
    with pytest.raises(TypeError, match=rf"^{re.escape(op)}: int64 . float gives a result that a tensor of dtype "
                                        "int64 cannot hold in place"):
        _IN_PLACE[op](counts, 1.5)
    with pytest.raises(ValueError, match=rf"^{re.escape(op)}: an operand of shape \(2, 3\) does not broadcast to "
                                         r"the tensor's shape \(3,\)"):
        _IN_PLACE[op](gpucnn.tensor(np.ones(3, np.float32), device=device), np.ones((2, 3), np.float32))


def test_in_place_updates_of_parameters_under_no_grad_as_pytorch():
    """The hand-written SGD step ``p -= lr * p.grad`` under no_grad changes the model's parameters, as in
    PyTorch (it had bound the name p to a new tensor and left the model as it was); outside no_grad it
    is an error on a parameter, not a silent no-op."""
    rng = np.random.default_rng(4)
    x, target = rng.standard_normal((5, 3)).astype(np.float32), rng.standard_normal((5, 2)).astype(np.float32)
    ours, theirs = gpucnn.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.numpy()))
        theirs.bias.copy_(torch.tensor(ours.bias.numpy()))
    for _ in range(3):
        for model, make, no_grad in ((ours, gpucnn.tensor, gpucnn.no_grad), (theirs, torch.tensor, torch.no_grad)):
            loss = ((model(make(x)) - make(target)) ** 2).mean()
            for p in model.parameters():
                p.grad = None
            loss.backward()
            with no_grad():
                for p in model.parameters():
                    p -= 0.1 * p.grad
    assert_close(ours.weight.numpy(), theirs.weight.detach().numpy(), atol=1e-6, name="weight")
    assert_close(ours.bias.numpy(), theirs.bias.detach().numpy(), atol=1e-6, name="bias")
    with pytest.raises(RuntimeError, match=r"^-= on a leaf tensor that requires grad \(shape \(2, 3\)\) cannot be "
                                           "recorded: change parameters under gpucnn.no_grad()"):
        weight = ours.weight
        weight -= 1


def test_in_place_arithmetic_that_autograd_records_makes_a_new_tensor():
    """``out += identity`` on a tensor in the graph is ``out = out + identity``: recorded, its gradients
    as torch's, and the tensor that the name held before unchanged (in torch, changed in place)."""
    rng = np.random.default_rng(5)
    x_data, w_data = rng.standard_normal((2, 3)), rng.standard_normal((3, 3))
    grads = []
    for make in (lambda a: gpucnn.tensor(a, requires_grad=True), lambda a: torch.tensor(a, requires_grad=True)):
        x, w = make(x_data), make(w_data)
        out = before = x @ w
        out += x
        out *= 2
        (out * out).sum().backward()
        grads.append((x.grad.numpy(), w.grad.numpy()))
    assert out is before and isinstance(out, torch.Tensor)
    x = gpucnn.tensor(x_data, requires_grad=True)
    out = before = x @ gpucnn.tensor(w_data)
    out += x
    assert out is not before
    assert_close(before.numpy(), x_data @ w_data, atol=1e-12, name="x @ w")
    for ours, theirs, name in zip(grads[0], grads[1], ("x.grad", "w.grad")):
        assert_close(ours, theirs, atol=1e-12, name=name)


@pytest.mark.parametrize("device", gpucnn.devices())
def test_in_place_methods_as_pytorch(device):
    """add_ (with alpha), sub_, mul_, div_, fill_, zero_ and copy_ change the tensor's own array and return it,
    with torch's values, seen through a view; copy_ takes a tensor from another device and broadcasts."""
    rng = np.random.default_rng(8)
    x_data, y_data = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((1, 4)).astype(np.float32)
    steps = [lambda t, make: t.add_(make(y_data), alpha=0.5), lambda t, make: t.sub_(2.0, alpha=3),
             lambda t, make: t.sub_(make(y_data)), lambda t, make: t.mul_(make(y_data)), lambda t, make: t.div_(4),
             lambda t, make: t.add_(1), lambda t, make: t[1].fill_(make(np.float32(7.5))),
             lambda t, make: t[:, 2].zero_(), lambda t, make: t[2].copy_(make(y_data[0] * 9)),
             lambda t, make: t[:, :2].copy_(make(np.float32([[1.5], [2.5], [3.5]]))),
             lambda t, make: t.add_(make([[1.0, 2.0, 3.0, 4.0]]), alpha=-2)]
    ours, theirs = gpucnn.tensor(x_data, device=device), torch.tensor(x_data)
    view = ours.reshape(12)
    for step in steps:
        assert step(ours, lambda a: gpucnn.tensor(a, device=device)) is not None
        step(theirs, torch.tensor)
        assert_close(ours.numpy(), theirs.numpy(), atol=1e-6)
    assert ours.add_(1) is ours and ours.zero_() is ours
    np.testing.assert_array_equal(view.numpy(), np.zeros(12))
    ours.copy_(gpucnn.tensor(y_data, device="cudasim" if device == "cpu" else "cpu"))
    np.testing.assert_array_equal(ours.numpy(), np.broadcast_to(y_data, (3, 4)))
    counts = gpucnn.tensor(np.array([1, 2, 3]), device=device)
    np.testing.assert_array_equal(counts.add_(2, alpha=3).numpy(), [7, 8, 9])
    np.testing.assert_array_equal(counts.copy_(gpucnn.tensor([1.7, -2.2, 3.9])).numpy(), [1, -2, 3])  # as torch


def test_in_place_methods_refuse_what_autograd_records():
    """Where autograd would record it, a method's change is an error (its result, which the caller may drop, is
    not where torch leaves it: in the tensor itself), as are fill_ with a non-scalar and copy_ of a wrong shape."""
    leaf = gpucnn.zeros(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"^add_ on a leaf tensor that requires grad \(shape \(2, 3\)\)"):
        leaf.add_(1)
    made = leaf * 2
    for call, message in ((lambda: made.mul_(2), r"^mul_ on a tensor that autograd records \(shape \(2, 3\)\) is "
                                                 "not supported: write x = x \\* ... for a new tensor"),
                          (lambda: made.zero_(), r"^zero_ \(shape \(2, 3\)\) cannot be recorded for backward"),
                          (lambda: gpucnn.zeros(3).copy_(leaf[0]), r"^copy_ \(shape \(3,\)\) cannot be recorded")):
        with pytest.raises(RuntimeError, match=message):
            call()
    with gpucnn.no_grad():
        assert made.mul_(2) is made and leaf.sub_(1) is leaf and gpucnn.zeros(3).copy_(leaf[0]).tolist() == [-1] * 3
    with pytest.raises(ValueError, match=r"^fill_: value must be a number or a 0-d tensor, got a tensor of shape "
                                         r"\(2,\)"):
        gpucnn.zeros(2).fill_(gpucnn.ones(2))
    with pytest.raises(ValueError, match=r"^assigning a value of shape \(4,\) into a tensor of shape \(3,\)"):
        gpucnn.zeros(3).copy_(gpucnn.ones(4))
    with pytest.raises(TypeError, match=r"^div_: int64 / int gives a result that a tensor of dtype int64 cannot"):
        gpucnn.tensor([1, 2]).div_(2)


def test_matrix_transpose_contiguous_type_as_and_pow():
    x = gpucnn.tensor(np.arange(6.0, dtype=np.float32).reshape(2, 3), requires_grad=True)
    np.testing.assert_array_equal(x.t().numpy(), x.numpy().T)
    assert gpucnn.tensor([1.0, 2.0]).t().shape == (2,)
    with pytest.raises(ValueError, match=r"t\(\) takes a tensor of at most 2 dimensions, got shape \(1, 2, 3\)"):
        x.reshape(1, 2, 3).t()
    assert x.contiguous() is x
    transposed = x.t().contiguous()
    assert transposed.data.flags.c_contiguous and transposed is not x
    (transposed * gpucnn.tensor(np.arange(6.0, dtype=np.float32).reshape(3, 2))).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.arange(6.0).reshape(3, 2).T)
    counts = x.type_as(gpucnn.tensor([1]))  # an integer result of a tensor that requires grad: cut from the graph
    assert (counts.dtype, counts.requires_grad, counts.is_leaf) == (np.int64, False, True)
    assert x.long().tolist() == [[0, 1, 2], [3, 4, 5]] and not x.long().requires_grad
    assert x.to(gpucnn.float64).requires_grad
    np.testing.assert_array_equal(x.pow(2).numpy(), x.numpy() ** 2)


@pytest.mark.parametrize("device", gpucnn.devices())
def test_backward_refuses_values_changed_in_place_after_the_forward(device):
    """A backward that reads a value its forward saw fails where it changed in place since, as torch's,
    whether through the tensor, a view of it, or an optimizer's step; a change that no backward reads
    (an addition's operand) and a change after backward are fine."""
    rng = np.random.default_rng(6)

    def make(shape, requires_grad=False):
        return gpucnn.tensor(rng.standard_normal(shape).astype(np.float32), device=device, requires_grad=requires_grad)

    layer = gpucnn.nn.Conv2d(2, 3, 3).to(device)
    x = make((1, 2, 5, 5))
    loss = layer(x).sum()
    x += 1
    with pytest.raises(RuntimeError, match=r"^Conv2d\.backward needs its input 1 \(shape \(1, 2, 5, 5\)\) as its "
                                           "forward saw it, but it was changed in place after the forward"):
        loss.backward()

    x = make((1, 2, 5, 5))
    loss = layer(x).sum()
    flat = x.reshape(50)
    flat *= 2
    with pytest.raises(RuntimeError, match=r"^Conv2d\.backward needs its input 1"):
        loss.backward()

    optimizer = gpucnn.optim.SGD(layer.parameters(), lr=0.1)
    loss = layer(make((1, 2, 5, 5))).sum()
    loss.backward()
    loss = layer(make((1, 2, 5, 5))).sum()
    optimizer.step()  # the weights change before this loss's backward
    with pytest.raises(RuntimeError, match=r"^Conv2d\.backward needs its input 2 \(shape \(3, 2, 3, 3\)\)"):
        loss.backward()

    for op, name in ((gpucnn.nn.functional.relu, "ReLU"), (lambda t: t.exp(), "Exp"),
                     (lambda t: gpucnn.nn.functional.softmax(t, dim=1), "Softmax")):
        y = op(make((2, 3), requires_grad=True))
        with gpucnn.no_grad():
            y += 1
        with pytest.raises(RuntimeError, match=rf"^{name}\.backward needs its output as its forward made it"):
            (y * y).sum().backward()

    a, b = make((2, 3), requires_grad=True), make((2, 3))
    total = (a + b).sum()
    b -= 1
    total.backward()
    assert_close(a.grad.numpy(), np.ones((2, 3)), atol=0, name="a.grad")
    x = make((1, 2, 5, 5))
    layer(x).sum().backward()
    x += 1


def test_numpy_conversion_and_formatting_as_pytorch():
    """numpy.asarray(tensor) gives its values (the array itself on the cpu; numpy.array copies), not an
    array of tensors, so lists of 0-d tensors convert too; a 0-d tensor formats as its value."""
    t = gpucnn.tensor([[1.0, 2.0], [3.0, 4.0]])
    as_array = np.asarray(t)
    assert as_array.dtype == np.float32 and np.shares_memory(as_array, t.data)
    assert not np.shares_memory(np.array(t), t.data)
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    np.testing.assert_array_equal(np.asarray(gpucnn.tensor([1, 2], device="cudasim")), [1, 2])
    losses = [gpucnn.tensor(1.5), gpucnn.tensor(0.25)]
    np.testing.assert_array_equal(np.array(losses), [1.5, 0.25])
    np.testing.assert_array_equal(gpucnn.tensor(losses).numpy(), [1.5, 0.25])
    assert f"{losses[1]:.3f}" == f"{torch.tensor(0.25):.3f}" == "0.250"
    with pytest.raises(TypeError, match="unsupported format string"):
        f"{t:.3f}"


@pytest.mark.parametrize("device", gpucnn.devices())
def test_deepcopy_and_pickle_of_models_and_tensors(device):
    """copy.deepcopy(model) (keeping the best model of a run) and pickle copy the parameters' values,
    requires_grad and gradients into arrays of their own on the same device, a parameter shared by two
    layers stays one; training the copy leaves the original alone. A tensor an op made is refused, as
    by torch."""
    import copy
    import pickle

    shared = gpucnn.nn.Linear(3, 3)
    model = gpucnn.nn.Sequential(gpucnn.nn.Linear(2, 3), shared, shared, gpucnn.nn.BatchNorm2d(3)).to(device)
    model[1].bias.requires_grad_(False)
    loss = model[2](model[0](gpucnn.tensor(np.ones((4, 2), np.float32), device=device))).sum()
    loss.backward()
    original = {name: p.numpy().copy() for name, p in model.state_dict().items()}
    for copied in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert copied[1] is copied[2] and copied[1] is not model[1]
        for (name, ours), theirs in zip(model.named_parameters(), copied.parameters()):
            assert type(theirs) is type(ours) and theirs.device == ours.device, name
            assert theirs.requires_grad == ours.requires_grad and not np.shares_memory(theirs.numpy(), ours.numpy())
            np.testing.assert_array_equal(theirs.numpy(), ours.numpy(), err_msg=name)
            if ours.grad is None:
                assert theirs.grad is None, name
            else:
                np.testing.assert_array_equal(theirs.grad.numpy(), ours.grad.numpy(), err_msg=name)
        with gpucnn.no_grad():
            for p in copied.parameters():
                p -= 1
    for name, p in model.state_dict().items():
        np.testing.assert_array_equal(p.numpy(), original[name], err_msg=name)
    with pytest.raises(RuntimeError, match=r"deepcopy of a tensor that an op made \(shape \(\)\)"):
        copy.deepcopy(loss)


def test_max_min_squeeze_unsqueeze_and_clone_against_torch():
    """The Tensor methods of PyTorch's scripts: max/min of all values or along a dim (the values, their
    int64 indices), unsqueeze, squeeze and clone, their values and gradients as torch's."""
    a = np.random.default_rng(8).standard_normal((3, 1, 4))
    for op in (lambda x: x.max() * 2, lambda x: x.min() * 2, lambda x: x.max(2).values * x.min(dim=0).values,
               lambda x: x.max(dim=-1, keepdim=True)[0] * x, lambda x: x.min(2, True).values.squeeze(2),
               lambda x: x.unsqueeze(0).unsqueeze(-1) * 2, lambda x: x.squeeze() * 2, lambda x: x.squeeze(1) * 2,
               lambda x: x.squeeze(0) * 2, lambda x: x.clone() * x):
        check_op(op, op, a)
    for device in gpucnn.devices():
        x = gpucnn.tensor(a, device=device)
        for dim, keepdim in ((0, False), (2, True), (-1, False)):
            for kind in ("max", "min"):
                ours, theirs = getattr(x, kind)(dim, keepdim), getattr(torch.tensor(a), kind)(dim, keepdim)
                assert ours.indices.dtype == np.int64 and ours.indices.device == x.device
                np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
                _, indices = ours
                np.testing.assert_array_equal(indices.numpy(), theirs[1].numpy())


def test_max_min_ties_nan_and_errors_as_torch():
    """Along a dim the first extreme of a row takes the gradient, over every value the equal extremes share
    it; NaN is the extreme of its row (its first NaN), as in torch. A dim that is not an int, and an
    empty reduction, are errors."""
    data = np.array([[1.0, 5.0, 5.0, 2.0], [np.nan, 2.0, np.nan, 0.0], [0.0, 0.0, 3.0, 3.0]], np.float32)
    for device in gpucnn.devices():
        grads = []
        for make in (lambda: gpucnn.tensor(data, device=device, requires_grad=True),
                     lambda: torch.tensor(data, requires_grad=True)):
            x = make()
            total = x.max(1).values * 1 + x.min(1).values * 10
            total = (total[0] + total[2]) + x[2].max() * 100 + x[0].min() * 1000 + x.max() * 0
            total.backward()
            values, indices = x.max(1)
            grads.append((x.grad.numpy(), indices.numpy(), values.detach().numpy(), x.min().detach().numpy()))
        for ours, theirs, name in zip(grads[0], grads[1], ("grad", "indices", "values", "min")):
            np.testing.assert_array_equal(ours, theirs, err_msg=f"{device} {name}")
        for kind in ("max", "min"):  # over every value: the NaNs share the gradient
            x = gpucnn.tensor(data, device=device, requires_grad=True)
            getattr(x, kind)().backward()
            expected = torch.tensor(data, requires_grad=True)
            getattr(expected, kind)().backward()
            np.testing.assert_array_equal(x.grad.numpy(), expected.grad.numpy(), err_msg=f"{device} {kind}()")
    x = gpucnn.tensor(np.zeros((0, 3), np.float32))
    assert x.max(1).values.shape == (0,) and x.min(1).indices.shape == (0,)
    with pytest.raises(ValueError, match=r"^max of an empty tensor \(shape \(0, 3\)\) has no value"):
        x.max()
    with pytest.raises(ValueError, match=r"^min along dim 0 of a tensor of shape \(0, 3\): that dimension is empty"):
        x.min(0)
    with pytest.raises(TypeError, match=r"^max: dim must be an int"):
        x.max(x)
    with pytest.raises(ValueError, match=r"^unsqueeze: dim 3 is out of range for a tensor with 2 dimensions \(from "
                                         r"-3 to 2\)"):
        gpucnn.tensor(np.ones((1, 2))).unsqueeze(3)
    assert gpucnn.tensor(np.ones((1, 2))).unsqueeze(-3).shape == torch.ones((1, 2)).unsqueeze(-3).shape == (1, 1, 2)


@pytest.mark.parametrize("device", gpucnn.devices())
@pytest.mark.parametrize("index", _TORCH_INDICES + [(slice(None), 1), ([0, 2],), (Ellipsis, [3, 0])])
def test_item_assignment_as_pytorch(device, index):
    """x[index] = value writes x's own array where torch's would, for each of torch's indexing rules; a
    value that broadcasts, a Python number, a mask, and a float into an integer tensor (truncated, as
    torch converts it) too."""
    rng = np.random.default_rng(9)
    a = rng.standard_normal((3, 4, 5, 6)).astype(np.float32)
    ours, theirs = gpucnn.tensor(a, device=device), torch.tensor(a)
    value = rng.standard_normal(theirs[index].shape).astype(np.float32)
    ours[index] = gpucnn.tensor(value, device=device)
    theirs[index] = torch.tensor(value)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    ours[index] = 2.5
    theirs[index] = 2.5
    ours[ours > 1] = value.reshape(-1)[:1]
    theirs[theirs > 1] = torch.tensor(value.reshape(-1)[:1])
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    counts, counts_t = gpucnn.tensor(np.arange(6), device=device), torch.arange(6)
    counts[1:3] = gpucnn.tensor([2.7, -1.7], device=device)
    counts_t[1:3] = torch.tensor([2.7, -1.7])
    assert counts.dtype == np.int64 and counts.numpy().tolist() == counts_t.tolist()


def test_item_assignment_and_autograd():
    """Assignment into a tensor that requires grad, or of a value that does, is an error where autograd
    records (under no_grad it writes); a backward that needs the values from before fails; a value on
    another device and one that does not broadcast are errors naming them."""
    weight = gpucnn.nn.Parameter(gpucnn.tensor(np.ones((2, 3), np.float32)))
    with pytest.raises(RuntimeError, match=r"^assigning into a tensor \(shape \(2, 3\)\) cannot be recorded"):
        weight[0] = 0.0
    with pytest.raises(RuntimeError, match="cannot be recorded"):
        gpucnn.tensor(np.ones(3))[0] = weight[0, 0]
    with gpucnn.no_grad():
        weight[0, 1:] = 0.0
    np.testing.assert_array_equal(weight.numpy(), [[1, 0, 0], [1, 1, 1]])
    x = gpucnn.tensor(np.ones((4, 3), np.float32))
    loss = (x @ weight.T).sum()
    x[0] = 2.0
    with pytest.raises(RuntimeError, match=r"^MatMul\.backward needs its input 1 \(shape \(4, 3\)\)"):
        loss.backward()
    with pytest.raises(RuntimeError, match="^assigning a tensor on cudasim into a tensor on cpu"):
        x[0] = gpucnn.tensor(np.ones(3, np.float32), device="cudasim")
    with pytest.raises(ValueError, match=r"^assigning a value of shape \(2,\) into a tensor of shape \(4, 3\)"):
        x[1:] = np.ones(2)


def test_cat_and_stack_against_torch():
    """gpucnn.cat and gpucnn.stack as torch's: values and gradients along every dim (a U-Net's skip joins
    channels), an integer tensor among float ones taking their dtype; a shape that differs off the dim,
    a non-tensor and an empty list are errors naming them."""
    rng = np.random.default_rng(10)
    a, b, c = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 1, 4)), rng.standard_normal((2, 2, 4))
    ours = gpucnn.cat([gpucnn.tensor([[1, 2]]), gpucnn.tensor([[0.5, 1.5]])])
    theirs = torch.cat([torch.tensor([[1, 2]]), torch.tensor([[0.5, 1.5]])])
    assert ours.dtype == np.float32 and theirs.dtype == torch.float32
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    check_op(lambda x, y, z: gpucnn.cat([x, y, z], dim=1) * gpucnn.cat([z, x, y], dim=-2),
             lambda x, y, z: torch.cat([x, y, z], dim=1) * torch.cat([z, x, y], dim=-2), a, b, c)
    check_op(lambda x, y: gpucnn.cat((x, x * 2, y), 0), lambda x, y: torch.cat((x, x * 2, y), 0), a, a[:1])
    for dim in (0, 2, -1, 3):
        check_op(lambda x, y: gpucnn.stack([x, y, x], dim=dim), lambda x, y: torch.stack([x, y, x], dim=dim), a, a + 1)
    x = gpucnn.tensor(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"^cat: tensor 1 has shape \(2, 4\), tensor 0 \(2, 3\): they must match "
                                         "but along dim 0"):
        gpucnn.cat([x, gpucnn.tensor(np.ones((2, 4), np.float32))])
    with pytest.raises(TypeError, match="^cat: element 1 is a float, not a Tensor"):
        gpucnn.cat([x, 1.5], dim=1)
    with pytest.raises(TypeError, match="^stack takes a non-empty list or tuple of tensors, got an empty list"):
        gpucnn.stack([])
    with pytest.raises(ValueError, match=r"^stack: the tensors must have one shape, got \[\(2, 3\), \(3,\)\]"):
        gpucnn.stack([x, gpucnn.tensor(np.ones(3, np.float32))])
    with pytest.raises(RuntimeError, match="expected all tensors on one device"):
        gpucnn.cat([x, gpucnn.tensor(np.ones((2, 3), np.float32), device="cudasim")])


def test_setting_requires_grad_as_pytorch():
    """requires_grad set on a tensor is checked as at creation: an integer tensor refuses True (its
    gradient would be cut to integers, where it had been accepted), a tensor an op made refuses any
    change; a leaf keeps its gradient through requires_grad_."""
    counts = gpucnn.tensor([1, 2])
    with pytest.raises(TypeError, match="^only floating-point tensors can require grad, got dtype int64"):
        counts.requires_grad = True
    assert not counts.requires_grad
    x = gpucnn.tensor([1.0, 2.0])
    x.requires_grad = True
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.requires_grad_().grad.numpy(), [3, 3])
    y = x * 2
    with pytest.raises(RuntimeError, match="^requires_grad can only change on leaf tensors"):
        y.requires_grad = False
    with pytest.raises(RuntimeError, match="^requires_grad can only change on leaf tensors"):
        y.requires_grad_(False)
    x.requires_grad = False
    assert not (x * 2).requires_grad


# ----------------------------------------------------------------------------- var, where, expand, repeat, split
@pytest.mark.parametrize("dim, keepdim, correction", [(None, False, 1), (1, True, 1), ((0, 2), False, 0),
                                                      (-1, False, 2), (None, True, 0)])
def test_var_and_std_against_torch(dim, keepdim, correction):
    a = np.random.default_rng(21).standard_normal((3, 4, 5)) * 2 + 1
    check_op(lambda x: x.var(dim, keepdim=keepdim, correction=correction),
             lambda x: x.var(dim, keepdim=keepdim, correction=correction), a)
    check_op(lambda x: x.std(dim, keepdim=keepdim, correction=correction),
             lambda x: x.std(dim, keepdim=keepdim, correction=correction), a)
    t, x = torch.tensor(a), gpucnn.tensor(a)
    assert_close(x.var(dim, False, keepdim), t.var(dim, unbiased=False, keepdim=keepdim))


def test_where_against_torch():
    rng = np.random.default_rng(22)
    condition = rng.random((3, 1, 5)) > 0.4
    a, b = rng.standard_normal((3, 4, 5)), rng.standard_normal((4, 1))
    check_op(lambda x, y: gpucnn.where(gpucnn.tensor(condition, device=x.device), x, y),
             lambda x, y: torch.where(torch.tensor(condition), x, y), a, b)
    check_op(lambda x: gpucnn.where(gpucnn.tensor(condition, device=x.device), x, 0.5),
             lambda x: torch.where(torch.tensor(condition), x, 0.5), a)
    ints = gpucnn.where(gpucnn.tensor([True, False]), gpucnn.tensor([1, 2]), gpucnn.tensor([7.5, 8.5]))
    assert ints.dtype == np.float32 and ints.tolist() == [1.0, 8.5]
    with pytest.raises(TypeError, match="where: condition must be a bool tensor, got dtype int64"):
        gpucnn.where(gpucnn.tensor([1, 0]), gpucnn.ones(2), 0.0)
    with pytest.raises(ValueError, match=r"where: the shapes \(2,\) \(condition\), \(3,\) \(input\)"):
        gpucnn.where(gpucnn.tensor([True, False]), gpucnn.ones(3), 0.0)


@pytest.mark.parametrize("shape, sizes", [((3, 1), (3, 4)), ((1, 4), (2, 5, 4)), ((2, 1, 3), (-1, 4, -1)),
                                          ((), (3, 2))])
def test_expand_against_torch(shape, sizes):
    a = np.random.default_rng(23).standard_normal(shape)
    check_op(lambda x: x.expand(*sizes) * 1.5, lambda x: x.expand(*sizes) * 1.5, a)
    check_op(lambda x: x.expand(sizes).sum(0), lambda x: x.expand(sizes).sum(0), a)


@pytest.mark.parametrize("shape, repeats", [((3, 2), (2, 3)), ((2,), (3, 1, 2)), ((2, 3), (1, 1)), ((2, 1), (0, 2))])
def test_repeat_against_torch(shape, repeats):
    a = np.random.default_rng(24).standard_normal(shape)
    check_op(lambda x: x.repeat(*repeats), lambda x: x.repeat(*repeats), a)


@pytest.mark.parametrize("how", [("split", 2, 1), ("split", [1, 3, 1], 1), ("split", 5, 0), ("chunk", 3, 1),
                                 ("chunk", 2, -1), ("chunk", 7, 0)])
def test_split_and_chunk_against_torch(how):
    name, size, dim = how
    a = np.random.default_rng(25).standard_normal((4, 5, 3))
    ours, theirs = getattr(gpucnn.tensor(a), name)(size, dim), getattr(torch.tensor(a), name)(size, dim)
    assert [p.shape for p in ours] == [tuple(p.shape) for p in theirs]
    check_op(lambda x: gpucnn.cat([p * (i + 1) for i, p in enumerate(getattr(x, name)(size, dim))], dim),
             lambda x: torch.cat([p * (i + 1) for i, p in enumerate(getattr(x, name)(size, dim))], dim), a)


def test_shape_functions_refuse_bad_arguments():
    x = gpucnn.ones(2, 3)
    for call, message in ((lambda: x.expand(3, 3), r"expand: a tensor of shape \(2, 3\) cannot be expanded to"),
                          (lambda: x.expand(3), r"expand: sizes must be at least 2 ints"),
                          (lambda: x.repeat(2), r"repeat: repeats must be at least 2 non-negative ints"),
                          (lambda: x.split([1, 1], 1), r"split: sections \[1, 1\] must be non-negative and add up "
                                                       r"to 3"),
                          (lambda: x.chunk(0), "chunk: chunks must be a positive int"),
                          (lambda: x.split(2, 2), "split: dimension 2 is out of range")):
        with pytest.raises(ValueError, match=message):
            call()
    with pytest.raises(TypeError, match="var needs a floating-point tensor"):
        gpucnn.tensor([1, 2]).var()
    with pytest.raises(TypeError, match="split: split_size_or_sections must be an int or a list of ints, got 2.5"):
        x.split(2.5)
