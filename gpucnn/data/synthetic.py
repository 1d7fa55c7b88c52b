"""A synthetic image task made on the fly: which shape is drawn in a noisy image.

Four classes of 1-channel images: a horizontal bar, a vertical bar, a diagonal, a square outline,
each at a random position and length, plus Gaussian noise. Solvable by a small CNN in a few epochs,
hard for a linear model on raw pixels since the position varies.
"""

from __future__ import annotations

import numpy

SHAPE_CLASSES = ("horizontal", "vertical", "diagonal", "square")


def make_shapes(count: int, size: int = 12, noise: float = 0.3, seed: int = 0):
    """``count`` images and labels.

    Returns:
        images: (count, 1, size, size) float32; labels: (count,) int64 in [0, 4).
    """
    if count < 0 or size < 6:
        raise ValueError(f"make_shapes needs count >= 0 and size >= 6, got count={count}, size={size}")
    rng = numpy.random.default_rng(seed)
    images = rng.normal(0.0, noise, size=(count, 1, size, size)).astype(numpy.float32)
    labels = rng.integers(0, len(SHAPE_CLASSES), size=count)
    for image, label in zip(images[:, 0], labels):
        length = rng.integers(size // 2, size - 1)
        row, col = rng.integers(0, size - length, size=2)
        if label == 0:
            image[row + length // 2, col : col + length] += 1.0
        elif label == 1:
            image[row : row + length, col + length // 2] += 1.0
        elif label == 2:
            steps = numpy.arange(length)
            image[row + steps, col + steps] += 1.0
        else:
            image[row, col : col + length] += 1.0
            image[row + length - 1, col : col + length] += 1.0
            image[row : row + length, col] += 1.0
            image[row : row + length, col + length - 1] += 1.0
    return images, labels.astype(numpy.int64)
