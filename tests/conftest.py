import numpy as np
import pytest

from gpucnn.devices import cuda


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
