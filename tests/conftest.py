"""Tests create tensors on the CPU unless they name a device.

The CPU half is the reference (float64 central differences, in-place NumPy updates); the op checks
run every usable device by name (``helpers.check_op``) and tests/gpu names ``cuda``. Without this,
a machine with a GPU would make ``cuda`` the default device and change what the unnamed tests run.
Tests of the default device itself remove the variable (fixture ``default_device_unset``).
"""

import os

import numpy as np
import pytest

from gpucnn.devices import cuda

os.environ["GPUCNN_DEVICE"] = "cpu"  # set before any test or fixture runs; subprocesses inherit it


@pytest.fixture
def default_device_unset(monkeypatch):
    """No GPUCNN_DEVICE: gpucnn picks the default device itself."""
    monkeypatch.delenv("GPUCNN_DEVICE", raising=False)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` need a usable NVIDIA GPU with CuPy; elsewhere they skip, saying why."""
    count, reason = cuda.probe()
    if count:
        return
    skip = pytest.mark.skip(reason=f"no usable GPU: {reason}")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)
