"""Checks shared by the op tests: results against PyTorch and gradients against central differences;
the kernels that cuda/*.cu declare (``CUDA_SOURCES``, ``declared_kernels``); a forked child's exit.

``check_op(fn, torch_fn, *arrays)`` is the one call an op test needs: it runs ``fn`` on gpucnn
Tensors on every usable device and ``torch_fn`` on torch tensors made from the same float32 data,
compares outputs and the gradients of every floating-point input for a random upstream gradient,
then checks gpucnn's gradients in float64 against central differences on the cpu.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import gpucnn
from gpucnn.devices.cudasim import _source
from gpucnn.ops import _memory

CUDA_SOURCES = sorted((Path(__file__).resolve().parents[1] / "cuda").glob("*.cu"))


def declared_kernels(source: Path) -> list[str]:
    """The names of the extern "C" __global__ kernels that ``source`` declares, in order (read as
    cudasim reads them: comments skipped)."""
    kernels = _source.find_kernels(_source.strip_comments(source.read_text()))
    return [name for name, declaration in kernels.items() if declaration.extern_c]


# atol + rtol * |expected| per dtype.
TOLERANCE = {np.dtype(np.float32): (1e-5, 1e-4), np.dtype(np.float64): (1e-10, 1e-8)}


def to_numpy(value) -> np.ndarray:
    if isinstance(value, gpucnn.Tensor):
        return value.numpy()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def assert_close(actual, expected, *, atol: float | None = None, rtol: float | None = None, name: str = "value"):
    """Fails unless |actual - expected| <= atol + rtol * |expected| elementwise (NaNs must match).

    The message gives the number of mismatches and the first few indices with both values.
    """
    actual, expected = to_numpy(actual), to_numpy(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != expected {expected.shape}"
    default_atol, default_rtol = TOLERANCE.get(np.result_type(actual.dtype, np.float32), (1e-5, 1e-4))
    atol = default_atol if atol is None else atol
    rtol = default_rtol if rtol is None else rtol
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~((np.abs(a - e) <= atol + rtol * np.abs(e)) | (np.isnan(a) & np.isnan(e)) | (a == e))
    if bad.any():
        indices = np.argwhere(bad)[:5]
        details = ", ".join(f"{tuple(int(i) for i in idx)}: {a[tuple(idx)]!r} vs {e[tuple(idx)]!r}" for idx in indices)
        raise AssertionError(
            f"{name}: {int(bad.sum())} of {bad.size} elements differ (atol={atol}, rtol={rtol}); first: {details}"
        )


def numerical_gradients(fn, arrays, weights, eps: float = 1e-6) -> list:
    """Central-difference gradients of sum(fn(*arrays) * weights) for each floating-point array."""
    def loss(values):
        with gpucnn.no_grad():
            out = fn(*[gpucnn.tensor(v) for v in values])
        return float((out.numpy().astype(np.float64) * weights).sum())

    grads = []
    for position, array in enumerate(arrays):
        if array.dtype.kind != "f":
            grads.append(None)
            continue
        grad = np.zeros(array.shape, dtype=np.float64)
        values = [a.copy() for a in arrays]
        flat = values[position].reshape(-1)
        for i in range(flat.size):
            original = flat[i]
            flat[i] = original + eps
            plus = loss(values)
            flat[i] = original - eps
            minus = loss(values)
            flat[i] = original
            grad.reshape(-1)[i] = (plus - minus) / (2 * eps)
        grads.append(grad)
    return grads


def check_gradients(fn, *arrays, eps: float = 1e-6, atol: float = 1e-6, rtol: float = 1e-5, seed: int = 0):
    """gpucnn's float64 gradients of ``fn`` on the cpu against central differences."""
    arrays = [np.asarray(a, dtype=np.float64) if np.asarray(a).dtype.kind == "f" else np.asarray(a) for a in arrays]
    inputs = [gpucnn.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    out = fn(*inputs)
    weights = np.random.default_rng(seed).standard_normal(out.shape)
    (out * gpucnn.tensor(weights)).sum().backward()
    expected = numerical_gradients(fn, arrays, weights, eps)
    for position, (tensor, numeric) in enumerate(zip(inputs, expected)):
        if numeric is not None:
            assert tensor.grad is not None, f"input {position}: no gradient reached it"
            assert_close(tensor.grad, numeric, atol=atol, rtol=rtol, name=f"numerical gradient of input {position}")


def check_against_torch(fn, torch_fn, *arrays, atol=None, rtol=None, seed: int = 0, device: str = "cpu"):
    """Outputs and input gradients of ``fn`` (gpucnn, on ``device``) and ``torch_fn`` on float32 data."""
    arrays = [np.asarray(a, dtype=np.float32) if np.asarray(a).dtype.kind == "f" else np.asarray(a) for a in arrays]
    inputs = [gpucnn.tensor(a, device=device, requires_grad=a.dtype.kind == "f") for a in arrays]
    references = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    out = fn(*inputs)
    expected = torch_fn(*references)
    assert_close(out, expected, atol=atol, rtol=rtol, name=f"forward on {device}")
    if not expected.requires_grad:
        return
    upstream = np.random.default_rng(seed).standard_normal(expected.shape).astype(np.float32)
    out.backward(upstream)
    expected.backward(torch.from_numpy(upstream))
    for position, (tensor, reference) in enumerate(zip(inputs, references)):
        if reference.grad is not None:
            assert tensor.grad is not None, f"input {position}: no gradient on {device}"
            assert_close(tensor.grad, reference.grad, atol=atol, rtol=rtol, name=f"gradient of input {position} on {device}")


def check_op(fn, torch_fn, *arrays, atol=None, rtol=None, numerical: bool = True, seed: int = 0):
    """The op check: against PyTorch on every usable device, then central differences in float64."""
    for device in gpucnn.devices():
        check_against_torch(fn, torch_fn, *arrays, atol=atol, rtol=rtol, seed=seed, device=device)
    if numerical:
        check_gradients(fn, *arrays, seed=seed)


def _poison(array):
    """Fills ``array`` with NaN (floating point), a third of its largest value (integer) or True."""
    if array.dtype.kind in "fc":
        array.fill(np.nan)
    elif array.dtype.kind in "iu":
        array.fill(np.iinfo(array.dtype).max // 3)
    elif array.dtype.kind == "b":
        array.fill(True)
    return array


@contextlib.contextmanager
def poisoned_new_arrays():
    """Within the block, new arrays come filled with ``_poison``'s values where they would hold whatever
    memory held: ``numpy.empty`` (where the kernel devices' outputs and small cpu arrays come from) and
    ``_memory.empty`` (the cpu ops' recycled blocks, which would otherwise often hold zeros or the last
    op's values). An op that leaves part of a result unwritten, or reads memory it never wrote, then
    gives NaN or garbage rather than passing by luck."""
    empty, host_empty = np.empty, _memory._host.empty

    def poisoned_empty(shape, dtype=float, *args, **kwargs):
        return _poison(empty(shape, dtype, *args, **kwargs))

    def poisoned_host_empty(shape, dtype):
        return _poison(host_empty(shape, dtype))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(np, "empty", poisoned_empty)
        patch.setattr(_memory, "empty", poisoned_host_empty)
        patch.setattr(_memory._host, "empty", poisoned_host_empty)  # where _memory.zeros takes its arrays
        yield


def wait_for_forked_child(pid: int, what: str) -> None:
    """Waits up to 30 s for forked child ``pid`` to exit 0; fails naming ``what`` it hung on if it does not."""
    deadline = time.monotonic() + 30
    while (waited := os.waitpid(pid, os.WNOHANG)) == (0, 0) and time.monotonic() < deadline:
        time.sleep(0.01)
    if waited == (0, 0):
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail(f"the forked child hung on {what}")
    assert os.waitstatus_to_exitcode(waited[1]) == 0


def packed_and_direct_step_outputs(device_name: str, monkeypatch) -> tuple:
    """A small network's training step on ``device_name`` twice: its kernels launched as the ops launch
    them (``Device.launcher``, from packed arguments) and called directly, CuPy's way
    (``kernel(grid, block, args)``). Each gives the loss, the logits, the parameters' gradients and the
    parameters after an SGD step with momentum, as NumPy arrays; the kernels sum in fixed orders, so
    the two are equal bit for bit."""
    import gpucnn
    from gpucnn import nn, optim

    device = gpucnn.device(device_name)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((4, 3, 12, 12)).astype(np.float32)
    labels = rng.integers(0, 5, 4)

    def step():
        gpucnn.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                              nn.MaxPool2d(3, stride=2, padding=1), nn.Conv2d(16, 16, 3, stride=2, padding=1),
                              nn.AvgPool2d(3), nn.Flatten(), nn.Linear(16, 5)).to(device)
        optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        logits = model(gpucnn.tensor(images, device=device))
        loss = nn.CrossEntropyLoss()(logits, gpucnn.tensor(labels, device=device))
        loss.backward()
        outputs = [loss.numpy(), logits.numpy()] + [p.grad.numpy() for p in model.parameters()]
        optimizer.step()
        return outputs + [p.numpy() for p in model.parameters()]

    packed = step()

    def direct(self, file, name, fixed=()):
        kernel = self.kernel(file, name)
        return lambda grid, block, leading: kernel(grid, block, tuple(leading) + fixed)

    with monkeypatch.context() as patch:
        patch.setattr(type(device), "launcher", direct)
        return packed, step()
