"""Model files and checkpoints: safetensors round trips, corruption and mismatch errors, atomic saves."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from safetensors.numpy import load_file

import gpucnn
from cli_helpers import ROOT, one_line_error
from gpucnn import io, models, nn


def small_model():
    gpucnn.manual_seed(0)
    return models.build("lenet", 1, (8, 8), 10)


def trained_optimizer(model, make=lambda params: gpucnn.optim.Adam(params, lr=1e-3)):
    """An optimizer of ``model`` with state from two steps."""
    optimizer = make(model.parameters())
    images = gpucnn.tensor(np.random.default_rng(0).random((4, 1, 8, 8), dtype=np.float32))
    for _ in range(2):
        loss = nn.functional.cross_entropy(model(images), gpucnn.tensor(np.array([0, 1, 2, 3])))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return optimizer


def test_model_file_round_trip(tmp_path):
    model = small_model()
    config = {"model": models.config("lenet", 1, (8, 8), 10), "classes": list("0123456789")}
    io.save_model(tmp_path / "model.safetensors", model, config)
    loaded, loaded_config = io.load_model(tmp_path / "model.safetensors")
    assert loaded_config == config and not loaded.training
    inputs = gpucnn.tensor(np.random.default_rng(1).random((3, 1, 8, 8), dtype=np.float32))
    assert np.array_equal(model.eval()(inputs).numpy(), loaded(inputs).numpy())
    # a plain safetensors file: any reader gets the weights under their state_dict names
    assert set(load_file(tmp_path / "model.safetensors")) == set(model.state_dict())


@pytest.mark.parametrize("make", [
    lambda params: gpucnn.optim.Adam(params, lr=1e-3, betas=(0.8, 0.9)),
    lambda params: gpucnn.optim.SGD(params, lr=0.1, momentum=0.9),
    lambda params: gpucnn.optim.Adadelta(params, lr=1.0, rho=0.95),
], ids=["adam", "sgd", "adadelta"])
def test_checkpoint_round_trip(tmp_path, make):
    model = small_model()
    optimizer = trained_optimizer(model, make)
    rng = {"gpucnn": gpucnn.get_rng_state(), "loader": np.random.default_rng(5).bit_generator.state}
    io.save_checkpoint(tmp_path / "c.safetensors", model, optimizer, 3, {"seed": 1}, rng, [{"epoch": 3}])
    checkpoint = io.load_checkpoint(tmp_path / "c.safetensors")
    assert checkpoint.epoch == 3 and checkpoint.config == {"seed": 1} and checkpoint.history == [{"epoch": 3}]
    assert checkpoint.rng == json.loads(json.dumps(rng))
    expected = optimizer.state_dict()
    names = set(load_file(tmp_path / "c.safetensors"))
    assert "model.0.weight" in names
    assert {f"optimizer.state.{index}.{key}" for index, values in expected["state"].items()
            for key, value in values.items() if isinstance(value, np.ndarray)} <= names

    fresh = small_model()
    fresh_optimizer = make(fresh.parameters())
    fresh_optimizer.param_groups[0]["lr"] = 5.0  # replaced by the checkpoint's
    io.restore(checkpoint, fresh, fresh_optimizer)
    restored = fresh_optimizer.state_dict()
    assert json.dumps(restored["param_groups"]) == json.dumps(expected["param_groups"])
    assert restored["state"].keys() == expected["state"].keys()
    for index, values in expected["state"].items():
        assert restored["state"][index].keys() == values.keys()
        for key, value in values.items():
            assert np.array_equal(restored["state"][index][key], value), (index, key)
    for name, tensor in model.state_dict().items():
        assert np.array_equal(fresh.state_dict()[name].numpy(), tensor.numpy())


def test_corrupt_files_are_named(tmp_path):
    model = small_model()
    path = tmp_path / "model.safetensors"
    io.save_model(path, model, {"model": models.config("lenet", 1, (8, 8), 10)})
    good = path.read_bytes()
    path.write_bytes(good[:-7])
    with pytest.raises(io.CheckpointError, match="truncated or corrupt"):
        io.load_model(path)
    flipped = bytearray(good)
    flipped[-5] ^= 0xFF  # inside the weights: the header still parses
    path.write_bytes(bytes(flipped))
    with pytest.raises(io.CheckpointError, match="corrupt: its tensors do not match the checksum"):
        io.load_model(path)
    path.write_bytes(b"not a safetensors file at all")
    with pytest.raises(io.CheckpointError, match="not a readable safetensors file"):
        io.load_model(path)
    with pytest.raises(io.CheckpointError, match="does not exist"):
        io.load_checkpoint(tmp_path / "absent.safetensors")
    path.write_bytes(good)
    with pytest.raises(io.CheckpointError, match="is not a gpucnn.checkpoint/1 file"):
        io.load_checkpoint(path)


def test_mismatched_weights_are_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    io.save_model(path, small_model(), {"model": models.config("convnetjs", 1, (8, 8), 10)})
    with pytest.raises(io.CheckpointError, match="does not fit the model: .*(missing keys|size mismatch)"):
        io.load_model(path)
    optimizer_model = small_model()
    io.save_checkpoint(tmp_path / "c.safetensors", optimizer_model, trained_optimizer(optimizer_model), 1, {},
                       {}, [])
    other = models.build("convnetjs", 1, (8, 8), 10)
    with pytest.raises(io.CheckpointError, match="does not fit the model"):
        io.restore(io.load_checkpoint(tmp_path / "c.safetensors"), other, gpucnn.optim.Adam(other.parameters()))


def test_cli_reports_a_corrupt_model_in_one_line(gpucnn_cli, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / io.MODEL_FILE).write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    line = one_line_error(gpucnn_cli("eval", tmp_path / "run"))
    assert "model.safetensors" in line
    one_line_error(gpucnn_cli("predict", tmp_path / "run", tmp_path / "x.png"))
    line = one_line_error(gpucnn_cli("eval", tmp_path / "nothing"))
    assert "no such folder" in line


KILLED_SAVE = textwrap.dedent("""
    import os, sys
    import numpy as np
    import gpucnn
    from gpucnn import io, nn

    gpucnn.manual_seed(0)
    model = nn.Sequential(nn.Linear(1500, 1500), nn.ReLU(), nn.Linear(1500, 10))  # about 9 MB of weights
    optimizer = gpucnn.optim.SGD(model.parameters(), lr=0.1)
    path = sys.argv[1]
    io.save_checkpoint(path, model, optimizer, 1, {}, {}, [])
    for parameter in model.parameters():
        parameter.data += 1.0
    os.environ[io.PAUSE_ENV] = "60"  # stop halfway through the next save, to be killed there
    print("saving", flush=True)
    io.save_checkpoint(path, model, optimizer, 2, {}, {}, [])
    print("saved", flush=True)
""")


def test_killing_a_save_midway_leaves_the_previous_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.safetensors"
    process = subprocess.Popen([sys.executable, "-c", KILLED_SAVE, str(path)], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert process.stdout.readline().strip() == "saving"
        temporary = tmp_path / "checkpoint.safetensors.tmp"
        deadline = time.monotonic() + 60
        while not (temporary.exists() and temporary.stat().st_size > 4_000_000):
            assert time.monotonic() < deadline and process.poll() is None, "the save never got halfway"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    assert temporary.stat().st_size < path.stat().st_size  # a half-written file was left, not renamed
    checkpoint = io.load_checkpoint(path)
    assert checkpoint.epoch == 1
    gpucnn.manual_seed(0)
    original = nn.Sequential(nn.Linear(1500, 1500), nn.ReLU(), nn.Linear(1500, 10))
    for name, tensor in original.state_dict().items():
        assert np.array_equal(checkpoint.model_state[name], tensor.numpy()), name
