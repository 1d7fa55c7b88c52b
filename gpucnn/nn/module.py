"""Module, Parameter and Sequential: the containers layers are built from (as torch.nn)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterator, NamedTuple

import numpy

from ..devices import get_device
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
        object.__setattr__(self, "_forward_hooks", [])

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

    def register_buffer(self, name: str, tensor) -> None:
        """Registers ``tensor`` (or None) as state that is saved in state_dict but not trained."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"buffer '{name}' must be a Tensor or None, got {type(tensor).__name__}")
        self.__dict__.setdefault("_buffer_names", set()).add(name)
        self.__dict__.pop(name, None)
        self._buffers[name] = tensor

    def register_forward_hook(self, hook):
        """Calls ``hook(module, inputs, output)`` after every forward; returns a handle with ``remove()``."""
        self._forward_hooks.append(hook)
        hooks = self._forward_hooks

        class Handle:
            def remove(self):
                if hook in hooks:
                    hooks.remove(hook)

        return Handle()

    # ------------------------------------------------------------ running
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def __call__(self, *args, **kwargs):
        output = self.forward(*args, **kwargs)
        if self._forward_hooks:
            for hook in list(self._forward_hooks):  # a hook may remove itself
                hook(self, args, output)
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

    def to(self, device) -> "Module":
        """Moves every parameter and buffer to ``device`` in place (the same Parameter objects)."""
        device = get_device(device)
        for tensor in list(self.parameters()) + list(self.buffers()):
            if tensor.device != device:
                tensor.data = device.asarray(tensor.numpy())
                tensor.device = device
                if tensor.grad is not None:
                    tensor.grad = Tensor._from_array(device.asarray(tensor.grad.numpy()), device)
        return self

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
    iteration and append."""

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, index):
        items = list(self._modules.values())
        if isinstance(index, slice):
            return self._of(items[index])
        return items[index]

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module: Module):
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}.append: element {len(self)} is a {type(module).__name__}, "
                            "not a Module")
        setattr(self, str(len(self)), module)
        return self


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

    def extend(self, modules) -> "ModuleList":
        for module in modules:
            self.append(module)
        return self


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
