"""Saving and loading models and training checkpoints as safetensors files (never pickle).

Two files, both self-describing through their string metadata:

- ``model.safetensors``: the weights under their ``state_dict`` names, and ``config``: JSON holding
  the model config (``gpucnn.models.config``), the dataset, its class names and input preprocessing,
  so ``eval``/``predict`` can rebuild everything from the file alone.
- ``checkpoint.safetensors``: weights as ``model.<name>``, optimizer arrays as
  ``optimizer.state.<index>.<key>``; metadata ``config``, ``epoch``, ``optimizer`` (hyper-parameters
  and non-array state as JSON), ``rng`` (generator states as JSON) and ``history``.

Every file carries a SHA-256 of its tensors, so corruption inside the data is caught, not only a
broken header. Writes are atomic: the bytes go to ``<name>.tmp`` in the same folder, are fsynced,
and replace the old file with ``os.replace``; killing the process mid-save leaves the old file.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy

MODEL_FILE = "model.safetensors"
CHECKPOINT_FILE = "checkpoint.safetensors"
MODEL_FORMAT = "gpucnn.model/1"
CHECKPOINT_FORMAT = "gpucnn.checkpoint/1"
# Test hook: seconds to pause after half of a file's bytes are written, so a test can kill the
# process in the middle of a save.
PAUSE_ENV = "GPUCNN_TEST_PAUSE_MID_SAVE"


class CheckpointError(Exception):
    """A model or checkpoint file is missing, corrupt, or does not fit the model it is loaded into."""


def _digest(tensors: dict) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        array = numpy.ascontiguousarray(tensors[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def atomic_write(path, data: bytes) -> None:
    """Writes ``data`` to ``path`` so that ``path`` holds either the old or the new bytes, never a part."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    pause = float(os.environ.get(PAUSE_ENV, "0") or 0)
    with open(temporary, "wb") as output:
        if pause:
            output.write(data[:len(data) // 2])
            output.flush()
            time.sleep(pause)
            output.write(data[len(data) // 2:])
        else:
            output.write(data)
        output.flush()
        os.fsync(output.fileno())
    os.replace(temporary, path)
    try:  # make the rename itself durable
        folder = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(folder)
    except OSError:
        pass
    finally:
        os.close(folder)


def write_tensors(path, tensors: dict, metadata: dict) -> None:
    """Saves NumPy arrays and str->str ``metadata`` (plus a checksum) atomically to ``path``."""
    from safetensors.numpy import save

    tensors = {name: numpy.ascontiguousarray(array) for name, array in tensors.items()}
    data = save(tensors, metadata={**metadata, "sha256": _digest(tensors)})
    atomic_write(path, data)


def read_tensors(path, expected_format: str):
    """(tensors, metadata) of a file written by :func:`write_tensors` with ``format`` ``expected_format``."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    try:
        with safe_open(str(path), framework="numpy") as reader:
            metadata = dict(reader.metadata() or {})
            tensors = {name: reader.get_tensor(name) for name in reader.keys()}
    except Exception as error:  # safetensors raises its own error type, OSError, or ValueError
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or corrupt?): {error}") from None
    if metadata.get("format") != expected_format:
        raise CheckpointError(f"{path} is not a {expected_format} file (its format is "
                              f"{metadata.get('format', 'not set')!r})")
    if metadata.get("sha256") != _digest(tensors):
        raise CheckpointError(f"{path} is corrupt: its tensors do not match the checksum saved with them")
    return tensors, metadata


def _json(metadata: dict, key: str, path):
    try:
        return json.loads(metadata[key])
    except (KeyError, ValueError) as error:
        raise CheckpointError(f"{path}: metadata '{key}' is missing or not JSON ({error})") from None


def _load_weights(model, state: dict, path) -> None:
    try:
        model.load_state_dict(state)
    except ValueError as error:
        raise CheckpointError(f"{path} does not fit the model: {error}") from None


# ---------------------------------------------------------------------------------- models
def save_model(path, model, config: dict) -> None:
    """Writes ``model``'s weights and ``config`` (JSON-ready, with a ``'model'`` entry) to ``path``."""
    tensors = {name: tensor.numpy() for name, tensor in model.state_dict().items()}
    write_tensors(path, tensors, {"format": MODEL_FORMAT, "config": json.dumps(config)})


def read_model_config(path) -> dict:
    """The config saved in a model file."""
    _, metadata = read_tensors(path, MODEL_FORMAT)
    return _json(metadata, "config", path)


def load_model(path, device=None):
    """(model, config) rebuilt from a file written by :func:`save_model`, on ``device``, in eval mode."""
    from . import models

    tensors, metadata = read_tensors(path, MODEL_FORMAT)
    config = _json(metadata, "config", path)
    try:
        model = models.from_config(config["model"])
    except (KeyError, ValueError) as error:
        raise CheckpointError(f"{path}: cannot rebuild the model from its config: {error}") from None
    _load_weights(model, tensors, path)
    return model.to(device).eval(), config


# ---------------------------------------------------------------------------------- checkpoints
@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns. ``optimizer_state`` is in ``Optimizer.state_dict()`` form."""

    config: dict
    epoch: int
    model_state: dict
    optimizer_state: dict
    rng: dict
    history: list = field(default_factory=list)


def save_checkpoint(path, model, optimizer, epoch: int, config: dict, rng: dict, history: list) -> None:
    """Writes everything needed to continue training after ``epoch`` to ``path``."""
    tensors = {f"model.{name}": tensor.numpy() for name, tensor in model.state_dict().items()}
    state = optimizer.state_dict()
    plain_state = {}
    for index, values in state["state"].items():
        plain_state[str(index)] = {}
        for key, value in values.items():
            if isinstance(value, numpy.ndarray):
                tensors[f"optimizer.state.{index}.{key}"] = value
            else:
                plain_state[str(index)][key] = value
    optimizer_json = {"param_groups": state["param_groups"], "state": plain_state}
    write_tensors(path, tensors, {
        "format": CHECKPOINT_FORMAT, "config": json.dumps(config), "epoch": str(int(epoch)),
        "optimizer": json.dumps(optimizer_json), "rng": json.dumps(rng), "history": json.dumps(history),
    })


def load_checkpoint(path) -> Checkpoint:
    """Reads a file written by :func:`save_checkpoint`; CheckpointError when missing or corrupt."""
    tensors, metadata = read_tensors(path, CHECKPOINT_FORMAT)
    optimizer_json = _json(metadata, "optimizer", path)
    try:
        epoch = int(metadata["epoch"])
        state = {int(index): dict(values) for index, values in optimizer_json["state"].items()}
        param_groups = optimizer_json["param_groups"]
    except (KeyError, ValueError, TypeError, AttributeError) as error:
        raise CheckpointError(f"{path}: malformed checkpoint metadata ({error})") from None
    model_state = {}
    for name, array in tensors.items():
        if name.startswith("model."):
            model_state[name[len("model."):]] = array
        elif name.startswith("optimizer.state."):
            index, key = name[len("optimizer.state."):].split(".", 1)
            state.setdefault(int(index), {})[key] = array
        else:
            raise CheckpointError(f"{path}: unexpected tensor '{name}'")
    return Checkpoint(config=_json(metadata, "config", path), epoch=epoch, model_state=model_state,
                      optimizer_state={"state": state, "param_groups": param_groups},
                      rng=_json(metadata, "rng", path), history=_json(metadata, "history", path))


def restore(checkpoint: Checkpoint, model, optimizer, path="checkpoint") -> None:
    """Loads a checkpoint's weights into ``model`` and its state into ``optimizer``."""
    _load_weights(model, checkpoint.model_state, path)
    try:
        optimizer.load_state_dict(checkpoint.optimizer_state)
    except (ValueError, TypeError, KeyError) as error:
        raise CheckpointError(f"{path}: the optimizer state does not fit: {error}") from None
