"""CIFAR-10 from the official python version: the ``cifar-10-batches-py`` folder or its tar.gz.

The official batches are Python pickles (dicts holding a uint8 array and a list of labels). They are
read with an unpickler that can only build dicts, lists, bytes, numbers and NumPy uint8 arrays, so
a tampered file cannot run code. The archive is downloaded when absent and the network allows.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy

from . import download
from .base import DatasetError, DatasetInfo, Splits

INFO = DatasetInfo(
    name="cifar10", channels=3, size=(32, 32),
    classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    scale=1 / 255, mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616), flip=True, shift=2,
)

FOLDER = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
MIRRORS = ["https://www.cs.toronto.edu/~kriz/"]
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
TRAIN_BATCHES = tuple(f"data_batch_{index}" for index in range(1, 6))
TEST_BATCH = "test_batch"


def _reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct as function
    except ImportError:  # NumPy < 2
        from numpy.core.multiarray import _reconstruct as function
    return function


class _BatchUnpickler(pickle.Unpickler):
    """Resolves only the globals a pickled NumPy array needs; anything else is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) in (("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")):
            return _reconstruct()
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(numpy, name)
        if (module, name) == ("_codecs", "encode"):  # how protocol 2 stores bytes when written by Python 3
            import codecs

            return codecs.encode
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a CIFAR-10 batch")


def read_batch(data: bytes, where: str):
    """(images (N, 3, 32, 32) uint8, labels (N,) int64) from the bytes of one batch file."""
    try:
        batch = _BatchUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as error:  # a corrupt pickle raises many kinds of errors
        raise DatasetError(f"{where} is not a CIFAR-10 batch: {error}") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DatasetError(f"{where} is not a CIFAR-10 batch: expected a dict with b'data' and b'labels'")
    images, labels = batch[b"data"], batch[b"labels"]
    if not isinstance(images, numpy.ndarray) or images.dtype != numpy.uint8 or images.ndim != 2 \
            or images.shape[1] != 3 * 32 * 32:
        raise DatasetError(f"{where}: b'data' must be a uint8 array of shape (N, 3072), got "
                           f"{getattr(images, 'dtype', type(images).__name__)} {getattr(images, 'shape', '')}")
    labels = numpy.asarray(labels)
    if labels.shape != (len(images),) or labels.dtype.kind not in "iu" or (len(labels) and
                                                                            (labels.min() < 0 or labels.max() > 9)):
        raise DatasetError(f"{where}: b'labels' must be {len(images)} ints in 0..9")
    return images.reshape(-1, 3, 32, 32), labels.astype(numpy.int64)


def _read_folder(folder: Path):
    splits = {}
    for split, names in (("train", TRAIN_BATCHES), ("test", (TEST_BATCH,))):
        parts = []
        for name in names:
            try:
                data = (folder / name).read_bytes()
            except OSError as error:
                raise DatasetError(f"cannot read {folder / name}: {error}") from None
            parts.append(read_batch(data, str(folder / name)))
        splits[split] = (numpy.concatenate([images for images, _ in parts]),
                         numpy.concatenate([labels for _, labels in parts]))
    return splits


def _extract(archive: Path, destination: Path) -> None:
    """Writes the batch files of ``archive`` into ``destination`` (others, and odd paths, are ignored)."""
    wanted = {f"{FOLDER}/{name}" for name in TRAIN_BATCHES + (TEST_BATCH, "batches.meta")}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = {member.name: member for member in tar.getmembers() if member.isfile()}
            absent = sorted(wanted - set(members) - {f"{FOLDER}/batches.meta"})
            if absent:
                raise DatasetError(f"{archive} lacks {', '.join(absent)}: it is not the CIFAR-10 python archive")
            destination.mkdir(parents=True, exist_ok=True)
            for name in sorted(wanted & set(members)):
                data = tar.extractfile(members[name]).read()
                temporary = destination / (Path(name).name + ".part")
                temporary.write_bytes(data)
                temporary.replace(destination / Path(name).name)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DatasetError(f"cannot read {archive}: {error}") from None


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in TRAIN_BATCHES + (TEST_BATCH,))


def files_hint(data_dir: Path) -> str:
    return (f"put {ARCHIVE} from {MIRRORS[0]}{ARCHIVE} (or its extracted {FOLDER} folder: "
            f"{', '.join(TRAIN_BATCHES)}, {TEST_BATCH}) into {data_dir}")


def load(data_dir, download_missing: bool = True, log=download.stderr_log) -> Splits:
    """CIFAR-10 from ``data_dir/cifar-10-batches-py``, extracted from ``data_dir/cifar-10-python.tar.gz``
    (downloaded first if absent) when the folder is incomplete. Images (N, 3, 32, 32) uint8."""
    data_dir = Path(data_dir)
    folder, archive = data_dir / FOLDER, data_dir / ARCHIVE
    if not _complete(folder):
        if not archive.is_file():
            if not download_missing:
                raise DatasetError(f"CIFAR-10 files missing: {files_hint(data_dir)}")
            try:
                download.fetch(ARCHIVE, data_dir, MIRRORS, md5=ARCHIVE_MD5, log=log)
            except DatasetError as error:
                raise DatasetError(f"CIFAR-10 is not in {data_dir} and could not be downloaded ({error}); "
                                   f"{files_hint(data_dir)}") from None
        _extract(archive, folder)
    splits = _read_folder(folder)
    return Splits(INFO, *splits["train"], *splits["test"])


def write_batch(path, images: numpy.ndarray, labels, protocol: int = 2) -> None:
    """Writes a batch in the official layout (used by tests and to make small sample folders)."""
    batch = {b"batch_label": b"written by gpucnn", b"labels": [int(label) for label in labels],
             b"data": numpy.ascontiguousarray(images, dtype=numpy.uint8).reshape(len(images), -1),
             b"filenames": [f"{index}.png".encode() for index in range(len(images))]}
    data = pickle.dumps(batch, protocol=protocol)
    if protocol < 4:  # the official files were written by NumPy 1 and name its module so; do the same
        data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    Path(path).write_bytes(data)
