"""Fixtures of the cudasim tests: the test kernels, built once per session (in the normal cache)."""

from __future__ import annotations

import os

import pytest

from gpucnn.devices import cudasim

KERNELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernels")

if not cudasim.available():
    pytest.skip("cudasim needs g++", allow_module_level=True)


@pytest.fixture(scope="session")
def basic():
    return cudasim.load(os.path.join(KERNELS, "basic.cu"))


@pytest.fixture(scope="session")
def reduce():
    return cudasim.load(os.path.join(KERNELS, "reduce.cu"))


@pytest.fixture(autouse=True)
def forward_order():
    """Every test starts in forward order, whatever $GPUCNN_CUDASIM_ORDER says."""
    with cudasim.thread_order("forward"):
        yield
