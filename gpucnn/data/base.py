"""What every dataset loader returns (:class:`Splits`), and the error they raise for missing or corrupt files."""

from __future__ import annotations

from dataclasses import dataclass

import numpy


class DatasetError(Exception):
    """A dataset's files are missing, corrupt or cannot be downloaded; the message says what to do."""


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset without loading it.

    Attributes:
        name: ``'digits'``, ``'mnist'`` or ``'cifar10'``.
        channels, size: one image's shape is (channels, *size).
        classes: class names, index = label.
        scale: multiplies the stored pixel values (uint8) into [0, 1].
        mean, std: per-channel statistics of the [0, 1] pixels, used to normalise the inputs.
        flip: whether random horizontal flips are a valid augmentation (not for digits: a mirrored
            2 is no longer a 2).
        shift: the largest random shift in pixels used for augmentation.
    """

    name: str
    channels: int
    size: tuple
    classes: tuple
    scale: float
    mean: tuple
    std: tuple
    flip: bool
    shift: int

    @property
    def input_shape(self) -> tuple:
        return (self.channels, *self.size)


@dataclass
class Splits:
    """A dataset's train and test split held in memory.

    Images are (N, C, H, W) uint8, as stored (multiply by ``info.scale`` for [0, 1]); labels (N,) int64.
    """

    info: DatasetInfo
    train_images: numpy.ndarray
    train_labels: numpy.ndarray
    test_images: numpy.ndarray
    test_labels: numpy.ndarray

    def __post_init__(self):
        for split in ("train", "test"):
            images, labels = getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")
            if images.shape[1:] != self.info.input_shape or len(images) != len(labels):
                raise DatasetError(
                    f"{self.info.name}: {split} images of shape {images.shape} with {len(labels)} labels, "
                    f"expected (N, {', '.join(map(str, self.info.input_shape))}) with N labels"
                )
            if len(labels) and (labels.min() < 0 or labels.max() >= len(self.info.classes)):
                raise DatasetError(
                    f"{self.info.name}: {split} labels outside 0..{len(self.info.classes) - 1} "
                    f"(found {labels.min()}..{labels.max()})"
                )

    def limit_train(self, count: int | None) -> "Splits":
        """The same data with only the first ``count`` training images (None: all)."""
        if count is None or count >= len(self.train_labels):
            return self
        return Splits(self.info, self.train_images[:count], self.train_labels[:count], self.test_images,
                      self.test_labels)

    def limit_test(self, count: int | None) -> "Splits":
        """The same data with only the first ``count`` test images (None: all)."""
        if count is None or count >= len(self.test_labels):
            return self
        return Splits(self.info, self.train_images, self.train_labels, self.test_images[:count],
                      self.test_labels[:count])
