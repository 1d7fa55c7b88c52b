"""Regression losses, as PyTorch's: mean squared error and mean absolute error between an input and a
target of the same shape, composed of differentiable tensor ops (so the target may require grad too)."""

from __future__ import annotations

from ..tensor import Tensor, as_tensor
from . import math
from .cross_entropy import check_options


def _difference(input, target, op: str) -> Tensor:
    x = as_tensor(input, f"{op}: input")
    t = as_tensor(target, f"{op}: target", x.device)
    if x.shape != t.shape:  # PyTorch broadcasts with a warning: (N, 1) against (N,) would give (N, N)
        raise ValueError(f"{op}: input shape {x.shape} and target shape {t.shape} must be the same")
    if x.dtype.kind != "f" or t.dtype.kind != "f":
        raise TypeError(f"{op}: input and target must be floating point, got dtypes {x.dtype} and {t.dtype}")
    if t.device != x.device:
        raise ValueError(f"{op}: target is on {t.device} but input is on {x.device}")
    return x - t


def _reduced(losses: Tensor, reduction: str, weight, op: str) -> Tensor:
    """The elementwise losses (times ``weight``, of their shape, where given) reduced: their sum, their mean
    (without weights) or their sum over the weights' sum, or as they are ('none')."""
    if weight is not None:
        weight = as_tensor(weight, f"{op}: weight", losses.device)
        if weight.shape != losses.shape:
            raise ValueError(f"{op}: weight must have the input's shape {losses.shape}, got shape {weight.shape}")
        if weight.device != losses.device:
            raise ValueError(f"{op}: weight is on {weight.device} but input is on {losses.device}")
        losses = losses * weight
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.mean() if weight is None else losses.sum() / weight.sum()


def mse_loss(input, target, *, reduction: str = "mean", weight=None) -> Tensor:
    """(input - target)^2, elementwise, times ``weight`` (of the input's shape) where given, then its mean
    ('mean': the weighted mean with weights), sum ('sum') or nothing ('none'). The shapes must be the same
    (PyTorch would broadcast them, with a warning). The options are keyword-only: PyTorch's legacy
    ``size_average`` and ``reduce`` are not taken."""
    check_options("mse_loss", -100, reduction, 0.0)
    difference = _difference(input, target, "mse_loss")
    return _reduced(difference * difference, reduction, weight, "mse_loss")


def l1_loss(input, target, *, reduction: str = "mean", weight=None) -> Tensor:
    """|input - target|, elementwise, then weighted and reduced as :func:`mse_loss`'s; the gradient at a
    difference of 0 is 0, as PyTorch's."""
    check_options("l1_loss", -100, reduction, 0.0)
    return _reduced(math.abs(_difference(input, target, "l1_loss")), reduction, weight, "l1_loss")
