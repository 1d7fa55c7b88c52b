"""Module's registration, lookup, hooks, dtype and device moves, and the list-like changes of Sequential and
ModuleList, against torch.nn's behaviour on the same steps."""

import numpy as np
import pytest
import torch

import gpucnn
from gpucnn import nn
from helpers import assert_close


def _both(build):
    """``build(nn_module)`` for gpucnn.nn and torch.nn."""
    return build(nn), build(torch.nn)


def _nested(nn_module):
    model = nn_module.Sequential(nn_module.Conv2d(2, 3, 3), nn_module.BatchNorm2d(3), nn_module.ReLU())
    model.add_module("head", nn_module.Sequential(nn_module.Flatten(), nn_module.Linear(12, 4)))
    return model


def test_add_module_and_register_parameter_register_as_torchs():
    ours, theirs = _both(_nested)
    for model, module in ((ours, gpucnn), (theirs, torch)):
        model.register_parameter("scale", (gpucnn.nn if module is gpucnn else torch.nn).Parameter(module.ones(4)))
        model.register_parameter("shift", None)
        model.register_parameter("offset", (gpucnn.nn if module is gpucnn else torch.nn).Parameter(module.zeros(4)))
        model.register_buffer("steps", module.zeros(1))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [name for name, _ in ours.named_parameters()] == [name for name, _ in theirs.named_parameters()]
    assert [name for name, _ in ours.named_modules()] == [name for name, _ in theirs.named_modules()]
    assert ours.shift is None
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 4)).astype(np.float32)
    assert ours(gpucnn.tensor(x)).shape == tuple(theirs(torch.tensor(x)).shape) == (2, 4)


@pytest.mark.parametrize("call, error, message", [
    (lambda m, nn_module, module: m.add_module(3, nn_module.ReLU()), TypeError, "module name should be a string"),
    (lambda m, nn_module, module: m.add_module("a.b", nn_module.ReLU()), KeyError, 'module name can.{1,2}t contain ".", got: a.b'),
    (lambda m, nn_module, module: m.add_module("", nn_module.ReLU()), KeyError,
     'module name can.{1,2}t be empty string ""'),
    (lambda m, nn_module, module: m.add_module("forward", nn_module.ReLU()), KeyError,
     "attribute 'forward' already exists"),
    (lambda m, nn_module, module: m.add_module("x", 3), TypeError, "int is not a Module subclass"),
    (lambda m, nn_module, module: m.register_parameter("weight", module.ones(2)), TypeError,
     "cannot assign .* object to parameter 'weight'"),
    (lambda m, nn_module, module: m.register_parameter("0", nn_module.Parameter(module.ones(2))), KeyError,
     "attribute '0' already exists"),
    (lambda m, nn_module, module: m.register_buffer("head", module.ones(2)), KeyError,
     "attribute 'head' already exists"),
    (lambda m, nn_module, module: m.register_buffer("a.b", module.ones(2)), KeyError, 'buffer name can.{1,2}t contain "."'),
])
def test_registration_errors_as_torchs(call, error, message):
    for model, nn_module, module in ((_nested(nn), nn, gpucnn), (_nested(torch.nn), torch.nn, torch)):
        with pytest.raises(error, match=message):
            call(model, nn_module, module)


def test_none_registered_as_a_module_is_listed_nowhere_as_torchs():
    for nn_module in (nn, torch.nn):
        model = nn_module.Module()
        model.register_module("absent", None)
        model.add_module("present", nn_module.Linear(2, 2))
        assert model.absent is None
        assert [name for name, _ in model.named_children()] == ["present"]
        assert list(model.state_dict()) == ["present.weight", "present.bias"]


def test_a_registered_name_is_replaced_in_its_place():
    model = _nested(nn)
    replacement = nn.Linear(12, 5)
    model.head.add_module("1", replacement)
    assert model.head[1] is replacement and list(model.head._modules) == ["0", "1"]
    weight = nn.Parameter(gpucnn.ones(5, 12))
    replacement.register_parameter("weight", weight)
    assert replacement.weight is weight and list(replacement._parameters) == ["weight", "bias"]


def test_get_submodule_parameter_and_buffer_as_torchs():
    ours, theirs = _both(_nested)
    for target in ["", "0", "head", "head.1"]:
        assert type(ours.get_submodule(target)).__name__ == type(theirs.get_submodule(target)).__name__
    assert ours.get_submodule("head.1") is ours.head[1]
    assert ours.get_parameter("head.1.weight") is ours.head[1].weight
    assert ours.get_parameter("0.bias").shape == tuple(theirs.get_parameter("0.bias").shape)
    assert ours.get_buffer("1.running_var") is ours[1].running_var
    for model in (ours, theirs):
        with pytest.raises(AttributeError, match="has no attribute"):
            model.get_submodule("head.7")
        with pytest.raises(AttributeError, match="is not an nn.Module"):
            model.get_submodule("0.weight")
        with pytest.raises(AttributeError, match="is not an nn.Parameter"):
            model.get_parameter("1.running_mean")
        with pytest.raises(AttributeError, match="is not a buffer"):
            model.get_buffer("0.weight")


def test_requires_grad_freezes_parameters_as_torchs():
    ours, theirs = _both(_nested)
    ours.load_state_dict({key: value.numpy() for key, value in theirs.state_dict().items()})
    assert ours[0].requires_grad_(False) is ours[0]
    theirs[0].requires_grad_(False)
    x = np.random.default_rng(1).standard_normal((2, 2, 4, 4)).astype(np.float32)
    ours(gpucnn.tensor(x)).sum().backward()
    theirs(torch.tensor(x)).sum().backward()
    for (name, mine), (_, reference) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert mine.requires_grad == reference.requires_grad, name
        assert (mine.grad is None) == (reference.grad is None), name
        if mine.grad is not None:
            assert_close(mine.grad, reference.grad, name=name)
    ours.requires_grad_()
    assert all(parameter.requires_grad for parameter in ours.parameters())


def test_to_a_dtype_casts_floating_parameters_buffers_and_grads_as_torchs():
    ours, theirs = _both(_nested)
    ours(gpucnn.ones(2, 2, 4, 4)).sum().backward()
    grads = [parameter.grad for parameter in ours.parameters()]
    parameters = list(ours.parameters())
    assert ours.double() is ours
    theirs.double()
    assert {key: str(value.dtype) for key, value in ours.state_dict().items()} == {
        key: str(value.dtype).replace("torch.", "") for key, value in theirs.state_dict().items()}
    assert list(ours.parameters()) == parameters, "the same Parameter objects"
    for parameter, grad in zip(ours.parameters(), grads):
        assert parameter.grad.dtype == np.float64 and parameter.grad is not grad
        assert_close(parameter.grad, grad.numpy())
    assert ours(gpucnn.ones(2, 2, 4, 4, dtype=gpucnn.float64)).dtype == np.float64
    assert ours.float() is ours and all(value.dtype in (np.float32, np.int64) for value in ours.state_dict().values())
    assert ours.to(gpucnn.float64) is ours and ours[0].weight.dtype == np.float64
    with pytest.raises(TypeError, match="Module.to: dtype must be a floating-point type .*, got int64"):
        ours.to(gpucnn.long)


def test_to_a_device_and_dtype_at_once():
    model = _nested(nn)
    model(gpucnn.ones(2, 2, 4, 4)).sum().backward()
    assert model.to("cudasim", gpucnn.float64) is model
    for tensor in list(model.parameters()) + list(model.buffers()):
        assert str(tensor.device) == "cudasim"
        assert tensor.dtype == (np.int64 if tensor.dtype.kind == "i" else np.float64)
    assert all(str(parameter.grad.device) == "cudasim" for parameter in model.parameters())
    assert model.cpu() is model and all(str(tensor.device) == "cpu" for tensor in model.parameters())


def test_forward_hooks_change_inputs_and_outputs_as_torchs():
    ours, theirs = _both(lambda nn_module: nn_module.Linear(3, 2))
    ours.load_state_dict({key: value.numpy() for key, value in theirs.state_dict().items()})
    calls = {id(ours): [], id(theirs): []}

    def double_input(module, args):
        calls[id(module)].append("pre")
        return args[0] * 2  # one value, not a tuple: the one input

    def add_one(module, args, output):
        calls[id(module)].append("post")
        return output + 1

    def watch(module, args, output):
        calls[id(module)].append(tuple(output.shape))

    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    results = []
    for model, module in ((ours, gpucnn), (theirs, torch)):
        handles = [model.register_forward_pre_hook(double_input), model.register_forward_hook(add_one),
                   model.register_forward_hook(watch), model.register_forward_hook(add_one)]
        results.append(model(module.tensor(x)))
        handles[3].remove()
        handles[3].remove()  # a second time does nothing
        with handles[0]:
            results.append(model(module.tensor(x)))
        results.append(model(module.tensor(x)))  # the pre-hook is gone
    for mine, reference in zip(results[:3], results[3:]):
        assert_close(mine.detach(), reference.detach())
    assert calls[id(ours)] == calls[id(theirs)]
    assert calls[id(ours)].count("post") == 4  # the same hook twice ran twice; removing one left the other


def _list_steps(container, nn_module):
    """The same changes to a ModuleList or Sequential, the layers' types after each."""
    seen = []
    container.append(nn_module.ReLU())
    container.extend([nn_module.Tanh(), nn_module.Sigmoid()])
    container.insert(1, nn_module.Flatten())
    container.insert(len(container) - 1, nn_module.Identity())
    container.insert(len(container), nn_module.Dropout())
    seen.append([type(m).__name__ for m in container])
    container[-2] = nn_module.Softmax(dim=1)
    del container[0]
    seen.append([type(m).__name__ for m in container])
    seen.append(type(container.pop(1)).__name__)
    del container[1:3]
    seen.append([(name, type(m).__name__) for name, m in container.named_children()])
    return seen


@pytest.mark.parametrize("kind", ["ModuleList", "Sequential"])
def test_list_changes_as_torchs(kind):
    assert _list_steps(getattr(nn, kind)(), nn) == _list_steps(getattr(torch.nn, kind)(), torch.nn)


def test_list_change_errors():
    layers = nn.ModuleList([nn.ReLU(), nn.Tanh()])
    with pytest.raises(IndexError, match="index 2 is out of range for ModuleList of 2 modules"):
        layers[2] = nn.ReLU()
    with pytest.raises(IndexError, match="index -3 is out of range"):
        del layers[-3]
    with pytest.raises(TypeError, match=r"ModuleList.\[\]=: element 1 is a int, not a Module"):
        layers[1] = 3
    with pytest.raises(TypeError, match="ModuleList.insert: element 0 is a str, not a Module"):
        layers.insert(0, "relu")
    with pytest.raises(IndexError, match="ModuleList.insert: index 3 is out of range for 2 modules"):
        layers.insert(3, nn.ReLU())
    with pytest.raises(TypeError, match="ModuleList.insert: index must be an int, got str"):
        layers.insert("0", nn.ReLU())
    with pytest.raises(TypeError, match="Sequential indices must be ints or slices, got str"):
        nn.Sequential(nn.ReLU())["0"]
    assert [type(m).__name__ for m in layers] == ["ReLU", "Tanh"], "a refused change changed nothing"
    for kind in (nn.Sequential, torch.nn.Sequential):  # negative positions count from the end, as list.insert
        stack = kind(nn.ReLU(), nn.Tanh()) if kind is nn.Sequential else kind(torch.nn.ReLU(), torch.nn.Tanh())
        stack.insert(-1, nn.Sigmoid() if kind is nn.Sequential else torch.nn.Sigmoid())
        stack.insert(-3, nn.Identity() if kind is nn.Sequential else torch.nn.Identity())
        assert [type(m).__name__ for m in stack] == ["Identity", "ReLU", "Sigmoid", "Tanh"]
