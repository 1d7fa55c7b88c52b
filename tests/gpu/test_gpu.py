"""On a real GPU: the kernels against the CPU reference, tensors past 2^31 elements, and training.

Every op test in tests/ops also runs on each usable GPU (``check_op`` iterates over
``gpucnn.devices()``); these add what only a GPU can hold or show. Marked ``gpu``: skipped where no
usable GPU exists.
"""

import numpy as np
import pytest

import gpucnn
from gpucnn import nn
from gpucnn.nn import functional as F
from gpucnn.ops._conv2d_gpu import _fill_waves
from gpucnn.ops.conv2d import KERNEL_PATHS, Conv2d, kernel_path, kernel_paths
from helpers import assert_close, packed_and_direct_step_outputs

pytestmark = pytest.mark.gpu

BIG = 2**31 + 4096  # elements: past what a 32-bit index can address


def _on_both(fn, *arrays):
    """fn's output and input gradients on cpu and cuda, for a fixed random upstream gradient."""
    results = []
    for device in ("cpu", "cuda"):
        inputs = [gpucnn.tensor(a, device=device, requires_grad=True) for a in arrays]
        out = fn(*inputs)
        upstream = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
        out.backward(upstream)
        results.append([out.numpy()] + [t.grad.numpy() for t in inputs])
    return results


def test_tensors_move_between_the_gpu_and_the_host_with_their_gradients():
    """Tensor.to (and cpu(), cuda()) copies the values between cuda and the host devices both ways, and
    backward brings each gradient to its tensor's own device."""
    a = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    for host in ("cpu", "cudasim"):
        x = gpucnn.tensor(a, device="cuda", requires_grad=True)
        moved = x.to(host) if host == "cudasim" else x.cpu()
        assert moved.device == host and isinstance(moved.data, np.ndarray)
        ((moved * 2).cuda() ** 2).sum().backward()
        assert x.grad.device == "cuda"
        assert_close(x.grad.numpy(), 8 * a, atol=1e-5, name=f"cuda -> {host}")
        y = gpucnn.tensor(a, device=host, requires_grad=True)
        (y.to("cuda") ** 2).sum().backward()
        assert y.grad.device == host and isinstance(y.grad.data, np.ndarray)
        assert_close(y.grad.numpy(), 2 * a, atol=1e-5, name=f"{host} -> cuda")


def test_the_torch_shaped_api_on_the_gpu(tmp_path):
    """Creation on cuda, a CuPy array standing for a tensor on its GPU (``gpucnn.max(outputs.data, 1)``),
    in-place ReLU, save and load with map_location, and a DataLoader over cuda tensors."""
    gpucnn.manual_seed(1)
    x = gpucnn.randn(6, 4, device="cuda")
    gpucnn.manual_seed(1)
    np.testing.assert_array_equal(x.numpy(), gpucnn.randn(6, 4).numpy())
    _, predicted = gpucnn.max(x.data, 1)
    assert predicted.device == "cuda" and predicted.tolist() == x.numpy().argmax(1).tolist()
    with gpucnn.no_grad():
        assert F.relu(x, inplace=True) is x
    assert (x.numpy() >= 0).all() and gpucnn.cuda.is_available() and gpucnn.cuda.device_count() >= 1
    gpucnn.save({"x": x, "p": nn.Parameter(x)}, tmp_path / "t.pt")
    loaded = gpucnn.load(tmp_path / "t.pt")
    assert loaded["x"].device == "cuda" and isinstance(loaded["p"], nn.Parameter)
    assert gpucnn.load(tmp_path / "t.pt", map_location="cpu")["x"].device == "cpu"
    batches = list(gpucnn.data.DataLoader(gpucnn.data.TensorDataset(x, gpucnn.arange(6, device="cuda")), 4,
                                          shuffle=True))
    assert [b[0].device.name for b in batches] == ["cuda:0", "cuda:0"]
    assert sorted(np.concatenate([b[1].numpy() for b in batches]).tolist()) == list(range(6))


@pytest.mark.parametrize("path", KERNEL_PATHS)
@pytest.mark.parametrize("case", [
    dict(x=(2, 3, 17, 19), w=(8, 3, 3, 3), kw=dict(stride=1, padding=1)),
    dict(x=(1, 4, 15, 13), w=(6, 2, 5, 3), kw=dict(stride=(2, 3), padding="same", dilation=(1, 2), groups=2)),
    dict(x=(3, 16, 33, 31), w=(16, 1, 3, 3), kw=dict(stride=2, padding=1, groups=16)),
    dict(x=(4, 64, 32, 32), w=(128, 64, 1, 1), kw=dict(stride=2)),
    dict(x=(2, 130, 9, 9), w=(70, 130, 3, 3), kw=dict(padding="valid")),
    dict(x=(3, 40, 21, 23), w=(200, 40, 3, 3), kw=dict(padding=1)),  # two 128-row tiles, one partial
    dict(x=(2, 3, 20, 18), w=(20, 3, 7, 7), kw=dict(stride=2, padding=3)),  # a 7x7 RGB stem: 147 indices
    # narrow layers: backward-filter on its pixels kernel (every case of at most 32 output channels a group);
    # ConvNetJS's RGB stem at batch 32 sums its 256 splits in 32 lanes
    dict(x=(32, 3, 32, 32), w=(16, 3, 5, 5), kw=dict(padding=2)),
    # ConvNetJS's conv2: on the kernel path pixels_split, forward and backward-data in splits of whole channels
    dict(x=(4, 16, 16, 16), w=(20, 16, 5, 5), kw=dict(padding=2)),
    # narrow stride-1 layers: backward-data on the pixels kernel, the weight flipped, with groups and a dilation
    dict(x=(3, 16, 15, 13), w=(16, 16, 3, 3), kw=dict(padding=1)),
    dict(x=(2, 24, 11, 10), w=(10, 12, 3, 3), kw=dict(padding=(3, 1), dilation=(2, 1), groups=2)),
    # channels that 16 divides: the "taps" kernels, forward and backward-data, with groups and phases
    dict(x=(2, 32, 19, 17), w=(48, 32, 3, 3), kw=dict(padding=1)),
    dict(x=(2, 64, 15, 14), w=(32, 32, 3, 3), kw=dict(stride=2, padding=(1, 2), groups=2)),
])
def test_conv2d_matches_cpu(monkeypatch, case, path):
    if path not in kernel_paths(gpucnn.device("cuda")):
        pytest.skip(f"conv2d kernel path {path} is not built for this GPU")
    monkeypatch.setattr(Conv2d, "WINOGRAD_CPU_MIN_CHANNELS", {})  # the reference: the cpu's im2col, exact sums
    rng = np.random.default_rng(0)
    x = rng.standard_normal(case["x"]).astype(np.float32)
    # weights of a trained layer's scale (1 / sqrt(fan-in)): the sums stay near 1 at any channel count
    w = (rng.standard_normal(case["w"]) / np.sqrt(np.prod(case["w"][1:]))).astype(np.float32)
    b = rng.standard_normal(case["w"][0]).astype(np.float32)
    with kernel_path(path):
        cpu, gpu = _on_both(lambda x, w, b: F.conv2d(x, w, b, **case["kw"]), x, w, b)
    for name, ours, reference in zip(("output", "dx", "dw", "db"), gpu, cpu):
        # Winograd's error scales with the terms its transforms sum (see the cudasim test)
        atol = max(1e-4, {"winograd2": 4e-6, "winograd4": 3e-5}.get(path, 0) * np.abs(reference).max())
        assert_close(ours, reference, atol=atol, rtol=1e-4, name=name)


@pytest.mark.parametrize("path", KERNEL_PATHS)
@pytest.mark.parametrize("case", [
    dict(x=(8, 64, 8, 8), w=(64, 32, 4, 4), kw=dict(stride=2, padding=1)),  # a DCGAN layer: the taps kernels
    dict(x=(4, 100, 1, 1), w=(100, 64, 4, 4), kw=dict()),  # a DCGAN generator's first layer
    dict(x=(2, 6, 5, 7), w=(6, 2, 3, 2), kw=dict(stride=(3, 2), padding=(1, 0), output_padding=(2, 1), groups=3)),
    dict(x=(2, 16, 9, 9), w=(16, 16, 3, 3), kw=dict(padding=1)),  # stride 1: backward-data's pixels kernel
    dict(x=(2, 32, 12, 12), w=(32, 32, 3, 3), kw=dict(padding=1)),  # the input gradient by Winograd on its paths
    dict(x=(2, 4, 6, 6), w=(4, 4, 3, 3), kw=dict(dilation=3, output_padding=2)),  # rows no input reaches
    dict(x=(1, 32, 7, 7), w=(32, 1, 3, 3), kw=dict(stride=2, padding=1, output_padding=1, groups=32)),
])
def test_conv_transpose2d_matches_cpu(monkeypatch, case, path):
    """conv_transpose2d runs conv2d's kernels (backward-data forward, the forward for the input gradient,
    backward-filter for the weight's): each on every kernel path against the cpu."""
    if path not in kernel_paths(gpucnn.device("cuda")):
        pytest.skip(f"conv2d kernel path {path} is not built for this GPU")
    monkeypatch.setattr(Conv2d, "WINOGRAD_CPU_MIN_CHANNELS", {})  # the reference: the cpu's im2col, exact sums
    rng = np.random.default_rng(0)
    x = rng.standard_normal(case["x"]).astype(np.float32)
    w = (rng.standard_normal(case["w"]) / np.sqrt(np.prod(case["w"][1:]))).astype(np.float32)
    b = rng.standard_normal(case["w"][1] * case["kw"].get("groups", 1)).astype(np.float32)
    with kernel_path(path):
        cpu, gpu = _on_both(lambda x, w, b: F.conv_transpose2d(x, w, b, **case["kw"]), x, w, b)
    for name, ours, reference in zip(("output", "dx", "dw", "db"), gpu, cpu):
        atol = max(1e-4, {"winograd2": 4e-6, "winograd4": 3e-5}.get(path, 0) * np.abs(reference).max())
        assert_close(ours, reference, atol=atol, rtol=1e-4, name=name)


@pytest.mark.parametrize("op", [
    lambda x: F.max_pool2d(x, 3, 2, padding=1, ceil_mode=True),
    lambda x: F.max_pool2d(x, 2, dilation=2),
    lambda x: F.avg_pool2d(x, 3, 2, padding=1, ceil_mode=True, count_include_pad=False),
    lambda x: F.avg_pool2d(x, 2),
    lambda x: F.relu(x),
    lambda x: F.leaky_relu(x, 0.2),
])
def test_pool_and_activation_match_cpu(op):
    x = np.random.default_rng(0).standard_normal((3, 5, 23, 17)).astype(np.float32)
    x[0, 0, 0, :3] = [np.nan, np.inf, -np.inf]
    cpu, gpu = _on_both(op, x)
    for ours, reference in zip(gpu, cpu):
        assert_close(ours, reference)


@pytest.mark.parametrize("reduction, smoothing, shape", [
    ("mean", 0.0, (300, 10)), ("sum", 0.1, (7, 1000)), ("none", 0.2, (4, 5, 33, 17))])
@pytest.mark.parametrize("weighted", [False, True], ids=["", "weighted"])
def test_cross_entropy_kernels_match_cpu(reduction, smoothing, shape, weighted):
    """weighted: class weights, and a tenth of the targets ignored."""
    rng = np.random.default_rng(2)
    logits = (rng.standard_normal(shape) * 5).astype(np.float32)
    logits[(0, slice(0, 2)) + (0,) * (len(shape) - 2)] = [np.inf, np.nan]  # sample 0: a NaN loss
    target = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    options = dict(reduction=reduction, label_smoothing=smoothing)
    if weighted:
        target[rng.random(target.shape) < 0.1] = 255
        options.update(weight=rng.uniform(0.0, 2.0, shape[1]).astype(np.float32), ignore_index=255)
    results = []
    for device in ("cpu", "cuda"):
        x = gpucnn.tensor(logits, device=device, requires_grad=True)
        loss = F.cross_entropy(x, gpucnn.tensor(target, device=device), **options)
        loss.backward(np.random.default_rng(1).standard_normal(loss.shape).astype(np.float32))
        results.append((loss.numpy(), x.grad.numpy()))
    for ours, reference in zip(*reversed(results)):
        assert_close(ours, reference, atol=1e-5, rtol=1e-5)


def test_cross_entropy_class_probabilities_match_cpu():
    """Float targets (CuPy's array operations on cuda): the loss and both gradients, as on the cpu."""
    rng = np.random.default_rng(3)
    logits, target = rng.standard_normal((6, 5, 7)).astype(np.float32), rng.random((6, 5, 7)).astype(np.float32)
    results = []
    for device in ("cpu", "cuda"):
        x, t = (gpucnn.tensor(a, device=device, requires_grad=True) for a in (logits, target))
        F.cross_entropy(x, t, gpucnn.tensor(np.arange(1, 6, dtype=np.float32), device=device),
                        label_smoothing=0.1).backward()
        results.append((x.grad.numpy(), t.grad.numpy()))
    for ours, reference in zip(*reversed(results)):
        assert_close(ours, reference, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", [(64, 16, 32, 32), (5, 3), (300, 2, 1, 1), (2, 3, 17, 19)])
def test_batch_norm_matches_cpu(shape, training):
    """Output, input, weight and bias gradients, and the running statistics after the update."""
    rng = np.random.default_rng(2)
    channels = shape[1]
    arrays = [(rng.standard_normal(shape) * 3 + 1).astype(np.float32)]
    arrays += [rng.standard_normal(channels).astype(np.float32) for _ in range(2)]
    running = []

    def fn(x, weight, bias):
        stats = [gpucnn.tensor(np.full(channels, value, np.float32), device=x.device) for value in (0.5, 2.0)]
        running.append(stats)
        return F.batch_norm(x, *stats, weight, bias, training=training, momentum=0.2)

    cpu, gpu = _on_both(fn, *arrays)
    for name, ours, reference in zip(("output", "dx"), gpu, cpu):
        assert_close(ours, reference, atol=1e-5, rtol=1e-4, name=name)
    # The parameter gradients are sums over N * spatial values that mostly cancel, rounded in float32 in
    # another order on each side: on 64x16x32x32 each is 4e-5 to 6e-4 off the float64 sum. So they
    # agree within 1e-7 of the sum of their terms' magnitudes (and 1e-5 of their own: two roundings).
    x, upstream = arrays[0].astype(np.float64), np.random.default_rng(1).standard_normal(shape)
    axes = (0,) + tuple(range(2, len(shape)))
    mean, var = (x.mean(axis=axes), x.var(axis=axes)) if training else (0.5, 2.0)
    x_hat = np.moveaxis(x, 1, -1) - mean  # channels last: the statistics broadcast
    x_hat /= np.sqrt(var + 1e-5)
    dy = np.abs(np.moveaxis(upstream, 1, -1)).reshape(-1, channels)
    for name, ours, reference, terms in (("dweight", gpu[2], cpu[2], dy * np.abs(x_hat).reshape(-1, channels)),
                                         ("dbias", gpu[3], cpu[3], dy)):
        bound = 1e-7 * terms.sum(axis=0) + 1e-5 * np.abs(reference)
        assert np.all(np.abs(ours - reference) <= bound), f"{name}: {ours} vs {reference}"
    for name, ours, reference in zip(("running_mean", "running_var"), running[1], running[0]):
        assert_close(ours.numpy(), reference.numpy(), atol=1e-6, rtol=1e-5, name=name)


def test_relu_past_2_31_elements():
    import cupy

    x = gpucnn.tensor(cupy.random.default_rng(0).standard_normal(BIG, dtype=cupy.float32), device="cuda",
                      requires_grad=True)
    y = F.relu(x)
    assert bool((y.data == cupy.maximum(x.data, 0)).all())
    y.backward(cupy.ones(BIG, dtype=cupy.float32))
    assert bool((x.grad.data == (x.data > 0)).all())
    assert float(y.data[-4096:].sum()) == float(cupy.maximum(x.data[-4096:], 0).sum())


def test_max_pool_past_2_31_elements():
    import cupy

    shape = (2, 1, 32768, 32770)  # 2,147,614,720 elements
    assert np.prod(shape) > 2**31
    x = gpucnn.tensor(cupy.random.default_rng(0).standard_normal(shape, dtype=cupy.float32), device="cuda",
                      requires_grad=True)
    y = F.max_pool2d(x, 2)
    windows = x.data.reshape(2, 1, 16384, 2, 16385, 2)
    assert bool((y.data == windows.max(axis=(3, 5))).all())
    y.backward(cupy.ones(y.shape, dtype=cupy.float32))
    grad_windows = x.grad.data.reshape(2, 1, 16384, 2, 16385, 2)
    assert bool((grad_windows.sum(axis=(3, 5)) == 1).all())  # one winner per window, none lost past 2^31
    assert bool(((grad_windows * windows).sum(axis=(3, 5)) == y.data).all())


def test_training_on_gpu_matches_cpu():
    """A few optimizer steps of a small CNN give the same losses on cpu and cuda."""
    from gpucnn.data import make_shapes

    images, labels = make_shapes(64, 12, seed=0)
    losses = {}
    for device in ("cpu", "cuda"):
        gpucnn.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                              nn.Flatten(), nn.Linear(8 * 3 * 3, 4)).to(device)
        optimizer = gpucnn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        losses[device] = []
        for step in range(5):
            batch = slice(16 * (step % 4), 16 * (step % 4) + 16)
            loss = F.cross_entropy(model(gpucnn.tensor(images[batch], device=device)),
                                   gpucnn.tensor(labels[batch], device=device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses[device].append(loss.item())
        assert int(model[1].num_batches_tracked.item()) == 5  # counted by batchnorm_forward on cuda
    assert_close(np.array(losses["cuda"]), np.array(losses["cpu"]), atol=1e-4, rtol=1e-4, name="losses")


@pytest.mark.parametrize("name, options", [("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)),
                                           ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.01)),
                                           ("Adadelta", dict(lr=1.0, weight_decay=0.01)),
                                           ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True,
                                                            weight_decay=0.01)),
                                           ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01,
                                                            initial_accumulator_value=0.1)),
                                           ("Adamax", dict(lr=0.01, weight_decay=0.01)),
                                           ("NAdam", dict(lr=0.01, weight_decay=0.01, momentum_decay=0.1)),
                                           ("RAdam", dict(lr=0.01, weight_decay=0.01, decoupled_weight_decay=True))])
def test_optimizer_launches_match_cpu(name, options):
    """Two groups of parameters of 0, 1 and about a block's elements, some without a gradient at some
    steps, each group one launch of cuda/optim.cu a step: the same parameters as on the cpu. Nine steps:
    RAdam rectifies from its sixth."""
    shapes = [(1023,), (1025,), (0,), (1,), (3, 700)]
    results = []
    for device in ("cpu", "cuda"):
        rng = np.random.default_rng(4)
        params = [gpucnn.tensor(rng.standard_normal(shape).astype(np.float32), device=device, requires_grad=True)
                  for shape in shapes]
        optimizer = getattr(gpucnn.optim, name)([{"params": params[:3]}, {"params": params[3:], "lr": 0.05}],
                                                **options)
        for step in range(9):
            for index, param in enumerate(params):
                grad = rng.standard_normal(param.shape).astype(np.float32)
                param.grad = gpucnn.tensor(grad, device=device) if (step + index) % 3 else None
            optimizer.step()
        results.append([param.numpy() for param in params])
    for ours, reference in zip(results[1], results[0]):
        assert_close(ours, reference, atol=1e-6, rtol=1e-5)


def test_kernels_are_looked_up_once():
    """CuPy's RawModule.get_function builds a new RawKernel on every call: the device keeps each one."""
    device = gpucnn.device("cuda")
    assert device.kernel("relu", "relu_forward") is device.kernel("relu", "relu_forward")
    assert device.kernel("relu", "relu_forward") is not device.kernel("relu", "relu_backward")


def test_default_device_is_the_gpu(default_device_unset):
    assert gpucnn.default_device().type == "cuda"
    assert gpucnn.tensor([1.0]).device.type == "cuda"


def test_batch_norm_refuses_numpy_running_statistics_for_a_gpu_input():
    """Copied to the GPU, a NumPy running mean would never see the training update."""
    x = gpucnn.tensor(np.ones((4, 2), np.float32), device="cuda")
    with pytest.raises(TypeError, match="running_mean in place.*given ndarray"):
        F.batch_norm(x, np.zeros(2, np.float32), np.ones(2, np.float32), training=True)
    mean = gpucnn.tensor(np.zeros(2, np.float32), device="cuda")
    F.batch_norm(x, mean, gpucnn.tensor(np.ones(2, np.float32), device="cuda"), training=True, momentum=1.0)
    assert mean.tolist() == [1.0, 1.0]


def _conv_outputs(x, w, device="cuda"):
    """y, dx and dweight of a 3x3 conv2d of x and w on ``device`` (its products split their reductions)."""
    x_t = gpucnn.tensor(x, device=device, requires_grad=True)
    w_t = gpucnn.tensor(w, device=device, requires_grad=True)
    y = F.conv2d(x_t, w_t, padding=1)
    y.backward(np.ones(y.shape, np.float32))
    return [y.numpy(), x_t.grad.numpy(), w_t.grad.numpy()]


def test_packed_launches_match_cupys_launches(monkeypatch):
    """conv2d's launches from packed arguments (Device.launcher: cuLaunchKernel with a pointer to each
    value) give what CuPy's RawKernel calls give, bit for bit (the kernels sum in a fixed order): on
    the default stream, on a stream of the test's own, and from four threads at once."""
    import threading

    import cupy

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 64, 14, 14)).astype(np.float32)
    w = (rng.standard_normal((64, 64, 3, 3)) / 24).astype(np.float32)
    packed = _conv_outputs(x, w)
    with cupy.cuda.Stream():
        on_a_stream = _conv_outputs(x, w)
    from_threads = [None] * 4

    def work(index):
        from_threads[index] = _conv_outputs(x, w)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    def cupys_launch(self, name, grid, args, fixed=()):
        self.device.kernel("conv2d", name)(grid, (256,), args + fixed)

    monkeypatch.setattr(Conv2d, "_launch", cupys_launch)
    reference = _conv_outputs(x, w)
    for outputs in [packed, on_a_stream] + from_threads:
        for ours, theirs in zip(outputs, reference):
            np.testing.assert_array_equal(ours, theirs)


def test_a_training_steps_packed_launches_match_cupys_launches(monkeypatch):
    """Every kernel of a training step (conv2d, batch norm, ReLU, both poolings, cross-entropy, SGD)
    gives the same bits launched from packed arguments as through CuPy's RawKernel calls."""
    packed, direct = packed_and_direct_step_outputs("cuda", monkeypatch)
    for ours, theirs in zip(packed, direct):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("x_shape, w_shape, kwargs", [
    ((4, 3, 32, 32), (64, 3, 3, 3), dict(padding=1)),  # an RGB stem
    ((2, 8, 17, 15), (40, 2, 3, 3), dict(stride=(2, 1), dilation=(1, 2), padding=2, groups=4)),
])
def test_pixels_forward_matches_the_tiles_bit_for_bit(monkeypatch, x_shape, w_shape, kwargs):
    """conv2d_forward_pixels adds the same terms in the same order as the GEMM tiles (kernel path
    pixels_off): the same bits on the GPU too."""
    launched, launch = [], Conv2d._launch

    def recording(self, name, grid, args, fixed=()):
        launched.append(name)
        launch(self, name, grid, args, fixed)

    monkeypatch.setattr(Conv2d, "_launch", recording)
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(x_shape).astype(np.float32), rng.standard_normal(w_shape).astype(np.float32),
              rng.standard_normal(w_shape[0]).astype(np.float32)]
    outputs = []
    for path in ("chosen", "pixels_off"):
        with kernel_path(path):
            outputs.append(F.conv2d(*(gpucnn.tensor(a, device="cuda") for a in arrays), **kwargs).numpy())
    assert launched[0] == "conv2d_forward_pixels" and launched[1] != "conv2d_forward_pixels", launched
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_backward_filter_splits_that_fill_the_gpus_waves_match_cpu(monkeypatch):
    """ResNet-18's 128-channel 16x16 layer at batch 32: backward-filter on the 128 tile, its splits chosen
    for this GPU's multiprocessor count (Conv2d.FILL_WAVES), against the cpu and the splits without."""
    monkeypatch.setattr(Conv2d, "WINOGRAD_CPU_MIN_CHANNELS", {})  # the reference: the cpu's im2col
    monkeypatch.setattr(Conv2d, "WINOGRAD_GPU_TILE", 0)  # not Winograd, which this size takes (WINOGRAD_GPU_MIN_MACS)
    launched, launch = [], Conv2d._launch

    def recording(self, name, grid, args, fixed=()):
        launched.append(name)
        launch(self, name, grid, args, fixed)

    monkeypatch.setattr(Conv2d, "_launch", recording)
    device = gpucnn.device("cuda")
    assert isinstance(device.multiprocessors, int) and device.multiprocessors > 0
    conv = Conv2d((1, 1), (1, 1, 1, 1), (1, 1), 1)
    conv.device = device
    shapes = (32, 128, 16, 16), (128, 128, 3, 3)
    plans = {}
    for path in ("chosen", "waves_off"):
        with kernel_path(path):
            plans[path] = conv._plan("filter", *shapes)
    unfilled = plans["waves_off"]
    assert unfilled.name == plans["chosen"].name == "conv2d_backward_filter_128"
    wave = device.multiprocessors * conv._wide_filter_blocks()  # one block a multiprocessor before sm_75
    assert (plans["chosen"].grid[2], int(plans["chosen"].arguments[-1])) == _fill_waves(
        9, 32 * 16 * 16, unfilled.grid[2], int(unfilled.arguments[-1]), wave)
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shapes[0]).astype(np.float32)
    w = (rng.standard_normal(shapes[1]) / np.sqrt(128 * 9)).astype(np.float32)
    upstream = rng.standard_normal((32, 128, 16, 16)).astype(np.float32)
    grads = []
    for device_name in ("cpu", "cuda"):
        weight = gpucnn.tensor(w, device=device_name, requires_grad=True)
        F.conv2d(gpucnn.tensor(x, device=device_name), weight, padding=1).backward(
            gpucnn.tensor(upstream, device=device_name))
        grads.append(weight.grad.numpy())
    assert "conv2d_backward_filter_128" in launched, launched
    assert_close(grads[1], grads[0], atol=1e-3, rtol=1e-4, name="dw")
