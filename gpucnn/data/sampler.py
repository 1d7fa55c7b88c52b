"""Samplers as torch.utils.data's: the order in which a :class:`~gpucnn.data.DataLoader` visits the indices of
its dataset, and how it groups them into batches.

    >>> loader = gpucnn.data.DataLoader(dataset, batch_size=32, sampler=gpucnn.data.SubsetRandomSampler(train_ids))

Random orders are drawn at each pass from ``generator`` (a ``gpucnn.Generator`` or a ``numpy.random.Generator``)
where one is given, else from the global generator that :func:`gpucnn.manual_seed` seeds.
"""

from __future__ import annotations

import itertools
import numbers

from .dataset import _generator

__all__ = ["BatchSampler", "RandomSampler", "Sampler", "SequentialSampler", "SubsetRandomSampler"]


def _positive_int(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Integral) and value > 0


class Sampler:
    """The base class of samplers: subclasses give ``__iter__`` over indices (and ``__len__`` where known)."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__}: subclasses of Sampler must implement __iter__")


class SequentialSampler(Sampler):
    """The indices 0, 1, ..., ``len(data_source) - 1`` in order."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """``num_samples`` (default ``len(data_source)``) indices drawn at random: without ``replacement``, whole
    shuffles of all indices one after the other, the last one cut short; with it, each independently.

    Raises:
        TypeError: ``replacement`` is not a bool. ValueError: ``num_samples`` is not a positive int (as
        an empty ``data_source`` gives by default).
    """

    def __init__(self, data_source, replacement: bool = False, num_samples: int | None = None, generator=None):
        if not isinstance(replacement, bool):
            raise TypeError(f"RandomSampler: replacement must be a bool, got {replacement!r}")
        self.data_source, self.replacement, self._num_samples = data_source, replacement, num_samples
        if not _positive_int(self.num_samples):
            raise ValueError(f"RandomSampler: num_samples must be a positive int, got {self.num_samples!r}")
        _generator(generator, "RandomSampler")
        self.generator = generator

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        size, rng = len(self.data_source), _generator(self.generator, "RandomSampler")
        if size == 0:
            raise ValueError(f"RandomSampler: cannot draw {self.num_samples} samples from an empty data_source")
        if self.replacement:
            yield from rng.integers(0, size, self.num_samples).tolist()
            return
        for _ in range(self.num_samples // size):
            yield from rng.permutation(size).tolist()
        if self.num_samples % size:
            yield from rng.permutation(size)[:self.num_samples % size].tolist()

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The elements of ``indices`` in a new random order each pass."""

    def __init__(self, indices, generator=None):
        _generator(generator, "SubsetRandomSampler")
        self.indices, self.generator = indices, generator

    def __iter__(self):
        for position in _generator(self.generator, "SubsetRandomSampler").permutation(len(self.indices)).tolist():
            yield self.indices[position]

    def __len__(self) -> int:
        return len(self.indices)


class BatchSampler(Sampler):
    """The indices of ``sampler`` (any iterable of them) in lists of ``batch_size``; the last list is shorter,
    or left out with ``drop_last``.

    Raises:
        ValueError: ``batch_size`` is not a positive int or ``drop_last`` not a bool.
    """

    def __init__(self, sampler, batch_size: int, drop_last: bool):
        if not _positive_int(batch_size):
            raise ValueError(f"BatchSampler: batch_size must be a positive int, got {batch_size!r}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"BatchSampler: drop_last must be a bool, got {drop_last!r}")
        self.sampler, self.batch_size, self.drop_last = sampler, int(batch_size), drop_last

    def __iter__(self):
        indices = iter(self.sampler)
        while batch := list(itertools.islice(indices, self.batch_size)):
            if len(batch) == self.batch_size or not self.drop_last:
                yield batch

    def __len__(self) -> int:
        count, left = divmod(len(self.sampler), self.batch_size)
        return count + (1 if left and not self.drop_last else 0)
