"""Matrix products with torch's shape rules, each a checked call of ``matmul`` (differentiable): mm, bmm, mv, dot,
and outer (a broadcast product)."""

from __future__ import annotations

from ..tensor import Tensor
from .math import _operands, matmul, mul, reshape


def _checked(a, b, what: str, ndim: int, description: str) -> tuple:
    a, b = _operands(a, b)
    for tensor, name in ((a, "input"), (b, "other")):
        if tensor.ndim != ndim:
            raise ValueError(f"{what}: {name} must be {description} ({ndim}-D), got shape {tensor.shape} "
                             f"(input {a.shape}, other {b.shape})")
    return a, b


def mm(a, b) -> Tensor:
    """The product of two matrices, (n, k) @ (k, m); nothing broadcasts."""
    a, b = _checked(a, b, "mm", 2, "a matrix")
    return matmul(a, b)


def bmm(a, b) -> Tensor:
    """The products of two batches of matrices, (B, n, k) @ (B, k, m); nothing broadcasts."""
    a, b = _checked(a, b, "bmm", 3, "a batch of matrices")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"bmm: the batch sizes differ: input {a.shape}, other {b.shape}")
    return matmul(a, b)


def mv(a, b) -> Tensor:
    """The product of a matrix and a vector, (n, m) @ (m,) to (n,)."""
    a, b = _operands(a, b)
    if a.ndim != 2 or b.ndim != 1:
        raise ValueError(f"mv: input must be a matrix (2-D) and vec a vector (1-D), got input {a.shape} and vec "
                         f"{b.shape}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"mv: the sizes do not match: input {a.shape}, vec {b.shape}")
    return matmul(a, b)


def dot(a, b) -> Tensor:
    """The inner product of two vectors of one length, a 0-d tensor."""
    a, b = _checked(a, b, "dot", 1, "a vector")
    if a.shape != b.shape:
        raise ValueError(f"dot: the vectors differ in length: input {a.shape}, other {b.shape}")
    return matmul(a, b)


def outer(a, b) -> Tensor:
    """The outer product of two vectors, (n,) and (m,) to (n, m)."""
    a, b = _checked(a, b, "outer", 1, "a vector")
    return mul(reshape(a, (a.shape[0], 1)), reshape(b, (1, b.shape[0])))
