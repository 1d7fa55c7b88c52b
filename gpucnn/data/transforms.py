"""Turning stored uint8 images into network inputs: scaling, augmentation, normalisation; torchvision's
transforms for one's own pipelines, and the command line's batched ones.

torchvision's transforms take an image one at a time, where torchvision takes a PIL image, as a NumPy array
(H x W or H x W x C, the layout of ``numpy.asarray(pil_image)``), and a tensor as a tensor (..., H, W);
geometric ones give back the kind of image they were given, random ones draw from the global generator that
:func:`gpucnn.manual_seed` seeds (other draws than the same seed gives torchvision).

    >>> train_transform = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
    ...                                       transforms.ToTensor(), transforms.Normalize(mean, std)])

The command line's augmentation (:func:`augment`, :class:`Preprocess`) follows the ConvNetJS CIFAR-10 demo:
each image is shifted by a random whole number of pixels in [-shift, shift] along each axis (pixels moved in
from outside are 0) and, where the dataset allows it, mirrored left-right with probability 1/2. All of it is
done for the whole batch at once.
"""

from __future__ import annotations

import math
import numbers

import numpy

from .. import random
from ..tensor import Tensor, tensor

__all__ = [
    "CenterCrop", "Compose", "Lambda", "Normalize", "Pad", "Preprocess", "RandomCrop", "RandomErasing",
    "RandomHorizontalFlip", "RandomVerticalFlip", "ToTensor", "augment",
]


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


# ------------------------------------------------------------------------------ torchvision's transforms
PADDING_MODES = ("constant", "edge", "reflect", "symmetric")


def _planes(image, name: str):
    """(``image`` with height and width as its last two axes, the function that puts a result so laid out back
    into ``image``'s layout)."""
    if isinstance(image, Tensor):
        if image.ndim < 2:
            raise ValueError(f"{name}: a tensor image must have at least 2 dimensions (..., H, W), got shape "
                             f"{image.shape}")
        return image, lambda result: result
    if isinstance(image, numpy.ndarray):
        if image.ndim == 2:
            return image, numpy.ascontiguousarray
        if image.ndim == 3:
            return image.transpose(2, 0, 1), lambda result: numpy.ascontiguousarray(result.transpose(1, 2, 0))
        raise ValueError(f"{name}: a NumPy image must be H x W or H x W x C, got shape {image.shape}")
    raise TypeError(f"{name}: expects a NumPy image (H x W or H x W x C) or a tensor (..., H, W), "
                    f"got {type(image).__name__}")


def _image_size(image, name: str) -> tuple:
    """(height, width) of ``image``."""
    return tuple(_planes(image, name)[0].shape[-2:])


def _crop(image, top: int, left: int, height: int, width: int, name: str):
    planes, restore = _planes(image, name)
    return restore(planes[..., top:top + height, left:left + width])


def _pad(image, padding: tuple, fill, mode: str, name: str):
    """``image`` padded by ``padding`` (left, top, right, bottom) pixels as numpy.pad's ``mode`` pads."""
    planes, restore = _planes(image, name)
    left, top, right, bottom = padding
    widths = [(0, 0)] * (planes.ndim - 2) + [(top, bottom), (left, right)]
    values = {"constant_values": fill} if mode == "constant" else {}
    if isinstance(image, Tensor):
        return tensor(numpy.pad(image.numpy(), widths, mode=mode, **values), device=image.device)
    return restore(numpy.pad(planes, widths, mode=mode, **values))


def _size_pair(size, name: str) -> tuple:
    """(height, width) of an int or a sequence of one or two ints, as torchvision's ``size`` arguments."""
    pair = (size, size) if isinstance(size, numbers.Integral) else tuple(size) if isinstance(size, (tuple, list)) \
        else ()
    pair = pair * 2 if len(pair) == 1 else pair
    if len(pair) != 2 or not all(not isinstance(value, bool) and isinstance(value, numbers.Integral) and value > 0
                                 for value in pair):
        raise ValueError(f"{name}: size must be a positive int or a sequence (height, width) of them, got {size!r}")
    return tuple(int(value) for value in pair)


def _padding_sides(padding, name: str) -> tuple:
    """(left, top, right, bottom) of an int, or of a sequence of 1, 2 (left and right, top and bottom) or 4 ints,
    as torchvision's ``padding`` arguments."""
    sides = [padding] if isinstance(padding, numbers.Integral) else list(padding) \
        if isinstance(padding, (tuple, list)) else None
    if sides is None or not all(not isinstance(side, bool) and isinstance(side, numbers.Integral) for side in sides):
        raise TypeError(f"{name}: padding must be an int or a sequence of ints, got {padding!r}")
    if len(sides) not in (1, 2, 4):
        raise ValueError(f"{name}: padding must be an int or a sequence of 1, 2 or 4 ints, got {len(sides)} ints")
    if any(side < 0 for side in sides):
        raise ValueError(f"{name}: padding must not be negative, got {padding!r}")
    return tuple(int(side) for side in (sides * 4 if len(sides) == 1 else sides * 2 if len(sides) == 2 else sides))


def _fill_and_mode(fill, padding_mode: str, name: str) -> None:
    if isinstance(fill, bool) or not isinstance(fill, numbers.Real):
        raise TypeError(f"{name}: fill must be a number, got {fill!r}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"{name}: padding_mode must be one of {', '.join(PADDING_MODES)}, got {padding_mode!r}")


def _probability(p, name: str) -> float:
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
        raise ValueError(f"{name}: p must be a probability between 0 and 1, got {p!r}")
    return float(p)


class Compose:
    """The ``transforms`` applied one after the other."""

    def __init__(self, transforms):
        self.transforms = transforms

    def __call__(self, image):
        for transform in self.transforms:
            image = transform(image)
        return image


class ToTensor:
    """A NumPy image H x W x C (or H x W: one channel) -> a float32 tensor C x H x W on the cpu, scaled from
    0..255 into [0, 1] where the array is uint8; other arrays keep their dtype and values, as torchvision's."""

    def __call__(self, pic):
        if not isinstance(pic, numpy.ndarray):
            raise TypeError(f"ToTensor: pic must be a NumPy array H x W x C or H x W, got {type(pic).__name__}")
        if pic.ndim not in (2, 3):
            raise ValueError(f"ToTensor: pic must be 2- or 3-dimensional (H x W or H x W x C), got shape {pic.shape}")
        planes = (pic[:, :, None] if pic.ndim == 2 else pic).transpose(2, 0, 1)
        if pic.dtype == numpy.uint8:
            planes = planes.astype(numpy.float32) / numpy.float32(255)
        return tensor(numpy.ascontiguousarray(planes), device="cpu")


class Normalize:
    """A float tensor (..., C, H, W) -> ``(tensor - mean[c]) / std[c]`` for each channel c; with ``inplace``
    the tensor itself is changed and returned."""

    def __init__(self, mean, std, inplace: bool = False):
        self.mean, self.std, self.inplace = mean, std, inplace

    def __call__(self, image):
        if not isinstance(image, Tensor):
            raise TypeError(f"Normalize: expects a tensor (..., C, H, W) (ToTensor makes one), "
                            f"got {type(image).__name__}")
        if image.dtype.kind != "f":
            raise TypeError(f"Normalize: expects a float tensor, got {image.dtype}")
        if image.ndim < 3:
            raise ValueError(f"Normalize: expects a tensor of shape (..., C, H, W), got shape {image.shape}")
        mean, std = (numpy.asarray(values, dtype=image.dtype) for values in (self.mean, self.std))
        for label, values in (("mean", mean), ("std", std)):
            if values.ndim > 1 or values.size not in (1, image.shape[-3]):
                raise ValueError(f"Normalize: {label} must be a number or one per channel ({image.shape[-3]}), "
                                 f"got {getattr(self, label)!r}")
        if (std == 0).any():
            raise ValueError(f"Normalize: std {self.std!r} is zero in {image.dtype}: that divides by zero")
        mean, std = (tensor(values.reshape(-1, 1, 1), device=image.device) for values in (mean, std))
        return image.sub_(mean).div_(std) if self.inplace else (image - mean) / std


class Pad:
    """``image`` padded by ``padding``: an int for every side, (left and right, top and bottom), or (left, top,
    right, bottom); ``padding_mode`` 'constant' (``fill``), 'edge', 'reflect' or 'symmetric' as numpy.pad's."""

    def __init__(self, padding, fill=0, padding_mode: str = "constant"):
        self.padding, self.fill, self.padding_mode = _padding_sides(padding, "Pad"), fill, padding_mode
        _fill_and_mode(fill, padding_mode, "Pad")

    def __call__(self, image):
        return _pad(image, self.padding, self.fill, self.padding_mode, "Pad")


class RandomCrop:
    """A window of ``size`` (an int: square) at a random place in ``image``, after padding it by ``padding`` (as
    :class:`Pad`) and, with ``pad_if_needed``, on both sides of each axis shorter than the window by the
    difference, as torchvision's.

    Raises:
        ValueError (when called): the window is larger than the padded image.
    """

    def __init__(self, size, padding=None, pad_if_needed: bool = False, fill=0, padding_mode: str = "constant"):
        self.size = _size_pair(size, "RandomCrop")
        self.padding = None if padding is None else _padding_sides(padding, "RandomCrop")
        self.pad_if_needed, self.fill, self.padding_mode = pad_if_needed, fill, padding_mode
        _fill_and_mode(fill, padding_mode, "RandomCrop")

    def __call__(self, image):
        if self.padding is not None:
            image = _pad(image, self.padding, self.fill, self.padding_mode, "RandomCrop")
        crop_height, crop_width = self.size
        height, width = _image_size(image, "RandomCrop")
        if self.pad_if_needed and width < crop_width:
            image = _pad(image, (crop_width - width, 0) * 2, self.fill, self.padding_mode, "RandomCrop")
        if self.pad_if_needed and height < crop_height:
            image = _pad(image, (0, crop_height - height) * 2, self.fill, self.padding_mode, "RandomCrop")
        height, width = _image_size(image, "RandomCrop")
        if height < crop_height or width < crop_width:
            raise ValueError(f"RandomCrop: the crop size {self.size} is larger than the (padded) image's "
                             f"{(height, width)}")
        top = int(random.generator().integers(0, height - crop_height + 1))
        left = int(random.generator().integers(0, width - crop_width + 1))
        return _crop(image, top, left, crop_height, crop_width, "RandomCrop")


class CenterCrop:
    """The window of ``size`` (an int: square) in the middle of ``image``, its offsets rounded as torchvision's
    (half to even); an image smaller than the window is first padded with 0 around it."""

    def __init__(self, size):
        self.size = _size_pair(size, "CenterCrop")

    def __call__(self, image):
        crop_height, crop_width = self.size
        height, width = _image_size(image, "CenterCrop")
        if crop_width > width or crop_height > height:
            extra_width, extra_height = max(crop_width - width, 0), max(crop_height - height, 0)
            padding = (extra_width // 2, extra_height // 2, (extra_width + 1) // 2, (extra_height + 1) // 2)
            image = _pad(image, padding, 0, "constant", "CenterCrop")
            height, width = _image_size(image, "CenterCrop")
        top, left = round((height - crop_height) / 2), round((width - crop_width) / 2)
        return _crop(image, top, left, crop_height, crop_width, "CenterCrop")


class RandomHorizontalFlip:
    """``image`` mirrored left-right with probability ``p``."""

    def __init__(self, p: float = 0.5):
        self.p = _probability(p, "RandomHorizontalFlip")

    def __call__(self, image):
        planes, restore = _planes(image, "RandomHorizontalFlip")
        return restore(planes[..., ::-1]) if random.generator().random() < self.p else image


class RandomVerticalFlip:
    """``image`` mirrored upside down with probability ``p``."""

    def __init__(self, p: float = 0.5):
        self.p = _probability(p, "RandomVerticalFlip")

    def __call__(self, image):
        planes, restore = _planes(image, "RandomVerticalFlip")
        return restore(planes[..., ::-1, :]) if random.generator().random() < self.p else image


class Lambda:
    """``lambd`` as a transform."""

    def __init__(self, lambd):
        if not callable(lambd):
            raise TypeError(f"Lambda: lambd must be callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, image):
        return self.lambd(image)


class RandomErasing:
    """With probability ``p``, a rectangle of a tensor image (..., C, H, W) set to ``value`` (a number, one per
    channel, or ``'random'``: standard normal noise), as torchvision's: its area a uniform fraction in ``scale``
    of the image's, its aspect ratio log-uniform in ``ratio``, up to 10 tries for one that fits, else nothing
    erased. With ``inplace`` the tensor itself is changed."""

    def __init__(self, p: float = 0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0, inplace: bool = False):
        self.p = _probability(p, "RandomErasing")
        for label, pair in (("scale", scale), ("ratio", ratio)):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2 or pair[0] > pair[1]:
                raise ValueError(f"RandomErasing: {label} must be a pair (min, max), got {pair!r}")
        if scale[0] < 0 or scale[1] > 1:
            raise ValueError(f"RandomErasing: scale must lie between 0 and 1, got {scale!r}")
        if ratio[0] <= 0:
            raise ValueError(f"RandomErasing: ratio must be positive, got {ratio!r}")
        if isinstance(value, str) and value != "random" or not isinstance(value, (numbers.Real, str, tuple, list)):
            raise ValueError(f"RandomErasing: value must be a number, a sequence of them or 'random', got {value!r}")
        self.scale, self.ratio, self.value, self.inplace = tuple(scale), tuple(ratio), value, inplace

    def __call__(self, image):
        if not isinstance(image, Tensor) or image.ndim < 3:
            raise TypeError(f"RandomErasing: expects a tensor (..., C, H, W), got {type(image).__name__}"
                            f"{' of shape ' + str(image.shape) if isinstance(image, Tensor) else ''}")
        rng = random.generator()
        if not rng.random() < self.p:
            return image
        channels, height, width = image.shape[-3:]
        if not isinstance(self.value, str):
            value = numpy.asarray(self.value, dtype=numpy.float32).reshape(-1)
            if value.size not in (1, channels):
                raise ValueError(f"RandomErasing: value must be one number or one per channel ({channels}), "
                                 f"got {self.value!r}")
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            area = height * width * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            erase_height, erase_width = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
            if erase_height < height and erase_width < width:
                break
        else:
            return image
        if isinstance(self.value, str):
            value = rng.standard_normal((channels, erase_height, erase_width)).astype(numpy.float32)
        else:
            value = value.reshape(-1, 1, 1)
        top = int(rng.integers(0, height - erase_height + 1))
        left = int(rng.integers(0, width - erase_width + 1))
        erased = image if self.inplace else image.clone()
        erased[..., top:top + erase_height, left:left + erase_width] = value.astype(image.dtype)
        return erased
