"""Learning-rate schedules, as torch.optim.lr_scheduler: StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR,
CosineAnnealingWarmRestarts, LambdaLR, MultiplicativeLR, LinearLR, ConstantLR, PolynomialLR, CyclicLR and OneCycleLR
(which cycle momentum too), ReduceLROnPlateau, and SequentialLR and ChainedScheduler, which combine schedules.

    >>> scheduler = gpucnn.optim.lr_scheduler.StepLR(optimizer, step_size=30, gamma=0.1)
    >>> for epoch in range(90):
    ...     train_one_epoch(model, optimizer)
    ...     scheduler.step()

A schedule sets each parameter group's ``lr`` once an epoch (``step()``), from the group's rate before
the step, as PyTorch's do: a rate set by hand between steps carries on from there. Each group keeps its
starting rate as ``initial_lr``, the schedule's ``base_lrs``. LambdaLR, CosineAnnealingWarmRestarts, CyclicLR
and OneCycleLR, as PyTorch's, set the rate from their bounds instead (a rate set by hand lasts until the next
step); ReduceLROnPlateau cuts it when the metric given to ``step(metrics)`` stops improving.

    >>> warmup = gpucnn.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=5)
    >>> cosine = gpucnn.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=95)
    >>> scheduler = gpucnn.optim.lr_scheduler.SequentialLR(optimizer, [warmup, cosine], milestones=[5])
"""

from __future__ import annotations

import bisect
import collections
import math
import numbers
import types

from . import Optimizer

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts",
           "LambdaLR", "MultiplicativeLR", "LinearLR", "ConstantLR", "PolynomialLR", "CyclicLR", "OneCycleLR",
           "ReduceLROnPlateau", "SequentialLR", "ChainedScheduler"]


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_start(owner: str, optimizer, last_epoch) -> None:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{owner} needs an Optimizer, got {type(optimizer).__name__}")
    if not _is_int(last_epoch) or last_epoch < -1:
        raise ValueError(f"{owner}: last_epoch must be an int of -1 or more, got {last_epoch!r}")


def _check_real(owner: str, name: str, value, ok, what: str) -> float:
    """``value``, or ValueError unless it is a real number (not a bool) for which ``ok(value)`` holds."""
    if not _is_real(value) or not ok(value):
        raise ValueError(f"{owner}: {name} must be {what}, got {value!r}")
    return value


def _check_count(owner: str, name: str, value, low: int) -> int:
    if not _is_int(value) or value < low:
        raise ValueError(f"{owner}: {name} must be an int of {low} or more, got {value!r}")
    return int(value)


def _check_flag(owner: str, name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{owner}: {name} must be True or False, got {value!r}")
    return value


def _listed(owner: str, name: str, value, optimizer: Optimizer, kind: str) -> list:
    """One value a parameter group: ``value`` for each, or the list or tuple of one a group it is (``kind``
    names what a single value is, for the error)."""
    count = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != count:
            raise ValueError(f"{owner}: {name} must be {kind} or a list of {count} (one a parameter group), got "
                             f"{len(value)}")
        return list(value)
    return [value] * count


def _per_group(owner: str, name: str, value, optimizer: Optimizer, ok, what: str) -> list:
    """``_listed``'s numbers, each checked by ``ok`` (``what`` says what it wants)."""
    values = _listed(owner, name, value, optimizer, "a number")
    for item in values:
        _check_real(owner, name, item, ok, what)
    return values


class LRScheduler:
    """A schedule over ``optimizer``'s groups, made at epoch ``last_epoch + 1`` with the groups' rates as they
    are (PyTorch's schedules take a first step that sets them unchanged; LambdaLR, LinearLR and OneCycleLR set
    theirs there, as PyTorch's). ``last_epoch`` -1 (a new schedule) takes each group's ``lr`` as its
    ``initial_lr``; another value resumes a schedule whose groups hold ``initial_lr`` already (where PyTorch's
    StepLR and MultiStepLR apply their factor if that first epoch is one of theirs, this changes no rate).
    Subclasses give ``rates()``, the groups' rates at ``last_epoch``."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        _check_start(type(self).__name__, optimizer, last_epoch)
        self.optimizer = optimizer
        for index, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"{type(self).__name__}: last_epoch={last_epoch} resumes a schedule, but parameter "
                               f"group {index} has no 'initial_lr' (a schedule made with last_epoch=-1 sets it)")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = int(last_epoch) + 1
        self._set(self._first_rates())

    def rates(self) -> list:
        raise NotImplementedError

    def _first_rates(self) -> list:
        """The groups' rates at the schedule's first epoch: as they are, unless the schedule sets them there."""
        return self._current()

    def step(self) -> None:
        """Moves to the next epoch and sets every group's ``lr`` to the schedule's rate there."""
        self.last_epoch += 1
        self._set(self.rates())

    def get_last_lr(self) -> list:
        """The rates the last ``step()`` set, a group each."""
        return list(self._last_lr)

    def _initial_step(self) -> None:
        """One epoch on, with the rates of a schedule's first epoch (SequentialLR starts its first schedule so)."""
        self.last_epoch += 1
        self._set(self._first_rates())

    def _restart(self) -> None:
        """Back to epoch 0, as SequentialLR sets a schedule whose milestone has come: the rates there from the
        base rates where the schedule has such a form (``_closed_form``), else as a step computes them."""
        self.last_epoch = 0
        closed = self._closed_form()
        self._set(self.rates() if closed is None else closed)

    def _closed_form(self) -> list | None:
        """The groups' rates at ``last_epoch`` from the base rates alone; None where the schedule has no such form."""
        return None

    def state_dict(self) -> dict:
        """The schedule's state, all but the optimizer (whose own ``state_dict`` holds the groups)."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        self.__dict__.update(state_dict)

    def _set(self, rates: list) -> None:
        for group, rate in zip(self.optimizer.param_groups, rates):
            group["lr"] = rate
        self._last_lr = self._current()

    def _current(self) -> list:
        return [group["lr"] for group in self.optimizer.param_groups]


def _check_gamma(owner: str, gamma) -> float:
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not gamma > 0:
        raise ValueError(f"{owner}: gamma must be a positive number, got {gamma!r}")
    return float(gamma)


class StepLR(LRScheduler):
    """Every ``step_size`` epochs, each rate times ``gamma``."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if isinstance(step_size, bool) or not isinstance(step_size, numbers.Integral) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive int, got {step_size!r}")
        self.step_size, self.gamma = int(step_size), _check_gamma("StepLR", gamma)
        super().__init__(optimizer, last_epoch)

    def rates(self) -> list:
        if self.last_epoch % self.step_size:
            return self._current()
        return [rate * self.gamma for rate in self._current()]

    def _closed_form(self) -> list:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """At each epoch of ``milestones``, each rate times ``gamma`` (times gamma**k for a milestone given k times)."""

    def __init__(self, optimizer: Optimizer, milestones, gamma: float = 0.1, last_epoch: int = -1):
        milestones = list(milestones)
        if any(isinstance(m, bool) or not isinstance(m, numbers.Integral) for m in milestones):
            raise ValueError(f"MultiStepLR: milestones must be ints, got {milestones!r}")
        self.milestones = collections.Counter(int(m) for m in milestones)
        self.gamma = _check_gamma("MultiStepLR", gamma)
        super().__init__(optimizer, last_epoch)

    def rates(self) -> list:
        times = self.milestones.get(self.last_epoch, 0)
        if not times:
            return self._current()
        return [rate * self.gamma**times for rate in self._current()]

    def _closed_form(self) -> list:
        times = bisect.bisect_right(sorted(self.milestones.elements()), self.last_epoch)
        return [base * self.gamma**times for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Every epoch, each rate times ``gamma``."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = _check_gamma("ExponentialLR", gamma)
        super().__init__(optimizer, last_epoch)

    def rates(self) -> list:
        return [rate * self.gamma for rate in self._current()]

    def _closed_form(self) -> list:
        return [base * self.gamma**self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """From each base rate down to ``eta_min`` along half a cosine over ``T_max`` epochs, then back up, and
    so on (SGDR without restarts): eta_min + (base - eta_min) * (1 + cos(pi * epoch / T_max)) / 2, reached
    step by step from the current rate, as PyTorch's (so that a rate set by hand carries on)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        if isinstance(T_max, bool) or not isinstance(T_max, numbers.Integral) or T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive int, got {T_max!r}")
        if isinstance(eta_min, bool) or not isinstance(eta_min, numbers.Real) or eta_min < 0:
            raise ValueError(f"CosineAnnealingLR: eta_min must be a number of 0 or more, got {eta_min!r}")
        self.T_max, self.eta_min = int(T_max), float(eta_min)
        super().__init__(optimizer, last_epoch)

    def rates(self) -> list:
        epoch, period, low = self.last_epoch, self.T_max, self.eta_min
        if (epoch - 1 - period) % (2 * period) == 0:  # the bottom of a cosine, where the ratio below is 0 / 0
            return [rate + (base - low) * (1 - math.cos(math.pi / period)) / 2
                    for rate, base in zip(self._current(), self.base_lrs)]
        ratio = (1 + math.cos(math.pi * epoch / period)) / (1 + math.cos(math.pi * (epoch - 1) / period))
        return [low + ratio * (rate - low) for rate in self._current()]

    def _closed_form(self) -> list:
        return [self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR: from each base rate down to ``eta_min`` along half a cosine over ``T_0`` epochs, then back to the
    base rate at once and down again over ``T_0 * T_mult`` epochs, and so on: eta_min + (base - eta_min) *
    (1 + cos(pi * T_cur / T_i)) / 2 at ``T_cur`` epochs into a period of ``T_i``. ``step(epoch)`` takes the
    epoch, a fraction too (``epoch + batch / batches`` steps it a batch at a time), as PyTorch's."""

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0, last_epoch: int = -1):
        name = "CosineAnnealingWarmRestarts"
        self.T_0 = self.T_i = _check_count(name, "T_0", T_0, 1)
        self.T_mult = _check_count(name, "T_mult", T_mult, 1)
        self.eta_min = float(_check_real(name, "eta_min", eta_min, lambda x: x >= 0, "a number of 0 or more"))
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def step(self, epoch: float | None = None) -> None:
        """One epoch on, or to ``epoch`` (a number of 0 or more; its whole part becomes ``last_epoch``)."""
        if epoch is None:
            self.last_epoch += 1
            self._next()
        else:
            if not _is_real(epoch) or epoch < 0:
                raise ValueError(f"CosineAnnealingWarmRestarts.step: epoch must be a number of 0 or more, "
                                 f"got {epoch!r}")
            self._move_to(epoch)
        self._set(self.rates())

    def rates(self) -> list:
        return [self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
                for base in self.base_lrs]

    def _first_rates(self) -> list:
        if self.last_epoch == 0:
            self._move_to(0)
        else:
            self._next()
        return self.rates()

    def _next(self) -> None:
        self.T_cur += 1
        if self.T_cur >= self.T_i:
            self.T_cur %= self.T_i
            self.T_i *= self.T_mult

    def _move_to(self, epoch: float) -> None:
        if epoch < self.T_0:
            self.T_i, self.T_cur = self.T_0, epoch
        elif self.T_mult == 1:
            self.T_cur = epoch % self.T_0
        else:  # the period that holds ``epoch``: T_0 * (T_mult**n - 1) / (T_mult - 1) epochs come before it
            n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
            self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
            self.T_i = self.T_0 * self.T_mult**n
        self.last_epoch = math.floor(epoch)


class LambdaLR(LRScheduler):
    """Each rate its group's base rate times ``lr_lambda(epoch)``: one function for every group, or a list of
    one a group. As PyTorch's, ``state_dict`` leaves the functions out: ``lr_lambdas`` holds None for a
    function and a copy of its attributes (``__dict__``) for another callable object."""

    def __init__(self, optimizer: Optimizer, lr_lambda, last_epoch: int = -1):
        name = type(self).__name__
        _check_start(name, optimizer, last_epoch)
        lr_lambdas = _listed(name, "lr_lambda", lr_lambda, optimizer, "a function")
        for function in lr_lambdas:
            if not callable(function):
                raise ValueError(f"{name}: lr_lambda must be callable, got {function!r}")
        self.lr_lambdas = lr_lambdas
        super().__init__(optimizer, last_epoch)

    def rates(self) -> list:
        return [base * function(self.last_epoch) for function, base in zip(self.lr_lambdas, self.base_lrs)]

    def _first_rates(self) -> list:
        return self.rates()

    def state_dict(self) -> dict:
        state = {key: value for key, value in self.__dict__.items() if key not in ("optimizer", "lr_lambdas")}
        state["lr_lambdas"] = [None if isinstance(function, types.FunctionType) or not hasattr(function, "__dict__")
                               else dict(function.__dict__) for function in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        """Loads the state, and the attributes saved of each callable object that is not a function."""
        self.__dict__.update({key: value for key, value in state_dict.items() if key != "lr_lambdas"})
        for function, attributes in zip(self.lr_lambdas, state_dict.get("lr_lambdas", ())):
            if attributes is not None:
                function.__dict__.update(attributes)


class MultiplicativeLR(LambdaLR):
    """Every epoch, each rate times ``lr_lambda(epoch)``: one function for every group, or a list of one a group;
    its ``state_dict`` as LambdaLR's."""

    def rates(self) -> list:
        return [rate * function(self.last_epoch) for function, rate in zip(self.lr_lambdas, self._current())]

    def _first_rates(self) -> list:
        return self._current()


class LinearLR(LRScheduler):
    """Each rate times ``start_factor`` at the first epoch, then step by step along a line to ``end_factor``
    times its base rate at epoch ``total_iters``, where it stays: base * (start + (end - start) * epoch /
    total_iters), reached from the current rate, as PyTorch's (so that a rate set by hand carries on)."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1):
        self.start_factor = _check_real("LinearLR", "start_factor", start_factor, lambda x: 0 < x <= 1,
                                        "a number above 0 and at most 1")
        self.end_factor = _check_real("LinearLR", "end_factor", end_factor, lambda x: 0 <= x <= 1,
                                      "a number from 0 to 1")
        self.total_iters = _check_count("LinearLR", "total_iters", total_iters, 1)
        super().__init__(optimizer, last_epoch)

    def rates(self) -> list:
        epoch, start, end = self.last_epoch, self.start_factor, self.end_factor
        if epoch == 0:
            return [rate * start for rate in self._current()]
        if epoch > self.total_iters:
            return self._current()
        factor = 1.0 + (end - start) / (self.total_iters * start + (epoch - 1) * (end - start))
        return [rate * factor for rate in self._current()]

    def _first_rates(self) -> list:
        return self.rates() if self.last_epoch == 0 else self._current()

    def _closed_form(self) -> list:
        progress = min(self.total_iters, self.last_epoch) / self.total_iters
        return [base * (self.start_factor + (self.end_factor - self.start_factor) * progress) for base in self.base_lrs]


class ConstantLR(LRScheduler):
    """Each rate times ``factor`` from the first epoch until epoch ``total_iters``, where it is divided by
    ``factor`` again (a warm-up at a constant rate); from the current rate, as PyTorch's."""

    def __init__(self, optimizer: Optimizer, factor: float = 1.0 / 3, total_iters: int = 5, last_epoch: int = -1):
        # PyTorch takes a factor of 0, and divides by it at total_iters
        self.factor = _check_real("ConstantLR", "factor", factor, lambda x: 0 < x <= 1,
                                  "a number above 0 and at most 1")
        self.total_iters = _check_count("ConstantLR", "total_iters", total_iters, 0)
        super().__init__(optimizer, last_epoch)

    def rates(self) -> list:
        if self.last_epoch == 0:
            return [rate * self.factor for rate in self._current()]
        if self.last_epoch != self.total_iters:
            return self._current()
        return [rate * (1.0 / self.factor) for rate in self._current()]

    def _first_rates(self) -> list:
        return self.rates() if self.last_epoch == 0 else self._current()

    def _closed_form(self) -> list:
        return [base * (self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor))
                for base in self.base_lrs]


class PolynomialLR(LRScheduler):
    """Each rate down to 0 over ``total_iters`` epochs: base * (1 - epoch / total_iters) ** power, reached step
    by step from the current rate, as PyTorch's; unchanged after."""

    def __init__(self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1):
        self.total_iters = _check_count("PolynomialLR", "total_iters", total_iters, 1)
        self.power = _check_real("PolynomialLR", "power", power, lambda x: True, "a number")
        super().__init__(optimizer, last_epoch)

    def rates(self) -> list:
        if self.last_epoch > self.total_iters:
            return self._current()
        factor = ((1.0 - self.last_epoch / self.total_iters)
                  / (1.0 - (self.last_epoch - 1) / self.total_iters)) ** self.power
        return [rate * factor for rate in self._current()]

    def _closed_form(self) -> list:
        return [base * (1.0 - min(self.total_iters, self.last_epoch) / self.total_iters) ** self.power
                for base in self.base_lrs]


class CyclicLR(LRScheduler):
    """The cyclical learning rate policy, stepped once a batch: each rate up from ``base_lr`` to ``max_lr`` over
    ``step_size_up`` steps and back down over ``step_size_down`` (default: as many), the height of each cycle
    scaled by ``mode``: 'triangular' (1), 'triangular2' (halved every cycle) or 'exp_range' (gamma ** step);
    or by ``scale_fn`` of the cycle (``scale_mode='cycle'``) or of the step ('iterations'). With
    ``cycle_momentum`` the momentum (SGD's ``momentum``, Adam's ``betas[0]``) goes the other way, between
    ``max_momentum`` and ``base_momentum``. The rates come from these bounds, not from the current one; as
    PyTorch's, ``state_dict`` keeps a ``scale_fn``'s attributes where it is an object and not a function."""

    def __init__(self, optimizer: Optimizer, base_lr, max_lr, step_size_up: int = 2000,
                 step_size_down: int | None = None, mode: str = "triangular", gamma: float = 1.0, scale_fn=None,
                 scale_mode: str = "cycle", cycle_momentum: bool = True, base_momentum=0.8, max_momentum=0.9,
                 last_epoch: int = -1):
        name = "CyclicLR"
        _check_start(name, optimizer, last_epoch)
        base_lrs = _per_group(name, "base_lr", base_lr, optimizer, lambda x: x >= 0, "a number of 0 or more")
        self.max_lrs = _per_group(name, "max_lr", max_lr, optimizer, lambda x: x >= 0, "a number of 0 or more")
        up = _check_count(name, "step_size_up", step_size_up, 1)
        down = up if step_size_down is None else _check_count(name, "step_size_down", step_size_down, 1)
        self.total_size, self.step_ratio = float(up + down), up / (up + down)
        if scale_fn is None and mode not in ("triangular", "triangular2", "exp_range"):
            raise ValueError(f"{name}: mode must be 'triangular', 'triangular2' or 'exp_range' (or give scale_fn), "
                             f"got {mode!r}")
        if scale_fn is not None and not callable(scale_fn):
            raise ValueError(f"{name}: scale_fn must be callable, got {scale_fn!r}")
        if scale_mode not in ("cycle", "iterations"):
            raise ValueError(f"{name}: scale_mode must be 'cycle' or 'iterations', got {scale_mode!r}")
        self.mode, self.gamma = mode, _check_real(name, "gamma", gamma, lambda x: x > 0, "a positive number")
        self.scale_fn = scale_fn
        self.scale_mode = scale_mode if scale_fn is not None else "iterations" if mode == "exp_range" else "cycle"
        self.cycle_momentum = _check_flag(name, "cycle_momentum", cycle_momentum)
        self.use_beta1 = "betas" in optimizer.defaults
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and not self.use_beta1:
                raise ValueError(f"{name}: cycle_momentum needs an optimizer with momentum or betas, and "
                                 f"{type(optimizer).__name__} has neither (pass cycle_momentum=False)")
            self.base_momentums = _per_group(name, "base_momentum", base_momentum, optimizer, lambda x: x >= 0,
                                             "a number of 0 or more")
            self.max_momentums = _per_group(name, "max_momentum", max_momentum, optimizer, lambda x: x >= 0,
                                            "a number of 0 or more")
        if last_epoch == -1:
            for group, rate in zip(optimizer.param_groups, base_lrs):
                group["lr"] = rate
            if cycle_momentum:
                for group, top, low in zip(optimizer.param_groups, self.max_momentums, self.base_momentums):
                    _set_momentum(group, top, self.use_beta1)
                    group["max_momentum"], group["base_momentum"] = top, low
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs  # after the first rates, which come from the groups' initial_lr, as PyTorch's

    def rates(self) -> list:
        """The groups' rates at ``last_epoch``; with ``cycle_momentum``, sets their momenta there too."""
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        height = x / self.step_ratio if x <= self.step_ratio else (x - 1) / (self.step_ratio - 1)
        scale = self._scale(cycle if self.scale_mode == "cycle" else self.last_epoch)
        if self.cycle_momentum:
            for group, low, top in zip(self.optimizer.param_groups, self.base_momentums, self.max_momentums):
                _set_momentum(group, top - (top - low) * height * scale, self.use_beta1)
        return [low + (top - low) * height * scale for low, top in zip(self.base_lrs, self.max_lrs)]

    def _first_rates(self) -> list:
        return self.rates()

    def _scale(self, x: float) -> float:
        if self.scale_fn is not None:
            return self.scale_fn(x)
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma**x if self.mode == "exp_range" else 1.0

    def state_dict(self) -> dict:
        state = {key: value for key, value in self.__dict__.items() if key not in ("optimizer", "scale_fn")}
        function = self.scale_fn
        state["scale_fn"] = (None if function is None or isinstance(function, types.FunctionType)
                             or not hasattr(function, "__dict__") else dict(function.__dict__))
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        """Loads the state, and the attributes saved of a ``scale_fn`` that is an object, not a function."""
        self.__dict__.update({key: value for key, value in state_dict.items() if key != "scale_fn"})
        if state_dict.get("scale_fn") is not None:
            self.scale_fn.__dict__.update(state_dict["scale_fn"])


def _set_momentum(group: dict, momentum: float, use_beta1: bool) -> None:
    """Sets a group's momentum: Adam's ``betas[0]`` or SGD's ``momentum``."""
    if use_beta1:
        group["betas"] = (momentum, *group["betas"][1:])
    else:
        group["momentum"] = momentum


class OneCycleLR(LRScheduler):
    """The 1cycle policy, stepped once a batch over ``total_steps`` (or ``epochs * steps_per_epoch``) steps:
    each rate from max_lr / div_factor up to ``max_lr`` at step pct_start * total_steps - 1, then down to
    max_lr / div_factor / final_div_factor at step total_steps - 1 (``three_phase``: back down to the start
    rate over as many steps first), along half a cosine or a line. With ``cycle_momentum`` the momentum (SGD's
    ``momentum``, Adam's ``betas[0]``) goes the other way, between ``max_momentum`` and ``base_momentum``.
    Each group keeps the bounds as ``initial_lr``, ``max_lr``, ``min_lr``, ``max_momentum`` and
    ``base_momentum``, and its rate comes from them, not from the current one (PyTorch's is not chainable).
    As PyTorch's, ``step()`` may be called ``total_steps`` times (the last carries the last phase's curve one
    step on), and a step past that is a ValueError."""

    def __init__(self, optimizer: Optimizer, max_lr, total_steps: int | None = None, epochs: int | None = None,
                 steps_per_epoch: int | None = None, pct_start: float = 0.3, anneal_strategy: str = "cos",
                 cycle_momentum: bool = True, base_momentum=0.85, max_momentum=0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False, last_epoch: int = -1):
        name = "OneCycleLR"
        _check_start(name, optimizer, last_epoch)
        if total_steps is not None:
            self.total_steps = _check_count(name, "total_steps", total_steps, 1)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (_check_count(name, "epochs", epochs, 1)
                                * _check_count(name, "steps_per_epoch", steps_per_epoch, 1))
        else:
            raise ValueError(f"{name}: total_steps, or epochs and steps_per_epoch, must be given")
        _check_real(name, "pct_start", pct_start, lambda x: 0 <= x <= 1, "a number from 0 to 1")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"{name}: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        self.cycle_momentum = _check_flag(name, "cycle_momentum", cycle_momentum)
        _check_flag(name, "three_phase", three_phase)
        _check_real(name, "div_factor", div_factor, lambda x: x > 0, "a positive number")
        _check_real(name, "final_div_factor", final_div_factor, lambda x: x > 0, "a positive number")
        max_lrs = _per_group(name, "max_lr", max_lr, optimizer, lambda x: x > 0, "a positive number")
        self.use_beta1 = "betas" in optimizer.defaults
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and not self.use_beta1:
                raise ValueError(f"{name}: cycle_momentum needs an optimizer with momentum or betas, and "
                                 f"{type(optimizer).__name__} has neither (pass cycle_momentum=False)")
            max_momenta = _per_group(name, "max_momentum", max_momentum, optimizer, lambda x: x >= 0,
                                     "a number of 0 or more")
            base_momenta = _per_group(name, "base_momentum", base_momentum, optimizer, lambda x: x >= 0,
                                      "a number of 0 or more")
        # (end step, the group's keys of the rates at start and end, of the momenta at start and end)
        rise = (float(pct_start * self.total_steps) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum")
        if three_phase:
            self._phases = [rise,
                            (float(2 * pct_start * self.total_steps) - 2, "max_lr", "initial_lr", "base_momentum",
                             "max_momentum"),
                            (self.total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        else:
            self._phases = [rise, (self.total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]
        if last_epoch == -1:
            for group, top in zip(optimizer.param_groups, max_lrs):
                group["initial_lr"] = top / div_factor
                group["max_lr"] = top
                group["min_lr"] = group["initial_lr"] / final_div_factor
            if cycle_momentum:
                for group, top, low in zip(optimizer.param_groups, max_momenta, base_momenta):
                    _set_momentum(group, top, self.use_beta1)
                    group["max_momentum"], group["base_momentum"] = top, low
        else:
            keys = ("initial_lr", "max_lr", "min_lr") + (("max_momentum", "base_momentum") if cycle_momentum else ())
            for index, group in enumerate(optimizer.param_groups):
                missing = [key for key in keys if key not in group]
                if missing:
                    raise KeyError(f"{name}: last_epoch={last_epoch} resumes a schedule, but parameter group "
                                   f"{index} lacks {missing} (a schedule made with last_epoch=-1 sets them)")
        super().__init__(optimizer, last_epoch)

    def step(self) -> None:
        """Moves to the next step and sets every group's ``lr`` (and momentum) there; ValueError past
        ``total_steps`` steps, changing nothing."""
        self._check_step(self.last_epoch + 1)
        super().step()

    def rates(self) -> list:
        """The groups' rates at ``last_epoch``; with ``cycle_momentum``, sets their momenta there too."""
        rates = []
        for group in self.optimizer.param_groups:
            rate, momentum = self._at(group)
            rates.append(rate)
            if self.cycle_momentum:
                _set_momentum(group, momentum, self.use_beta1)
        return rates

    def _first_rates(self) -> list:
        self._check_step(self.last_epoch)
        return self.rates()

    def _check_step(self, step: int) -> None:
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {step} times, past total_steps={self.total_steps}")

    def _at(self, group: dict) -> tuple:
        """The group's rate and momentum (None without cycle_momentum) at ``last_epoch``."""
        step, start = self.last_epoch, 0.0
        for index, (end, rate_from, rate_to, momentum_from, momentum_to) in enumerate(self._phases):
            if step <= end or index == len(self._phases) - 1:
                # a phase of no steps (pct_start * total_steps of 1, say) is at its end, where PyTorch divides by 0
                fraction = (step - start) / (end - start) if end != start else 1.0
                momentum = (self._anneal(group[momentum_from], group[momentum_to], fraction)
                            if self.cycle_momentum else None)
                return self._anneal(group[rate_from], group[rate_to], fraction), momentum
            start = end

    def _anneal(self, start: float, end: float, fraction: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)
        return (end - start) * fraction + start


class ReduceLROnPlateau(LRScheduler):
    """Each rate times ``factor`` (not below its group's ``min_lr``) once the metric given to ``step(metrics)``
    has not improved for more than ``patience`` steps in a row; then, for ``cooldown`` steps, none counts as
    bad. A metric improves on the best so far below best * (1 - threshold) (``mode='min'``) or above
    best * (1 + threshold) (``mode='max'``), or below best - threshold or above best + threshold
    (``threshold_mode='abs'``); a cut of ``eps`` or less is skipped. PyTorch's rules, step for step."""

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0, min_lr=0,
                 eps: float = 1e-8):
        name = "ReduceLROnPlateau"
        _check_start(name, optimizer, -1)
        if mode not in ("min", "max"):
            raise ValueError(f"{name}: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"{name}: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.factor = _check_real(name, "factor", factor, lambda x: 0 <= x < 1, "a number from 0 to below 1")
        self.patience = _check_count(name, "patience", patience, 0)
        self.threshold = _check_real(name, "threshold", threshold, lambda x: x >= 0, "a number of 0 or more")
        self.cooldown = _check_count(name, "cooldown", cooldown, 0)
        self.min_lrs = _per_group(name, "min_lr", min_lr, optimizer, lambda x: x >= 0, "a number of 0 or more")
        self.default_min_lr = None if isinstance(min_lr, (list, tuple)) else min_lr
        self.eps = _check_real(name, "eps", eps, lambda x: x >= 0, "a number of 0 or more")
        self.optimizer, self.mode, self.threshold_mode = optimizer, mode, threshold_mode
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.last_epoch = 0
        self.best, self.num_bad_epochs, self.cooldown_counter = self.mode_worse, 0, 0
        self._last_lr = self._current()

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def step(self, metrics) -> None:
        """Takes the epoch's metric (a number, or a one-element Tensor) and cuts the rates if it is time to."""
        try:
            current = float(metrics)
        except (TypeError, ValueError):
            shape = f" of shape {metrics.shape}" if hasattr(metrics, "shape") else ""
            raise ValueError(f"ReduceLROnPlateau.step: metrics must be a number or a one-element tensor, got "
                             f"{type(metrics).__name__}{shape}") from None
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce()
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = self._current()

    def load_state_dict(self, state_dict: dict) -> None:
        self.__dict__.update(state_dict)
        self.mode_worse = math.inf if self.mode == "min" else -math.inf

    def _is_better(self, value: float, best: float) -> bool:
        if self.mode == "min":
            return value < (best * (1.0 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold)
        return value > (best * (self.threshold + 1.0) if self.threshold_mode == "rel" else best + self.threshold)

    def _reduce(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(f"ReduceLROnPlateau: the optimizer has {len(groups)} parameter groups, but "
                                   f"min_lr was given for {len(self.min_lrs)} (set min_lrs to a list of one a group)")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, low in zip(groups, self.min_lrs):
            old = float(group["lr"])
            new = max(old * self.factor, low)
            if old - new > self.eps:
                group["lr"] = new


def _check_schedules(owner: str, schedulers, optimizer) -> list:
    """``schedulers`` as a list, or the error PyTorch gives: none, one that is not a schedule or is a
    ReduceLROnPlateau (whose step takes a metric), or one over another optimizer."""
    schedulers = list(schedulers)
    if not schedulers:
        raise ValueError(f"{owner}: give at least one schedule")
    for index, schedule in enumerate(schedulers):
        if isinstance(schedule, ReduceLROnPlateau):
            raise ValueError(f"{owner}: schedule {index} is a ReduceLROnPlateau, whose step needs the metric; "
                             f"it cannot be combined")
        if not isinstance(schedule, LRScheduler):
            raise TypeError(f"{owner}: schedule {index} must be a learning-rate schedule, got {type(schedule).__name__}")
        if schedule.optimizer is not optimizer:
            raise ValueError(f"{owner}: schedule {index} ({type(schedule).__name__}) is over another optimizer than "
                             f"the {type(optimizer).__name__} given")
    return schedulers


class _Combined(LRScheduler):
    """A schedule of schedules (``_schedulers``): its ``state_dict`` holds each one's."""

    def state_dict(self) -> dict:
        state = {key: value for key, value in self.__dict__.items() if key not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [schedule.state_dict() for schedule in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        self.__dict__.update({key: value for key, value in state_dict.items() if key != "_schedulers"})
        for schedule, state in zip(self._schedulers, state_dict["_schedulers"]):
            schedule.load_state_dict(state)


class SequentialLR(_Combined):
    """One schedule after another: ``schedulers[i]`` steps from epoch ``milestones[i - 1]`` (from 0 for the
    first), starting again at its epoch 0 there, as PyTorch's: where the schedule has a closed form (StepLR,
    MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearLR, ConstantLR, PolynomialLR) its rate there comes from
    the base rates, else from a step. Made after its schedules: it sets the rates back to the base rates and
    undoes their first steps but the first schedule's."""

    def __init__(self, optimizer: Optimizer, schedulers, milestones, last_epoch: int = -1):
        _check_start("SequentialLR", optimizer, last_epoch)
        schedulers = _check_schedules("SequentialLR", schedulers, optimizer)
        milestones = list(milestones)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: give one milestone fewer than schedules: {len(schedulers)} schedules "
                             f"and {len(milestones)} milestones")
        if any(not _is_int(m) for m in milestones):
            raise ValueError(f"SequentialLR: milestones must be ints, got {milestones!r}")
        self.optimizer, self._schedulers, self._milestones = optimizer, schedulers, milestones
        self.last_epoch = last_epoch + 1
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for schedule in schedulers:
            schedule.last_epoch -= 1
        first = schedulers[bisect.bisect_right(milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self) -> None:
        self.last_epoch += 1
        index = bisect.bisect_right(self._milestones, self.last_epoch)
        schedule = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            schedule._restart()
        else:
            schedule.step()
        self._last_lr = schedule.get_last_lr()


class ChainedScheduler(_Combined):
    """Schedules stepped together, each on the rates the one before it set: a step steps every one in turn.
    ``optimizer`` defaults to the first schedule's."""

    def __init__(self, schedulers, optimizer: Optimizer | None = None):
        schedulers = list(schedulers)
        if optimizer is None and schedulers:
            optimizer = getattr(schedulers[0], "optimizer", None)
        self._schedulers = _check_schedules("ChainedScheduler", schedulers, optimizer)
        self.optimizer = optimizer
        self._last_lr = self._current()

    def step(self) -> None:
        for schedule in self._schedulers:
            schedule.step()
        self._last_lr = self._current()
