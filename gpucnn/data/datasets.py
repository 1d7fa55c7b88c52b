"""MNIST and CIFAR-10 as torchvision.datasets' (read and downloaded by :mod:`gpucnn.data.mnist` and
:mod:`gpucnn.data.cifar10`): a sample is (image, label), the image a uint8 NumPy array where torchvision gives a
PIL image (H x W for MNIST, H x W x C for CIFAR-10) before ``transform``, the label an int.

    >>> train = datasets.CIFAR10(root, train=True, download=True, transform=transforms.ToTensor())

``root`` is laid out as :func:`gpucnn.data.load_dataset`'s ``data_dir``: MNIST's idx files in ``root/mnist`` (or
``root`` itself), CIFAR-10's batches in ``root/cifar-10-batches-py`` or its archive in ``root``.
"""

from __future__ import annotations

from pathlib import Path

from ..tensor import tensor
from . import cifar10, mnist
from .dataset import Dataset

__all__ = ["CIFAR10", "MNIST"]


class _VisionDataset(Dataset):
    """What MNIST and CIFAR10 share: ``transform`` applied to each image, ``target_transform`` to each label."""

    classes: list

    def __init__(self, root, transform=None, target_transform=None):
        self.root, self.transform, self.target_transform = Path(root), transform, target_transform

    @property
    def class_to_idx(self) -> dict:
        return {name: index for index, name in enumerate(self.classes)}

    def _sample(self, image, label):
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label

    def __len__(self) -> int:
        return len(self.data)


class MNIST(_VisionDataset):
    """MNIST's 60,000 training or 10,000 test digits: ``data`` a uint8 tensor (N, 28, 28), ``targets`` an int64
    tensor (N,), both on the cpu.

    Raises:
        DatasetError: the files are missing (and ``download`` is false or fails) or corrupt.
    """

    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
               "8 - eight", "9 - nine"]

    def __init__(self, root, train: bool = True, transform=None, target_transform=None, download: bool = False):
        super().__init__(root, transform, target_transform)
        self.train = train
        splits = mnist.load(self.root, download_missing=download)
        images, labels = (splits.train_images, splits.train_labels) if train else (splits.test_images,
                                                                                    splits.test_labels)
        self.data, self.targets = tensor(images[:, 0], device="cpu"), tensor(labels, device="cpu")

    def __getitem__(self, index):
        return self._sample(self.data.numpy()[index].copy(), int(self.targets.numpy()[index]))


class CIFAR10(_VisionDataset):
    """CIFAR-10's 50,000 training or 10,000 test images: ``data`` a uint8 NumPy array (N, 32, 32, 3), ``targets``
    a list of ints.

    Raises:
        DatasetError: the files are missing (and ``download`` is false or fails) or corrupt.
    """

    classes = list(cifar10.INFO.classes)

    def __init__(self, root, train: bool = True, transform=None, target_transform=None, download: bool = False):
        super().__init__(root, transform, target_transform)
        self.train = train
        splits = cifar10.load(self.root, download_missing=download)
        images, labels = (splits.train_images, splits.train_labels) if train else (splits.test_images,
                                                                                    splits.test_labels)
        self.data, self.targets = images.transpose(0, 2, 3, 1).copy(), labels.tolist()

    def __getitem__(self, index):
        return self._sample(self.data[index].copy(), self.targets[index])
