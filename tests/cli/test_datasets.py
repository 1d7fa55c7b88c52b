"""Datasets: digits' split, MNIST idx and CIFAR-10 pickles written in their exact formats, downloads
from a local HTTP server with checksums, offline errors, augmentation and the batch loader; MNIST and CIFAR-10
as torchvision.datasets' on those files."""

import functools
import gzip
import hashlib
import http.server
import importlib.machinery
import importlib.util
import os
import pickle
import tarfile
import threading

import numpy as np
import pytest

import gpucnn
from cli_helpers import one_line_error
from gpucnn.data import (
    BatchLoader, DataLoader, DatasetError, Preprocess, augment, cifar10, datasets, digits, load_dataset, mnist,
    random_split, transforms,
)


def test_digits_split_is_stratified_disjoint_and_seeded():
    first, again, other = load_dataset("digits", seed=0), load_dataset("digits", seed=0), load_dataset("digits", seed=1)
    assert len(first.train_labels) + len(first.test_labels) == 1797
    assert first.train_images.shape[1:] == (1, 8, 8) and first.train_images.dtype == np.uint8
    assert first.train_images.max() == 16
    assert np.array_equal(first.test_images, again.test_images)
    assert np.array_equal(first.train_labels, again.train_labels)
    assert not np.array_equal(first.test_labels, other.test_labels)
    counts = np.bincount(first.test_labels, minlength=10) / np.bincount(
        np.concatenate([first.train_labels, first.test_labels]), minlength=10)
    assert np.allclose(counts, 0.2, atol=0.01)
    train, test = digits.stratified_split(np.repeat(np.arange(3), 10), 0.2, seed=4)
    assert len(set(train) & set(test)) == 0 and sorted(np.concatenate([train, test])) == list(range(30))


def test_digits_are_scikit_learns_read_from_its_file_or_through_load_digits(monkeypatch, tmp_path):
    """The file read directly gives what load_digits gives, as does load_digits itself where scikit-learn
    keeps the file elsewhere or in another form; without scikit-learn the error says what to install."""
    from sklearn.datasets import load_digits

    reference = load_digits()
    folder = importlib.util.find_spec("sklearn").submodule_search_locations[0]
    assert os.path.isfile(os.path.join(folder, "datasets", "data", "digits.csv.gz"))  # the file read directly
    images, labels = digits._read_digits()
    assert np.array_equal(images, reference.images) and np.array_equal(labels, reference.target)
    (tmp_path / "header" / "datasets" / "data").mkdir(parents=True)
    (tmp_path / "columns" / "datasets" / "data").mkdir(parents=True)
    with gzip.open(tmp_path / "header" / "datasets" / "data" / "digits.csv.gz", "wt") as file:
        file.write("pixels and label\n" + "0," * 64 + "0\n")
    with gzip.open(tmp_path / "columns" / "datasets" / "data" / "digits.csv.gz", "wt") as file:
        file.write("0," * 63 + "0\n")
    (tmp_path / "plain" / "datasets" / "data").mkdir(parents=True)
    (tmp_path / "plain" / "datasets" / "data" / "digits.csv.gz").write_text("0," * 64 + "0\n")  # not gzip
    for folders in ([], [str(tmp_path / name) for name in ("missing", "header")], [str(tmp_path / "columns")],
                    [str(tmp_path / "plain")]):  # no folder, no file, other layouts
        elsewhere = importlib.machinery.ModuleSpec("sklearn", None, is_package=True)
        elsewhere.submodule_search_locations = folders
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: elsewhere)
        images, labels = digits._read_digits()
        assert np.array_equal(images, reference.images) and np.array_equal(labels, reference.target)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None)
    with pytest.raises(DatasetError, match=r"scikit-learn, which is not installed: pip install 'gpucnn\[cli\]'"):
        load_dataset("digits")


# --------------------------------------------------------------------------------------------- MNIST
def write_mnist(folder, train=24, test=12, compress=True, seed=0):
    """Four idx files in MNIST's exact format; returns the arrays written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"train_images": rng.integers(0, 256, (train, 28, 28), dtype=np.uint8),
              "train_labels": rng.integers(0, 10, train).astype(np.uint8),
              "test_images": rng.integers(0, 256, (test, 28, 28), dtype=np.uint8),
              "test_labels": rng.integers(0, 10, test).astype(np.uint8)}
    for key, (stem, _) in mnist.FILES.items():
        mnist.write_idx(folder / (stem + (".gz" if compress else "")), arrays[key])
    return arrays


def test_idx_header_layout(tmp_path):
    mnist.write_idx(tmp_path / "labels", np.array([7, 2, 1], dtype=np.uint8))
    assert (tmp_path / "labels").read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1])


@pytest.mark.parametrize("compress, subfolder", [(True, "mnist"), (False, "mnist"), (True, "")])
def test_mnist_from_idx_files(tmp_path, compress, subfolder):
    arrays = write_mnist(tmp_path / subfolder, compress=compress)
    dataset = load_dataset("mnist", tmp_path, download=False)
    assert dataset.train_images.shape == (24, 1, 28, 28) and dataset.test_images.shape == (12, 1, 28, 28)
    assert np.array_equal(dataset.train_images[:, 0], arrays["train_images"])
    assert np.array_equal(dataset.test_labels, arrays["test_labels"]) and dataset.test_labels.dtype == np.int64


@pytest.mark.parametrize("damage, message", [
    (lambda raw: raw[:-10], "truncated or corrupt"),
    (lambda raw: b"\x01\x02" + raw[2:], "not an idx file"),
    (lambda raw: raw[:2] + b"\x0d" + raw[3:], "type code 0x0d"),
])
def test_corrupt_mnist_files(tmp_path, damage, message):
    write_mnist(tmp_path / "mnist", compress=False)
    path = tmp_path / "mnist" / "train-images-idx3-ubyte"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DatasetError, match=message) as raised:
        load_dataset("mnist", tmp_path, download=False)
    assert str(path) in str(raised.value)


def test_corrupt_gzip_and_mismatched_labels(tmp_path):
    write_mnist(tmp_path / "mnist")
    labels = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:20])
    with pytest.raises(DatasetError, match="cannot read"):
        load_dataset("mnist", tmp_path, download=False)
    mnist.write_idx(labels, np.zeros(5, dtype=np.uint8))
    with pytest.raises(DatasetError, match="labels of shape \\(5,\\) for 12 images"):
        load_dataset("mnist", tmp_path, download=False)


# ------------------------------------------------------------------------------------------- CIFAR-10
def write_cifar(folder, per_batch=4, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in cifar10.TRAIN_BATCHES + (cifar10.TEST_BATCH,):
        images = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch)
        cifar10.write_batch(folder / name, images, labels)
        written[name] = images, labels
    with open(folder / "batches.meta", "wb") as stream:
        pickle.dump({b"label_names": [name.encode() for name in cifar10.INFO.classes]}, stream, protocol=2)
    return written


def test_cifar_batch_is_the_official_layout(tmp_path):
    images = np.arange(2 * 3072, dtype=np.uint32).astype(np.uint8).reshape(2, 3, 32, 32)
    cifar10.write_batch(tmp_path / "batch", images, [3, 9])
    raw = (tmp_path / "batch").read_bytes()
    assert b"numpy.core.multiarray" in raw  # as the official files, written by NumPy 1
    batch = pickle.loads(raw, encoding="bytes")  # how the CIFAR-10 page says to read it
    assert batch[b"labels"] == [3, 9] and batch[b"data"].shape == (2, 3072)
    # each row: the 1024 red values, then green, then blue, each row-major
    assert np.array_equal(batch[b"data"][1, 1024:2048], images[1, 1].reshape(-1))


def test_cifar_from_folder_and_from_archive(tmp_path):
    written = write_cifar(tmp_path / "cifar-10-batches-py")
    dataset = load_dataset("cifar10", tmp_path, download=False)
    assert dataset.train_images.shape == (20, 3, 32, 32) and dataset.test_images.shape == (4, 3, 32, 32)
    assert np.array_equal(dataset.train_images[4:8], written["data_batch_2"][0])
    assert np.array_equal(dataset.test_labels, written["test_batch"][1])

    archive_dir = tmp_path / "archive"
    archive_dir.mkdir()
    with tarfile.open(archive_dir / cifar10.ARCHIVE, "w:gz") as tar:
        tar.add(tmp_path / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    from_archive = load_dataset("cifar10", archive_dir, download=False)
    assert np.array_equal(from_archive.train_images, dataset.train_images)
    assert (archive_dir / "cifar-10-batches-py" / "test_batch").is_file()


def test_cifar_refuses_pickles_that_run_code(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py")
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(pickle.dumps({b"data": Exploit()}, protocol=2))
    with pytest.raises(DatasetError, match="refusing to load .*open"):
        load_dataset("cifar10", tmp_path, download=False)
    assert not marker.exists()


def test_corrupt_cifar_batch(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py")
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DatasetError, match="test_batch is not a CIFAR-10 batch"):
        load_dataset("cifar10", tmp_path, download=False)
    cifar10.write_batch(path, np.zeros((2, 3, 32, 32), np.uint8), [1, 12])
    with pytest.raises(DatasetError, match="ints in 0..9"):
        load_dataset("cifar10", tmp_path, download=False)


# ----------------------------------------------------------------------------- as torchvision.datasets'
@pytest.mark.parametrize("train", [True, False])
def test_torchvision_mnist_samples(tmp_path, train):
    arrays = write_mnist(tmp_path / "mnist")
    images, labels = (arrays["train_images"], arrays["train_labels"]) if train else (arrays["test_images"],
                                                                                      arrays["test_labels"])
    dataset = datasets.MNIST(tmp_path, train=train)
    assert len(dataset) == len(labels) and dataset.train is train and isinstance(dataset, gpucnn.data.Dataset)
    assert dataset.classes[3] == "3 - three" and dataset.class_to_idx["9 - nine"] == 9
    assert isinstance(dataset.data, gpucnn.Tensor) and dataset.data.dtype == np.uint8
    assert dataset.data.shape == images.shape and np.array_equal(dataset.data.numpy(), images)
    assert dataset.targets.dtype == np.int64 and np.array_equal(dataset.targets.numpy(), labels)
    for index in (0, 5, -1):
        image, label = dataset[index]
        assert image.shape == (28, 28) and image.dtype == np.uint8 and np.array_equal(image, images[index])
        assert type(label) is int and label == labels[index]
    image[:] = 0  # a sample is a copy, as a PIL image is
    assert np.array_equal(dataset[-1][0], images[-1])


def test_torchvision_cifar10_samples_and_transforms(tmp_path):
    written = write_cifar(tmp_path / "cifar-10-batches-py")
    train = datasets.CIFAR10(tmp_path, transform=transforms.ToTensor(), target_transform=lambda label: label + 100)
    test = datasets.CIFAR10(tmp_path, train=False)
    assert len(train) == 20 and len(test) == 4 and train.classes[0] == "airplane" and test.class_to_idx["truck"] == 9
    assert train.data.shape == (20, 32, 32, 3) and train.data.dtype == np.uint8
    assert np.array_equal(train.data[4:8], written["data_batch_2"][0].transpose(0, 2, 3, 1))
    assert train.targets == [int(label) for name in cifar10.TRAIN_BATCHES for label in written[name][1]]
    image, label = test[2]
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8 and type(label) is int
    assert np.array_equal(image, written["test_batch"][0][2].transpose(1, 2, 0))
    assert label == written["test_batch"][1][2]
    tensor, label = train[5]
    assert tensor.shape == (3, 32, 32) and label == written["data_batch_2"][1][1] + 100
    assert np.array_equal(tensor.numpy(), written["data_batch_2"][0][1] / np.float32(255))


def test_torchvision_pipeline_through_random_split_and_data_loader(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py", per_batch=6)
    train_transform = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                          transforms.ToTensor(), transforms.Normalize(cifar10.INFO.mean,
                                                                                      cifar10.INFO.std)])
    train, val = random_split(datasets.CIFAR10(tmp_path, transform=train_transform), [0.8, 0.2],
                              generator=np.random.default_rng(0))
    assert (len(train), len(val)) == (24, 6)
    batches = list(DataLoader(train, batch_size=10, shuffle=True))
    assert [len(labels) for _, labels in batches] == [10, 10, 4]
    images, labels = batches[0]
    assert images.shape == (10, 3, 32, 32) and images.dtype == np.float32 and labels.dtype == np.int64


def test_torchvision_datasets_missing_files(tmp_path):
    with pytest.raises(DatasetError, match="MNIST files missing"):
        datasets.MNIST(tmp_path)
    with pytest.raises(DatasetError, match="CIFAR-10 files missing"):
        datasets.CIFAR10(tmp_path, train=False)


# ------------------------------------------------------------------------------------------ downloads
@pytest.fixture
def http_server(tmp_path):
    """Serves ``tmp_path/'served'`` on 127.0.0.1; yields (base URL, folder)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", folder
    finally:
        server.shutdown()
        server.server_close()


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_mnist_download_verifies_checksums(http_server, tmp_path, monkeypatch):
    url, served = http_server
    arrays = write_mnist(served)
    monkeypatch.setattr(mnist, "MIRRORS", ["http://127.0.0.1:9/unreachable/", url])  # the first mirror fails
    monkeypatch.setattr(mnist, "FILES", {key: (stem, md5(served / (stem + ".gz")))
                                         for key, (stem, _) in mnist.FILES.items()})
    data_dir = tmp_path / "data"
    dataset = load_dataset("mnist", data_dir)
    assert np.array_equal(dataset.train_images[:, 0], arrays["train_images"])
    assert sorted(path.name for path in (data_dir / "mnist").iterdir()) == sorted(
        stem + ".gz" for stem, _ in mnist.FILES.values())


def test_download_with_wrong_checksum_leaves_nothing(http_server, tmp_path, monkeypatch):
    url, served = http_server
    write_mnist(served)
    monkeypatch.setattr(mnist, "MIRRORS", [url])  # the real published MD5s do not match these files
    data_dir = tmp_path / "data"
    with pytest.raises(DatasetError, match="checksum .* does not match the published f68b3c2d"):
        load_dataset("mnist", data_dir)
    assert list((data_dir / "mnist").iterdir()) == []


def test_cifar_download_then_extract(http_server, tmp_path, monkeypatch):
    url, served = http_server
    written = write_cifar(tmp_path / "source" / "cifar-10-batches-py")
    with tarfile.open(served / cifar10.ARCHIVE, "w:gz") as tar:
        tar.add(tmp_path / "source" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    monkeypatch.setattr(cifar10, "MIRRORS", [url])
    monkeypatch.setattr(cifar10, "ARCHIVE_MD5", md5(served / cifar10.ARCHIVE))
    dataset = load_dataset("cifar10", tmp_path / "data")
    assert np.array_equal(dataset.test_images, written["test_batch"][0])
    assert (tmp_path / "data" / cifar10.ARCHIVE).is_file()


def test_offline_errors_say_which_files_go_where(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "MIRRORS", ["http://127.0.0.1:9/"])
    monkeypatch.setattr(cifar10, "MIRRORS", ["http://127.0.0.1:9/"])
    with pytest.raises(DatasetError) as raised:
        load_dataset("mnist", tmp_path)
    message = str(raised.value)
    assert all(stem + ".gz" in message for stem, _ in mnist.FILES.values())
    assert f"into {tmp_path / 'mnist'}" in message and "could not be downloaded" in message
    with pytest.raises(DatasetError, match=f"put cifar-10-python.tar.gz .* into {tmp_path}"):
        load_dataset("cifar10", tmp_path)


def test_cli_offline_dataset_error_is_one_line(gpucnn_cli, tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "MIRRORS", ["http://127.0.0.1:9/"])
    line = one_line_error(gpucnn_cli("train", "--dataset", "mnist", "--data-dir", tmp_path / "data",
                                     "--out", tmp_path / "run"))
    assert "train-images-idx3-ubyte.gz" in line and str(tmp_path / "data" / "mnist") in line
    assert not (tmp_path / "run").exists()


def test_cli_trains_on_small_mnist_and_cifar(gpucnn_cli, tmp_path):
    write_mnist(tmp_path / "data" / "mnist", train=48, test=16)
    result = gpucnn_cli("train", "--dataset", "mnist", "--data-dir", tmp_path / "data", "--epochs", 1,
                        "--batch-size", 16, "--out", tmp_path / "mnist-run", "--no-progress")
    assert result.code == 0, result
    assert "lenet on mnist (48 train, 16 test images)" in result.out
    write_cifar(tmp_path / "data" / "cifar-10-batches-py", per_batch=8)
    result = gpucnn_cli("train", "--dataset", "cifar10", "--model", "convnetjs", "--data-dir", tmp_path / "data",
                        "--epochs", 1, "--batch-size", 8, "--out", tmp_path / "cifar-run", "--no-progress")
    assert result.code == 0, result
    assert "adadelta lr 1" in result.out and (tmp_path / "cifar-run" / "filters.png").is_file()
    evaluated = gpucnn_cli("eval", tmp_path / "cifar-run", "--data-dir", tmp_path / "data")
    assert evaluated.code == 0 and "of 8 cifar10 test images" in evaluated.out and "airplane" in evaluated.out


# ------------------------------------------------------------------------------- augmentation, loader
def test_augment_flips_and_shifts_each_image_by_at_most_two_pixels():
    rng = np.random.default_rng(0)
    images = rng.random((200, 3, 6, 7)).astype(np.float32) + 1  # no zeros: zeros come only from the shift
    out = augment(images, np.random.default_rng(1), flip=True, shift=2)
    assert out.shape == images.shape
    assert np.array_equal(out, augment(images, np.random.default_rng(1), flip=True, shift=2))
    seen = set()
    for original, result in zip(images, out):
        matches = []
        for flipped in (False, True):
            source = original[:, :, ::-1] if flipped else original
            padded = np.pad(source, ((0, 0), (2, 2), (2, 2)))
            for dy in range(-2, 3):
                for dx in range(-2, 3):
                    candidate = padded[:, 2 - dy:2 - dy + 6, 2 - dx:2 - dx + 7]
                    if np.array_equal(candidate, result):
                        matches.append((flipped, dy, dx))
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 40  # nearly all 50 combinations of flip and shift occur


def test_augment_without_flip_never_mirrors():
    image = np.zeros((1, 1, 5, 5), np.float32)
    image[0, 0, 2, 0] = 1  # a dot on the left edge can only move by up to 1 pixel right, never to the far right
    out = augment(np.repeat(image, 100, axis=0), np.random.default_rng(0), flip=False, shift=1)
    assert out[:, 0, :, 3:].sum() == 0 and out.sum() > 0


def test_preprocess_scales_and_normalises_per_channel():
    preprocess = Preprocess(1 / 255, mean=(0.5, 0.25), std=(0.5, 0.25))
    images = np.full((1, 2, 2, 2), 255, np.uint8)
    assert np.allclose(preprocess(images), [[[[1, 1], [1, 1]], [[3, 3], [3, 3]]]])
    assert Preprocess.from_dict(preprocess.to_dict()).to_dict() == preprocess.to_dict()


def test_batch_loader_shuffles_reproducibly_and_drops_last():
    images, labels = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1), np.arange(10)
    identity = Preprocess(1, (0,), (1,))
    loader = BatchLoader(images, labels, 4, identity, shuffle=True, rng=np.random.default_rng(3))
    assert len(loader) == 3 and [len(y) for _, y in loader] == [4, 4, 2]
    order = np.concatenate([y for _, y in loader])
    assert sorted(order) == list(range(10))
    again = BatchLoader(images, labels, 4, identity, shuffle=True, rng=np.random.default_rng(3))
    next(iter(again))
    assert not np.array_equal(np.concatenate([y for _, y in again]), np.arange(10))
    dropped = BatchLoader(images, labels, 4, identity, drop_last=True)
    batches = list(dropped)
    assert len(dropped) == 2 and [y.tolist() for _, y in batches] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert batches[0][0].dtype == np.float32 and batches[0][0][:, 0, 0, 0].tolist() == [0, 1, 2, 3]
