"""``TensorDataset`` and ``DataLoader``, as torch.utils.data's: a dataset indexed sample by sample, and
batches of it, shuffled each pass, stacked into tensors.

    >>> dataset = gpucnn.data.TensorDataset(images, labels)
    >>> for x, y in gpucnn.data.DataLoader(dataset, batch_size=64, shuffle=True): ...

Any object with ``__len__`` and ``__getitem__`` is a dataset. A batch is what ``collate_fn`` makes of the
list of its samples; the default stacks tensors, NumPy arrays and numbers into tensors (along a new first
axis), field by field through tuples, lists and dicts. A ``TensorDataset`` is batched by indexing its
tensors with the batch's indices at once, which gives the same batch as stacking its samples.
"""

from __future__ import annotations

import math
import numbers

import numpy

from .. import random
from ..ops.math import stack
from ..tensor import Tensor, tensor

__all__ = ["DataLoader", "TensorDataset", "default_collate"]


class TensorDataset:
    """Samples of tensors that share their first dimension: sample i is ``tuple(t[i] for t in tensors)``."""

    def __init__(self, *tensors: Tensor):
        if not tensors:
            raise ValueError("TensorDataset: give at least one tensor")
        for position, value in enumerate(tensors):
            if not isinstance(value, Tensor) or value.ndim == 0:
                shape = f" of shape {value.shape}" if isinstance(value, Tensor) else ""
                raise TypeError(f"TensorDataset: argument {position} must be a tensor of at least one dimension, "
                                f"got {type(value).__name__}{shape}")
        sizes = [value.shape[0] for value in tensors]
        if len(set(sizes)) > 1:
            raise ValueError(f"TensorDataset: the tensors' first dimensions must be equal, got shapes "
                             f"{[value.shape for value in tensors]}")
        self.tensors = tensors

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def __getitem__(self, index):
        return tuple(value[index] for value in self.tensors)


def default_collate(samples: list):
    """One batch of ``samples``: tensors, NumPy arrays and numbers stacked into a tensor along a new first axis
    (on the tensors' device; Python floats give float32, where torch's gives float64), tuples and lists
    collated field by field into a list (a namedtuple stays one), dicts key by key, strings kept as a list."""
    first = samples[0]
    if isinstance(first, Tensor):
        return stack(samples)
    if isinstance(first, (numpy.ndarray, numpy.generic)):
        return tensor(numpy.stack(samples))
    if isinstance(first, numbers.Number):  # by gpucnn.tensor's rules: Python floats become float32
        return tensor(samples)
    if isinstance(first, str):
        return list(samples)
    if isinstance(first, dict):
        return {key: default_collate([sample[key] for sample in samples]) for key in first}
    if isinstance(first, (tuple, list)):
        if any(len(sample) != len(first) for sample in samples):
            raise ValueError(f"default_collate: the samples of a batch have different lengths "
                             f"({sorted({len(sample) for sample in samples})})")
        fields = [default_collate(list(field)) for field in zip(*samples)]
        return type(first)(*fields) if hasattr(first, "_fields") else fields  # a list, as torch's, but namedtuples
    raise TypeError(f"default_collate: cannot batch samples of type {type(first).__name__}; pass a collate_fn")


class DataLoader:
    """Batches of ``dataset``, as torch.utils.data.DataLoader's (the map-style part).

    Args:
        batch_size: samples a batch; the last is smaller unless ``drop_last``.
        shuffle: a new order each pass, drawn from ``generator`` (a ``numpy.random.Generator``), else from
            the global generator that :func:`gpucnn.manual_seed` seeds.
        collate_fn: makes a batch of a list of samples (:func:`default_collate`).
        num_workers, pin_memory: accepted for PyTorch's scripts; batches are made in the calling process,
            so they change no value.
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False, *, num_workers: int = 0,
                 collate_fn=None, pin_memory: bool = False, drop_last: bool = False, generator=None):
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader: dataset must have __len__ and __getitem__, got {type(dataset).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if isinstance(num_workers, bool) or not isinstance(num_workers, numbers.Integral) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be a non-negative int, got {num_workers!r}")
        if generator is not None and not isinstance(generator, numpy.random.Generator):
            raise TypeError(f"DataLoader: generator must be a numpy.random.Generator, got {type(generator).__name__}")
        self.dataset, self.batch_size, self.shuffle = dataset, int(batch_size), bool(shuffle)
        self.num_workers, self.pin_memory, self.drop_last = int(num_workers), bool(pin_memory), bool(drop_last)
        self.collate_fn, self.generator = collate_fn, generator

    def __len__(self) -> int:
        count = len(self.dataset) / self.batch_size
        return math.floor(count) if self.drop_last else math.ceil(count)

    def __iter__(self):
        size = len(self.dataset)
        order = (self.generator or random.generator()).permutation(size) if self.shuffle else numpy.arange(size)
        whole = isinstance(self.dataset, TensorDataset) and self.collate_fn is None
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            indices = order[start:start + self.batch_size]
            if whole:
                yield [value[tensor(indices, device=value.device)] for value in self.dataset.tensors]
            else:
                yield (self.collate_fn or default_collate)([self.dataset[int(index)] for index in indices])
