"""Dataset, Subset, ConcatDataset, random_split, the samplers and DataLoader's sampler arguments against
torch.utils.data's: lengths, indexing, batches and the errors bad arguments raise; random draws cover what they
should and follow gpucnn.manual_seed or a generator of their own (not torch's draws: other generators)."""

import collections
import warnings

import numpy as np
import pytest
import torch
import torch.utils.data as torch_data

import gpucnn
import gpucnn.utils.data
from gpucnn import data


class Squares(data.Dataset):
    def __init__(self, count):
        self.count = count

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        if not -self.count <= index < self.count:
            raise IndexError(index)
        return index % self.count, (index % self.count) ** 2


class TorchSquares(torch_data.Dataset):
    def __init__(self, count):
        self.count = count

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        return Squares(self.count)[index]


def _raises_as_torch(ours, theirs, message):
    """Both calls raise the same type of exception, ours with ``message`` in it."""
    with pytest.raises(Exception) as reference:
        theirs()
    with pytest.raises(type(reference.value), match=message):
        ours()


# ------------------------------------------------------------------------------------------ datasets
def test_dataset_base_class_and_addition():
    class Empty(data.Dataset):
        pass

    _raises_as_torch(lambda: Empty()[0], lambda: type("Empty", (torch_data.Dataset,), {})()[0],
                     "Empty: subclasses of Dataset must implement __getitem__")
    joined = Squares(2) + Squares(3)
    assert isinstance(joined, data.ConcatDataset) and len(joined) == 5 and joined[2] == (0, 0)
    assert isinstance(data.TensorDataset(gpucnn.zeros(2)), data.Dataset)


def test_subset_as_torchs():
    class Listing(Squares):  # takes a list of indices at once, as Subset passes one on
        def __getitem__(self, index):
            return ("all at once", [super(Listing, self).__getitem__(i) for i in index]) if isinstance(index, list) \
                else super().__getitem__(index)

    indices = [4, 0, 2, 2]
    ours, theirs = data.Subset(Listing(5), indices), torch_data.Subset(Listing(5), indices)
    assert len(ours) == len(theirs) == 4
    assert [ours[i] for i in range(-4, 4)] == [theirs[i] for i in range(-4, 4)]
    assert ours[[1, 3]] == theirs[[1, 3]] == ("all at once", [(0, 0), (2, 4)])
    assert ours.dataset is not None and ours.indices is indices
    assert len(data.Subset(Squares(3), [])) == 0


@pytest.mark.parametrize("sizes", [[3], [2, 0, 4], [1, 1, 1]])
def test_concat_dataset_indexing_as_torchs(sizes):
    ours = data.ConcatDataset(Squares(size) for size in sizes)
    theirs = torch_data.ConcatDataset([TorchSquares(size) for size in sizes])
    assert len(ours) == len(theirs) == sum(sizes) and ours.cumulative_sizes == theirs.cumulative_sizes
    total = sum(sizes)
    assert [ours[i] for i in range(-total, total)] == [theirs[i] for i in range(-total, total)]
    _raises_as_torch(lambda: ours[total], lambda: theirs[total], f"index {total} is out of range for {total}")
    _raises_as_torch(lambda: ours[-total - 1], lambda: theirs[-total - 1], f"index {-total - 1} is out of range")


def test_concat_dataset_of_nothing():
    with pytest.raises(AssertionError):  # torch's type; ours says what is wrong in a ValueError
        torch_data.ConcatDataset([])
    with pytest.raises(ValueError, match="ConcatDataset: datasets must not be empty"):
        data.ConcatDataset([])


# --------------------------------------------------------------------------------------- random_split
@pytest.mark.parametrize("size, lengths", [
    (10, [3, 7]), (10, [10, 0]), (0, [0, 0]), (1, [1]), (1, [0.5, 0.5]), (10, [0.3, 0.3, 0.4]),
    (11, [0.3, 0.3, 0.4]), (7, [0.5, 0.5]), (5, [0.1, 0.1, 0.1, 0.7]), (50000, [0.9, 0.1]), (3, [1.0]),
])
def test_random_split_lengths_as_torchs(size, lengths):
    with warnings.catch_warnings(record=True) as torch_warnings:
        warnings.simplefilter("always")
        theirs = torch_data.random_split(range(size), lengths)
    with warnings.catch_warnings(record=True) as our_warnings:
        warnings.simplefilter("always")
        ours = data.random_split(range(size), lengths)
    assert [len(split) for split in ours] == [len(split) for split in theirs]
    assert len(our_warnings) == len(torch_warnings)  # an empty split from fractions warns
    assert all("is empty" in str(warning.message) and warning.filename == __file__ for warning in our_warnings)
    assert all(isinstance(split, data.Subset) for split in ours)
    assert sorted(i for split in ours for i in split) == list(range(size))


def test_random_split_follows_the_seed_and_the_generator():
    gpucnn.manual_seed(1)
    first = [list(split) for split in data.random_split(range(20), [5, 15])]
    gpucnn.manual_seed(1)
    assert [list(split) for split in data.random_split(range(20), [5, 15])] == first
    assert first[0] + first[1] != list(range(20))
    seeded = [[list(split) for split in data.random_split(range(20), [0.5, 0.5], generator=np.random.default_rng(7))]
              for _ in range(2)]
    assert seeded[0] == seeded[1] != [list(range(10)), list(range(10, 20))]
    ours = [[list(split) for split in data.random_split(range(20), [0.5, 0.5],
                                                         generator=gpucnn.Generator().manual_seed(7))]
            for _ in range(2)]
    assert ours[0] == ours[1] == seeded[0], "a gpucnn.Generator draws from its NumPy generator"


@pytest.mark.parametrize("size, lengths, message", [
    (10, [3, 6], r"the lengths \[3, 6\] sum to 9, not to the dataset's length 10"),
    (10, [3, 8], r"sum to 11"),
    (10, [0.5, 0.6], r"lengths\[0\] = 0.5 must be a non-negative int"),
    (10, [1.5, -0.5], r"the fraction lengths\[0\] = 1.5 is not between 0 and 1"),
    # sums to just over 1 (by any order or compensation of the sum: Python 3.12's sum of floats compensates)
    (10, [0.3, 0.7 + 1e-15], r"lengths\[0\] = 0.3 must be a non-negative int"),
    (0, [2], r"sum to 2, not to the dataset's length 0"),
    (3, [], r"sum to 0, not to the dataset's length 3"),
    (3, ["a"], r"lengths\[0\] must be an int or a fraction, got 'a'"),
])
def test_random_split_bad_lengths_raise_as_torchs(size, lengths, message):
    _raises_as_torch(lambda: data.random_split(range(size), lengths),
                     lambda: torch_data.random_split(range(size), lengths), "random_split: .*" + message)


def test_random_split_bad_generator():
    with pytest.raises(TypeError, match="random_split: generator must be a gpucnn.Generator or a numpy.random.Generator, got int"):
        data.random_split(range(3), [1, 2], generator=3)


# ------------------------------------------------------------------------------------------- samplers
def test_sequential_sampler_as_torchs():
    for size in (0, 1, 5):
        assert list(data.SequentialSampler(range(size))) == list(torch_data.SequentialSampler(range(size)))
        assert len(data.SequentialSampler(range(size))) == size


@pytest.mark.parametrize("size, replacement, num_samples", [
    (5, False, None), (5, False, 3), (5, False, 12), (5, True, None), (5, True, 40), (1, False, None), (1, True, 3),
])
def test_random_sampler_lengths_and_draws(size, replacement, num_samples):
    ours = data.RandomSampler(range(size), replacement, num_samples)
    theirs = torch_data.RandomSampler(range(size), replacement, num_samples)
    drawn = list(ours)
    assert len(ours) == len(theirs) == len(drawn) == len(list(theirs)) and ours.num_samples == theirs.num_samples
    assert all(isinstance(index, int) and 0 <= index < size for index in drawn)
    if not replacement:  # whole shuffles one after the other, the last cut short
        passes = [drawn[start:start + size] for start in range(0, len(drawn), size)]
        assert all(sorted(one) == list(range(size)) for one in passes[:len(drawn) // size])
        assert len(set(passes[-1])) == len(passes[-1])


def test_random_sampler_with_replacement_repeats_and_covers():
    counts = collections.Counter(data.RandomSampler(range(4), replacement=True, num_samples=400))
    assert sorted(counts) == [0, 1, 2, 3] and all(60 < count < 140 for count in counts.values())


def test_random_samplers_follow_the_seed_and_the_generator():
    for make in (lambda g: data.RandomSampler(range(30), generator=g),
                 lambda g: data.RandomSampler(range(30), True, 20, generator=g),
                 lambda g: data.SubsetRandomSampler(list(range(5, 35)), generator=g)):
        gpucnn.manual_seed(2)
        sampler = make(None)
        first, second = list(sampler), list(sampler)
        assert first != second  # a new draw each pass
        gpucnn.manual_seed(2)
        assert list(sampler) == first
        assert list(make(np.random.default_rng(3))) == list(make(np.random.default_rng(3))) != first


def test_subset_random_sampler_as_torchs():
    indices = [7, 3, 9, 3]
    ours, theirs = data.SubsetRandomSampler(indices), torch_data.SubsetRandomSampler(indices)
    assert len(ours) == len(theirs) == 4 and sorted(ours) == sorted(theirs) == [3, 3, 7, 9]
    assert list(data.SubsetRandomSampler([])) == []


@pytest.mark.parametrize("size, batch_size, drop_last", [
    (10, 3, False), (10, 3, True), (9, 3, True), (2, 5, False), (2, 5, True), (0, 2, False), (1, 1, True),
])
def test_batch_sampler_as_torchs(size, batch_size, drop_last):
    ours = data.BatchSampler(data.SequentialSampler(range(size)), batch_size, drop_last)
    theirs = torch_data.BatchSampler(torch_data.SequentialSampler(range(size)), batch_size, drop_last)
    assert list(ours) == list(theirs) and len(ours) == len(theirs) == len(list(ours))
    assert list(data.BatchSampler([4, 2, 0], 2, False)) == [[4, 2], [0]]  # any iterable of indices


@pytest.mark.parametrize("ours, theirs, message", [
    (lambda: data.RandomSampler(range(3), replacement=1), lambda: torch_data.RandomSampler(range(3), replacement=1),
     "RandomSampler: replacement must be a bool, got 1"),
    (lambda: data.RandomSampler(range(3), num_samples=0), lambda: torch_data.RandomSampler(range(3), num_samples=0),
     "RandomSampler: num_samples must be a positive int, got 0"),
    (lambda: data.RandomSampler(range(3), num_samples=2.0),
     lambda: torch_data.RandomSampler(range(3), num_samples=2.0), "num_samples must be a positive int, got 2.0"),
    (lambda: data.RandomSampler([]), lambda: torch_data.RandomSampler([]), "num_samples must be a positive int, got 0"),
    (lambda: data.BatchSampler(range(3), 0, False), lambda: torch_data.BatchSampler(range(3), 0, False),
     "BatchSampler: batch_size must be a positive int, got 0"),
    (lambda: data.BatchSampler(range(3), True, False), lambda: torch_data.BatchSampler(range(3), True, False),
     "BatchSampler: batch_size must be a positive int, got True"),
    (lambda: data.BatchSampler(range(3), 2, 0), lambda: torch_data.BatchSampler(range(3), 2, 0),
     "BatchSampler: drop_last must be a bool, got 0"),
])
def test_bad_sampler_arguments_raise_as_torchs(ours, theirs, message):
    _raises_as_torch(ours, theirs, message)


def test_random_sampler_of_an_emptied_source_and_bad_generator():
    source = [1, 2]
    sampler = data.RandomSampler(source, num_samples=3)
    source.clear()
    with pytest.raises(ValueError, match="RandomSampler: cannot draw 3 samples from an empty data_source"):
        list(sampler)
    for make in (lambda: data.RandomSampler(range(3), generator="seed"),
                 lambda: data.SubsetRandomSampler([1], generator=torch.Generator())):
        with pytest.raises(TypeError, match="generator must be a gpucnn.Generator or a numpy.random.Generator"):
            make()


# ------------------------------------------------------------------------------------------ DataLoader
def _batches(loader):
    return [[values.tolist() for values in batch] for batch in loader]


@pytest.mark.parametrize("kind", ["tensors", "samples"])
def test_data_loader_with_a_sampler_or_batch_sampler_as_torchs(kind):
    x = np.arange(10)
    ours_data = data.TensorDataset(gpucnn.tensor(x), gpucnn.tensor(x * x)) if kind == "tensors" else Squares(10)
    theirs_data = torch_data.TensorDataset(torch.tensor(x), torch.tensor(x * x)) if kind == "tensors" \
        else TorchSquares(10)
    order, batches = [3, 1, 4, 1, 5, 9, 2, 6], [[0, 9], [8, 8, 1], [5]]
    for arguments in ({"sampler": order, "batch_size": 3}, {"sampler": order, "batch_size": 3, "drop_last": True},
                      {"batch_sampler": batches}, {"batch_size": 4, "drop_last": True}, {"batch_size": 4},
                      {"sampler": data.SequentialSampler(range(7)), "batch_size": 2}):
        ours = data.DataLoader(ours_data, **arguments)
        theirs = torch_data.DataLoader(theirs_data, **{key: list(value) if key == "sampler" else value
                                                       for key, value in arguments.items()})
        assert len(ours) == len(theirs) and _batches(ours) == _batches(theirs)
        assert ours.batch_size == theirs.batch_size and ours.drop_last == theirs.drop_last
    loader = data.DataLoader(ours_data, 4, True)
    assert isinstance(loader.sampler, data.RandomSampler) and isinstance(loader.batch_sampler, data.BatchSampler)
    assert isinstance(data.DataLoader(ours_data).sampler, data.SequentialSampler)


def test_data_loader_shuffles_with_its_generator():
    dataset = data.TensorDataset(gpucnn.arange(30))
    first = [_batches(data.DataLoader(dataset, 8, shuffle=True, generator=np.random.default_rng(4)))
             for _ in range(2)]
    assert first[0] == first[1] and sorted(sum((batch[0] for batch in first[0]), [])) == list(range(30))
    loader = data.DataLoader(dataset, 8, shuffle=True, generator=np.random.default_rng(4))
    assert _batches(loader) == first[0] and _batches(loader) != first[0]  # the generator goes on between passes
    loader = data.DataLoader(dataset, 8, shuffle=True, generator=gpucnn.Generator("cuda").manual_seed(4))
    assert _batches(loader) == first[0] and _batches(loader) != first[0]


@pytest.mark.parametrize("arguments, message", [
    ({"sampler": [0, 1], "shuffle": True}, "DataLoader: sampler is mutually exclusive with shuffle"),
    ({"batch_sampler": [[0]], "batch_size": 2}, "DataLoader: batch_sampler is mutually exclusive with batch_size"),
    ({"batch_sampler": [[0]], "shuffle": True}, "batch_sampler is mutually exclusive with batch_size, shuffle"),
    ({"batch_sampler": [[0]], "sampler": [0]}, "batch_sampler is mutually exclusive with .* sampler"),
    ({"batch_sampler": [[0]], "drop_last": True}, "batch_sampler is mutually exclusive with .* drop_last"),
    ({"num_workers": -1}, "DataLoader: num_workers must be a non-negative int"),
    ({"drop_last": "yes"}, "BatchSampler: drop_last must be a bool"),
    ({"shuffle": True, "batch_size": 2, "dataset": []}, "RandomSampler: num_samples must be a positive int, got 0"),
])
def test_data_loader_bad_arguments_raise_as_torchs(arguments, message):
    arguments = {"dataset": list(range(4)), **arguments}
    _raises_as_torch(lambda: data.DataLoader(**arguments), lambda: torch_data.DataLoader(**arguments), message)
    with pytest.raises(TypeError, match="DataLoader: generator must be a gpucnn.Generator or a numpy.random.Generator, got Generator"):
        data.DataLoader([1], shuffle=True, generator=torch.Generator())


def test_data_loader_of_an_empty_dataset():
    assert len(data.DataLoader([], 3)) == 0 and list(data.DataLoader([], 3)) == []


# --------------------------------------------------------------------------------------------- alias
def test_utils_data_holds_torchs_names():
    names = {"BatchSampler", "ConcatDataset", "DataLoader", "Dataset", "RandomSampler", "Sampler", "SequentialSampler",
             "Subset", "SubsetRandomSampler", "TensorDataset", "default_collate", "random_split"}
    assert set(gpucnn.utils.data.__all__) == names and "utils" in dir(gpucnn)
    assert all(getattr(gpucnn.utils.data, name) is getattr(data, name) and hasattr(torch_data, name) for name in names)
