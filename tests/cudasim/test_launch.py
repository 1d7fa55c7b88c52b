"""Launching kernels: results against NumPy, argument checking, launch configuration."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("n, grid, block", [(1, 1, 1), (1000, 3, 128), (1000, (2,), (32,)), (4099, 1, 1024)])
def test_vector_add_grid_stride(basic, rng, n, grid, block):
    a = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    y = np.full(n, -7.0, np.float32)
    basic.get_function("vector_add")(grid, block, (a, b, y, np.int64(n)))
    np.testing.assert_array_equal(y, a + b)


@pytest.mark.parametrize("grid, block", [((3, 2), (4, 5)), ((2, 3, 2), (4, 2, 3)), ((1, 1, 5), (1, 1, 64)),
                                         (4, (8, 4, 2))])
def test_2d_3d_index_math(basic, grid, block):
    g = tuple(grid) + (1,) * (3 - len(grid)) if isinstance(grid, tuple) else (grid, 1, 1)
    b = tuple(block) + (1,) * (3 - len(block))
    shape = (g[2] * b[2], g[1] * b[1], g[0] * b[0])  # (z, y, x)
    linear = np.full(shape, -1, np.int32)
    packed = np.full(shape, -1, np.int64)
    basic.get_function("index_3d")(grid, block, (linear, packed))
    z, y, x = np.indices(shape)
    bx, by, bz, tx, ty, tz = x // b[0], y // b[1], z // b[2], x % b[0], y % b[1], z % b[2]
    np.testing.assert_array_equal(linear, tx + b[0] * (ty + b[1] * tz))
    np.testing.assert_array_equal(packed, bx * 100000 + by * 10000 + bz * 1000 + tx * 100 + ty * 10 + tz)


def test_scalar_and_pointer_types(basic):
    out = np.zeros(5, np.float64)
    seen = np.zeros(1, np.bool_)
    flags = np.array([3], np.uint8)
    basic.get_function("scalar_types")(1, 1, (out, np.int32(-5), np.uint32(4000000000), np.int64(-2**40),
                                              np.float32(1.5), np.float64(0.1), flags, seen))
    np.testing.assert_array_equal(out, [-5, 4000000000, -2**40, 1.5, 0.1])
    assert seen[0]
    # np.longlong is a distinct type from np.int64 with the same dtype: both are a long long.
    basic.get_function("vector_add")(1, 1, (out[:1].astype(np.float32),) * 3 + (np.longlong(1),))


@pytest.mark.parametrize("leading", [0, 3, 8])
def test_launch_params_reads_each_value_through_its_pointer(basic, leading):
    """Arguments packed as cuLaunchKernel takes them (gpucnn.devices.packed), some written once and the
    rest per launch: every scalar type reads its own bytes from its slot, as a call with the tuple does."""
    from gpucnn.devices.packed import PackedArguments

    kernel = basic.get_function("scalar_types")
    flags, seen = np.ones(1, np.uint8), np.zeros(1, np.bool_)
    out = np.full(5, np.nan)
    args = (out, np.int32(-5), np.uint32(4000000000), np.int64(-2**40), np.float32(-1.5), np.float64(0.1), flags,
            seen)
    packed = PackedArguments(leading, args[leading:], lambda array: array.ctypes.data)
    kernel.check(args)
    kernel.launch_params(1, 1, packed.fill(args[:leading]))
    np.testing.assert_array_equal(out, [-5, 4000000000, -2**40, -1.5, 0.1])
    assert seen[0]
    # the next launch rewrites the leading slots only
    if leading >= 2:
        kernel.launch_params(1, 1, packed.fill((out, np.int32(7)) + args[2:leading]))
        assert out[0] == 7


def test_check_raises_what_a_launch_would(basic):
    x = np.zeros(4, np.float32)
    kernel = basic.get_function("vector_add")
    with pytest.raises(TypeError, match=r"args\[3\].*'n'.*numpy.int64"):
        kernel.check((x, x, x, np.int32(4)))
    with pytest.raises(TypeError, match="takes 4 arguments"):
        kernel.check((x, x, x))
    kernel.check((x, x, x, np.int64(4)))


def call_error(kernel, args, grid=1, block=32, **kwargs):
    with pytest.raises((TypeError, ValueError)) as info:
        kernel(grid, block, args, **kwargs)
    return info


def test_python_scalars_are_rejected(basic):
    x = np.zeros(4, np.float32)
    info = call_error(basic.get_function("vector_add"), (x, x, x, 4))
    assert info.type is TypeError
    message = str(info.value)
    assert "vector_add" in message and "args[3]" in message and "'n'" in message and "long long" in message
    assert "Python int" in message and "numpy.int64" in message
    info = call_error(basic.get_function("scalar_types"), (np.zeros(5), np.int32(1), np.uint32(1), np.int64(1),
                                                           1.5, np.float64(1), np.zeros(1, np.uint8),
                                                           np.zeros(1, np.bool_)))
    assert info.type is TypeError and "args[4]" in str(info.value) and "'f'" in str(info.value)
    assert "Python float" in str(info.value) and "numpy.float32" in str(info.value)


@pytest.mark.parametrize("position, bad, needs", [
    (3, np.int32(4), "numpy.int64"),                       # int32 where long long is declared
    (3, np.float64(4), "numpy.int64"),
    (1, np.zeros(4, np.float64), "dtype float32"),           # float64 array for const float*
    (2, np.zeros(4, np.int32), "dtype float32"),
    (0, [0.0] * 4, "numpy array"),                            # not an array at all
    (3, np.array(4, np.int64), "numpy.int64"),               # 0-d array instead of a scalar
])
def test_type_mismatches_name_the_parameter(basic, position, bad, needs):
    x = np.zeros(4, np.float32)
    args = [x, x, x.copy(), np.int64(4)]
    args[position] = bad
    info = call_error(basic.get_function("vector_add"), tuple(args))
    assert info.type is TypeError
    assert f"args[{position}]" in str(info.value) and needs in str(info.value)


def test_layout_and_writability(basic):
    kernel = basic.get_function("vector_add")
    x = np.zeros(8, np.float32)
    info = call_error(kernel, (x[::2], x[:4], x[4:].copy(), np.int64(4)))
    assert "args[0]" in str(info.value) and "contiguous" in str(info.value)
    info = call_error(kernel, (np.zeros((4, 4), np.float32).T, x, x, np.int64(4)))
    assert "contiguous" in str(info.value)
    frozen = np.ones(4, np.float32)
    frozen.flags.writeable = False
    kernel(1, 4, (frozen, frozen, x, np.int64(4)))  # read-only is fine for const pointers
    np.testing.assert_array_equal(x[:4], 2.0)
    info = call_error(kernel, (x, x, frozen, np.int64(4)))
    assert "args[2]" in str(info.value) and "read-only" in str(info.value)


def test_argument_count(basic):
    x = np.zeros(4, np.float32)
    with pytest.raises(TypeError, match=r"vector_add\(\) takes 4 arguments .*got 3"):
        basic.get_function("vector_add")(1, 1, (x, x, x))


@pytest.mark.parametrize("grid, block, match", [
    (1, 1025, r"1\.\.1024, got 1025"),
    (1, (32, 33), "1056 threads"),
    (1, (1, 1, 65), "dimension z"),
    (0, 32, "dimension x"),
    ((1, 65536), 32, "dimension y"),
    (1, (1, 2, 3, 4), "1 to 3 ints"),
    ("8", 32, "1 to 3 ints"),
    (1.0, 32, "1 to 3 ints"),
])
def test_launch_configuration_is_checked(basic, grid, block, match):
    x = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match=match):
        basic.get_function("vector_add")(grid, block, (x, x, x, np.int64(4)))


def test_shared_memory_limit(basic):
    kernel = basic.get_function("reverse_blocks")
    x = np.zeros(64, np.float32)
    with pytest.raises(ValueError, match="shared_mem"):
        kernel(1, 64, (x, x.copy()), shared_mem=48 * 1024 + 1)
    kernel.max_dynamic_shared_size_bytes = 64 * 1024
    kernel(1, 64, (x, x.copy()), shared_mem=64 * 1024)
    with pytest.raises(ValueError):
        kernel.max_dynamic_shared_size_bytes = 10**9


def test_unknown_and_mangled_kernels(basic):
    with pytest.raises(LookupError, match="no kernel 'nope'"):
        basic.get_function("nope")
    with pytest.raises(LookupError, match='not declared extern "C"'):
        basic.get_function("mangled_kernel")
    assert basic.get_function("vector_add") is basic.get_function("vector_add")
    assert basic.kernels["vector_add"] == [("a", "const float* __restrict__"), ("b", "const float* __restrict__"),
                                           ("y", "float* __restrict__"), ("n", "long long")]


def test_atomics_histogram(basic, rng):
    n, bins = 5000, 17
    values = rng.integers(0, bins, n).astype(np.int32)
    counts = np.zeros(bins, np.int32)
    weights = np.zeros(1, np.float32)
    maximum = np.full(1, -1, np.int32)
    total = np.zeros(1, np.uint64)
    cas_count = np.zeros(1, np.uint32)
    basic.get_function("histogram")((n + 255) // 256, 256, (values, np.int32(n), counts, weights, maximum,
                                                             total, cas_count))
    np.testing.assert_array_equal(counts, np.bincount(values, minlength=bins))
    assert weights[0] == 0.5 * n and maximum[0] == values.max()
    assert total[0] == values.sum() and cas_count[0] == n


def test_dynamic_shared_memory(basic):
    x = np.arange(256, dtype=np.float32)
    y = np.zeros(256, np.float32)
    basic.get_function("reverse_blocks")(4, 64, (x, y), shared_mem=64 * 4)
    np.testing.assert_array_equal(y, x.reshape(4, 64)[:, ::-1].ravel())


def test_unwritten_shared_memory_reads_nan(basic):
    y = np.zeros(64, np.float32)
    basic.get_function("read_unwritten_shared")(1, 64, (y,), shared_mem=65 * 4)
    np.testing.assert_array_equal(y[:63], 1.0)
    assert np.isnan(y[63])


def test_barrier_votes(basic):
    flags = np.zeros(96, np.int32)
    flags[[3, 50, 90]] = 1
    out = np.zeros(3, np.int32)
    basic.get_function("barrier_votes")(1, 96, (flags, out))
    np.testing.assert_array_equal(out, [3, 1, 0])
    basic.get_function("barrier_votes")(1, 96, (np.ones(96, np.int32), out))
    np.testing.assert_array_equal(out, [96, 1, 1])


def test_cupy_call_shape_accepts_lists_and_numpy_dims(basic):
    x = np.ones(8, np.float32)
    y = np.zeros(8, np.float32)
    basic.get_function("vector_add")(np.int64(1), [np.int32(8)], [x, x, y, np.int64(8)], shared_mem=np.int64(0),
                                     stream=None)
    np.testing.assert_array_equal(y, 2.0)


def test_shared_memory_in_helpers_templates_and_file_scope(basic):
    x = np.arange(64, dtype=np.float32)
    y = np.zeros(4, np.float32)
    basic.get_function("use_helpers")(1, 64, (x, y))
    np.testing.assert_array_equal(y, [x.sum(), 64, 3, 0])


def test_intrinsics(basic):
    f = np.zeros(16, np.float32)
    i = np.zeros(12, np.int32)
    basic.get_function("intrinsics")(1, 1, (f, i), shared_mem=16)
    expected = [np.e, 0.5, 0.25, 1.5, -2.0, np.log(2), 4.0, 1.5, 1.0, np.inf, 1.0, 1024, 1.0, 3.0, 0.0, 3.0]
    np.testing.assert_allclose(f, np.array(expected, np.float32), rtol=1e-6)
    np.testing.assert_array_equal(i, [2, 4, 8, 31, 4, 3, 7, 1, 1, 5, -2, 32])


def test_bool_arrays_pass_for_unsigned_char_pointers(basic):
    out, seen = np.zeros(5, np.float64), np.zeros(1, np.bool_)
    args = (out, np.int32(0), np.uint32(0), np.int64(0), np.float32(0), np.float64(0), np.array([True]), seen)
    basic.get_function("scalar_types")(1, 1, args)
    assert seen[0]
    with pytest.raises(TypeError, match=r"args\[7\].*dtype bool"):
        basic.get_function("scalar_types")(1, 1, args[:7] + (np.zeros(1, np.uint8),))
