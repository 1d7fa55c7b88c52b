"""Optimizers: SGD, Adam, AdamW, Adadelta, RMSprop, Adagrad, Adamax, NAdam and RAdam, with PyTorch's API
and update rules; their learning-rate schedules in :mod:`.lr_scheduler`.

    >>> optimizer = gpucnn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    >>> optimizer.zero_grad()
    >>> loss.backward()
    >>> optimizer.step()

Each update follows the algorithm in torch.optim's documentation (the single-tensor, non-foreach
path, operation for operation) and is written against the parameter's array module ``xp``, so it
runs unchanged on NumPy and CuPy arrays; on the kernel devices the float32, C-contiguous parameters
of a group are updated by one launch of a kernel of ``cuda/optim.cu`` instead (the same operations,
in the same order, on float32 scalars rounded as NumPy rounds them), which finds each parameter's
arrays in a table of their addresses. Updates happen in place on ``param.data``: every module
holding the parameter sees them. Parameters whose ``grad`` is None are skipped.
"""

from __future__ import annotations

import collections
import copy
import numbers
import struct
from typing import NamedTuple

import numpy

from ..ops._kernels import THREADS, int32_args, kernel_array
from ..tensor import Tensor

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "Adadelta", "RMSprop", "Adagrad", "Adamax", "NAdam", "RAdam",
           "lr_scheduler"]


# A row of cuda/optim.cu's table (OPTIM_COLUMNS values: first block, n, then seven columns holding the
# addresses of its arrays from the left and its float32 values, held as float64, from the right: five
# addresses and two values, or four and three), and its OPTIM_CHUNK elements per block.
_TABLE_COLUMNS = 9
_CHUNK = 4 * THREADS


class _KernelRow(NamedTuple):
    """One parameter's update by a kernel of cuda/optim.cu: its arrays (param, the kernel-ready
    gradient, then the state the kernel reads) and its values of the table (float32 values: two, or
    three for a kernel of four arrays)."""

    arrays: tuple
    values: tuple


def _to_numpy(array) -> numpy.ndarray:
    """A NumPy copy of a NumPy or CuPy array (state dicts hold host arrays, so they can be saved)."""
    if not isinstance(array, numpy.ndarray) and hasattr(array, "get"):
        return array.get()
    return numpy.array(array, copy=True)


def _at_least_1d(array):
    """A (1,) view of a 0-d array (NumPy turns 0-d results into scalars, which in-place updates miss)."""
    return array.reshape(1) if array.ndim == 0 else array


def _is_array(value) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, numbers.Number)


def _check_number(value, what: str, low: float = 0.0, high: float | None = None, include_high: bool = False):
    """Raises unless ``low <= value`` and ``value < high`` (``<=`` when include_high); NaN fails too."""
    if isinstance(value, (bool, numpy.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"Invalid {what}: {value!r} (expected a real number, got {type(value).__name__})")
    in_range = low <= value and (high is None or value < high or (include_high and value == high))
    if not in_range:
        raise ValueError(f"Invalid {what}: {value}")


def _check_ordered(params) -> None:
    if isinstance(params, (set, frozenset)):
        raise TypeError("optimizer params must be a list, not a set: a set's order changes between runs")


def _check_betas(betas) -> None:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"Invalid betas: {betas!r} (expected a pair (beta1, beta2))")
    for index, beta in enumerate(betas):
        _check_number(beta, f"beta parameter at index {index}", high=1.0)


def _check_flag(value, name: str) -> None:
    if not isinstance(value, (bool, numpy.bool_)):
        raise TypeError(f"Invalid {name}: {value!r} (expected True or False)")


class Optimizer:
    """Base class: parameter groups, per-parameter state, zero_grad, step and state dicts.

    Args:
        params: an iterable of Tensors, or of dicts (parameter groups) each holding ``'params'`` and
            any options that override ``defaults`` for that group.
        defaults: the options of every group that does not set them.

    Subclasses implement ``_check_options(options)`` (raise on invalid hyper-parameters),
    ``_update(device, param, grad, state, group)`` (one parameter's update, in place on the array
    ``param`` of ``device``; ``grad`` has its shape and dtype; where ``_runs_kernel``, it updates the
    state alone and returns the parameter's ``_KernelRow``) and ``_kernel(group)`` (the kernel of
    cuda/optim.cu that updates those rows, and its float32 scalars and int32 flags for the group).
    """

    def __init__(self, params, defaults: dict):
        self._check_options(defaults)
        self.defaults = defaults
        self.state = collections.defaultdict(dict)
        self.param_groups = []
        self._tables = {}  # (group index, device) -> (the last table's bytes, its copy on the device)
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, "
                f"but got a Tensor of shape {params.shape}; wrap it in a list"
            )
        _check_ordered(params)
        try:
            param_groups = list(params)
        except TypeError:
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            f"but got {type(params).__name__} {params!r}") from None
        if not param_groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def _check_options(self, options: dict) -> None:
        raise NotImplementedError

    def _update(self, device, param, grad, state: dict, group: dict):
        raise NotImplementedError

    def _kernel(self, group: dict) -> tuple:
        raise NotImplementedError

    def add_param_group(self, param_group: dict) -> None:
        """Adds a group of parameters, with its own options (missing ones taken from ``defaults``)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"param_group must have a 'params' entry, got keys {sorted(param_group)}")
        group = dict(param_group)
        params = group["params"]
        _check_ordered(params)
        params = [params] if isinstance(params, Tensor) else list(params)
        # named_parameters() style: (name, tensor) pairs, all or none
        named = [isinstance(param, tuple) for param in params]
        if any(named):
            if not all(named) or any(len(param) != 2 for param in params):
                raise ValueError("all optimizer params should be (name, Tensor) pairs or all plain Tensors")
            group["param_names"] = [name for name, _ in params]
            params = [param for _, param in params]
        group_index = len(self.param_groups)
        for position, param in enumerate(params):
            where = f"parameter {position} of group {group_index}"
            if not isinstance(param, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but {where} is a {type(param).__name__}")
            if param.dtype.kind != "f":
                raise TypeError(f"optimizer can only optimize floating-point Tensors, but {where} is {param.dtype}")
            if not param.requires_grad:
                raise ValueError(f"optimizer got {where} (shape {param.shape}) that does not require grad")
            if not param.is_leaf:
                raise ValueError(f"can't optimize a non-leaf Tensor ({where}, shape {param.shape})")
        if len({id(param) for param in params}) != len(params):
            raise ValueError(f"optimizer group {group_index} contains the same parameter more than once")
        seen = {id(param) for other in self.param_groups for param in other["params"]}
        if any(id(param) in seen for param in params):
            raise ValueError("some parameters appear in more than one parameter group")
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._check_options(group)
        group["params"] = params
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clears every parameter's gradient: to None, or (set_to_none=False) to zeros in place."""
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                if set_to_none:
                    param.grad = None
                else:
                    param.grad.data.fill(0)

    def step(self, closure=None):
        """Updates every parameter that has a gradient. ``closure`` re-evaluates the loss and returns it.
        Every gradient's shape is checked before any parameter changes."""
        loss = closure() if closure is not None else None
        updates = [[(param, self._gradient(param)) for param in group["params"] if param.grad is not None]
                   for group in self.param_groups]
        # NaN and inf propagate silently, as in torch
        with numpy.errstate(invalid="ignore", divide="ignore", over="ignore"):
            for index, (group, pairs) in enumerate(zip(self.param_groups, updates)):
                by_device = {}
                for param, grad in pairs:
                    by_device.setdefault(param.device, []).append((param, grad))
                for device, device_pairs in by_device.items():
                    with device.context():  # the state it makes, and the launch, on the parameters' GPU
                        rows = []  # the _KernelRow of each kernel update
                        for param, grad in device_pairs:
                            state = self.state[param]
                            row = self._update(device, _at_least_1d(param.data), grad, state, group)
                            param._version[0] += 1  # changed in place: a graph made before it cannot backward
                            if row is not None:
                                rows.append(row)
                            if not state:  # SGD without momentum keeps none, and torch lists none
                                del self.state[param]
                        if rows:
                            self._launch(index, device, rows, *self._kernel(group))
        return loss

    def _gradient(self, param):
        """``param``'s gradient as an array of its shape (at least 1-d) and dtype; ValueError for another
        shape or device."""
        if isinstance(param.grad, Tensor) and param.grad.device != param.device:
            raise ValueError(f"{type(self).__name__}.step: the gradient of a parameter on {param.device} is on "
                             f"{param.grad.device} (shape {param.shape})")
        grad = param.grad.data if isinstance(param.grad, Tensor) else param.device.asarray(param.grad)
        if tuple(grad.shape) != param.shape:
            raise ValueError(
                f"{type(self).__name__}.step: gradient of shape {tuple(grad.shape)} for a parameter of shape "
                f"{param.shape}"
            )
        if grad.dtype != param.dtype:
            grad = grad.astype(param.dtype)
        return _at_least_1d(grad)

    def _launch(self, group_index: int, device, rows: list, name: str, scalars: tuple, flags: tuple) -> None:
        """One launch of kernel ``name`` of cuda/optim.cu updating every parameter of ``rows`` on ``device``.

        The table of the rows' addresses goes to the device once: while a group's parameters, state and
        gradients keep their memory from step to step (CuPy's pool hands a training step's gradients the
        same blocks each time), the copy made for the last step serves again."""
        parts, blocks = [], 0
        for arrays, values in rows:
            size = arrays[0].size
            addresses = [device.address(array) for array in arrays]
            unused = _TABLE_COLUMNS - 2 - len(addresses) - len(values)  # columns that repeat param's address
            parts.append(struct.pack(f"<{_TABLE_COLUMNS - len(values)}q{len(values)}d", blocks, size, *addresses,
                                     *addresses[:1] * unused, *values))
            blocks += -(-size // _CHUNK)
        if not blocks:
            return
        key, data = (group_index, device), b"".join(parts)
        cached = self._tables.get(key)
        if cached is None or cached[0] != data:
            table = numpy.frombuffer(data, dtype=numpy.int64).reshape(len(rows), _TABLE_COLUMNS)
            cached = self._tables[key] = (data, device.asarray(table))
        table = cached[1]
        device.launcher("optim", name)((blocks,), (THREADS,), (table, table.view(numpy.float64), numpy.int32(len(rows)),
                                                              *map(numpy.float32, scalars), *int32_args(flags)))

    # ----------------------------------------------------------------- state dicts
    def state_dict(self) -> dict:
        """The state in PyTorch's format, parameters replaced by their index in group order.

        ``{'state': {index: {'step': int, 'exp_avg': ndarray, ...}}, 'param_groups': [{'lr': ...,
        'params': [indices]}]}``. Arrays are NumPy copies, so the dict can be saved and is not changed
        by later steps.
        """
        index_of, param_groups = {}, []
        for group in self.param_groups:
            packed = {key: copy.deepcopy(value) for key, value in group.items() if key != "params"}
            packed["params"] = []
            for param in group["params"]:
                index_of.setdefault(id(param), len(index_of))
                packed["params"].append(index_of[id(param)])
            param_groups.append(packed)
        state = {}
        for param, values in self.state.items():
            if id(param) in index_of:
                state[index_of[id(param)]] = {
                    key: _to_numpy(value).reshape(param.shape) if _is_array(value) else value
                    for key, value in values.items()
                }
        return {"state": state, "param_groups": param_groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Loads a dict from :meth:`state_dict`; state arrays are copied onto each parameter's device.

        Raises:
            ValueError: the dict is malformed, has another number of groups, a group of another size,
                a state array whose shape differs from its parameter's, or options of another optimizer.
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError(f"{name}.load_state_dict: expected a dict with keys 'state' and 'param_groups'")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"loaded state dict has {len(saved_groups)} parameter groups, but the optimizer has "
                f"{len(self.param_groups)}"
            )
        new_groups = []
        for index, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"loaded state dict contains a parameter group that doesn't match the size of optimizer's "
                    f"group: group {index} has {len(saved['params'])} parameters in the state dict and "
                    f"{len(group['params'])} in the optimizer"
                )
            missing = sorted(set(self.defaults) - set(saved))
            if missing:
                raise ValueError(f"loaded parameter group {index} lacks the {name} options {missing}")
            new_group = {key: copy.deepcopy(value) for key, value in saved.items() if key != "params"}
            self._check_options(new_group)
            if "param_names" in group and "param_names" not in new_group:
                new_group["param_names"] = group["param_names"]
            new_group["params"] = group["params"]
            new_groups.append(new_group)

        param_of = {
            saved_index: param
            for saved, group in zip(saved_groups, self.param_groups)
            for saved_index, param in zip(saved["params"], group["params"])
        }
        new_state = collections.defaultdict(dict)
        for saved_index, values in state_dict["state"].items():
            if saved_index not in param_of:
                raise ValueError(f"loaded state dict has state for parameter {saved_index!r}, which no group lists")
            param = param_of[saved_index]
            loaded = {}
            for key, value in values.items():
                if key == "step":  # an int here; torch keeps a float tensor
                    loaded[key] = int(value)
                elif key == "mu_product":  # NAdam's: a float here; torch keeps a float32 tensor
                    loaded[key] = _float32(value)
                elif _is_array(value):
                    if tuple(value.shape) != param.shape:
                        raise ValueError(
                            f"loaded state '{key}' of parameter {saved_index} has shape {tuple(value.shape)}, "
                            f"but the parameter has shape {param.shape}"
                        )
                    # C-contiguous, as the parameter: the kernel devices' updates read it flat
                    array = param.device.asarray(numpy.ascontiguousarray(_to_numpy(value), dtype=param.dtype))
                    loaded[key] = _at_least_1d(array)
                else:
                    loaded[key] = copy.deepcopy(value)
            new_state[param] = loaded
        self.param_groups = new_groups
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for index, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {index}")
            lines += [f"    {key}: {group[key]}" for key in sorted(group) if key not in ("params", "param_names")]
        return "\n".join(lines + [")"])


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and weight decay.

    Per parameter (torch.optim.SGD): g = grad (negated when maximize) + weight_decay * p;
    with momentum, b = g on the first step, else momentum * b + (1 - dampening) * g, and
    g = g + momentum * b (nesterov) or g = b; then p = p - lr * g.
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *, maximize=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, options: dict) -> None:
        _check_number(options["lr"], "learning rate")
        _check_number(options["momentum"], "momentum value")
        _check_number(options["dampening"], "dampening value", low=-numpy.inf)
        _check_number(options["weight_decay"], "weight_decay value")
        _check_flag(options["nesterov"], "nesterov")
        _check_flag(options["maximize"], "maximize")
        if options["nesterov"] and (options["momentum"] <= 0 or options["dampening"] != 0):
            raise ValueError(
                "Nesterov momentum requires a momentum and zero dampening "
                f"(momentum={options['momentum']}, dampening={options['dampening']})"
            )

    def _kernel(self, group: dict) -> tuple:
        momentum = float(group["momentum"])
        return ("optim_sgd", (group["lr"], momentum, 1 - float(group["dampening"]), group["weight_decay"]),
                (momentum != 0, group["nesterov"], group["maximize"]))

    def _update(self, device, param, grad, state: dict, group: dict):
        # Scalars as Python floats, so NumPy keeps float32 arrays float32.
        lr, momentum, weight_decay = float(group["lr"]), float(group["momentum"]), float(group["weight_decay"])
        if _runs_kernel(device, param):
            buffer = state.get("momentum_buffer")
            first_step = momentum != 0 and buffer is None
            if first_step:
                buffer = state["momentum_buffer"] = device.xp.empty_like(param)
            # without momentum the kernel never touches a buffer
            arrays = (param, kernel_array(device.xp, grad)) + (() if buffer is None else (buffer,))
            return _KernelRow(arrays, (float(first_step), 0.0))
        if group["maximize"]:
            grad = -grad
        if weight_decay != 0:
            grad = grad + weight_decay * param
        if momentum != 0:
            buffer = state.get("momentum_buffer")
            if buffer is None:
                buffer = state["momentum_buffer"] = grad.copy()
            else:
                buffer *= momentum
                buffer += (1 - float(group["dampening"])) * grad
            grad = grad + momentum * buffer if group["nesterov"] else buffer
        param -= lr * grad


def _runs_kernel(device, param) -> bool:
    """Whether ``param``'s update runs as a kernel of cuda/optim.cu: float32 and C-contiguous, on a
    kernel device."""
    return device.runs_kernels and param.dtype == numpy.float32 and param.flags.c_contiguous


def _float32(value: float) -> float:
    """``value`` rounded to float32, as a Python float (exact in the table's float64)."""
    return float(numpy.float32(value))


def _lerp_(start, end, weight: float) -> None:
    """start += weight * (end - start) in place, in torch.lerp's two-sided form (fewer rounding errors)."""
    if abs(weight) < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1 - weight)


class Adam(Optimizer):
    """Adam (Kingma & Ba), with optional AMSGrad, and L2 or decoupled (AdamW) weight decay.

    Per parameter (torch.optim.Adam), at step t: g = grad (negated when maximize); weight decay
    either adds weight_decay * p to g (L2) or first scales p by 1 - lr * weight_decay (decoupled);
    m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2 (v_max = max(v_max, v) with amsgrad);
    p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 maximize=False, decoupled_weight_decay=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _check_options(self, options: dict) -> None:
        _check_number(options["lr"], "learning rate")
        _check_number(options["eps"], "epsilon value")
        _check_betas(options["betas"])
        _check_number(options["weight_decay"], "weight_decay value")
        for flag in ("amsgrad", "maximize", "decoupled_weight_decay"):
            _check_flag(options[flag], flag)

    def _kernel(self, group: dict) -> tuple:
        lr, weight_decay = float(group["lr"]), float(group["weight_decay"])
        beta1, beta2 = float(group["betas"][0]), float(group["betas"][1])
        return ("optim_adam", (1 - beta1, 1 - (1 - beta1), beta2, 1 - beta2, weight_decay, 1 - lr * weight_decay,
                               group["eps"]),
                (abs(1 - beta1) < 0.5, group["amsgrad"], group["maximize"], group["decoupled_weight_decay"]))

    def _update(self, device, param, grad, state: dict, group: dict):
        xp = device.xp
        lr, eps, weight_decay = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = float(group["betas"][0]), float(group["betas"][1])
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(param)
            state["exp_avg_sq"] = xp.zeros_like(param)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(param)
        state["step"] += 1
        step = state["step"]
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        bias_correction1 = 1 - beta1**step
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        step_size = lr / bias_correction1
        if group["amsgrad"] and "max_exp_avg_sq" not in state:  # amsgrad switched on after the first step
            state["max_exp_avg_sq"] = xp.zeros_like(param)
        if _runs_kernel(device, param):  # without amsgrad the kernel never touches v_max
            arrays = (param, kernel_array(xp, grad), exp_avg, exp_avg_sq) + (
                (state["max_exp_avg_sq"],) if group["amsgrad"] else ())
            return _KernelRow(arrays, (_float32(step_size), _float32(bias_correction2_sqrt)))
        if group["maximize"]:
            grad = -grad
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                param *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * param
        _lerp_(exp_avg, grad, 1 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        if group["amsgrad"]:
            max_exp_avg_sq = state["max_exp_avg_sq"]
            xp.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
            denominator = xp.sqrt(max_exp_avg_sq) / bias_correction2_sqrt + eps
        else:
            denominator = xp.sqrt(exp_avg_sq) / bias_correction2_sqrt + eps
        param -= step_size * exp_avg / denominator


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p is scaled by 1 - lr * weight_decay
    before the Adam step, instead of adding weight_decay * p to the gradient."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        for group in self.param_groups:  # as torch: AdamW always decouples, whatever was saved
            group["decoupled_weight_decay"] = True


class Adadelta(Optimizer):
    """Adadelta (Zeiler), as torch.optim.Adadelta.

    Per parameter: g = grad (negated when maximize) + weight_decay * p; v = rho v + (1 - rho) g^2;
    delta = sqrt(u + eps) / sqrt(v + eps) * g; u = rho u + (1 - rho) delta^2; p = p - lr * delta.
    ConvNetJS's CIFAR-10 demo trains with rho=0.95, eps=1e-6 (lr=1).
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, *, maximize=False):
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, options: dict) -> None:
        _check_number(options["lr"], "learning rate")
        _check_number(options["rho"], "rho value", high=1.0, include_high=True)
        _check_number(options["eps"], "epsilon value")
        _check_number(options["weight_decay"], "weight_decay value")
        _check_flag(options["maximize"], "maximize")

    def _kernel(self, group: dict) -> tuple:
        rho = float(group["rho"])
        return ("optim_adadelta", (group["lr"], rho, 1 - rho, group["eps"], group["weight_decay"]),
                (group["maximize"],))

    def _update(self, device, param, grad, state: dict, group: dict):
        xp = device.xp
        lr, rho, eps, weight_decay = (float(group[key]) for key in ("lr", "rho", "eps", "weight_decay"))
        if not state:
            state["step"] = 0
            state["square_avg"] = xp.zeros_like(param)
            state["acc_delta"] = xp.zeros_like(param)
        state["step"] += 1
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        if _runs_kernel(device, param):
            return _KernelRow((param, kernel_array(xp, grad), square_avg, acc_delta), (0.0, 0.0))
        if group["maximize"]:
            grad = -grad
        if weight_decay != 0:
            grad = grad + weight_decay * param
        square_avg *= rho
        square_avg += (1 - rho) * grad * grad
        std = xp.sqrt(square_avg + eps)
        delta = xp.sqrt(acc_delta + eps)
        delta /= std
        delta *= grad
        acc_delta *= rho
        acc_delta += (1 - rho) * delta * delta
        param -= lr * delta


class RMSprop(Optimizer):
    """RMSprop (Hinton), with optional momentum and the centered variant (Graves), as torch.optim.RMSprop.

    Per parameter: g = grad (negated when maximize) + weight_decay * p; v = alpha v + (1 - alpha) g^2;
    centered: m moves towards g by torch.lerp's rule (weight 1 - alpha), and avg = sqrt(v - m^2) + eps,
    else avg = sqrt(v) + eps (eps after the square root, as torch); with momentum, b = momentum * b + g / avg
    and p = p - lr * b, else p = p - lr * (g / avg). torch's capturable, foreach and differentiable are left
    out, as by the other optimizers here: maximize, positional in torch after them, is keyword-only.
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False, *,
                 maximize=False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, options: dict) -> None:
        _check_number(options["lr"], "learning rate")
        _check_number(options["eps"], "epsilon value")
        _check_number(options["momentum"], "momentum value")
        _check_number(options["weight_decay"], "weight_decay value")
        _check_number(options["alpha"], "alpha value")  # no upper bound, as torch
        _check_flag(options["centered"], "centered")
        _check_flag(options["maximize"], "maximize")

    def _kernel(self, group: dict) -> tuple:
        alpha, momentum = float(group["alpha"]), float(group["momentum"])
        return ("optim_rmsprop", (group["lr"], alpha, 1 - alpha, 1 - (1 - alpha), group["eps"], group["weight_decay"],
                                  momentum),
                (abs(1 - alpha) < 0.5, group["centered"], momentum > 0, group["maximize"]))

    def _update(self, device, param, grad, state: dict, group: dict):
        xp = device.xp
        lr, alpha, eps, weight_decay, momentum = (
            float(group[key]) for key in ("lr", "alpha", "eps", "weight_decay", "momentum"))
        if not state:
            state["step"] = 0
            state["square_avg"] = xp.zeros_like(param)
        # momentum's and centered's state start at zero where first needed (switched on later, too)
        if momentum > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = xp.zeros_like(param)
        if group["centered"] and "grad_avg" not in state:
            state["grad_avg"] = xp.zeros_like(param)
        state["step"] += 1
        square_avg = state["square_avg"]
        if _runs_kernel(device, param):  # an array the group does not use is param, never touched
            arrays = (param, kernel_array(xp, grad), square_avg, state["grad_avg"] if group["centered"] else param,
                      state["momentum_buffer"] if momentum > 0 else param)
            return _KernelRow(arrays, (0.0, 0.0))
        if group["maximize"]:
            grad = -grad
        if weight_decay != 0:
            grad = grad + weight_decay * param
        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad
        if group["centered"]:
            grad_avg = state["grad_avg"]
            _lerp_(grad_avg, grad, 1 - alpha)
            avg = xp.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = xp.sqrt(square_avg)
        avg += eps
        if momentum > 0:
            buffer = state["momentum_buffer"]
            buffer *= momentum
            buffer += grad / avg
            param -= lr * buffer
        else:
            param -= lr * (grad / avg)


class Adagrad(Optimizer):
    """Adagrad (Duchi, Hazan & Singer), as torch.optim.Adagrad.

    Per parameter, at step t: g = grad (negated when maximize) + weight_decay * p; s = s + g^2;
    p = p - clr * g / (sqrt(s) + eps), with clr = lr / (1 + (t - 1) * lr_decay). As torch's, every
    parameter given to the constructor has its state from the start (step 0), and the sum s starts at
    the constructor's initial_accumulator_value (the defaults'), whatever a group sets. torch's foreach,
    differentiable and fused are left out; maximize is keyword-only, as there.
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10, *,
                 maximize=False):
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, maximize=maximize)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for param in group["params"]:
                with param.device.context():
                    self._initialize(param.device.xp, _at_least_1d(param.data), self.state[param])

    def _initialize(self, xp, param, state: dict) -> None:
        state["step"] = 0
        state["sum"] = xp.full_like(param, float(self.defaults["initial_accumulator_value"]))

    def _check_options(self, options: dict) -> None:
        _check_number(options["lr"], "learning rate")
        _check_number(options["lr_decay"], "lr_decay value")
        _check_number(options["weight_decay"], "weight_decay value")
        _check_number(options["initial_accumulator_value"], "initial_accumulator_value value")
        _check_number(options["eps"], "epsilon value")
        _check_flag(options["maximize"], "maximize")

    def _kernel(self, group: dict) -> tuple:
        return "optim_adagrad", (group["weight_decay"], group["eps"]), (group["maximize"],)

    def _update(self, device, param, grad, state: dict, group: dict):
        xp = device.xp
        lr, lr_decay, eps, weight_decay = (float(group[key]) for key in ("lr", "lr_decay", "eps", "weight_decay"))
        if not state:  # a parameter of a group added after the constructor
            self._initialize(xp, param, state)
        state["step"] += 1
        clr = lr / (1 + (state["step"] - 1) * lr_decay)
        state_sum = state["sum"]
        if _runs_kernel(device, param):
            return _KernelRow((param, kernel_array(xp, grad), state_sum), (_float32(clr), 0.0))
        if group["maximize"]:
            grad = -grad
        if weight_decay != 0:
            grad = grad + weight_decay * param
        state_sum += grad * grad
        std = xp.sqrt(state_sum)
        std += eps
        param -= clr * grad / std


class Adamax(Optimizer):
    """Adamax (Kingma & Ba), Adam on the infinity norm, as torch.optim.Adamax.

    Per parameter, at step t: g = grad (negated when maximize) + weight_decay * p; m moves towards g by
    torch.lerp's rule (weight 1 - beta1); u = max(beta2 u, |g| + eps) (NaN wins, as torch.maximum);
    p = p - lr / (1 - beta1^t) * m / u. torch's foreach, differentiable and capturable are left out;
    maximize is keyword-only, as there.
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, *, maximize=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, options: dict) -> None:
        _check_number(options["lr"], "learning rate")
        _check_number(options["eps"], "epsilon value")
        _check_betas(options["betas"])
        _check_number(options["weight_decay"], "weight_decay value")
        _check_flag(options["maximize"], "maximize")

    def _kernel(self, group: dict) -> tuple:
        beta1, beta2 = float(group["betas"][0]), float(group["betas"][1])
        return ("optim_adamax", (1 - beta1, 1 - (1 - beta1), beta2, group["eps"], group["weight_decay"]),
                (abs(1 - beta1) < 0.5, group["maximize"]))

    def _update(self, device, param, grad, state: dict, group: dict):
        xp = device.xp
        lr, eps, weight_decay = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = float(group["betas"][0]), float(group["betas"][1])
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(param)
            state["exp_inf"] = xp.zeros_like(param)
        state["step"] += 1
        exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
        clr = lr / (1 - beta1 ** state["step"])
        if _runs_kernel(device, param):
            return _KernelRow((param, kernel_array(xp, grad), exp_avg, exp_inf), (_float32(clr), 0.0))
        if group["maximize"]:
            grad = -grad
        if weight_decay != 0:
            grad = grad + weight_decay * param
        _lerp_(exp_avg, grad, 1 - beta1)
        exp_inf *= beta2
        xp.maximum(exp_inf, xp.abs(grad) + eps, out=exp_inf)
        param -= clr * exp_avg / exp_inf


def _decay_weights(param, grad, lr: float, weight_decay: float, decoupled: bool):
    """Adam's weight decay: p scaled by 1 - lr * weight_decay in place (decoupled), or the gradient
    g + weight_decay * p returned."""
    if weight_decay != 0:
        if decoupled:
            param *= 1 - lr * weight_decay
        else:
            grad = grad + weight_decay * param
    return grad


def _check_moment_options(options: dict) -> None:
    """The options NAdam and RAdam share: lr, eps, betas, weight_decay, decoupled_weight_decay, maximize."""
    _check_number(options["lr"], "learning rate")
    _check_number(options["eps"], "epsilon value")
    _check_betas(options["betas"])
    _check_number(options["weight_decay"], "weight_decay value")
    _check_flag(options["decoupled_weight_decay"], "decoupled_weight_decay")
    _check_flag(options["maximize"], "maximize")


def _moment_kernel_arguments(group: dict) -> tuple:
    """The scalars and flags that optim_nadam and optim_radam share: (lerp weight 1 - beta1, its rest, beta2,
    1 - beta2, weight_decay, decoupled decay scale 1 - lr * weight_decay, eps) and (lerp from the start,
    maximize, decoupled_weight_decay)."""
    lr, weight_decay = float(group["lr"]), float(group["weight_decay"])
    beta1, beta2 = float(group["betas"][0]), float(group["betas"][1])
    return ((1 - beta1, 1 - (1 - beta1), beta2, 1 - beta2, weight_decay, 1 - lr * weight_decay, group["eps"]),
            (abs(1 - beta1) < 0.5, group["maximize"], group["decoupled_weight_decay"]))


class NAdam(Optimizer):
    """NAdam (Dozat): Adam with Nesterov momentum, as torch.optim.NAdam.

    Per parameter, at step t: g = grad (negated when maximize); weight decay adds weight_decay * p to g
    (L2), or first scales p by 1 - lr * weight_decay (decoupled_weight_decay); mu_t = beta1 (1 - 0.5 *
    0.96^(t momentum_decay)), and the state mu_product, the product of mu_1 ... mu_t, a float32 number as
    torch's; m moves towards g by torch.lerp's rule (weight 1 - beta1); v = beta2 v + (1 - beta2) g^2;
    denom = sqrt(v / (1 - beta2^t)) + eps; then p = p - lr (1 - mu_t) / (1 - mu_product) * g / denom and
    p = p - lr mu_{t+1} / (1 - mu_product mu_{t+1}) * m / denom. torch's foreach, capturable and
    differentiable are left out; maximize is keyword-only, as there.
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, maximize=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, options: dict) -> None:
        _check_moment_options(options)
        _check_number(options["momentum_decay"], "momentum_decay value")

    def _kernel(self, group: dict) -> tuple:
        scalars, flags = _moment_kernel_arguments(group)
        return "optim_nadam", scalars, flags

    def _update(self, device, param, grad, state: dict, group: dict):
        xp = device.xp
        lr, eps, weight_decay = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = float(group["betas"][0]), float(group["betas"][1])
        momentum_decay = float(group["momentum_decay"])
        if not state:
            state["step"] = 0
            state["mu_product"] = 1.0
            state["exp_avg"] = xp.zeros_like(param)
            state["exp_avg_sq"] = xp.zeros_like(param)
        state["step"] += 1
        step = float(state["step"])  # torch's step is a float
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        bias_correction2 = 1 - beta2**step
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
        # torch's mu_product is a float32 tensor: mu_product *= mu is a float32 product
        mu_product = state["mu_product"] = float(numpy.float32(state["mu_product"]) * numpy.float32(mu))
        grad_step = lr * (1.0 - mu) / (1.0 - mu_product)
        avg_step = lr * mu_next / (1.0 - mu_product * mu_next)
        if _runs_kernel(device, param):
            return _KernelRow((param, kernel_array(xp, grad), exp_avg, exp_avg_sq),
                              (_float32(bias_correction2), _float32(grad_step), _float32(avg_step)))
        if group["maximize"]:
            grad = -grad
        grad = _decay_weights(param, grad, lr, weight_decay, group["decoupled_weight_decay"])
        _lerp_(exp_avg, grad, 1 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        denominator = xp.sqrt(exp_avg_sq / bias_correction2)
        denominator += eps
        param -= grad_step * grad / denominator
        param -= avg_step * exp_avg / denominator


class RAdam(Optimizer):
    """RAdam (Liu et al.): Adam with its adaptive rate's variance rectified, as torch.optim.RAdam.

    Per parameter, at step t: g, weight decay, m and v as NAdam's; rho_inf = 2 / (1 - beta2) - 1 and
    rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t); while rho_t <= 5, p = p - m / (1 - beta1^t) * lr;
    after, p = p - m / (1 - beta1^t) * lr * sqrt(1 - beta2^t) / (sqrt(v) + eps) * r_t (the quotient as
    torch's: a reciprocal, then a product), with r_t = sqrt((rho_t - 4) (rho_t - 2) rho_inf / ((rho_inf
    - 4) (rho_inf - 2) rho_t)). torch's foreach, capturable and differentiable are left out; maximize is
    keyword-only, as there.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False,
                 *, maximize=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _check_options(self, options: dict) -> None:
        _check_moment_options(options)

    def _kernel(self, group: dict) -> tuple:
        scalars, flags = _moment_kernel_arguments(group)
        return "optim_radam", scalars + (group["lr"],), flags

    def _update(self, device, param, grad, state: dict, group: dict):
        xp = device.xp
        lr, eps, weight_decay = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = float(group["betas"][0]), float(group["betas"][1])
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(param)
            state["exp_avg_sq"] = xp.zeros_like(param)
        state["step"] += 1
        step = float(state["step"])  # torch's step is a float
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        bias_correction2_sqrt = bias_correction2**0.5
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
        rect = None  # the rectification term, from the first step where rho_t > 5
        if rho_t > 5.0:
            rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
        if _runs_kernel(device, param):  # a rectification term is never 0: 0 marks the steps without one
            return _KernelRow((param, kernel_array(xp, grad), exp_avg, exp_avg_sq),
                              (_float32(bias_correction1), _float32(bias_correction2_sqrt),
                               0.0 if rect is None else _float32(rect)))
        if group["maximize"]:
            grad = -grad
        grad = _decay_weights(param, grad, lr, weight_decay, group["decoupled_weight_decay"])
        _lerp_(exp_avg, grad, 1 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        bias_corrected_exp_avg = exp_avg / bias_correction1
        if rect is None:
            param -= bias_corrected_exp_avg * lr
        else:
            adaptive_lr = xp.reciprocal(xp.sqrt(exp_avg_sq) + eps) * bias_correction2_sqrt
            param -= bias_corrected_exp_avg * lr * adaptive_lr * rect


from . import lr_scheduler  # noqa: E402  (it imports Optimizer from here)
