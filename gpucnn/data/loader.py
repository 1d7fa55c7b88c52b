"""Batches from arrays in memory, shuffled by a generator of their own whose state can be saved."""

from __future__ import annotations

import math

import numpy


class BatchLoader:
    """Iterates over (inputs (B, C, H, W) float32, labels (B,) int64) batches as NumPy arrays.

    Args:
        images, labels: the whole split, (N, C, H, W) uint8 and (N,).
        batch_size: images per batch; the last batch is smaller unless ``drop_last``.
        preprocess: a :class:`~gpucnn.data.transforms.Preprocess` (or any callable
            ``preprocess(images, rng_or_None)``).
        shuffle: a new order each pass, drawn from ``rng``.
        augment: pass ``rng`` to ``preprocess`` so it augments each batch.
        rng: the generator for shuffling and augmentation; its state (``rng.bit_generator.state``)
            goes into checkpoints, so a resumed run sees the same batches.
    """

    def __init__(self, images, labels, batch_size: int, preprocess, *, shuffle: bool = False,
                 augment: bool = False, drop_last: bool = False, rng: numpy.random.Generator | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, numpy.asarray(labels, dtype=numpy.int64)
        self.batch_size, self.preprocess = int(batch_size), preprocess
        self.shuffle, self.augment, self.drop_last = shuffle, augment, drop_last
        self.rng = rng if rng is not None else numpy.random.default_rng()

    def __len__(self) -> int:
        count = len(self.labels) / self.batch_size
        return math.floor(count) if self.drop_last else math.ceil(count)

    def __iter__(self):
        order = self.rng.permutation(len(self.labels)) if self.shuffle else numpy.arange(len(self.labels))
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            indices = order[start:start + self.batch_size]
            yield (self.preprocess(self.images[indices], self.rng if self.augment else None),
                   self.labels[indices])
