"""Device names, the default device, and the reasons a GPU device cannot be used."""

import re
import sys

import numpy as np
import pytest

import gpucnn
from gpucnn.devices import cuda
from helpers import packed_and_direct_step_outputs


@pytest.fixture
def fresh_probe():
    cuda.probe.cache_clear()
    yield
    cuda.probe.cache_clear()


def test_cpu_device():
    device = gpucnn.device("cpu")
    assert device.type == "cpu" and device.xp is np and not device.runs_kernels
    assert gpucnn.device(" CPU ") is device
    assert "cpu" in gpucnn.devices() and gpucnn.devices()[0] == "cpu"


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "cuda:-1", "tpu:0", ""])
def test_unknown_device_names(name):
    with pytest.raises(ValueError, match="unknown device"):
        gpucnn.device(name)


def test_cuda_without_cupy_names_the_extra(monkeypatch, fresh_probe, default_device_unset):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` raise ImportError
    with pytest.raises(RuntimeError, match=r"CuPy is not installed.*gpucnn\[cuda12\]"):
        gpucnn.tensor([1.0], device="cuda")
    assert not any(name.startswith("cuda:") for name in gpucnn.devices())
    assert gpucnn.default_device().name == "cpu"


@pytest.mark.skipif(cuda.probe()[0] > 0, reason="a GPU is usable here")
def test_cuda_without_gpu_says_why(fresh_probe, default_device_unset):
    with pytest.raises(RuntimeError, match="cannot be used: .+"):
        gpucnn.tensor([1.0], device="cuda:0")
    assert gpucnn.default_device().name == "cpu"


def test_environment_overrides_default(monkeypatch):
    monkeypatch.setenv("GPUCNN_DEVICE", "cudasim")
    assert gpucnn.default_device().name == "cudasim"


def test_cudasim_device_runs_numpy(monkeypatch):
    device = gpucnn.device("cudasim")
    assert device.type == "cudasim" and device.xp is np and device.runs_kernels
    x = gpucnn.tensor([[1.0, 2.0]], device="cudasim", requires_grad=True)
    ((x * x).sum()).backward()  # ops written against xp run unchanged
    assert x.device is device and x.grad.device is device
    assert np.array_equal(x.grad.numpy(), [[2.0, 4.0]])


def test_cudasim_without_compiler_says_why(monkeypatch):
    monkeypatch.setenv("CXX", "/nonexistent/g++")
    with pytest.raises(RuntimeError, match="g\\+\\+"):
        gpucnn.device("cudasim")


@pytest.mark.skipif(cuda.probe()[0] > 0, reason="a GPU is usable here")
def test_cupy_installed_without_gpu_falls_back_to_cpu(fresh_probe, default_device_unset):
    """`pip install gpucnn[cuda12]` on a machine with no GPU: CuPy imports, gpucnn uses the cpu."""
    pytest.importorskip("cupy")
    assert gpucnn.default_device().name == "cpu"
    assert gpucnn.tensor([1.0]).device.name == "cpu"
    assert not any(name.startswith("cuda:") for name in gpucnn.devices())
    with pytest.raises(RuntimeError, match="no usable NVIDIA driver|reports no GPU"):
        gpucnn.device("cuda")


def test_launchers_are_made_once_per_kernel_and_fixed_tuple(monkeypatch):
    device = gpucnn.device("cudasim")
    n = 1000
    fixed = (np.int64(n),)
    launcher = device.launcher("relu", "relu_forward", fixed)
    assert device.launcher("relu", "relu_forward", fixed) is launcher
    assert device.launcher("relu", "relu_forward", (np.int64(n),)) is not launcher  # known by identity
    assert device.launcher("relu", "relu_backward", ()) is device.launcher("relu", "relu_backward", ())
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    y = np.full(n, np.nan, np.float32)
    launcher((2,), (256,), (x, y))  # relu_forward(x, y, n)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    with pytest.raises(TypeError, match="takes 3 arguments"):
        launcher((2,), (256,), (x,))
    with pytest.raises(TypeError, match=r"launcher\('relu', 'relu_forward'\): fixed must be a tuple.*got list"):
        device.launcher("relu", "relu_forward", [np.int64(n)])
    y[:] = np.nan
    launcher((2,), (256,), [x, y])  # the leading arguments as any sequence, as on cuda
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    monkeypatch.setattr(type(device), "MAX_LAUNCHERS", 1)
    device.launcher("relu", "relu_forward", (np.int64(5),))  # the cache was full: it starts again
    assert device.launcher("relu", "relu_forward", fixed) is not launcher


def test_a_layers_calls_launch_from_the_launchers_of_its_first_call():
    """Every op launches through Device.launcher, its sizes packed once: a layer's second call (forward
    and backward) makes no launcher of its own."""
    from gpucnn.nn import functional as F
    from gpucnn.ops._kernels import sized

    device = gpucnn.device("cudasim")
    rng = np.random.default_rng(0)
    x = gpucnn.tensor(rng.standard_normal((2, 4, 8, 8)).astype(np.float32), device=device, requires_grad=True)
    w = gpucnn.tensor(rng.standard_normal((4, 4, 3, 3)).astype(np.float32), device=device, requires_grad=True)
    mean, var = (gpucnn.tensor(np.full(4, value, np.float32), device=device) for value in (0.0, 1.0))

    def step():
        y = F.conv2d(x, w, padding=1)
        y = F.batch_norm(y, mean, var, training=True)
        y = F.max_pool2d(F.relu(y), 3, stride=2, padding=1) + F.avg_pool2d(y, 3, stride=2, padding=1)
        y.sum().backward()

    step()
    launchers = dict(device._launchers)
    step()
    assert device._launchers == launchers
    assert {name for _, name, _ in launchers} >= {"conv2d_forward_pixels", "batchnorm_forward", "batchnorm_backward",
                                                   "relu_forward", "maxpool2d_forward", "maxpool2d_backward",
                                                   "avgpool2d_forward", "avgpool2d_backward"}
    sizes = (np.int32(3), np.int32(1))
    assert sized("a", 10, sizes) is sized("a", 10, (np.int32(3), np.int32(1)))
    assert sized("b", 10, (np.int32(3), np.float32(1.0)))[2].dtype == np.float32  # not "a"'s equal int32 1


def test_packed_launches_match_direct_kernel_calls_on_cudasim(monkeypatch):
    """A training step's every kernel (conv2d, batch norm, ReLU, both poolings, cross-entropy, SGD)
    gives the same bits launched from packed arguments as called directly (its GPU twin: tests/gpu)."""
    packed, direct = packed_and_direct_step_outputs("cudasim", monkeypatch)
    assert len(packed) == len(direct) == 2 + 2 * 8
    for ours, theirs in zip(packed, direct):
        np.testing.assert_array_equal(ours, theirs)


def test_cudasim_launchers_check_every_argument():
    device = gpucnn.device("cudasim")
    x = np.zeros(8, np.float32)
    with pytest.raises(TypeError, match=r"relu_forward\(\): args\[2\] \('n'.*numpy.int64"):
        device.launcher("relu", "relu_forward", (np.int32(8),))((1,), (256,), (x, x))
    with pytest.raises(TypeError, match=r"args\[0\] \('x'.*float32"):
        device.launcher("relu", "relu_forward", (np.int64(8),))((1,), (256,), (x.astype(np.float64), x))


def test_packed_arguments_refuse_python_scalars_and_a_wrong_count():
    from gpucnn.devices.packed import PackedArguments

    packed = PackedArguments(2, (np.int32(-1), np.float32(0.5)), lambda array: array.ctypes.data)
    x = np.zeros(2, np.float32)
    with pytest.raises(TypeError, match="2 leading kernel arguments, got 1"):
        packed.fill((x,))
    with pytest.raises(TypeError, match=r"argument 1 is a Python int \(3\).*numpy.int32\(value\)"):
        packed.fill((x, 3))
    with pytest.raises(TypeError, match="argument 0 is a NoneType: pass an array of the device or a NumPy scalar"):
        PackedArguments(1, (), lambda array: array.ctypes.data).fill((None,))
    packed.fill((x, np.int64(-2)))
    slots = np.ctypeslib.as_array(packed._slots)
    assert slots.tolist() == [x.ctypes.data, 2**64 - 2, 2**32 - 1, int(np.float32(0.5).view(np.uint32))]
    pointers = list(packed._pointers)  # each to its slot, 8 bytes apart
    assert pointers == [slots.ctypes.data + 8 * index for index in range(4)]



def test_packed_arguments_take_each_value_by_its_own_type():
    """Once an array's type is seen, fill passes such values by address at once: a slot that held an
    array then takes a scalar's bits, and the other way round, and a type without an address still
    says so."""
    from gpucnn.devices.packed import PackedArguments

    packed = PackedArguments(2, (), lambda array: array.ctypes.data)
    x, y = np.zeros(2, np.float32), np.zeros(3, np.float32)
    slots = np.ctypeslib.as_array(packed._slots)
    packed.fill((x, np.int32(-1)))
    assert slots.tolist() == [x.ctypes.data, 2**32 - 1]
    packed.fill((np.int32(7), y))
    assert slots.tolist() == [7, y.ctypes.data]
    packed.fill((y, np.float32(0.5)))
    assert slots.tolist() == [y.ctypes.data, int(np.float32(0.5).view(np.uint32))]
    with pytest.raises(TypeError, match="argument 1 is a list: pass an array of the device or a NumPy scalar"):
        packed.fill((x, [1]))

def test_cuda_launches_hand_the_driver_the_packed_arguments():
    """Without a GPU, the driver's cuLaunchKernel is a recording stand-in: the cuda device's launcher
    passes it this GPU's function, the grid and block as (x, y, z), the current stream and the pointer
    array, through which each argument reads back (on a GPU, tests/gpu runs every kernel so)."""
    import contextlib
    import ctypes
    from types import SimpleNamespace

    seen = []

    def launch_kernel(function, gx, gy, gz, bx, by, bz, shared, stream, params, extra):
        pointers = (ctypes.c_void_p * 4).from_address(params)
        values = (pointers[0] and ctypes.c_uint64.from_address(pointers[0]).value,
                  ctypes.c_int32.from_address(pointers[1]).value, ctypes.c_int64.from_address(pointers[2]).value,
                  ctypes.c_float.from_address(pointers[3]).value)
        seen.append((function, (gx, gy, gz), (bx, by, bz), shared, stream, values, extra))

    xp = SimpleNamespace(cuda=SimpleNamespace(driver=SimpleNamespace(launchKernel=launch_kernel),
                                              get_current_stream=lambda: SimpleNamespace(ptr=0x5EA)))
    function = SimpleNamespace(ptr=0xF00)
    device = SimpleNamespace(context=contextlib.nullcontext, kernel=lambda file, name: SimpleNamespace(kernel=function),
                             address=lambda array: array.ctypes.data, xp=xp)
    x = np.zeros(4, np.float32)
    launcher = cuda._DriverLaunch(device, "conv2d", "conv2d_forward_64", (np.int64(-3), np.float32(2.5)))
    launcher((5, 2), (256,), (x, np.int32(-7)))
    launcher(9, 128, (x[1:], np.int32(8)))
    assert seen == [(0xF00, (5, 2, 1), (256, 1, 1), 0, 0x5EA, (x.ctypes.data, -7, -3, 2.5), 0),
                    (0xF00, (9, 1, 1), (128, 1, 1), 0, 0x5EA, (x.ctypes.data + 4, 8, -3, 2.5), 0)]


def test_the_cuda_module_answers_as_the_probe():
    count, reason = cuda.probe()
    assert gpucnn.cuda.device_count() == count and gpucnn.cuda.is_available() == (count > 0)
    assert gpucnn.cuda.is_available() == ("cuda" in gpucnn.devices())
    if not count:
        with pytest.raises(RuntimeError, match=re.escape(reason)):
            gpucnn.cuda.synchronize()
