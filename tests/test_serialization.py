"""gpucnn.save and gpucnn.load: checkpoints of models and optimizers round trip, tensors keep dtype, shape,
device, type and requires_grad, map_location moves them, and weights_only refuses anything else."""

import collections
import io
import pickle

import numpy as np
import pytest

import gpucnn
from gpucnn import nn
from helpers import assert_close


class Custom:
    def __init__(self, value):
        self.value = value


def _model():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))


def _train(model, optimizer, x, y, steps):
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


@pytest.mark.parametrize("optimizer_name", ["SGD", "Adam"])
def test_a_checkpoint_resumes_training_exactly(tmp_path, optimizer_name):
    """Model and optimizer state saved after two steps, loaded into fresh ones, train on as the originals."""
    rng = np.random.default_rng(0)
    x, y = gpucnn.tensor(rng.standard_normal((6, 3, 6, 6)).astype(np.float32)), gpucnn.tensor(rng.integers(0, 5, 6))
    options = dict(lr=0.1, momentum=0.9) if optimizer_name == "SGD" else dict(lr=0.01)
    gpucnn.manual_seed(1)
    model = _model()
    optimizer = getattr(gpucnn.optim, optimizer_name)(model.parameters(), **options)
    _train(model, optimizer, x, y, 2)
    path = tmp_path / "checkpoint.pt"
    gpucnn.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 2}, path)
    _train(model, optimizer, x, y, 3)

    checkpoint = gpucnn.load(path)
    assert checkpoint["epoch"] == 2 and isinstance(checkpoint["model"], collections.OrderedDict)
    gpucnn.manual_seed(2)
    resumed = _model()
    resumed.load_state_dict(checkpoint["model"])
    resumed_optimizer = getattr(gpucnn.optim, optimizer_name)(resumed.parameters(), **options)
    resumed_optimizer.load_state_dict(checkpoint["optimizer"])
    _train(resumed, resumed_optimizer, x, y, 3)
    for (name, ours), theirs in zip(resumed.state_dict().items(), model.state_dict().values()):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=name)


@pytest.mark.parametrize("device", ["cpu", "cudasim"])
def test_tensors_keep_dtype_shape_device_type_and_requires_grad(device):
    rng = np.random.default_rng(3)
    values = {
        "float64": gpucnn.tensor(rng.standard_normal((2, 3)), device=device, requires_grad=True),
        "int": gpucnn.tensor(rng.integers(-5, 5, (4,)), device=device),
        "bool": gpucnn.tensor([True, False], device=device),
        "half": gpucnn.tensor(np.float16([1.5, -2.25]), device=device),
        "scalar": gpucnn.tensor(3.5, device=device),
        "empty": gpucnn.zeros(0, 3, device=device),
        "strided": gpucnn.tensor(rng.standard_normal((3, 4)).astype(np.float32), device=device).t(),
        "parameter": nn.Parameter(gpucnn.ones(2, device=device)),
        "frozen": nn.Parameter(gpucnn.ones(2, device=device), requires_grad=False),
    }
    extras = {"array": np.arange(6, dtype=np.uint8).reshape(2, 3), "numpy scalar": np.float64(0.25),
              "nested": [1, (2.5, "three"), {"four": None}], "set": {1, 2}, "device": gpucnn.device(device)}
    buffer = io.BytesIO()
    gpucnn.save({**values, **extras}, buffer)
    buffer.seek(0)
    loaded = gpucnn.load(buffer)
    for name, tensor in values.items():
        back = loaded[name]
        assert type(back) is type(tensor), name
        assert (back.shape, back.dtype, back.device, back.requires_grad) == (
            tensor.shape, tensor.dtype, tensor.device, tensor.requires_grad), name
        assert back.is_leaf and back.grad is None
        np.testing.assert_array_equal(back.numpy(), tensor.numpy(), err_msg=name)
    assert loaded["array"].dtype == np.uint8 and loaded["array"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert type(loaded["numpy scalar"]) is np.float64 and loaded["numpy scalar"] == 0.25
    assert loaded["nested"] == [1, (2.5, "three"), {"four": None}] and loaded["set"] == {1, 2}
    assert loaded["device"] == gpucnn.device(device)
    loaded["float64"].data[0, 0] = 99  # a copy of its own
    assert values["float64"].numpy()[0, 0] != 99


def test_map_location_moves_tensors(tmp_path):
    path = tmp_path / "t.pt"
    gpucnn.save({"a": gpucnn.ones(2, device="cudasim"), "b": gpucnn.zeros(1)}, path)
    assert {k: v.device.name for k, v in gpucnn.load(path).items()} == {"a": "cudasim", "b": "cpu"}
    assert {k: v.device.name for k, v in gpucnn.load(path, map_location="cpu").items()} == {"a": "cpu", "b": "cpu"}
    moved = gpucnn.load(path, map_location={"cpu": "cudasim"})
    assert {k: v.device.name for k, v in moved.items()} == {"a": "cudasim", "b": "cudasim"}
    if "cuda" not in gpucnn.devices():
        with pytest.raises(RuntimeError, match="load: a tensor was saved on 'cuda', which cannot be used here .*; pass "
                                               "map_location='cpu'"):
            gpucnn.load(path, map_location={"cudasim": "cuda"})


def test_weights_only_refuses_other_objects(tmp_path):
    path = tmp_path / "custom.pt"
    gpucnn.save({"custom": Custom(4), "w": gpucnn.ones(1)}, path)
    with pytest.raises(pickle.UnpicklingError, match=r"load: with weights_only=True .* but it names "
                                                     r"test_serialization.Custom; pass weights_only=False"):
        gpucnn.load(path)
    loaded = gpucnn.load(path, weights_only=False)
    assert isinstance(loaded["custom"], Custom) and loaded["custom"].value == 4
    with pytest.raises(pickle.UnpicklingError, match="names builtins.eval"):  # a file crafted to run code
        payload = b"gpucnn.save 1\n" + pickle.dumps(_Evil(), protocol=4)
        gpucnn.load(io.BytesIO(payload))


class _Evil:
    def __reduce__(self):
        return eval, ("1 + 1",)


def test_bad_files_and_objects_raise_clearly(tmp_path):
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match=r"load: not a file written by gpucnn.save \(it begins with b'\\x80"):
        gpucnn.load(path)
    with pytest.raises(TypeError, match="save: cannot save a NumPy array of Python objects"):
        gpucnn.save(np.array([{}, []], dtype=object), io.BytesIO())


def test_a_model_saved_whole_with_weights_only_false(tmp_path):
    gpucnn.manual_seed(4)
    model = _model().eval()
    path = tmp_path / "model.pt"
    gpucnn.save(model, path)
    x = gpucnn.randn(2, 3, 6, 6)
    assert_close(gpucnn.load(path, weights_only=False)(x), model(x), atol=0, rtol=0)
