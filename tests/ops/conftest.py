"""The op tests run with new arrays poisoned (``helpers.poisoned_new_arrays``): a result an op leaves
partly unwritten, or memory it reads before writing, shows as NaN or garbage instead of passing on
zeroed pages or an earlier op's values."""

import pytest
from helpers import poisoned_new_arrays


@pytest.fixture(autouse=True, scope="module")
def new_arrays_poisoned():
    with poisoned_new_arrays():
        yield
