"""Map-style datasets as torch.utils.data's: the ``Dataset`` base class, ``TensorDataset``, ``Subset``,
``ConcatDataset`` and ``random_split``.

    >>> class Squares(gpucnn.data.Dataset):
    ...     def __len__(self): return 10
    ...     def __getitem__(self, index): return index, index * index
    >>> train, val = gpucnn.data.random_split(Squares(), [0.8, 0.2], generator=gpucnn.Generator().manual_seed(0))

Random draws come from ``generator`` (a ``gpucnn.Generator`` or a ``numpy.random.Generator``) where one is given,
else from the global generator that :func:`gpucnn.manual_seed` seeds; a seed gives other draws than the same seed
gives torch.
"""

from __future__ import annotations

import bisect
import itertools
import math
import numbers
import warnings

import numpy

from .. import random
from ..tensor import Tensor

__all__ = ["ConcatDataset", "Dataset", "Subset", "TensorDataset", "random_split"]


def _generator(generator, where: str) -> numpy.random.Generator:
    """The NumPy generator of ``generator`` (a :class:`gpucnn.Generator` or a ``numpy.random.Generator``), else
    the global generator's (looked up at each draw: manual_seed replaces it)."""
    if generator is None:
        return random.generator()
    if isinstance(generator, random.Generator):
        return generator.numpy
    if not isinstance(generator, numpy.random.Generator):
        raise TypeError(f"{where}: generator must be a gpucnn.Generator or a numpy.random.Generator, got "
                        f"{type(generator).__name__}")
    return generator


class Dataset:
    """The base class of map-style datasets: subclasses give ``__getitem__`` (and ``__len__``, which
    samplers and :class:`~gpucnn.data.DataLoader` need). ``a + b`` is their :class:`ConcatDataset`."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__}: subclasses of Dataset must implement __getitem__")

    def __add__(self, other) -> "ConcatDataset":
        return ConcatDataset([self, other])


class TensorDataset(Dataset):
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


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``: sample i is ``dataset[indices[i]]`` (a list of positions
    gives ``dataset`` the list of their indices at once, as torch's)."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, indices

    def __getitem__(self, index):
        if isinstance(index, list):
            return self.dataset[[self.indices[position] for position in index]]
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset):
    """The samples of ``datasets`` one after the other; ``cumulative_sizes[k]`` counts those of the first k + 1.

    Raises:
        ValueError: no datasets (torch raises AssertionError).
    """

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets must not be empty")
        self.cumulative_sizes = list(itertools.accumulate(len(dataset) for dataset in self.datasets))

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index):
        if index < 0:
            if -index > len(self):
                raise ValueError(f"ConcatDataset: index {index} is out of range for {len(self)} samples")
            index += len(self)
        if index >= len(self):
            raise IndexError(f"ConcatDataset: index {index} is out of range for {len(self)} samples")
        position = bisect.bisect_right(self.cumulative_sizes, index)
        start = self.cumulative_sizes[position - 1] if position else 0
        return self.datasets[position][index - start]


def _split_lengths(size: int, lengths) -> list:
    """The integer lengths of the splits, as torch's: fractions summing to 1 take ``floor(fraction * size)``
    each, and what is left over goes one by one to the splits in turn from the first."""
    lengths = list(lengths)
    for position, length in enumerate(lengths):
        if isinstance(length, bool) or not isinstance(length, numbers.Real):
            raise TypeError(f"random_split: lengths[{position}] must be an int or a fraction, got {length!r}")
    total = sum(lengths)
    if math.isclose(total, 1) and total <= 1:
        for position, fraction in enumerate(lengths):
            if not 0 <= fraction <= 1:
                raise ValueError(f"random_split: the fraction lengths[{position}] = {fraction} is not between "
                                 f"0 and 1")
        lengths = [math.floor(size * fraction) for fraction in lengths]
        for position in range(size - sum(lengths)):
            lengths[position % len(lengths)] += 1
        for position, length in enumerate(lengths):
            if length == 0:
                warnings.warn(f"random_split: split {position} is empty", stacklevel=3)
    for position, length in enumerate(lengths):
        if not isinstance(length, numbers.Integral) or length < 0:
            raise ValueError(f"random_split: lengths[{position}] = {length!r} must be a non-negative int, "
                             f"or the lengths fractions that sum to 1")
    if sum(lengths) != size:
        raise ValueError(f"random_split: the lengths {lengths} sum to {sum(lengths)}, not to the dataset's "
                         f"length {size}")
    return [int(length) for length in lengths]


def random_split(dataset, lengths, generator=None) -> list:
    """``dataset`` split at random into non-overlapping :class:`Subset` s of ``lengths`` (ints that sum to
    ``len(dataset)``, or fractions that sum to 1: see torch's), drawn from ``generator`` (a
    :class:`gpucnn.Generator` or ``numpy.random.Generator``; default the global generator)."""
    lengths = _split_lengths(len(dataset), lengths)
    order = _generator(generator, "random_split").permutation(len(dataset)).tolist()
    ends = list(itertools.accumulate(lengths))
    return [Subset(dataset, order[end - length:end]) for end, length in zip(ends, lengths)]
