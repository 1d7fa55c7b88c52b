"""gpucnn.ops._memory: the recycled host memory of the cpu ops' large arrays."""

import gc
import os
import threading

import numpy as np
import pytest
from helpers import wait_for_forked_child

from gpucnn.ops import _memory
from gpucnn.ops._memory import HostMemory

LARGE = (256, 1024)  # 1 MiB of float32, over MIN_BYTES


def address(array) -> int:
    return array.__array_interface__["data"][0]


def test_arrays_are_like_numpy_empty_and_zeros():
    memory = HostMemory()
    for shape, dtype in [(LARGE, np.float32), ((3, 5, 7 * 4096), np.int8), (1 << 18, np.float64), ((2, 3), np.int64),
                         (np.int64(1 << 17), np.float32), ([512, 1024], np.float32), (np.array(LARGE), np.int32)]:
        array = memory.empty(shape, dtype)
        expected = np.empty(shape, dtype=dtype)
        assert array.shape == expected.shape and array.dtype == expected.dtype
        assert array.flags.c_contiguous and array.flags.writeable
        zeros = memory.zeros(shape, dtype)
        np.testing.assert_array_equal(zeros, np.zeros(shape, dtype=dtype))
    assert memory.empty((), np.float32).shape == ()
    assert memory.empty((0, 5), np.float32).shape == (0, 5)
    assert memory.zeros((), np.float32) == 0 and memory.zeros((0, 5), np.float32).shape == (0, 5)


def test_zeros_in_a_reused_block_are_all_zero_bits():
    """zeros() clears a block that held other values byte by byte: no -0.0, no stale bytes."""
    memory = HostMemory()
    dirty = memory.empty(LARGE, np.float32)
    dirty.fill(-0.0)
    dirty[::3] = np.nan
    where, dirty_bytes = address(dirty), dirty.nbytes
    del dirty
    for dtype in (np.float32, np.float64, np.int16):
        zeros = memory.zeros(dirty_bytes // np.dtype(dtype).itemsize, dtype)
        assert address(zeros) == where  # the same block, handed out again
        assert not zeros.view(np.uint8).any()
        del zeros


def test_fill_zeros_clears_exactly_the_array_it_is_given():
    block = np.full((4, 6), 7.0, np.float32)
    _memory.fill_zeros(block[:, ::2])  # a strided view: its own values, not a copy's
    np.testing.assert_array_equal(block, np.tile([0.0, 7.0], (4, 3)))
    _memory.fill_zeros(block[1:3])  # contiguous rows
    np.testing.assert_array_equal(block[1:3], 0)
    assert block[0, 1] == block[3, 1] == 7
    scalar = np.array(-0.0, np.float32)
    _memory.fill_zeros(scalar)
    assert not scalar.view(np.uint32)


def test_a_block_comes_back_only_when_every_view_is_gone():
    memory = HostMemory()
    array = memory.empty(LARGE, np.float32)
    view = array[10:].T
    reinterpreted = view.view(np.int32)[3]
    del array, view
    gc.collect()
    assert memory.free_bytes() == 0  # the last view still holds the block
    reinterpreted[...] = 7
    assert len(memory._owners) == 1
    del reinterpreted
    assert memory.free_bytes() == np.prod(LARGE) * 4
    assert not memory._owners  # nothing kept for an array that is gone


def test_a_returned_block_serves_the_next_array_that_fits():
    memory = HostMemory()
    first = memory.empty(LARGE, np.float32)
    where = address(first)
    del first
    again = memory.empty((np.prod(LARGE) * 4 - 4096,), np.uint8)  # a little smaller: fits
    assert address(again) == where
    assert memory.free_bytes() == 0
    other = memory.empty(LARGE, np.float32)  # the block is in use: a new one
    assert address(other) != where
    del again, other
    half = memory.empty((LARGE[0] // 4, LARGE[1]), np.float32)  # under half the size: not from a kept block
    assert address(half) != where


def test_small_arrays_come_from_numpy():
    memory = HostMemory()
    small = memory.empty(_memory.MIN_BYTES // 4 - 1, np.float32)
    del small
    assert memory.free_bytes() == 0


def test_free_blocks_stay_under_the_cap_pushing_out_the_longest_free():
    memory = HostMemory(max_free_bytes=3 << 20)
    arrays = [memory.empty(LARGE, np.float32) for _ in range(5)]
    where = [address(array) for array in arrays]
    for _ in range(5):
        del arrays[0]  # freed in order 0, 1, 2, 3, 4: the last three stay
    assert memory.free_bytes() == 3 << 20
    kept = [memory.empty(LARGE, np.float32) for _ in range(3)]
    assert {address(array) for array in kept} == set(where[2:])
    assert memory.free_bytes() == 0
    del kept
    too_large = memory.empty(4 << 20, np.uint8)
    del too_large  # over the cap alone: not kept, and pushes nothing out
    assert memory.free_bytes() == 3 << 20


def test_the_default_cap_is_an_eighth_of_the_memory_up_to_4_gib(monkeypatch):
    cap = _memory.default_max_free_bytes()
    assert 0 < cap <= 4 << 30
    assert HostMemory().max_free_bytes == cap
    for pages, expected in ((1 << 20, 1 << 29), (16 << 20, 4 << 30), (-1, 1 << 30)):  # 4 KiB pages: 4 and 64 GiB
        monkeypatch.setattr(_memory.os, "sysconf", lambda name: 4096 if name == "SC_PAGE_SIZE" else pages)
        assert _memory.default_max_free_bytes() == expected


def test_threads_never_share_a_block():
    memory = HostMemory()
    errors = []

    def worker(mark):
        for _ in range(200):
            array = memory.empty(LARGE, np.int32)
            array.fill(mark)
            if not (array == mark).all():
                errors.append(mark)
            del array

    threads = [threading.Thread(target=worker, args=(mark,)) for mark in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


@pytest.mark.parametrize("make", [_memory.empty, _memory.zeros])
def test_module_functions_share_one_memory(make):
    array = make(LARGE, np.float32)
    assert array.shape == LARGE and array.dtype == np.float32


def test_the_smallest_block_that_fits_is_taken():
    memory = HostMemory()
    blocks = [memory.empty(size, np.uint8) for size in (3 << 20, 1 << 20, 2 << 20)]
    where = {block.size: address(block) for block in blocks}
    del blocks
    assert address(memory.empty((1 << 20) + 1, np.uint8)) == where[2 << 20]
    assert address(memory.empty(np.int64(1 << 20), np.uint8)) == where[1 << 20]  # NumPy integers as sizes


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
# Python 3.12 warns of fork in a process with threads (the suite's helper threads): what this test does.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded, use of fork:DeprecationWarning")
def test_a_forked_child_allocates_although_the_parent_held_the_lock():
    with _memory._host._lock:  # as if another thread were inside empty() at the fork
        pid = os.fork()
        if pid == 0:  # the child: it must not wait for a lock that no thread of it will release
            array = _memory.empty(LARGE, np.float32)
            array.fill(1)
            del array
            os._exit(0 if _memory._host.free_bytes() >= np.prod(LARGE) * 4 else 1)
    wait_for_forked_child(pid, "the memory lock")
