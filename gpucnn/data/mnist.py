"""MNIST from its idx files (gzipped or not), downloaded when absent and the network allows.

The idx format: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, each
dimension as a big-endian uint32, then the values in C order.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy

from . import download
from .base import DatasetError, DatasetInfo, Splits

INFO = DatasetInfo(name="mnist", channels=1, size=(28, 28), classes=tuple(str(digit) for digit in range(10)),
                   scale=1 / 255, mean=(0.1307,), std=(0.3081,), flip=False, shift=2)

FOLDER = "mnist"
# The canonical files and their published MD5s; the first mirror is the one torchvision uses,
# since yann.lecun.com often refuses downloads.
MIRRORS = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
FILES = {
    "train_images": ("train-images-idx3-ubyte", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train_labels": ("train-labels-idx1-ubyte", "d53e105ee54ea40749a09fcbcd1e9432"),
    "test_images": ("t10k-images-idx3-ubyte", "9fb629c4189551a2d022fa330f9573f3"),
    "test_labels": ("t10k-labels-idx1-ubyte", "ec29112dd5afa0611ce80d1b7f02629c"),
}


def read_idx(path) -> numpy.ndarray:
    """The uint8 array stored in an idx file (gzip-compressed or not, told apart by its first bytes)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise DatasetError(f"cannot read {path}: {error}") from None
    if len(raw) < 4 or raw[:2] != b"\0\0":
        raise DatasetError(f"{path} is not an idx file (it does not start with two zero bytes)")
    if raw[2] != 0x08:
        raise DatasetError(f"{path}: idx type code 0x{raw[2]:02x}, expected 0x08 (unsigned bytes)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path} is truncated: its header is incomplete")
    shape = tuple(int(size) for size in numpy.frombuffer(raw[4:header], dtype=">u4"))
    expected = int(numpy.prod(shape, dtype=numpy.int64))
    if len(raw) - header != expected:
        raise DatasetError(f"{path} holds {len(raw) - header} values after its header, but its shape "
                           f"{shape} needs {expected} (the file is truncated or corrupt)")
    return numpy.frombuffer(raw, dtype=numpy.uint8, offset=header).reshape(shape)


def write_idx(path, array: numpy.ndarray, compress: bool | None = None) -> None:
    """Writes a uint8 array as an idx file (gzipped when ``compress`` or the name ends in .gz)."""
    array = numpy.ascontiguousarray(array, dtype=numpy.uint8)
    data = bytes([0, 0, 0x08, array.ndim]) + numpy.asarray(array.shape, dtype=">u4").tobytes() + array.tobytes()
    if compress or (compress is None and str(path).endswith(".gz")):
        data = gzip.compress(data)
    Path(path).write_bytes(data)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def files_hint(folder: Path) -> str:
    names = ", ".join(stem + ".gz" for stem, _ in FILES.values())
    return f"put {names} (gzipped or not) from {MIRRORS[0]} into {folder}"


def load(data_dir, download_missing: bool = True, log=download.stderr_log) -> Splits:
    """MNIST from ``data_dir/mnist`` (or ``data_dir`` itself). Images (N, 1, 28, 28) uint8."""
    data_dir = Path(data_dir)
    folder = data_dir / FOLDER
    paths = {key: _find(folder, stem) or _find(data_dir, stem) for key, (stem, _) in FILES.items()}
    missing = [key for key, path in paths.items() if path is None]
    if missing and not download_missing:
        raise DatasetError(f"MNIST files missing: {files_hint(folder)}")
    for key in missing:
        stem, md5 = FILES[key]
        try:
            paths[key] = download.fetch(stem + ".gz", folder, MIRRORS, md5=md5, log=log)
        except DatasetError as error:
            raise DatasetError(f"MNIST is not in {folder} and could not be downloaded ({error}); "
                               f"{files_hint(folder)}") from None
    arrays = {key: read_idx(path) for key, path in paths.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or images.shape[1:] != INFO.size:
            raise DatasetError(f"{paths[split + '_images']}: images of shape {images.shape}, expected (N, 28, 28)")
        if labels.ndim != 1 or len(labels) != len(images):
            raise DatasetError(f"{paths[split + '_labels']}: labels of shape {labels.shape} for "
                               f"{len(images)} images in {paths[split + '_images']}")
        if len(labels) and labels.max() > 9:
            raise DatasetError(f"{paths[split + '_labels']}: label {labels.max()} is not a digit")
    return Splits(INFO, arrays["train_images"][:, None], arrays["train_labels"].astype(numpy.int64),
                  arrays["test_images"][:, None], arrays["test_labels"].astype(numpy.int64))
