"""gpucnn.ops._parallel: the cpu ops' helper threads and NumPy's BLAS thread count."""

import os
import threading

import numpy as np
import pytest
from helpers import wait_for_forked_child

from gpucnn.ops._parallel import blas_threads, run_chunked, single_threaded_blas, usable_cores


def test_run_chunked_covers_the_range_once_in_even_pieces():
    pieces, lock = [], threading.Lock()

    def work(start, stop):
        with lock:
            pieces.append((start, stop))

    run_chunked(work, 1003, 100)
    pieces.sort()
    assert len(pieces) == 10 and pieces[0][0] == 0 and pieces[-1][1] == 1003
    assert all(stop == next_start for (_, stop), (next_start, _) in zip(pieces, pieces[1:]))
    assert {stop - start for start, stop in pieces} <= {100, 101}
    for size, grain in [(0, 10), (7, 10), (19, 10)]:  # fewer than two grains: one piece, on this thread
        pieces.clear()
        run_chunked(work, size, grain)
        assert pieces == [(0, size)]


def test_run_chunked_shares_the_pieces_with_the_helper_threads():
    if usable_cores() < 2:
        pytest.skip("a single usable core has no helper threads")
    caller, helped = threading.get_ident(), threading.Event()
    threads = set()

    def work(start, stop):
        threads.add(threading.get_ident())
        if threading.get_ident() != caller:
            helped.set()
        else:
            helped.wait(timeout=30)  # hold the caller's first piece until a helper has taken one

    run_chunked(work, 4, 1)
    assert len(threads) > 1


def test_run_chunked_raises_the_error_of_a_piece_after_the_others_ran():
    done = []

    def work(start, stop):
        if start == 2:
            raise ValueError("piece 2 failed")
        done.append(start)

    with pytest.raises(ValueError, match="piece 2 failed"):
        run_chunked(work, 5, 1)
    assert sorted(done) == [0, 1, 3, 4]


def openblas_count():
    """NumPy's OpenBLAS thread count where it can be set here; else the test is skipped."""
    if not blas_threads().usable:
        pytest.skip("NumPy's BLAS has no thread count to set here")
    return blas_threads().get()


def test_numpy_wheels_openblas_is_found():
    """NumPy's Linux wheels ship OpenBLAS (scipy-openblas): its thread count must be found there."""
    config = getattr(np.__config__, "CONFIG", {})  # NumPy before 1.25 does not describe its build so
    blas = config.get("Build Dependencies", {}).get("blas", {}).get("name", "")
    if "openblas" not in blas or not hasattr(__import__("os"), "sched_getaffinity"):
        pytest.skip(f"NumPy here is built on {blas or 'an unknown BLAS'}, or not on Linux")
    assert blas_threads().usable and blas_threads().get() >= 1


def test_single_threaded_blas_nests_and_gives_the_count_back():
    before = openblas_count()
    try:
        blas_threads().set(3)
        with single_threaded_blas():
            assert blas_threads().get() == 1
            with single_threaded_blas():
                assert blas_threads().get() == 1
            assert blas_threads().get() == 1  # the inner one leaves it to the outer
        assert blas_threads().get() == 3
        with pytest.raises(ValueError, match="inside"):
            with single_threaded_blas():
                raise ValueError("inside")
        assert blas_threads().get() == 3
    finally:
        blas_threads().set(before)


def test_single_threaded_blas_from_threads_at_once_gives_the_count_back_after_the_last():
    before = openblas_count()
    entered, release = threading.Barrier(3), threading.Event()
    counts = []

    def hold():
        with single_threaded_blas():
            entered.wait(timeout=30)
            release.wait(timeout=30)
            counts.append(blas_threads().get())

    try:
        blas_threads().set(2)
        threads = [threading.Thread(target=hold) for _ in range(2)]
        for thread in threads:
            thread.start()
        entered.wait(timeout=30)
        assert blas_threads().get() == 1
        release.set()
        for thread in threads:
            thread.join(timeout=30)
        assert counts == [1, 1] and blas_threads().get() == 2
    finally:
        blas_threads().set(before)


def test_run_chunked_inside_a_piece_runs_its_pieces_on_that_thread(monkeypatch):
    from gpucnn.ops import _parallel

    if usable_cores() < 2:
        pytest.skip("a single usable core runs every piece on the caller's thread")
    asked = []  # whether each call for the helper threads came from inside a piece
    get_helpers = _parallel._get_helpers
    monkeypatch.setattr(_parallel, "_get_helpers", lambda: asked.append(_parallel.in_piece()) or get_helpers())
    inner = {}  # outer piece -> [(thread, inner piece)]

    def outer_work(start, stop):
        outer = threading.get_ident()
        run_chunked(lambda a, b: inner.setdefault(start, []).append((threading.get_ident(), (a, b))), 4, 1)
        assert {thread for thread, _ in inner[start]} == {outer}

    run_chunked(outer_work, 2, 1)
    assert asked == [False]
    assert {start: [piece for _, piece in pieces] for start, pieces in inner.items()} == {
        start: [(0, 1), (1, 2), (2, 3), (3, 4)] for start in (0, 1)}


def test_splitting_lasts_the_window_after_work_split_among_threads(monkeypatch):
    from gpucnn.ops import _parallel

    if usable_cores() < 2:
        pytest.skip("a single usable core splits nothing among threads")
    clock = [1000.0]
    monkeypatch.setattr(_parallel.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(_parallel, "_split_until", 0.0)
    run_chunked(lambda start, stop: None, 1, 1)  # one piece: nothing split
    assert not _parallel.splitting()
    run_chunked(lambda start, stop: None, 2, 1)
    assert _parallel.splitting()
    clock[0] += _parallel.SPLIT_WINDOW - 0.01
    assert _parallel.splitting()
    clock[0] += 0.02
    assert not _parallel.splitting()


@pytest.mark.parametrize("split", [False, True])
def test_the_cpu_device_keeps_blas_on_one_thread_while_work_splits(monkeypatch, split):
    """Each op's forward and backward on the cpu sees BLAS on one thread while work splits among
    threads, on its own threads otherwise; after the op it has its count again."""
    import importlib

    import gpucnn
    from gpucnn.autograd import Function

    devices = importlib.import_module("gpucnn.devices")  # gpucnn.devices is also a function

    before = openblas_count()
    monkeypatch.setattr(devices, "splitting", lambda: split)
    seen = []

    class Probe(Function):
        def forward_cpu(self, x):
            seen.append(blas_threads().get())
            return x * 2

        def backward_cpu(self, grad):
            seen.append(blas_threads().get())
            return (grad * 2,)

    try:
        blas_threads().set(2)
        x = gpucnn.tensor(np.ones(3), requires_grad=True)
        Probe().apply(x).sum().backward()
        assert seen == ([1, 1] if split else [2, 2])
        assert blas_threads().get() == 2
    finally:
        blas_threads().set(before)


@pytest.mark.parametrize("a_shape, b_shape, pieces_of", [
    ((3, 40, 50), (3, 50, 60), "stack"),
    ((40, 50), (3, 50, 60), "stack"),  # a 2-D a over b's stack
    ((1, 40, 50), (3, 50, 60), "stack"),  # a stack of one, broadcast
    ((2, 40, 50), (3, 2, 50, 60), "stack"),  # a's stack of 2 (groups) over b's 3 x 2 (images, groups)
    ((2, 40, 50), (2, 50, 60), "columns"),  # fewer matrices than cores
    ((40, 50), (50, 70), "columns"),
    ((70, 50), (50, 40), "rows"),
    ((70, 50), (40, 50), "rows"),  # b transposed: a view BLAS reads as it is
])
def test_matmul_in_pieces_matches_numpy(monkeypatch, rng, a_shape, b_shape, pieces_of):
    from gpucnn.ops import _parallel

    _parallel._get_helpers()  # made for this machine's cores before the count below is changed
    monkeypatch.setattr(_parallel, "usable_cores", lambda: 3)
    monkeypatch.setattr(_parallel, "MATMUL_MIN_MACS", 1)
    monkeypatch.setattr(_parallel, "splitting", lambda: True)
    calls = []
    run = _parallel.run_chunked
    monkeypatch.setattr(_parallel, "run_chunked", lambda work, size, grain: calls.append((size, grain)) or
                        run(work, size, grain))
    a = rng.standard_normal(a_shape)
    b = rng.standard_normal(b_shape)
    if b_shape == (40, 50):
        b = b.T
    expected = np.matmul(a, b)
    out = np.full(expected.shape, np.nan)
    assert _parallel.matmul(a, b, out=out) is out
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    size = {"stack": expected.shape[0], "columns": expected.shape[-1], "rows": expected.shape[-2]}[pieces_of]
    assert calls == [(size, size // 3)]


def test_matmul_stays_one_product_when_small_outside_the_window_or_inside_a_piece(monkeypatch, rng):
    from gpucnn.ops import _parallel

    calls = []
    run = _parallel.run_chunked
    monkeypatch.setattr(_parallel, "run_chunked", lambda *args: calls.append(args) or run(*args))
    a, b = rng.standard_normal((40, 50)), rng.standard_normal((50, 60))
    monkeypatch.setattr(_parallel, "MATMUL_MIN_MACS", 1)
    monkeypatch.setattr(_parallel, "splitting", lambda: False)
    np.testing.assert_allclose(_parallel.matmul(a, b, out=np.empty((40, 60))), a @ b)
    monkeypatch.setattr(_parallel, "splitting", lambda: True)
    monkeypatch.setattr(_parallel, "MATMUL_MIN_MACS", 40 * 50 * 60)  # pieces must hold this many
    np.testing.assert_allclose(_parallel.matmul(a, b, out=np.empty((40, 60))), a @ b)
    monkeypatch.setattr(_parallel, "MATMUL_MIN_MACS", 1)
    run(lambda start, stop: _parallel.matmul(a, b, out=np.empty((40, 60))), 2, 1)  # in pieces run at once
    column, row = rng.standard_normal((1, 500)), rng.standard_normal((500, 1))  # one value: nothing to cut
    np.testing.assert_allclose(_parallel.matmul(column, row, out=np.empty((1, 1))), column @ row)
    assert calls == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
# Python 3.12 warns of fork in a process with threads (the suite's helper threads): what this test does.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded, use of fork:DeprecationWarning")
def test_a_forked_child_sets_blas_threads_although_the_parent_held_the_lock():
    openblas_count()
    with blas_threads().lock:  # as if another thread were setting the count at the fork
        pid = os.fork()
        if pid == 0:  # the child: it must not wait for a lock that no thread of it will release
            with single_threaded_blas():
                one = blas_threads().get() == 1
            os._exit(0 if one else 1)
    wait_for_forked_child(pid, "the BLAS threads' lock")
