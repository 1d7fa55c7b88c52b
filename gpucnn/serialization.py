"""``gpucnn.save`` and ``gpucnn.load``, as torch.save and torch.load: an object made of tensors, NumPy arrays,
numbers, strings and containers (a model's ``state_dict()``, an optimizer's, a checkpoint dict of both)
to one file and back.

    >>> gpucnn.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3}, "ckpt.pt")
    >>> checkpoint = gpucnn.load("ckpt.pt", map_location="cpu")
    >>> model.load_state_dict(checkpoint["model"])

The file is a pickle in which tensors, arrays and NumPy scalars are stored as their dtype, shape and
bytes. ``load`` by default (``weights_only=True``, PyTorch's default too) builds nothing else: a file
that names any other class or function is refused, so loading an untrusted file runs no code of its.
Each tensor is saved with its own values (views of one array come back as separate tensors), without
its gradient; a Parameter comes back a Parameter, and ``requires_grad`` as it was.
"""

from __future__ import annotations

import io
import os
import pickle

import numpy

from .devices import Device, get_device
from .tensor import Tensor

__all__ = ["load", "save"]

_MAGIC = b"gpucnn.save 1\n"
#: What ``weights_only`` loading builds besides the containers pickle makes itself.
_ALLOWED = {("collections", "OrderedDict")}


def _record(array: numpy.ndarray) -> tuple:
    if array.dtype.hasobject:
        raise TypeError("save: cannot save a NumPy array of Python objects (dtype object)")
    return array.dtype.str, array.shape, numpy.ascontiguousarray(array).tobytes()


def _array(dtype: str, shape: tuple, data: bytes) -> numpy.ndarray:
    return numpy.frombuffer(data, dtype=numpy.dtype(dtype)).reshape(shape).copy()


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Tensor):
            from .nn.module import Parameter

            kind = "parameter" if isinstance(obj, Parameter) else "tensor"
            return (kind, obj.device.name, obj.requires_grad) + _record(obj.numpy())
        if isinstance(obj, numpy.ndarray):
            return ("ndarray",) + _record(obj)
        if isinstance(obj, numpy.generic):
            return ("scalar",) + _record(numpy.asarray(obj))
        if isinstance(obj, Device):
            return ("device", obj.name)
        return None


def save(obj, f) -> None:
    """Writes ``obj`` to ``f``, a path (written whole or not at all) or a binary file object."""
    buffer = io.BytesIO()
    buffer.write(_MAGIC)
    _Pickler(buffer, protocol=4).dump(obj)
    if isinstance(f, (str, os.PathLike)):
        from .io import atomic_write

        atomic_write(f, buffer.getvalue())
    else:
        f.write(buffer.getvalue())


def _target(name: str, map_location) -> Device:
    """The device a tensor saved on ``name`` loads onto."""
    if isinstance(map_location, dict):
        name = map_location.get(name, name)
    elif map_location is not None:
        return get_device(map_location)
    try:
        return get_device(name)
    except RuntimeError as error:
        raise RuntimeError(f"load: a tensor was saved on '{name}', which cannot be used here ({error}); pass "
                           f"map_location='cpu' (or another device)") from None


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, map_location, weights_only: bool):
        super().__init__(file)
        self.map_location, self.weights_only = map_location, weights_only

    def persistent_load(self, record):
        kind = record[0]
        if kind in ("tensor", "parameter"):
            device_name, requires_grad, dtype, shape, data = record[1:]
            device = _target(device_name, self.map_location)
            with device.context():
                tensor = Tensor._from_array(device.asarray(_array(dtype, shape, data)), device, requires_grad)
            if kind == "parameter":
                from .nn.module import Parameter

                return Parameter(tensor, requires_grad)
            return tensor
        if kind == "ndarray":
            return _array(*record[1:])
        if kind == "scalar":
            return _array(*record[1:])[()]
        if kind == "device":
            return get_device(record[1])
        raise pickle.UnpicklingError(f"load: unknown record {kind!r} in the file")

    def find_class(self, module: str, name: str):
        if self.weights_only and (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(
                f"load: with weights_only=True the file may hold tensors, arrays, numbers, strings and containers, "
                f"but it names {module}.{name}; pass weights_only=False only for a file you trust (it may run code)")
        return super().find_class(module, name)


def load(f, map_location=None, weights_only: bool = True):
    """The object :func:`save` wrote to ``f`` (a path or a binary file object).

    Args:
        map_location: where tensors go: None (the device each was saved on), a device (every tensor there),
            or a dict from saved device names to new ones (``{"cuda:0": "cpu"}``).
        weights_only: build only tensors, arrays, numbers, strings and containers (the default, as
            PyTorch's); False unpickles any object, which may run code from the file.
    """
    if isinstance(f, (str, os.PathLike)):
        with open(f, "rb") as file:
            return load(file, map_location, weights_only)
    head = f.read(len(_MAGIC))
    if head != _MAGIC:
        raise ValueError(f"load: not a file written by gpucnn.save (it begins with {head[:16]!r})")
    return _Unpickler(f, map_location, weights_only).load()
