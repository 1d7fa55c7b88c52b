"""gpucnn.ops._rows.whole_rows: NumPy's buffer no longer than a row inside, as it was outside, per thread."""

import threading

import numpy as np
import pytest

from gpucnn.ops._rows import SHORTEST_ROW, whole_rows


@pytest.mark.parametrize("length, inside", [(3136, 3136), (1000, 992), (SHORTEST_ROW, SHORTEST_ROW),
                                            (SHORTEST_ROW - 1, 8192), (49, 8192), (8192, 8192), (20000, 8192)])
def test_buffer_size_inside_and_after(length, inside):
    """Rows from SHORTEST_ROW to the buffer's size take a buffer of the row's length rounded down to a
    multiple of 16; shorter and longer rows leave it; afterwards it is what it was, after an error too."""
    assert np.getbufsize() == 8192
    with whole_rows(length):
        assert np.getbufsize() == inside
        values = np.arange(4 * length, dtype=np.float32).reshape(4, length)
        scaled = values * np.float32([[1], [2], [3], [4]])
    assert np.getbufsize() == 8192
    assert np.array_equal(scaled, values * np.arange(1, 5, dtype=np.float32)[:, None])
    with pytest.raises(KeyError), whole_rows(length):
        raise KeyError("inside")
    assert np.getbufsize() == 8192


def test_other_threads_keep_their_buffer():
    seen = []
    with whole_rows(1024):
        thread = threading.Thread(target=lambda: seen.append(np.getbufsize()))
        thread.start()
        thread.join()
        assert np.getbufsize() == 1024
    assert seen == [8192]
