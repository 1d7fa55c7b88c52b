"""Fully connected layer: y = x @ W^T + b, written once against the device's array module."""

from __future__ import annotations

import math

from ..autograd import Function
from ..tensor import Tensor, as_tensor


class Linear(Function):
    """x: (*, in_features), weight: (out_features, in_features), bias: (out_features,) when given.

    Output: (*, out_features). Inputs are (x, weight) or (x, weight, bias).
    """

    def forward(self, x, weight, bias=None):
        self.x, self.weight = x, weight
        y = x @ weight.T
        if bias is not None:
            y += bias
        return y

    def backward(self, grad_output):
        needs = self.needs_input_grad
        out_features, in_features = self.weight.shape
        rows = math.prod(grad_output.shape[:-1])
        grad_x = grad_weight = grad_bias = None
        if needs[0]:
            grad_x = grad_output @ self.weight
        # The weight and bias gradients sum over every leading dimension: flatten them into one
        # (an explicit row count, since reshape(-1, 0) is ambiguous when a size is 0).
        grad_rows = grad_output.reshape(rows, out_features)
        if needs[1]:
            grad_weight = grad_rows.T @ self.x.reshape(rows, in_features)
        if len(needs) == 3 and needs[2]:
            grad_bias = grad_rows.sum(axis=0)
        return (grad_x, grad_weight) if len(needs) == 2 else (grad_x, grad_weight, grad_bias)


def linear(input, weight, bias=None) -> Tensor:
    """y = input @ weight^T + bias.

    Args:
        input: (*, in_features), at least one dimension; (in_features,) gives (out_features,).
        weight: (out_features, in_features).
        bias: (out_features,) or None.

    Returns:
        (*, out_features), in the dtype shared by all three (mixed dtypes raise TypeError, as PyTorch).
    """
    x = as_tensor(input, "linear: input")
    w = as_tensor(weight, "linear: weight", x.device)
    b = None if bias is None else as_tensor(bias, "linear: bias", x.device)
    shapes = f"input shape {x.shape}, weight shape {w.shape}" + ("" if b is None else f", bias shape {b.shape}")
    for name, tensor in (("input", x), ("weight", w), ("bias", b)):
        if tensor is not None and tensor.dtype.kind != "f":
            raise TypeError(f"linear: {name} must be a floating-point tensor, got dtype {tensor.dtype} ({shapes})")
        if tensor is not None and tensor.dtype != x.dtype:
            raise TypeError(
                f"linear: {name} has dtype {tensor.dtype} but input has dtype {x.dtype}; convert one ({shapes})"
            )
    if x.ndim == 0:
        raise ValueError(f"linear: input must have at least one dimension (*, in_features), got {shapes}")
    if w.ndim != 2:
        raise ValueError(f"linear: weight must be (out_features, in_features), got {shapes}")
    if x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"linear: input has {x.shape[-1]} features in its last dimension but weight expects "
            f"{w.shape[1]} ({shapes})"
        )
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"linear: bias must be (out_features,) = ({w.shape[0]},), got {shapes}")
    if b is None:
        return Linear().apply(x, w)
    return Linear().apply(x, w, b)
