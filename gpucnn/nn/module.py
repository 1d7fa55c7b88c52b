"""Module, Parameter and Sequential: the containers layers are built from (as torch.nn)."""

from __future__ import annotations

import itertools
from collections import OrderedDict
from typing import Iterator, NamedTuple

import numpy

from ..devices import Device, get_device
from ..tensor import Tensor, _to_array


class Parameter(Tensor):
    """A Tensor that a Module registers as trainable; requires grad by default.

    ``Parameter(data)`` wraps ``data`` (a Tensor shares its array; array-like data is converted under
    :func:`gpucnn.tensor`'s rules).
    """

    def __init__(self, data, requires_grad: bool = True):
        if isinstance(data, Tensor):
            self._init(data.data, data.device, requires_grad)
            self._version = data._version
        else:
            super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class IncompatibleKeys(NamedTuple):
    missing_keys: list
    unexpected_keys: list


class RemovableHandle:
    """What registering a hook returns: ``remove()`` takes that hook off (again: nothing), as does the end of a
    ``with`` block over the handle."""

    _ids = itertools.count()

    def __init__(self, hooks: dict):
        self._hooks, self.id = hooks, next(RemovableHandle._ids)

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc_info) -> None:
        self.remove()


class Module:
    """Base class of every layer and model.

    Assigning a Parameter, a Module, or a buffer (``register_buffer``) as an attribute registers it,
    so ``parameters()``, ``state_dict()``, ``to()`` and ``train()``/``eval()`` reach it.
    Subclasses implement ``forward``; call the module itself, not ``forward``.
    """

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())

    # ------------------------------------------------------------ registration
    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() before assigning {name}")
        if isinstance(value, Parameter):
            target = self._parameters
        elif isinstance(value, Module):
            target = self._modules
        elif name in self.__dict__.get("_buffer_names", ()):
            target = self._buffers
        else:
            target = None
        for registry in (self._parameters, self._buffers, self._modules):
            if registry is not target:
                registry.pop(name, None)
        if target is None:
            object.__setattr__(self, name, value)
            return
        target[name] = value  # a replacement keeps its place, as in PyTorch (the state_dict's order)
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str):
        for registry in ("_parameters", "_buffers", "_modules"):
            values = self.__dict__.get(registry)
            if values is not None and name in values:
                return values[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                return
        object.__delattr__(self, name)

    def _check_new_name(self, name, what: str, registry: dict) -> None:
        """PyTorch's checks of a name to register ``what`` under: a str, not empty, without ".", and not an
        attribute of the module other than one of ``registry`` (which the new value replaces)."""
        if not isinstance(name, str):
            raise TypeError(f"{what} name should be a string, got {type(name).__name__}")
        if "." in name:
            raise KeyError(f"{what} name can't contain \".\", got: {name}")
        if not name:
            raise KeyError(f"{what} name can't be empty string \"\"")
        if hasattr(self, name) and name not in registry:
            raise KeyError(f"attribute '{name}' already exists")

    def register_buffer(self, name: str, tensor) -> None:
        """Registers ``tensor`` (or None) as state that is saved in state_dict but not trained."""
        self._check_new_name(name, "buffer", self._buffers)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"buffer '{name}' must be a Tensor or None, got {type(tensor).__name__}")
        self.__dict__.setdefault("_buffer_names", set()).add(name)
        self.__dict__.pop(name, None)
        self._buffers[name] = tensor

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Registers ``param`` (a Parameter, or None for an absent one, as a layer without bias) as ``name``."""
        self._check_new_name(name, "parameter", self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign {type(param).__name__} object to parameter '{name}' (a Parameter or "
                            "None is required)")
        self._parameters[name] = param

    def add_module(self, name: str, module: "Module | None") -> None:
        """Registers ``module`` (or None) as the submodule ``name``, as assigning it would."""
        self._check_new_name(name, "module", self._modules)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._modules[name] = module

    register_module = add_module

    def register_forward_pre_hook(self, hook) -> RemovableHandle:
        """Calls ``hook(module, args)`` before every forward, ``args`` the positional inputs; what it returns,
        unless None, becomes them (a value that is not a tuple, the one input)."""
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    def register_forward_hook(self, hook) -> RemovableHandle:
        """Calls ``hook(module, args, output)`` after every forward; what it returns, unless None, becomes the
        output."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    # ------------------------------------------------------------ running
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def __call__(self, *args, **kwargs):
        if self._forward_pre_hooks:
            for hook in list(self._forward_pre_hooks.values()):  # a hook may remove itself
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        if self._forward_hooks:
            for hook in list(self._forward_hooks.values()):
                result = hook(self, args, output)
                if result is not None:
                    output = result
        return output

    # ------------------------------------------------------------ traversal
    def named_modules(self, prefix: str = "", memo=None) -> Iterator[tuple[str, "Module"]]:
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self) -> Iterator["Module"]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        yield from ((name, module) for name, module in self._modules.items() if module is not None)

    def children(self) -> Iterator["Module"]:
        for _, module in self.named_children():
            yield module

    def _named_members(self, registry: str, prefix: str, recurse: bool):
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        yield from self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, parameter in self.named_parameters(recurse=recurse):
            yield parameter

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        yield from self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def get_submodule(self, target: str) -> "Module":
        """The submodule at dotted path ``target`` ("" is the module itself); AttributeError naming the part
        of the path that is missing or is not a Module."""
        module = self
        for depth, name in enumerate(target.split(".") if target else []):
            path = ".".join(target.split(".")[:depth + 1])
            child = module._modules.get(name) if name in module._modules else getattr(module, name, None)
            if not isinstance(child, Module):
                what = "has no attribute" if child is None else "is not an nn.Module:"
                raise AttributeError(f"{type(self).__name__}.get_submodule: {path!r} {what}"
                                     f"{'' if child is None else ' ' + type(child).__name__}")
            module = child
        return module

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at dotted path ``target`` ("block.0.weight")."""
        return self._get_member(target, "_parameters", "get_parameter", "an nn.Parameter")

    def get_buffer(self, target: str) -> Tensor:
        """The buffer at dotted path ``target`` ("bn.running_mean")."""
        return self._get_member(target, "_buffers", "get_buffer", "a buffer")

    def _get_member(self, target: str, registry: str, method: str, what: str):
        path, _, name = target.rpartition(".")
        module = self.get_submodule(path)
        if name not in getattr(module, registry):
            raise AttributeError(f"{type(self).__name__}.{method}: {target!r} is not {what}")
        return getattr(module, registry)[name]

    def apply(self, fn) -> "Module":
        """Calls ``fn(module)`` on every submodule, then on self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------ state
    def train(self, mode: bool = True) -> "Module":
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode) expects a bool, got {type(mode).__name__}")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for parameter in self.parameters():
            if parameter.grad is not None:
                if set_to_none:
                    parameter.grad = None
                else:
                    parameter.grad.data[...] = 0

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        """Sets ``requires_grad`` of every parameter: ``model.features.requires_grad_(False)`` freezes them."""
        for parameter in self.parameters():
            parameter.requires_grad_(requires_grad)
        return self

    def to(self, device=None, dtype=None) -> "Module":
        """Moves every parameter and buffer to ``device`` and/or casts its floating-point ones to ``dtype``, in
        place (the same Parameter objects): ``to('cuda')``, ``to(gpucnn.float64)``, ``to('cpu', gpucnn.float64)``.
        Gradients follow."""
        if dtype is None and device is not None and not isinstance(device, (str, Device)):
            device, dtype = None, device
        if dtype is not None and numpy.dtype(dtype).kind != "f":
            raise TypeError(f"Module.to: dtype must be a floating-point type (integer and bool tensors keep "
                            f"theirs), got {numpy.dtype(dtype)}")
        device = None if device is None else get_device(device)
        for tensor in list(self.parameters()) + list(self.buffers()):
            target = tensor.device if device is None else device
            array = self._moved(tensor, target, dtype)
            if array is not tensor.data or target != tensor.device:
                tensor.data, tensor.device = array, target
            if tensor.grad is not None:
                grad = self._moved(tensor.grad, target, dtype)
                if grad is not tensor.grad.data or target != tensor.grad.device:
                    tensor.grad = Tensor._from_array(grad, target)
        return self

    @staticmethod
    def _moved(tensor: Tensor, device: Device, dtype):
        """``tensor``'s array on ``device`` and, where floating point, as ``dtype`` (None: as it is)."""
        array = tensor.data if tensor.device == device else device.asarray(tensor.numpy())
        if dtype is not None and array.dtype.kind == "f" and array.dtype != dtype:
            array = array.astype(dtype)
        return array

    def cpu(self) -> "Module":
        return self.to("cpu")

    def cuda(self, device: int | None = None) -> "Module":
        """To GPU ``device`` (an index), the first by default."""
        return self.to("cuda" if device is None else f"cuda:{device}")

    def float(self) -> "Module":
        return self.to(dtype=numpy.float32)

    def double(self) -> "Module":
        return self.to(dtype=numpy.float64)

    def state_dict(self) -> "OrderedDict[str, Tensor]":
        """Every parameter and buffer by dotted name, as detached Tensors sharing the module's arrays."""
        state = OrderedDict()
        for prefix, module in self.named_modules():
            for registry in (module._parameters, module._buffers):
                for name, tensor in registry.items():
                    if tensor is not None:
                        state[f"{prefix}.{name}" if prefix else name] = tensor.detach()
        return state

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copies values (Tensors or arrays) into this module's parameters and buffers.

        Raises ValueError naming every missing and unexpected key (when ``strict``) and every shape
        mismatch, before anything is changed.
        """
        own = self.state_dict()
        missing = [key for key in own if key not in state_dict]
        unexpected = [key for key in state_dict if key not in own]
        values, problems = {}, []
        for key, target in own.items():
            if key not in state_dict:
                continue
            source = state_dict[key]
            array = source.numpy() if isinstance(source, Tensor) else _to_array(source, None, f"state_dict['{key}']")
            if tuple(array.shape) != target.shape:
                problems.append(f"size mismatch for {key}: the checkpoint has shape {tuple(array.shape)}, "
                                f"the model has shape {target.shape}")
            values[key] = array
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if problems:
            raise ValueError(f"error loading state_dict into {type(self).__name__}: " + "; ".join(problems))
        for key, array in values.items():
            target = own[key]
            target.data[...] = target.device.asarray(numpy.asarray(array, dtype=target.dtype))
            target._version[0] += 1
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"({name}): " + repr(module).replace("\n", "\n  ") for name, module in self.named_children()]
        if not lines:
            return f"{type(self).__name__}({self.extra_repr()})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


class _ModuleSequence(Module):
    """Modules under the names "0", "1", ...: indexing (a slice gives the same kind of container), len,
    iteration, and changes as a list's (``append``, ``extend``, ``insert``, ``pop``, ``[i] = module``,
    ``del [i]``); a change but ``append`` and ``[i] =`` numbers the modules afresh, as PyTorch's."""

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, index):
        items = list(self._modules.values())
        if isinstance(index, slice):
            return self._of(items[index])
        return items[self._index(index)]

    def __setitem__(self, index: int, module: Module) -> None:
        position = self._index(index)
        self._check_module(module, "[]=", position)
        setattr(self, list(self._modules)[position], module)

    def __delitem__(self, index) -> None:
        names = list(self._modules)
        for name in (names[index] if isinstance(index, slice) else [names[self._index(index)]]):
            del self._modules[name]
        self._renumber(list(self._modules.values()))

    def __iter__(self):
        return iter(self._modules.values())

    def _index(self, index) -> int:
        """``index`` (an int, negative from the end) as a position; IndexError outside."""
        if not hasattr(index, "__index__") or isinstance(index, bool):
            raise TypeError(f"{type(self).__name__} indices must be ints or slices, got {type(index).__name__}")
        position = index.__index__()
        if not -len(self) <= position < len(self):
            raise IndexError(f"index {position} is out of range for {type(self).__name__} of {len(self)} modules")
        return position

    def _check_module(self, module, operation: str, position: int) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}.{operation}: element {position} is a {type(module).__name__}, "
                            "not a Module")

    def _renumber(self, modules: list) -> None:
        self._modules.clear()
        self._modules.update((str(position), module) for position, module in enumerate(modules))

    def append(self, module: Module):
        self._check_module(module, "append", len(self))
        setattr(self, str(len(self)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Puts ``module`` before position ``index`` (negative: from the end; ``len(self)``: at the end);
        IndexError outside these."""
        if not hasattr(index, "__index__") or isinstance(index, bool):
            raise TypeError(f"{type(self).__name__}.insert: index must be an int, got {type(index).__name__}")
        position = index.__index__()
        if not -len(self) <= position <= len(self):
            raise IndexError(f"{type(self).__name__}.insert: index {position} is out of range for {len(self)} "
                             "modules")
        self._check_module(module, "insert", position)
        modules = list(self._modules.values())
        modules.insert(position, module)
        self._renumber(modules)

    def pop(self, index: int = -1) -> Module:
        module = self[index]
        del self[index]
        return module


class ModuleList(_ModuleSequence):
    """Modules in a list, each registered, so that ``parameters()``, ``state_dict()``, ``to()`` and
    ``train()`` reach them: ``self.blocks = ModuleList([Conv2d(16, 16, 3, padding=1) for _ in range(3)])``.
    No forward of its own: the model's forward calls its modules (a plain list would hide them)."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    @staticmethod
    def _of(modules: list) -> "ModuleList":
        return ModuleList(modules)


class ModuleDict(Module):
    """Modules in a dict by name, each registered (as ``ModuleList`` registers its own) and kept in the order
    they were put in: ``self.heads = ModuleDict({"class": Linear(64, 10), "box": Linear(64, 4)})``. A name
    must be a non-empty str without ".", and not an attribute of the dict itself (``keys``, say)."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        if not isinstance(key, str) or not key or "." in key:
            raise KeyError(f"ModuleDict: a name must be a non-empty str without '.', got {key!r}")
        if hasattr(ModuleDict, key) or key in self.__dict__:
            raise KeyError(f"ModuleDict: the name {key!r} is an attribute of ModuleDict itself")
        if not isinstance(module, Module):
            raise TypeError(f"ModuleDict: the value of {key!r} is a {type(module).__name__}, not a Module")
        setattr(self, key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key) -> bool:
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def pop(self, key: str) -> Module:
        return self._modules.pop(key)

    def clear(self) -> None:
        self._modules.clear()

    def update(self, modules) -> None:
        """Adds (or replaces) the modules of a mapping, or of an iterable of (name, module) pairs."""
        pairs = modules.items() if hasattr(modules, "items") else modules
        for pair in pairs:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"ModuleDict.update: expected a mapping or (name, module) pairs, got an element "
                                f"{pair!r}")
            self[pair[0]] = pair[1]


class Sequential(_ModuleSequence):
    """Runs its modules in order: ``Sequential(Conv2d(3, 8, 3), ReLU(), ...)``."""

    def __init__(self, *modules: Module):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            modules = list(modules[0].items())
        else:
            modules = [(str(index), module) for index, module in enumerate(modules)]
        for name, module in modules:
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: element {name} is a {type(module).__name__}, not a Module")
            setattr(self, name, module)

    @staticmethod
    def _of(modules: list) -> "Sequential":
        return Sequential(*modules)

    def forward(self, input):
        for module in self._modules.values():
            input = module(input)
        return input
