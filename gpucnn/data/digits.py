"""The 1,797 8x8 handwritten digits that ship inside scikit-learn (UCI "optdigits" test set).

Each pixel counts the ink in a 4x4 block of a 32x32 bitmap, 0..16. No download: the file is part of
scikit-learn. The split into train and test is stratified and depends only on ``seed``.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy

from .base import DatasetError, DatasetInfo, Splits

# mean and std of all 1,797 images scaled to [0, 1]. No augmentation: the digits are centred in
# their 8x8 frame, where a 1-pixel shift moves 12 % of the image, and shifted training measured
# 1-2 points worse on the test split.
INFO = DatasetInfo(name="digits", channels=1, size=(8, 8), classes=tuple(str(digit) for digit in range(10)),
                   scale=1 / 16, mean=(0.3053,), std=(0.3760,), flip=False, shift=0)

TEST_FRACTION = 0.2


def stratified_split(labels: numpy.ndarray, test_fraction: float, seed: int):
    """(train indices, test indices): ``test_fraction`` of each class goes to test, chosen by ``seed``.

    Both index arrays come out shuffled, so taking the first k training images gives a random subset.
    """
    rng = numpy.random.default_rng(seed)
    train, test = [], []
    for label in numpy.unique(labels):
        members = rng.permutation(numpy.flatnonzero(labels == label))
        count = int(round(len(members) * test_fraction))
        test.append(members[:count])
        train.append(members[count:])
    return rng.permutation(numpy.concatenate(train)), rng.permutation(numpy.concatenate(test))


def _read_digits():
    """(images (1797, 8, 8), labels (1797,)) as scikit-learn's ``load_digits`` gives them.

    Read from the file itself (``sklearn/datasets/data/digits.csv.gz``: a row an image, its 64 pixels
    and then its label) where it is there and holds 65 numbers a row: importing scikit-learn takes about
    a second, a fifth of ``gpucnn train``'s run on the digits. Else through ``load_digits``."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None:
        raise DatasetError("the digits dataset ships with scikit-learn, which is not installed: "
                           "pip install 'gpucnn[cli]'")
    for folder in spec.submodule_search_locations or ():
        try:
            with gzip.open(Path(folder) / "datasets" / "data" / "digits.csv.gz", "rt") as file:
                rows = numpy.loadtxt(file, delimiter=",", ndmin=2)
        except (OSError, ValueError):  # no such file, not gzip, not numbers alone: load_digits knows its file
            continue
        if rows.shape[1] == 65:
            return rows[:, :-1].reshape(-1, 8, 8), rows[:, -1]
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images, bunch.target


def load(seed: int = 0) -> Splits:
    """The digits, split 80/20 by ``seed``. Images (N, 1, 8, 8) uint8 in 0..16."""
    images, labels = _read_digits()
    images = images.astype(numpy.uint8)[:, None]
    labels = labels.astype(numpy.int64)
    train, test = stratified_split(labels, TEST_FRACTION, seed)
    return Splits(INFO, images[train], labels[train], images[test], labels[test])
