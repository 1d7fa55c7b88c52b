"""TensorDataset and DataLoader against torch.utils.data's: the same batches in order, shuffled passes that
cover every sample once, seeding, collation of tensors, arrays, numbers, tuples, dicts and strings."""

import collections

import numpy as np
import pytest
import torch
import torch.utils.data as torch_data

import gpucnn
from gpucnn.data import DataLoader, TensorDataset, default_collate

Pair = collections.namedtuple("Pair", "image label")


class Samples:
    """A map-style dataset of (image array, int label, name, dict) samples."""

    def __init__(self, count):
        self.images = np.random.default_rng(0).standard_normal((count, 2, 3)).astype(np.float32)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index], index % 3, f"s{index}", {"weight": np.float32(index / 2), "pair": (index, 1.5)}


def _same(ours, theirs):
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, gpucnn.Tensor)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
        assert ours.dtype == theirs.numpy().dtype or theirs.dtype == torch.float64  # Python floats: float32 here
    elif isinstance(theirs, dict):
        assert list(ours) == list(theirs)
        for key in theirs:
            _same(ours[key], theirs[key])
    elif isinstance(theirs, (list, tuple)) and not isinstance(theirs[0], str):
        assert type(ours) is type(theirs) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _same(a, b)
    else:  # strings: a list here, the tuple torch's collation leaves
        assert ours == list(theirs)


@pytest.mark.parametrize("batch_size, drop_last", [(4, False), (4, True), (10, False), (1, False), (32, False)])
def test_batches_in_order_as_torchs(batch_size, drop_last):
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((10, 3, 2, 2)).astype(np.float32), rng.integers(0, 5, 10)
    ours = DataLoader(TensorDataset(gpucnn.tensor(x), gpucnn.tensor(y)), batch_size, drop_last=drop_last)
    theirs = torch_data.DataLoader(torch_data.TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size,
                                   drop_last=drop_last)
    assert len(ours) == len(theirs)
    batches = list(ours)
    assert len(batches) == len(theirs)
    for mine, reference in zip(batches, theirs):
        _same(mine, reference)
    samples = list(DataLoader(Samples(7), 3))
    for mine, reference in zip(samples, torch_data.DataLoader(Samples(7), 3)):
        _same(mine, reference)


@pytest.mark.parametrize("shuffle", [False, True])
def test_tensor_dataset_batches_as_its_samples_stacked(shuffle):
    """Indexing a TensorDataset's tensors at once gives the batches stacking its samples gives, in order."""
    dataset = TensorDataset(gpucnn.randn(9, 2), gpucnn.arange(9))
    gpucnn.manual_seed(4)
    whole = list(DataLoader(dataset, 4, shuffle=shuffle))
    gpucnn.manual_seed(4)
    stacked = list(DataLoader(dataset, 4, shuffle=shuffle, collate_fn=default_collate))
    for a, b in zip(whole, stacked):
        _same(a, [torch.from_numpy(t.numpy()) for t in b])
    assert len(dataset) == 9 and [t.tolist() for t in dataset[2]][1] == 2


@pytest.mark.parametrize("device", ["cpu", "cudasim"])
def test_shuffled_passes_cover_every_sample_once_and_follow_the_seed(device):
    dataset = TensorDataset(gpucnn.arange(50, device=device), gpucnn.arange(50, device=device) * 2)
    loader = DataLoader(dataset, batch_size=8, shuffle=True)
    gpucnn.manual_seed(3)
    passes = [[batch for batch in loader] for _ in range(2)]
    orders = [np.concatenate([x.numpy() for x, _ in batches]) for batches in passes]
    for order, batches in zip(orders, passes):
        assert sorted(order) == list(range(50))
        assert all(x.device.name == device and (y.numpy() == 2 * x.numpy()).all() for x, y in batches)
    assert not (orders[0] == orders[1]).all() and not (orders[0] == np.arange(50)).all()
    gpucnn.manual_seed(3)
    np.testing.assert_array_equal(np.concatenate([x.numpy() for x, _ in loader]), orders[0])
    seeded = [np.concatenate([x.numpy() for x, _ in DataLoader(dataset, 8, shuffle=True,
                                                                generator=np.random.default_rng(5))])
              for _ in range(2)]
    np.testing.assert_array_equal(seeded[0], seeded[1])


def test_collation_of_namedtuples_and_numbers():
    batch = default_collate([Pair(np.ones(2, np.float32), 1), Pair(np.zeros(2, np.float32), 2)])
    assert isinstance(batch, Pair) and batch.image.shape == (2, 2) and batch.label.tolist() == [1, 2]
    assert batch.label.dtype == np.int64 and default_collate([0.5, 1.5]).dtype == np.float32
    assert default_collate([True, False]).dtype == np.bool_


def test_bad_arguments_raise_naming_them():
    for call, error, message in (
            (lambda: TensorDataset(gpucnn.zeros(3), gpucnn.zeros(4)), ValueError,
             r"TensorDataset: the tensors' first dimensions must be equal, got shapes \[\(3,\), \(4,\)\]"),
            (lambda: TensorDataset(np.zeros(3)), TypeError, "TensorDataset: argument 0 must be a tensor"),
            (lambda: TensorDataset(), ValueError, "give at least one tensor"),
            (lambda: DataLoader([1, 2], batch_size=0), ValueError, "DataLoader: batch_size must be a positive int"),
            (lambda: DataLoader(3), TypeError, "DataLoader: dataset must have __len__ and __getitem__, got int"),
            (lambda: DataLoader([1], num_workers=-1), ValueError, "num_workers must be a non-negative int"),
            (lambda: list(DataLoader([object()])), TypeError, "default_collate: cannot batch samples of type object"),
            (lambda: list(DataLoader([(1, 2), (3,)], 2)), ValueError, "the samples of a batch have different lengths")):
        with pytest.raises(error, match=message):
            call()
