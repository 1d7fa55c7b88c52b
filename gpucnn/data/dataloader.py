"""``DataLoader`` as torch.utils.data's: batches of a dataset indexed sample by sample, in the order of a
sampler (shuffled each pass, or one's own), stacked into tensors.

    >>> dataset = gpucnn.data.TensorDataset(images, labels)
    >>> for x, y in gpucnn.data.DataLoader(dataset, batch_size=64, shuffle=True): ...

Any object with ``__len__`` and ``__getitem__`` is a dataset. A batch is what ``collate_fn`` makes of the
list of its samples; the default stacks tensors, NumPy arrays and numbers into tensors (along a new first
axis), field by field through tuples, lists and dicts. A ``TensorDataset`` is batched by indexing its
tensors with the batch's indices at once, which gives the same batch as stacking its samples.
"""

from __future__ import annotations

import numbers

import numpy

from ..ops.math import stack
from ..tensor import Tensor, tensor
from .dataset import TensorDataset, _generator
from .sampler import BatchSampler, RandomSampler, SequentialSampler

__all__ = ["DataLoader", "default_collate"]


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
        shuffle: a new order each pass (a :class:`RandomSampler`), drawn from ``generator`` (a
            :class:`gpucnn.Generator` or ``numpy.random.Generator``), else from the global generator that
            :func:`gpucnn.manual_seed` seeds.
        sampler: the order of the indices instead (a sampler or any iterable of indices); not with ``shuffle``.
        batch_sampler: the batches' indices instead (an iterable of lists of indices); not with ``batch_size``,
            ``shuffle``, ``sampler`` or ``drop_last``.
        collate_fn: makes a batch of a list of samples (:func:`default_collate`).
        num_workers, pin_memory: accepted for PyTorch's scripts; batches are made in the calling process,
            so they change no value.

    Raises:
        ValueError: a bad number, or arguments that exclude each other, as torch's. TypeError: a dataset
        without ``__len__`` and ``__getitem__``, or a generator that is neither a ``gpucnn.Generator`` nor a
        ``numpy.random.Generator``.
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False, sampler=None, batch_sampler=None,
                 num_workers: int = 0, collate_fn=None, pin_memory: bool = False, drop_last: bool = False, *,
                 generator=None):
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader: dataset must have __len__ and __getitem__, got {type(dataset).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if isinstance(num_workers, bool) or not isinstance(num_workers, numbers.Integral) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be a non-negative int, got {num_workers!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler is mutually exclusive with shuffle")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None or drop_last):
            raise ValueError("DataLoader: batch_sampler is mutually exclusive with batch_size, shuffle, sampler "
                             "and drop_last")
        _generator(generator, "DataLoader")
        if sampler is None:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_sampler is None:
            batch_sampler = BatchSampler(sampler, int(batch_size), drop_last)
        else:
            batch_size, drop_last = None, False
        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, drop_last
        self.sampler, self.batch_sampler, self.generator = sampler, batch_sampler, generator
        self.num_workers, self.pin_memory, self.collate_fn = int(num_workers), bool(pin_memory), collate_fn

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __iter__(self):
        whole = isinstance(self.dataset, TensorDataset) and self.collate_fn is None
        for indices in self.batch_sampler:
            if whole:
                indices = numpy.asarray(indices, dtype=numpy.int64)
                yield [value[tensor(indices, device=value.device)] for value in self.dataset.tensors]
            else:
                yield (self.collate_fn or default_collate)([self.dataset[index] for index in indices])
