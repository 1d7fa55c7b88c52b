"""The execution model: barriers, thread orders, warps, and the errors kernels can hit."""

from __future__ import annotations

import os

import numpy as np
import pytest

from gpucnn.devices import cudasim
from gpucnn.devices.cudasim import _launch

KERNELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernels")

BLOCK = 128  # reduce.cu's block size
ORDERS = [("forward", None), ("reverse", None), ("random", 1), ("random", 2)]


def block_sums(x: np.ndarray) -> np.ndarray:
    padded = np.zeros(-(-x.size // BLOCK) * BLOCK, np.float64)
    padded[: x.size] = x
    return padded.reshape(-1, BLOCK).sum(axis=1)


def correct_under_every_order(module, name: str, x: np.ndarray) -> list[bool]:
    """Runs reduction ``name`` under each order of ORDERS; True where it matched the block sums."""
    results = []
    for order, seed in ORDERS:
        out = np.zeros(-(-x.size // BLOCK), np.float32)
        with cudasim.thread_order(order, seed):
            module.get_function(name)(out.size, BLOCK, (x, out, np.int32(x.size)))
        results.append(bool(np.allclose(out, block_sums(x), rtol=1e-5, atol=1e-4)))
    return results


@pytest.fixture(scope="module")
def data():
    return np.random.default_rng(1).standard_normal(1000).astype(np.float32)


def test_correct_reduction_passes_every_order(reduce, data):
    assert correct_under_every_order(reduce, "block_sum", data) == [True] * len(ORDERS)


@pytest.mark.parametrize("buggy", ["block_sum_no_load_barrier", "block_sum_no_loop_barrier"])
def test_missing_syncthreads_is_caught(reduce, data, buggy):
    results = correct_under_every_order(reduce, buggy, data)
    assert not all(results), f"{buggy} gave the right sums under every order: the missing barrier went unseen"


def test_missing_load_barrier_reads_poisoned_shared_memory(reduce, data):
    out = np.zeros(8, np.float32)
    reduce.get_function("block_sum_no_load_barrier")(out.size, BLOCK, (data, out, np.int32(data.size)))
    assert np.isnan(out).all()  # forward order: thread 0 adds partial[64] before thread 64 wrote it


def test_ucontext_fallback_runs_the_reduction(data, monkeypatch):
    monkeypatch.setenv("GPUCNN_CUDASIM_SWITCH", "ucontext")
    module = cudasim.load(os.path.join(KERNELS, "reduce.cu"))
    assert module.uses_ucontext and module.switch == "ucontext"
    assert correct_under_every_order(module, "block_sum", data) == [True] * len(ORDERS)
    assert not all(correct_under_every_order(module, "block_sum_no_load_barrier", data))
    assert correct_under_every_order(module, "warp_sum", data) == [True] * len(ORDERS)


def test_thread_order_state():
    with cudasim.thread_order("random", 5):
        assert cudasim.get_thread_order() == ("random", 5)
        with cudasim.thread_order("reverse"):
            assert cudasim.get_thread_order() == ("reverse", None)
        assert cudasim.get_thread_order() == ("random", 5)
    assert cudasim.get_thread_order() == ("forward", None)
    with cudasim.thread_order("random:9"):
        assert cudasim.get_thread_order() == ("random", 9)
    with cudasim.thread_order("random"):
        order, seed = cudasim.get_thread_order()
        assert order == "random" and isinstance(seed, int)
    for bad in ("sideways", "forward:3", "random:x"):
        with pytest.raises(ValueError):
            cudasim.set_thread_order(bad)


def test_thread_order_from_the_environment(monkeypatch):
    monkeypatch.setattr(_launch._OrderState, "order", None)
    monkeypatch.setenv("GPUCNN_CUDASIM_ORDER", "random:7")
    assert cudasim.get_thread_order() == ("random", 7)
    monkeypatch.setattr(_launch._OrderState, "order", None)
    monkeypatch.setenv("GPUCNN_CUDASIM_ORDER", "reverse")
    assert cudasim.get_thread_order() == ("reverse", None)


def test_random_order_is_reproducible(reduce, data):
    def run():
        out = np.zeros(8, np.float32)
        with cudasim.thread_order("random", 11):
            reduce.get_function("block_sum_no_loop_barrier")(8, BLOCK, (data, out, np.int32(data.size)))
        return out

    np.testing.assert_array_equal(run(), run())


def test_barrier_in_divergent_branch(basic):
    with pytest.raises(cudasim.BarrierDivergenceError) as info:
        basic.get_function("barrier_in_branch")(2, 32, (np.zeros(32, np.float32),))
    message = str(info.value)
    assert "barrier_in_branch" in message and "block (0, 0, 0)" in message and "has returned" in message
    assert "basic.cu:61" in message
    assert info.value.kernel == "barrier_in_branch" and info.value.block == (0, 0, 0)


def test_barriers_at_different_call_sites(basic):
    with pytest.raises(cudasim.BarrierDivergenceError, match=r"basic\.cu:70 while thread \(1, 0, 0\) waits at "
                                                            r"__syncthreads\(\) at .*basic\.cu:68"):
        basic.get_function("barrier_two_sites")(1, 32, (np.zeros(32, np.float32),))


def test_device_assert_names_block_and_thread(basic):
    touched = np.zeros(3 * 32, np.int32)
    with pytest.raises(cudasim.DeviceAssertError) as info:
        basic.get_function("assert_in")(3, 32, (np.int32(1), np.int32(5), touched))
    assert info.value.block == (1, 0, 0) and info.value.thread == (5, 0, 0)
    message = str(info.value)
    assert "kernel 'assert_in', block (1, 0, 0), thread (5, 0, 0)" in message
    assert "!(blockIdx.x == bad_block && threadIdx.x == bad_thread)" in message and "basic.cu:" in message
    assert touched[:32].all() and not touched[64:].any()  # the launch stopped in block 1
    assert isinstance(info.value, AssertionError) and isinstance(info.value, RuntimeError)
    basic.get_function("assert_in")(3, 32, (np.int32(-1), np.int32(5), touched))  # and the next one runs


def test_stack_overflow_and_illegal_address_are_errors(basic):
    y = np.zeros(64, np.float32)
    with pytest.raises(cudasim.StackOverflowError, match=r"huge_local.*thread \(0, 0, 0\).*stack overflow"):
        basic.get_function("huge_local")(1, 2, (y, np.int32(200000)))
    with pytest.raises(cudasim.IllegalAddressError, match=r"thread \(7, 0, 0\).*illegal memory access"):
        basic.get_function("wild_write")(1, 32, (y, np.int64(16)))
    x = np.ones(64, np.float32)
    basic.get_function("vector_add")(2, 32, (x, x, y, np.int64(64)))  # the fiber pool still works
    np.testing.assert_array_equal(y, 2.0)


def test_warp_shuffle_reduction(reduce, data):
    assert correct_under_every_order(reduce, "warp_sum", data) == [True] * len(ORDERS)


def test_warp_primitives_against_numpy(reduce):
    x = np.random.default_rng(3).integers(0, 50, 64).astype(np.int32)
    out = np.zeros((64, 6), np.int32)
    with cudasim.thread_order("random", 4):
        reduce.get_function("warp_primitives")(1, 64, (x, out))
    lane = np.arange(64) % 32
    base = np.arange(64) - lane
    own = x
    np.testing.assert_array_equal(out[:, 0], x[base + 3])
    np.testing.assert_array_equal(out[:, 1], np.where(lane >= 2, x[np.arange(64) - 2], own))
    segment = lane & ~7
    np.testing.assert_array_equal(out[:, 2], x[base + segment + ((lane ^ 5) & 7)])
    odd = (x % 2).reshape(2, 32)
    ballots = (odd.astype(np.uint64) << np.arange(32, dtype=np.uint64)).sum(axis=1).astype(np.uint32)
    np.testing.assert_array_equal(out[:, 3].view(np.uint32), np.repeat(ballots, 32))
    votes = (x.reshape(2, 32) == 7).any(axis=1) + 2 * (x.reshape(2, 32) >= 0).all(axis=1)
    np.testing.assert_array_equal(out[:, 4], np.repeat(votes, 32))
    np.testing.assert_array_equal(out[:, 5], np.where(lane < 31, lane + 1, lane))


def test_shuffle_from_exited_lanes_reads_poison(reduce):
    out = np.zeros(1, np.float32)
    reduce.get_function("warp_sum_early_return")(1, 32, (np.ones(32, np.float32), out, np.int32(32)))
    assert out[0] == 32.0
    reduce.get_function("warp_sum_early_return")(1, 32, (np.ones(32, np.float32), out, np.int32(20)))
    assert np.isnan(out[0])


def test_shuffle_waiting_for_a_barrier_is_a_deadlock(reduce):
    with pytest.raises(cudasim.DeadlockError, match=r"__shfl_down_sync\(\) at .*reduce\.cu:\d+ for lane 16, "
                                                    r"thread \(16, 0, 0\), which waits at __syncthreads\(\)"):
        reduce.get_function("shuffle_vs_barrier")(1, 64, (np.zeros(64, np.float32),))


def test_warp_mask_must_name_the_calling_lane(reduce):
    with pytest.raises(cudasim.WarpDivergenceError, match=r"thread \(1, 0, 0\).*mask 0x00000001.*calling lane 1"):
        reduce.get_function("shuffle_bad_mask")(1, 32, (np.zeros(32, np.float32),))


def test_trap(reduce):
    with pytest.raises(cudasim.TrapError, match=r"block \(1, 0, 0\), thread \(2, 0, 0\): __trap\(\)") as info:
        reduce.get_function("trap_in")(2, 32, (np.zeros(32, np.float32),))
    assert isinstance(info.value, cudasim.KernelError)
