"""Gradient clipping, as torch.nn.utils.

    >>> loss.backward()
    >>> gpucnn.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    >>> optimizer.step()

Both functions change each ``param.grad``'s array in place (on its device, through the device's array
module ``xp``, so the same code runs on NumPy and CuPy arrays) and bump the gradient's version counter.
Parameters whose ``grad`` is None are skipped.
"""

from __future__ import annotations

import math
import numbers
import types
import warnings

import numpy

from ..tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _gradients(parameters, caller: str) -> list[Tensor]:
    """The gradients (Tensors) of ``parameters``, a Tensor or an iterable of Tensors, skipping None."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    else:
        is_generator = isinstance(parameters, types.GeneratorType)
        try:
            parameters = list(parameters)
        except TypeError:
            raise TypeError(f"{caller}: parameters must be a Tensor or an iterable of Tensors, "
                            f"got {type(parameters).__name__}") from None
        if is_generator and not parameters:
            warnings.warn("`parameters` is an empty generator, no gradient clipping will occur.", stacklevel=3)
    grads = []
    for index, param in enumerate(parameters):
        if not isinstance(param, Tensor):
            raise TypeError(f"{caller}: parameters must be Tensors, but parameter {index} is a {type(param).__name__}")
        grad = param.grad
        if grad is None:
            continue
        if not isinstance(grad, Tensor):
            raise TypeError(f"{caller}: the grad of parameter {index} (shape {param.shape}) is a "
                            f"{type(grad).__name__}, not a Tensor")
        if grad.dtype.kind != "f":
            raise TypeError(f"{caller}: the grad of parameter {index} (shape {param.shape}) is {grad.dtype}, "
                            "not floating-point")
        grads.append(grad)
    return grads


def _check_number(value, name: str) -> float:
    """``value`` as a float; TypeError unless a real number, ValueError if negative or NaN."""
    if isinstance(value, (bool, numpy.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    if not value >= 0:
        raise ValueError(f"{name} must be non-negative, got {value}")
    return float(value)


def _check_foreach(foreach) -> None:
    if foreach is not None and not isinstance(foreach, (bool, numpy.bool_)):
        raise TypeError(f"foreach must be None, True or False, got {foreach!r}")


def _norm_order(norm_type) -> float:
    """``norm_type`` as a float p > 0 (inf included); strings such as ``'inf'`` are read by float()."""
    if isinstance(norm_type, str):
        try:
            order = float(norm_type)
        except ValueError:
            raise ValueError(f"norm_type must be a number or 'inf', got {norm_type!r}") from None
    elif isinstance(norm_type, (bool, numpy.bool_)) or not isinstance(norm_type, numbers.Real):
        raise TypeError(f"norm_type must be a real number or 'inf', got {type(norm_type).__name__} {norm_type!r}")
    else:
        order = float(norm_type)
    if not order > 0:
        raise ValueError(f"norm_type must be positive (a p-norm with p > 0, or inf), got {norm_type!r}")
    return order


def _vector_norm(xp, array, order: float):
    """The p-norm of ``array``'s elements as a 0-d array of its dtype (accumulated in float64; 0 when empty)."""
    if array.size == 0:
        return xp.zeros((), dtype=array.dtype)
    magnitudes = xp.abs(array)
    if order == math.inf:
        return xp.asarray(magnitudes.max(), dtype=array.dtype)
    magnitudes = magnitudes.astype(numpy.float64)
    if order == 1:
        total = magnitudes.sum()
    elif order == 2:
        total = xp.sqrt(xp.vdot(magnitudes.ravel(), magnitudes.ravel()))
    else:
        total = (magnitudes**order).sum() ** (1.0 / order)
    return xp.asarray(total, dtype=array.dtype)


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach=None) -> Tensor:
    """Scales the gradients of ``parameters`` (a Tensor or an iterable of Tensors) in place by
    ``min(max_norm / (total_norm + 1e-6), 1)``, where total_norm is the ``norm_type``-norm of all
    gradients together (the norm of the gradients' norms).

    Returns:
        total_norm, a 0-d Tensor on the first gradient's device, of the gradients' (promoted) dtype;
        ``tensor(0.)`` when no parameter has a gradient.

    Raises:
        TypeError: a parameter is not a Tensor, or an argument is not a number.
        ValueError: max_norm is negative or NaN, or norm_type is not positive.
        RuntimeError: error_if_nonfinite and the total norm is NaN or infinite.

    ``foreach`` is accepted for torch's signature; each gradient is scaled by one array operation.
    """
    max_norm = _check_number(max_norm, "clip_grad_norm_: max_norm")
    order = _norm_order(norm_type)
    if not isinstance(error_if_nonfinite, (bool, numpy.bool_)):
        raise TypeError(f"error_if_nonfinite must be True or False, got {error_if_nonfinite!r}")
    _check_foreach(foreach)
    grads = _gradients(parameters, "clip_grad_norm_")
    if not grads:
        return Tensor(0.0)
    device = grads[0].device
    dtype = numpy.result_type(*(grad.dtype for grad in grads))
    norms = []
    with numpy.errstate(over="ignore", invalid="ignore"):
        for grad in grads:
            with grad.device.context():
                norm = _vector_norm(grad.device.xp, grad.data, order)
            if grad.device != device:
                with device.context():
                    norm = device.asarray(norm)
            norms.append(norm)
        with device.context():
            xp = device.xp
            total = _vector_norm(xp, xp.stack([norm.astype(dtype) for norm in norms]), order)
            if error_if_nonfinite and not bool(xp.isfinite(total)):
                raise RuntimeError(
                    f"The total norm of order {order} for gradients from `parameters` is non-finite, so it cannot be "
                    "clipped. To disable this error and scale the gradients by the non-finite norm anyway, set "
                    "`error_if_nonfinite=False`")
            coefficient = xp.minimum(xp.asarray(max_norm, dtype=dtype) / (total + xp.asarray(1e-6, dtype=dtype)),
                                     xp.asarray(1.0, dtype=dtype))
        for grad in grads:
            with grad.device.context():
                scale = coefficient if grad.device == device else grad.device.asarray(coefficient)
                grad.device.xp.multiply(grad.data, scale, out=grad.data)
            grad._version[0] += 1
    return Tensor._from_array(total, device)


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamps the gradients of ``parameters`` (a Tensor or an iterable of Tensors) in place to
    ``[-clip_value, clip_value]`` (NaN stays NaN).

    Raises:
        TypeError: a parameter is not a Tensor, or clip_value is not a number.
        ValueError: clip_value is negative or NaN.
    """
    clip_value = _check_number(clip_value, "clip_grad_value_: clip_value")
    _check_foreach(foreach)
    for grad in _gradients(parameters, "clip_grad_value_"):
        with grad.device.context():
            grad.device.xp.clip(grad.data, -clip_value, clip_value, out=grad.data)
        grad._version[0] += 1
