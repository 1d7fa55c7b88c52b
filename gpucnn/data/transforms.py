"""Turning stored uint8 images into network inputs: scaling, augmentation, normalisation.

Augmentation follows the ConvNetJS CIFAR-10 demo: each image is shifted by a random whole number of
pixels in [-shift, shift] along each axis (pixels moved in from outside are 0) and, where the dataset
allows it, mirrored left-right with probability 1/2. All of it is done for the whole batch at once.
"""

from __future__ import annotations

import numpy


def augment(images: numpy.ndarray, rng: numpy.random.Generator, flip: bool, shift: int) -> numpy.ndarray:
    """Randomly flipped and shifted copies of ``images`` (N, C, H, W); draws from ``rng`` in a fixed order."""
    count, _, height, width = images.shape
    if flip:
        mirrored = rng.random(count) < 0.5
        images = images.copy()
        images[mirrored] = images[mirrored, :, :, ::-1]
    if shift > 0:
        offsets = rng.integers(-shift, shift + 1, size=(2, count))
        padded = numpy.pad(images, ((0, 0), (0, 0), (shift, shift), (shift, shift)))
        # output pixel (y, x) of image n reads padded pixel (y + shift - dy, x + shift - dx)
        rows = (shift - offsets[0])[:, None, None] + numpy.arange(height)[None, :, None]
        cols = (shift - offsets[1])[:, None, None] + numpy.arange(width)[None, None, :]
        batch = numpy.arange(count)[:, None, None]
        # advanced indices on axes 0, 2, 3 put their broadcast shape (N, H, W) first, channels last
        images = padded.transpose(0, 2, 3, 1)[batch, rows, cols].transpose(0, 3, 1, 2)
    return numpy.ascontiguousarray(images)


class Preprocess:
    """uint8 images (N, C, H, W) -> float32 network inputs: ``(pixels * scale - mean[c]) / std[c]``.

    ``to_dict()``/``from_dict()`` store it beside a trained model, so predictions use the same inputs.
    """

    def __init__(self, scale: float, mean, std, flip: bool = False, shift: int = 0):
        self.scale = float(scale)
        self.mean = tuple(float(value) for value in mean)
        self.std = tuple(float(value) for value in std)
        self.flip, self.shift = bool(flip), int(shift)
        self._mean = numpy.asarray(self.mean, dtype=numpy.float32)[:, None, None]
        self._inverse_std = (1 / numpy.asarray(self.std, dtype=numpy.float32))[:, None, None]

    @classmethod
    def for_dataset(cls, info, augment: bool = True) -> "Preprocess":
        return cls(info.scale, info.mean, info.std, info.flip and augment, info.shift if augment else 0)

    def __call__(self, images: numpy.ndarray, rng: numpy.random.Generator | None = None) -> numpy.ndarray:
        """The network inputs for ``images``; augmented when ``rng`` is given (training batches)."""
        batch = images.astype(numpy.float32) * numpy.float32(self.scale)
        if rng is not None and (self.flip or self.shift):
            batch = augment(batch, rng, self.flip, self.shift)
        return (batch - self._mean) * self._inverse_std

    def normalize(self, pixels: numpy.ndarray) -> numpy.ndarray:
        """Normalises images already scaled to [0, 1] (e.g. from an image file)."""
        return (numpy.asarray(pixels, dtype=numpy.float32) - self._mean) * self._inverse_std

    def to_dict(self) -> dict:
        return {"scale": self.scale, "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, values: dict) -> "Preprocess":
        return cls(values["scale"], values["mean"], values["std"])
