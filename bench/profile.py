"""Where the time goes, for the GPU runs: a training step's host side, single op calls, and conv layers for ncu.

    python -m bench.profile step --device cuda --model resnet --batch 128
    python -m bench.profile host --model resnet          # no GPU needed
    python -m bench.profile calls --device cuda          # single op calls, per call and profiled
    python -m bench.profile launches --device cuda       # a kernel launch's host time, CuPy's way and packed
    ncu --section SpeedOfLight --section Occupancy -k regex:conv2d_ python -m bench.profile conv --device cuda

``step`` trains ``--model`` (one of ``bench.train``'s) for a few warm-up steps, then times steps two
ways: to the end of the step's Python code (the launches issued) and to the device's end. Where the
two agree, the device waits on the host, and the cProfile table that follows (by own time) says where
the host's time goes. On a CUDA device one last step runs alone between cudaProfilerStart and
cudaProfilerStop, so that a profiler started with its collection off (``ncu --profile-from-start off``)
sees exactly one step's kernels. ``host`` measures that host work without a GPU: the step on ``cudasim`` with
every kernel launch skipped, which leaves the Python and NumPy work a GPU step issues (on a GPU the
array calls are CuPy's, several times as long each, so it also counts them, by call site, and the
launches). ``calls`` times single op calls of the Jetson suite's size as ``bench ops`` does, and
again issued back to back, and profiles each (on a GPU, CuPy's own calls show among gpucnn's).
``launches`` times a kernel launch's host work, CuPy's way and from packed arguments
(``Device.launcher``). ``conv`` runs one forward and backward of a few conv layers, so a profiler such
as ncu sees each of conv2d's kernels once per layer: VGG-16's 256-channel 56x56 layer at batch 32
(Winograd's products), CIFAR ResNet-18's 128-channel 16x16 layer at batch 32 (the direct "taps"
kernels) and ConvNetJS's 5x5 conv2 (the direct kernels); on a device other than cuda, small stand-ins.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path

import numpy

# (N, C, H, K, R, padding): square inputs and kernels, stride 1
CONV_LAYERS = {
    "vgg16 256ch 56px": (32, 256, 56, 256, 3, 1),
    "resnet18 128ch 16px": (32, 128, 16, 128, 3, 1),
    "convnetjs conv2": (32, 16, 16, 20, 5, 2),
}
SMALL_CONV_LAYERS = {"small 3x3": (2, 16, 6, 16, 3, 1), "small 5x5": (2, 3, 7, 4, 5, 2)}


def _training(model_name: str, device: str, batch: int) -> tuple:
    """(the gpucnn device, bench.train's training step of ``model_name`` on it, on a batch of ``batch``)."""
    import gpucnn

    from .train import batch_data, build_pair, training_step

    target = gpucnn.device(device)
    model = build_pair(model_name)[0].to(target)
    x, y = (gpucnn.tensor(array, device=target) for array in batch_data(model_name, batch))
    return target, training_step(gpucnn, model, x, y)


def _median_ms(target, make, count: int) -> tuple[float, float]:
    """The medians, in ms, over ``count`` calls of what ``make()`` returns (made untimed), the device
    synchronised before each: until the call returned, and until the device had finished its work."""
    issued, finished = [], []
    for _ in range(count):
        call = make()
        target.synchronize()
        start = time.perf_counter()
        call()
        issued.append(time.perf_counter() - start)
        target.synchronize()
        finished.append(time.perf_counter() - start)
    return statistics.median(issued) * 1e3, statistics.median(finished) * 1e3


def _back_to_back_ms(target, make, count: int, blocks: int = 5) -> float:
    """The host's time a call, in ms, issuing ``count`` calls of what ``make()`` returns (made beforehand)
    one after the other, the device synchronised before each block only; the median of ``blocks``
    blocks. A training step issues its calls so: the host's code and data stay in its caches."""
    times = []
    for _ in range(blocks):
        prepared = [make() for _ in range(count)]
        target.synchronize()
        start = time.perf_counter()
        for call in prepared:
            call()
        times.append((time.perf_counter() - start) / count)
        target.synchronize()
    return statistics.median(times) * 1e3


def profile_step(model_name: str, device: str, batch: int, steps: int, top: int, log=print) -> dict:
    """Times ``steps`` training steps (issued, and finished) and profiles as many more; returns the medians."""
    target, step = _training(model_name, device, batch)
    for _ in range(3):
        step()
    issued_ms, step_ms = _median_ms(target, lambda: step, steps)
    result = dict(step_ms=step_ms, issued_ms=issued_ms)
    log(f"{model_name} on {target}, batch {batch}: a step takes {result['step_ms']:.2f} ms, "
        f"{result['issued_ms']:.2f} ms of it to issue (median of {steps})")
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(steps):
        step()
    target.synchronize()
    profile.disable()
    if top:
        pstats.Stats(profile).sort_stats("tottime").print_stats(top)
    if target.type == "cuda":  # one more step, alone in the profiler's range: what ncu --profile-from-start off sees
        import cupy

        cupy.cuda.runtime.profilerStart()
        step()
        target.synchronize()
        cupy.cuda.runtime.profilerStop()
    return result


def profile_host(model_name: str, batch: int, steps: int, top: int, log=print) -> dict:
    """A training step of ``model_name`` on cudasim with its kernel launches skipped (their outputs
    stay as allocated: the numbers computed mean nothing): the median time of the rest, the host's
    work, over ``steps`` steps; then one more step's kernel launches and the NumPy function and method
    calls made from gpucnn's code (ufuncs and operators are not seen), the ``top`` call sites listed."""
    import gpucnn

    target, step = _training(model_name, "cudasim", batch)
    step()  # builds the kernels it runs
    launches = collections.Counter()

    def skipped(file: str, name: str, fixed: tuple = ()):  # kernel(file, name), and launcher(file, name, fixed)
        def launch(grid, block, args, *rest, **options):
            launches[name] += 1
        return launch

    package = str(Path(gpucnn.__file__).parent)
    simulator = str(Path(package) / "devices")
    calls = collections.Counter()

    def count(frame, event, function):
        where = frame.f_code.co_filename
        if event == "c_call" and where.startswith(package) and not where.startswith(simulator):
            owner = getattr(function, "__self__", None)
            module = getattr(function, "__module__", None) or type(owner).__module__
            if module.split(".")[0] == "numpy":
                name = function.__name__ if owner is None or isinstance(owner, type(numpy)) else (
                    f"{type(owner).__name__}.{function.__name__}")
                calls[f"{where[len(package) + 1:]}:{frame.f_lineno} {name}"] += 1

    target.kernel = target.launcher = skipped  # the instance's attributes hide the methods until deleted below
    try:
        with numpy.errstate(all="ignore"):
            for _ in range(3):
                step()
            times = []
            for _ in range(steps):
                start = time.perf_counter()
                step()
                times.append(time.perf_counter() - start)
            launches.clear()
            sys.setprofile(count)
            try:
                step()
            finally:
                sys.setprofile(None)
    finally:
        del target.kernel, target.launcher
    result = dict(host_ms=statistics.median(times) * 1e3, launches=sum(launches.values()),
                  numpy_calls=sum(calls.values()))
    log(f"{model_name} on cudasim without its kernels, batch {batch}: {result['host_ms']:.3f} ms of host work a "
        f"step (median of {steps}); {result['launches']} kernel launches and {result['numpy_calls']} NumPy calls "
        f"a step")
    for site, number in calls.most_common(top):
        log(f"  {number:4d}  {site}")
    return result


# The input of profile_calls' ops: the Jetson suite's 64-channel 56x56 layer on cuda, a small stand-in elsewhere
CALL_SHAPES = {"cuda": (1, 64, 56, 56), "other": (1, 16, 8, 8)}


def profile_calls(device: str, calls: int, top: int, log=print) -> dict:
    """Single op calls, as ``bench ops`` times them per call (the device synchronised before and
    after): a 3x3 conv2d's forward, backward-data and backward-filter, then ReLU's, max pooling's and
    average pooling's forward, on a CALL_SHAPES input. For each, the median time of ``calls`` calls,
    to return and to finish; the host's time a call where the same calls are issued back to back, as
    a loop of them issues them (``_back_to_back_ms``: a call right after a synchronisation finds the
    host's caches colder); then a cProfile of as many more (``top`` rows by own time): where a small
    op's host time goes, CuPy's calls among it."""
    import gpucnn
    from gpucnn.nn import functional as F

    target = gpucnn.device(device)
    shape = CALL_SHAPES["cuda" if target.type == "cuda" else "other"]
    rng = numpy.random.default_rng(0)

    def tensor(shape, requires_grad=False):
        return gpucnn.tensor(rng.standard_normal(shape, dtype=numpy.float32), device=target,
                             requires_grad=requires_grad)

    x, x_grad = tensor(shape), tensor(shape, True)
    w, w_grad = tensor((shape[1],) * 2 + (3, 3)), tensor((shape[1],) * 2 + (3, 3), True)
    upstream = target.asarray(rng.standard_normal(shape, dtype=numpy.float32))

    def backward_of(x, w):  # a call of conv2d's backward, its forward run now
        function = F.conv2d(x, w, padding=1)._creator
        return lambda: function.backward(upstream)

    ops = {"conv2d forward": lambda: lambda: F.conv2d(x, w, padding=1),
           "conv2d backward-data": lambda: backward_of(x_grad, w),
           "conv2d backward-filter": lambda: backward_of(x, w_grad),
           "relu forward": lambda: lambda: F.relu(x),
           "max_pool2d forward": lambda: lambda: F.max_pool2d(x, 3, 2, 1),
           "avg_pool2d forward": lambda: lambda: F.avg_pool2d(x, 2)}
    results = {}
    for name, make in ops.items():  # make() prepares one call, untimed
        for _ in range(3):
            make()()
        issued_ms, call_ms = _median_ms(target, make, calls)
        # at most 50 back to back, so that the queued kernels stay far from filling the GPU's launch queue
        back_to_back_ms = _back_to_back_ms(target, make, min(calls, 50))
        results[name] = dict(call_ms=call_ms, issued_ms=issued_ms, back_to_back_ms=back_to_back_ms)
        log(f"{name}, input {shape} on {target}: {results[name]['call_ms']:.3f} ms a call, "
            f"{results[name]['issued_ms']:.3f} ms of it to return (median of {calls}); "
            f"{results[name]['back_to_back_ms']:.3f} ms a call to issue back to back")
        if top:
            prepared = [make() for _ in range(calls)]
            profile = cProfile.Profile()
            profile.enable()
            for call in prepared:
                call()
            target.synchronize()
            profile.disable()
            pstats.Stats(profile).sort_stats("tottime").print_stats(top)
    return results


def profile_launches(device: str, blocks: int, count: int, log=print) -> dict:
    """The host's time per kernel launch, two ways, and per allocation. The launches are conv2d's
    forward product on the tiles (kernel path "pixels_off") on a 1x1x3x3 input of one channel (little
    work for the device) with its 22 arguments, and ReLU's forward over 4 values with its 3: CuPy's
    way, ``kernel(grid, block, args)``, which converts every argument on each call, and from packed
    arguments, ``Device.launcher``, which packs conv2d's 17 sizes once and ReLU's 3 arguments on each
    launch, as the ops do; the allocation is ``xp.empty`` of the Jetson suite's 1x64x56x56. For each,
    the median over ``blocks`` blocks of ``count`` calls, each block issued after a synchronisation and
    timed until the last call returned."""
    import gpucnn
    from gpucnn.nn import functional as F
    from gpucnn.ops import _kernels
    from gpucnn.ops.conv2d import kernel_path

    target = gpucnn.device(device)
    x = gpucnn.tensor(numpy.ones((1, 1, 3, 3), numpy.float32), device=target)
    w = gpucnn.tensor(numpy.ones((1, 1, 3, 3), numpy.float32), device=target, requires_grad=True)
    with kernel_path("pixels_off"):
        conv = F.conv2d(x, w)._creator
        product = conv._plan("forward", x.shape, w.shape)[3]
    out = target.xp.empty((product.splits, 1, 1, 1, 1), dtype=numpy.float32)
    leading = (conv.x, conv.weight, _kernels.placeholder(target), out, numpy.int32(0))
    block, fixed = (_kernels.THREADS,), product.arguments
    kernel, launcher = target.kernel("conv2d", product.name), target.launcher("conv2d", product.name, fixed)
    values = target.xp.zeros(4, dtype=numpy.float32)
    relu_fixed = _kernels.sized("relu_forward", 4, ())  # as ReLU launches: the count packed once
    relu_args = (values, values) + relu_fixed
    relu_kernel, relu_launcher = target.kernel("relu", "relu_forward"), target.launcher("relu", "relu_forward",
                                                                                        relu_fixed)
    ways = {f"{product.name}: kernel(grid, block, args)": lambda: kernel(product.grid, block, leading + fixed),
            f"{product.name}: launcher(grid, block, leading)": lambda: launcher(product.grid, block, leading),
            "relu_forward: kernel(grid, block, args)": lambda: relu_kernel((1,), block, relu_args),
            "relu_forward: launcher(grid, block, leading)": lambda: relu_launcher((1,), block, relu_args[:2]),
            "xp.empty((1, 64, 56, 56), float32)": lambda: target.xp.empty((1, 64, 56, 56), dtype=numpy.float32)}
    results = {}
    with target.context():
        for name, call in ways.items():
            times = []
            for _ in range(blocks):
                target.synchronize()
                start = time.perf_counter()
                for _ in range(count):
                    call()
                times.append((time.perf_counter() - start) / count * 1e6)
            target.synchronize()
            results[name] = statistics.median(times)
            log(f"{name} on {target}: {results[name]:.2f} us a call (median of {blocks} blocks of {count})")
    return results


def profile_conv(device: str, path: str, log=print) -> None:
    """One forward and backward of each layer of CONV_LAYERS (SMALL_CONV_LAYERS off cuda) on kernel path ``path``."""
    import gpucnn
    from gpucnn.nn import functional as F
    from gpucnn.ops.conv2d import kernel_path

    target = gpucnn.device(device)
    rng = numpy.random.default_rng(0)
    for name, (N, C, H, K, R, padding) in (CONV_LAYERS if target.type == "cuda" else SMALL_CONV_LAYERS).items():
        x = gpucnn.tensor(rng.standard_normal((N, C, H, H), dtype=numpy.float32), device=target, requires_grad=True)
        w = gpucnn.tensor(rng.standard_normal((K, C, R, R), dtype=numpy.float32) / (C * R * R) ** 0.5, device=target,
                          requires_grad=True)
        with kernel_path(path):
            y = F.conv2d(x, w, padding=padding)
            y.backward(numpy.ones(y.shape, numpy.float32))
        target.synchronize()
        log(f"{name}: {N}x{C}x{H}x{H} -> {K}, {R}x{R}, path {path}, winograd {y._creator.winograd is not None}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    step = commands.add_parser("step", help="a training step: issue time, device time, host profile")
    step.add_argument("--model", default="resnet", choices=("lenet", "convnetjs", "resnet"))
    step.add_argument("--device", default="cuda")
    step.add_argument("--batch", type=int, default=128)
    step.add_argument("--steps", type=int, default=20)
    step.add_argument("--top", type=int, default=30, help="rows of the cProfile table (0: none)")
    host = commands.add_parser("host", help="a training step's host work, on cudasim without its kernels")
    host.add_argument("--model", default="resnet", choices=("lenet", "convnetjs", "resnet"))
    host.add_argument("--batch", type=int, default=2)
    host.add_argument("--steps", type=int, default=200)
    host.add_argument("--top", type=int, default=20, help="call sites listed (0: none)")
    calls = commands.add_parser("calls", help="single op calls: time per call, and where the host's time goes")
    calls.add_argument("--device", default="cuda")
    calls.add_argument("--calls", type=int, default=200)
    calls.add_argument("--top", type=int, default=15, help="rows of each cProfile table (0: none)")
    launches = commands.add_parser("launches", help="the host's time per kernel launch, CuPy's way and packed")
    launches.add_argument("--device", default="cuda")
    launches.add_argument("--blocks", type=int, default=30)
    launches.add_argument("--count", type=int, default=200, help="calls a block")
    conv = commands.add_parser("conv", help="conv layers once each, for a profiler such as ncu")
    conv.add_argument("--device", default="cuda")
    conv.add_argument("--path", default="chosen", help="a kernel path of gpucnn.ops.conv2d.KERNEL_PATHS")
    args = parser.parse_args(argv)
    if args.command in ("step", "host") and (args.batch < 1 or args.steps < 1 or args.top < 0):
        parser.error(f"--batch and --steps must be positive and --top non-negative, got {args.batch}, "
                     f"{args.steps}, {args.top}")
    if args.command == "launches" and (args.blocks < 1 or args.count < 1):
        parser.error(f"--blocks and --count must be positive, got {args.blocks}, {args.count}")
    if args.command == "calls" and (args.calls < 1 or args.top < 0):
        parser.error(f"--calls must be positive and --top non-negative, got {args.calls}, {args.top}")
    if args.command == "step":
        profile_step(args.model, args.device, args.batch, args.steps, args.top)
    elif args.command == "host":
        profile_host(args.model, args.batch, args.steps, args.top)
    elif args.command == "calls":
        profile_calls(args.device, args.calls, args.top)
    elif args.command == "launches":
        profile_launches(args.device, args.blocks, args.count)
    else:
        profile_conv(args.device, args.path)


if __name__ == "__main__":
    main()
