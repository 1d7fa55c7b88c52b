"""Losses, as PyTorch's: mean squared error, mean absolute error, smooth L1 and Huber between an input and a
target of the same shape; binary cross-entropy of probabilities and of logits; the Kullback-Leibler
divergence; and ``one_hot``, the encoding of class indices that they take as targets. They are composed of
differentiable tensor ops (so the target may require grad too), binary cross-entropy of a Function of its
own that clamps its logs as PyTorch's does."""

from __future__ import annotations

import contextlib
import numbers

import numpy

from ..autograd import Function
from ..tensor import Tensor, as_tensor
from . import math
from .activations import logsigmoid
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


def _operands(input, target, op: str) -> tuple:
    """input and target as Tensors of one shape on one device, floating point, target in input's dtype."""
    x = as_tensor(input, f"{op}: input")
    t = as_tensor(target, f"{op}: target", x.device)
    if x.shape != t.shape:
        raise ValueError(f"{op}: input shape {x.shape} and target shape {t.shape} must be the same")
    if x.dtype.kind != "f" or t.dtype.kind != "f":
        raise TypeError(f"{op}: input and target must be floating point, got dtypes {x.dtype} and {t.dtype}")
    if t.device != x.device:
        raise ValueError(f"{op}: target is on {t.device} but input is on {x.device}")
    return x, t.to(dtype=x.dtype)


def _broadcast_factor(value, name: str, x: Tensor, op: str) -> Tensor | None:
    """None, or ``value`` (a weight) as a floating-point Tensor on x's device whose shape broadcasts to x's."""
    if value is None:
        return None
    w = as_tensor(value, f"{op}: {name}", x.device)
    if w.device != x.device:
        raise ValueError(f"{op}: {name} is on {w.device} but input is on {x.device}")
    if w.dtype.kind != "f":
        raise TypeError(f"{op}: {name} must be floating point, got dtype {w.dtype}")
    try:
        shape = numpy.broadcast_shapes(w.shape, x.shape)
    except ValueError:
        shape = None
    if shape != x.shape:
        raise ValueError(f"{op}: {name} of shape {w.shape} does not broadcast to the input's shape {x.shape}")
    return w


def _plain_reduced(losses: Tensor, reduction: str) -> Tensor:
    """The losses' mean, sum, or the losses themselves ('none')."""
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.mean()


def _quiet(xp):
    """NumPy's warnings for log(0) and 0 / 0 off (their results are meant); nothing on CuPy."""
    return numpy.errstate(divide="ignore", invalid="ignore") if xp is numpy else contextlib.nullcontext()


class BinaryCrossEntropy(Function):
    """-(t log x + (1 - t) log(1 - x)) elementwise, each log clamped to >= -100 (so x = 0 or 1 gives at most 100),
    as PyTorch's. Its gradients are PyTorch's: (x - t) / max(x (1 - x), 1e-12) for x (finite at 0 and 1), and
    log(1 - x) - log(x), unclamped, for t."""

    def forward(self, x, t):
        self.x, self.t = x, t
        xp = self.xp
        # constants of x's dtype: NumPy 1.x makes float64 of a 0-d float32 array and a Python number
        floor, one = x.dtype.type(-100), x.dtype.type(1)
        with _quiet(xp):
            log_x, log_rest = xp.maximum(xp.log(x), floor), xp.maximum(xp.log1p(-x), floor)
        return (t - one) * log_rest - t * log_x

    def backward(self, grad):
        xp, x = self.xp, self.x
        need_x, need_t = self.needs_input_grad
        with _quiet(xp):
            grad_x = grad * (x - self.t) / xp.maximum((1 - x) * x, 1e-12) if need_x else None
            grad_t = grad * (xp.log1p(-x) - xp.log(x)) if need_t else None
        return grad_x, grad_t


def binary_cross_entropy(input, target, weight=None, *, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of probabilities ``input`` (each in [0, 1]) against ``target`` of its shape
    (probabilities too): -(t log x + (1 - t) log(1 - x)) with the logs clamped to >= -100, times ``weight``
    (broadcast to the input's shape) where given, then its mean over the elements, sum, or nothing ('none').
    ``reduction`` is keyword-only."""
    op = "binary_cross_entropy"
    check_options(op, -100, reduction, 0.0)
    x, t = _operands(input, target, op)
    w = _broadcast_factor(weight, "weight", x, op)
    if not bool(((x.data >= 0) & (x.data <= 1)).all()):
        raise ValueError(f"{op}: every element of input must be between 0 and 1 (probabilities; for logits take "
                         f"binary_cross_entropy_with_logits), input shape {x.shape}")
    losses = BinaryCrossEntropy().apply(x, t)
    return _plain_reduced(losses if w is None else losses * w, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, *, reduction: str = "mean",
                                     pos_weight=None) -> Tensor:
    """Binary cross-entropy of sigmoid(input) against ``target`` of the input's shape, from the logits directly:
    (1 - t) x - (1 + (pos_weight - 1) t) log(sigmoid(x)), where log(sigmoid(x)) never overflows. ``pos_weight``
    (broadcast to the input's shape: one value per class of the last dimension, say) weighs the positive term;
    ``weight`` (broadcast too) each element's loss; then the mean, sum or nothing ('none'). The options after
    ``weight`` are keyword-only."""
    op = "binary_cross_entropy_with_logits"
    check_options(op, -100, reduction, 0.0)
    x, t = _operands(input, target, op)
    w = _broadcast_factor(weight, "weight", x, op)
    p = _broadcast_factor(pos_weight, "pos_weight", x, op)
    log_sigmoid = logsigmoid(x)
    if p is not None:
        log_sigmoid = ((p - 1) * t + 1) * log_sigmoid
    losses = (1 - t) * x - log_sigmoid
    return _plain_reduced(losses if w is None else losses * w, reduction)


def _positive_real(value, name: str, op: str, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: {name} must be a real number, got {value!r}")
    if value < 0 or value == 0 and not allow_zero:
        raise ValueError(f"{op}: {name} must be {'non-negative' if allow_zero else 'positive'}, got {value!r}")
    return float(value)


def smooth_l1_loss(input, target, *, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta, d = input - target elementwise (beta = 0: |d|, the
    L1 loss), reduced as :func:`mse_loss`'s. The options are keyword-only."""
    check_options("smooth_l1_loss", -100, reduction, 0.0)
    beta = _positive_real(beta, "beta", "smooth_l1_loss", allow_zero=True)
    d = _difference(input, target, "smooth_l1_loss")
    size = math.abs(d)
    if beta == 0:
        return _plain_reduced(size, reduction)
    return _plain_reduced(math.where(size < beta, d * d * (0.5 / beta), size - 0.5 * beta), reduction)


def huber_loss(input, target, *, reduction: str = "mean", delta: float = 1.0, weight=None) -> Tensor:
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta), d = input - target elementwise: smooth_l1_loss
    times delta. ``weight`` (of the input's shape) multiplies each loss before the mean over the elements
    (not over the weights, as PyTorch's), sum or nothing ('none'). The options are keyword-only."""
    check_options("huber_loss", -100, reduction, 0.0)
    delta = _positive_real(delta, "delta", "huber_loss", allow_zero=False)
    d = _difference(input, target, "huber_loss")
    size = math.abs(d)
    losses = math.where(size < delta, d * d * 0.5, (size - 0.5 * delta) * delta)
    if weight is not None:
        w = as_tensor(weight, "huber_loss: weight", losses.device)
        if w.shape != losses.shape:
            raise ValueError(f"huber_loss: weight must have the input's shape {losses.shape}, got shape {w.shape}")
        if w.device != losses.device:
            raise ValueError(f"huber_loss: weight is on {w.device} but input is on {losses.device}")
        losses = losses * w
    return _plain_reduced(losses, reduction)


class XLogX(Function):
    """t log t elementwise, 0 at t = 0 (``torch.xlogy(t, t)``); the gradient is PyTorch's for xlogy(t, t):
    log t + t / t, 0 + NaN at t = 0."""

    def forward(self, t):
        self.t = t
        xp = self.xp
        with _quiet(xp):
            return xp.where(t == 0, t.dtype.type(0), t * xp.log(t))

    def backward(self, grad):
        xp, t = self.xp, self.t
        with _quiet(xp):
            return (grad * (xp.where(t != 0, xp.log(t), t.dtype.type(0)) + t / t),)


_KL_REDUCTIONS = ("none", "batchmean", "sum", "mean")


def kl_div(input, target, *, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """The Kullback-Leibler divergence of ``target`` from ``input``, pointwise, as PyTorch's: input holds
    log-probabilities, target probabilities (t log t - t x, 0 where t = 0) or, with ``log_target``,
    log-probabilities (exp(t) (t - x)). The two broadcast. ``reduction``: 'mean' over every element, 'batchmean'
    the sum over the batch size (input.shape[0]; the mathematical KL divergence of each sample's
    distribution, averaged), 'sum' or 'none'. The options are keyword-only."""
    op = "kl_div"
    if not isinstance(reduction, str) or reduction not in _KL_REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_KL_REDUCTIONS}, got {reduction!r}")
    if not isinstance(log_target, (bool, numpy.bool_)):
        raise TypeError(f"{op}: log_target must be a bool, got {log_target!r}")
    x = as_tensor(input, f"{op}: input")
    t = as_tensor(target, f"{op}: target", x.device)
    if x.dtype.kind != "f" or t.dtype.kind != "f":
        raise TypeError(f"{op}: input and target must be floating point, got dtypes {x.dtype} and {t.dtype}")
    if t.device != x.device:
        raise ValueError(f"{op}: target is on {t.device} but input is on {x.device}")
    try:
        numpy.broadcast_shapes(x.shape, t.shape)
    except ValueError:
        raise ValueError(f"{op}: input shape {x.shape} and target shape {t.shape} do not broadcast") from None
    t = t.to(dtype=x.dtype)
    losses = math.exp(t) * (t - x) if log_target else XLogX().apply(t) - t * x
    if reduction == "batchmean":
        return losses.sum() / x.shape[0] if x.ndim else losses.sum()
    return _plain_reduced(losses, reduction)


def one_hot(tensor, num_classes: int = -1) -> Tensor:
    """The class indices ``tensor`` (any shape, integers) as one-hot int64 vectors: shape (*tensor.shape,
    num_classes), 1 at each index. ``num_classes=-1`` takes the largest index + 1 (which an empty tensor does
    not have). Every index must be in [0, num_classes)."""
    op = "one_hot"
    indices = as_tensor(tensor, f"{op}: tensor")
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{op}: tensor must hold integer class indices, got dtype {indices.dtype} "
                        f"(shape {indices.shape})")
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < -1:
        raise ValueError(f"{op}: num_classes must be a non-negative int, or -1 to infer it, got {num_classes!r}")
    data = indices.data
    if indices.numel():
        smallest, largest = int(data.min()), int(data.max())
        if smallest < 0:
            raise ValueError(f"{op}: class values must be non-negative, got {smallest} (shape {indices.shape})")
        if num_classes == -1:
            num_classes = largest + 1
        elif largest >= num_classes:
            raise ValueError(f"{op}: class value {largest} is out of range for num_classes={num_classes} "
                             f"(shape {indices.shape})")
    elif num_classes == -1:
        raise ValueError(f"{op}: num_classes=-1 cannot be inferred from an empty tensor (shape {indices.shape})")
    xp = indices.device.xp
    encoded = (data[..., None] == xp.arange(int(num_classes))).astype(numpy.int64)
    return Tensor._from_array(encoded, indices.device)
