"""Datasets: the synthetic shapes task, and the real digits, MNIST and CIFAR-10 with a batch loader; and
torch.utils.data's ``Dataset``, ``TensorDataset``, ``Subset``, ``ConcatDataset``, ``random_split``, samplers and
``DataLoader``, torchvision's ``datasets.MNIST`` and ``datasets.CIFAR10`` and its ``transforms``.

    >>> from gpucnn import data
    >>> splits = data.load_dataset("digits", seed=0)       # ships with scikit-learn: no download
    >>> preprocess = data.Preprocess.for_dataset(splits.info)
    >>> for inputs, labels in data.BatchLoader(splits.train_images, splits.train_labels, 32, preprocess,
    ...                                        shuffle=True, augment=True): ...

    >>> from gpucnn.data import DataLoader, datasets, random_split, transforms
    >>> train = datasets.CIFAR10(root, train=True, download=True, transform=transforms.ToTensor())
    >>> train, val = random_split(train, [0.9, 0.1])
    >>> for images, labels in DataLoader(train, batch_size=128, shuffle=True): ...

Loading the real datasets imports nothing beyond NumPy except scikit-learn for ``digits``.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import cifar10, datasets, digits, mnist, transforms
from .base import DatasetError, DatasetInfo, Splits
from .dataloader import DataLoader, default_collate
from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from .loader import BatchLoader
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler
from .synthetic import SHAPE_CLASSES, make_shapes
from .transforms import Preprocess, augment

DATASETS = {"digits": digits.INFO, "mnist": mnist.INFO, "cifar10": cifar10.INFO}

__all__ = [
    "DATASETS", "SHAPE_CLASSES", "BatchLoader", "BatchSampler", "ConcatDataset", "DataLoader", "Dataset",
    "DatasetError", "DatasetInfo", "Preprocess", "RandomSampler", "Sampler", "SequentialSampler", "Splits", "Subset",
    "SubsetRandomSampler", "TensorDataset", "augment", "datasets", "default_collate", "default_data_dir",
    "load_dataset", "make_shapes", "random_split", "transforms",
]


def default_data_dir() -> Path:
    """``$GPUCNN_DATA_DIR``, else ``~/.cache/gpucnn/datasets``."""
    return Path(os.environ.get("GPUCNN_DATA_DIR") or Path.home() / ".cache" / "gpucnn" / "datasets")


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name``; ValueError listing the known names otherwise."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset '{name}'; expected one of: {', '.join(DATASETS)}")
    return DATASETS[name]


def load_dataset(name: str, data_dir=None, seed: int = 0, download: bool = True) -> Splits:
    """The train and test splits of ``name`` ('digits', 'mnist' or 'cifar10').

    Args:
        data_dir: where MNIST and CIFAR-10 files are looked for and downloaded to
            (default :func:`default_data_dir`); digits needs none.
        seed: chooses the train/test split of digits (MNIST and CIFAR-10 have fixed splits).
        download: fetch missing files from the canonical sources (checksums verified).

    Raises:
        ValueError: unknown name. DatasetError: files missing, corrupt, or not downloadable.
    """
    dataset_info(name)
    if name == "digits":
        return digits.load(seed)
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    module = mnist if name == "mnist" else cifar10
    return module.load(data_dir, download_missing=download)
