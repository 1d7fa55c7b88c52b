"""Learning-rate schedules, as torch.optim.lr_scheduler: StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR.

    >>> scheduler = gpucnn.optim.lr_scheduler.StepLR(optimizer, step_size=30, gamma=0.1)
    >>> for epoch in range(90):
    ...     train_one_epoch(model, optimizer)
    ...     scheduler.step()

A schedule sets each parameter group's ``lr`` once an epoch (``step()``), from the group's rate before
the step, as PyTorch's do: a rate set by hand between steps carries on from there. Each group keeps its
starting rate as ``initial_lr``, the schedule's ``base_lrs``.
"""

from __future__ import annotations

import collections
import math
import numbers

from . import Optimizer

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR"]


class LRScheduler:
    """A schedule over ``optimizer``'s groups, made at epoch ``last_epoch + 1`` with the groups' rates as they
    are (PyTorch's schedules take a first step that sets them unchanged). ``last_epoch`` -1 (a new schedule)
    takes each group's ``lr`` as its ``initial_lr``; another value resumes a schedule whose groups hold
    ``initial_lr`` already (where PyTorch's StepLR and MultiStepLR apply their factor if that first epoch is
    one of theirs, this changes no rate). Subclasses give ``rates()``, the groups' rates at ``last_epoch``."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__} needs an Optimizer, got {type(optimizer).__name__}")
        if isinstance(last_epoch, bool) or not isinstance(last_epoch, numbers.Integral) or last_epoch < -1:
            raise ValueError(f"{type(self).__name__}: last_epoch must be an int of -1 or more, got {last_epoch!r}")
        self.optimizer = optimizer
        for index, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"{type(self).__name__}: last_epoch={last_epoch} resumes a schedule, but parameter "
                               f"group {index} has no 'initial_lr' (a schedule made with last_epoch=-1 sets it)")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = int(last_epoch) + 1
        self._last_lr = self._current()

    def rates(self) -> list:
        raise NotImplementedError

    def step(self) -> None:
        """Moves to the next epoch and sets every group's ``lr`` to the schedule's rate there."""
        self.last_epoch += 1
        for group, rate in zip(self.optimizer.param_groups, self.rates()):
            group["lr"] = rate
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list:
        """The rates the last ``step()`` set, a group each."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """The schedule's state, all but the optimizer (whose own ``state_dict`` holds the groups)."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        self.__dict__.update(state_dict)

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


class ExponentialLR(LRScheduler):
    """Every epoch, each rate times ``gamma``."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = _check_gamma("ExponentialLR", gamma)
        super().__init__(optimizer, last_epoch)

    def rates(self) -> list:
        return [rate * self.gamma for rate in self._current()]


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
