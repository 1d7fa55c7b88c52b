"""Datasets: the synthetic shapes task, and the real digits, MNIST and CIFAR-10 with a batch loader; and
PyTorch's ``TensorDataset`` and ``DataLoader`` for data of one's own.

    >>> from gpucnn import data
    >>> dataset = data.load_dataset("digits", seed=0)       # ships with scikit-learn: no download
    >>> preprocess = data.Preprocess.for_dataset(dataset.info)
    >>> for inputs, labels in data.BatchLoader(dataset.train_images, dataset.train_labels, 32, preprocess,
    ...                                        shuffle=True, augment=True): ...

Loading the real datasets imports nothing beyond NumPy except scikit-learn for ``digits``.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import cifar10, digits, mnist
from .base import Dataset, DatasetError, DatasetInfo
from .dataloader import DataLoader, TensorDataset, default_collate
from .loader import BatchLoader
from .synthetic import SHAPE_CLASSES, make_shapes
from .transforms import Preprocess, augment

DATASETS = {"digits": digits.INFO, "mnist": mnist.INFO, "cifar10": cifar10.INFO}

__all__ = [
    "DATASETS", "SHAPE_CLASSES", "BatchLoader", "DataLoader", "Dataset", "DatasetError", "DatasetInfo", "Preprocess",
    "TensorDataset", "augment", "default_collate", "default_data_dir", "load_dataset", "make_shapes",
]


def default_data_dir() -> Path:
    """``$GPUCNN_DATA_DIR``, else ``~/.cache/gpucnn/datasets``."""
    return Path(os.environ.get("GPUCNN_DATA_DIR") or Path.home() / ".cache" / "gpucnn" / "datasets")


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name``; ValueError listing the known names otherwise."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset '{name}'; expected one of: {', '.join(DATASETS)}")
    return DATASETS[name]


def load_dataset(name: str, data_dir=None, seed: int = 0, download: bool = True) -> Dataset:
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
