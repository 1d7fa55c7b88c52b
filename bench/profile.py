"""Where the time goes, for the GPU runs: a training step's host side, and conv layers for ncu.

    python -m bench.profile step --device cuda --model resnet --batch 128
    ncu --section SpeedOfLight --section Occupancy -k regex:conv2d_ python -m bench.profile conv --device cuda

``step`` trains ``--model`` (one of ``bench.train``'s) for a few warm-up steps, then times steps two
ways: to the end of the step's Python code (the launches issued) and to the device's end. Where the
two agree, the device waits on the host, and the cProfile table that follows (by own time) says where
the host's time goes. ``conv`` runs one forward and backward of a few conv layers, so a profiler such
as ncu sees each of conv2d's kernels once per layer: VGG-16's 256-channel 56x56 layer at batch 32
(Winograd's products), CIFAR ResNet-18's 128-channel 16x16 layer at batch 32 (the direct "taps"
kernels) and ConvNetJS's 5x5 conv2 (the direct kernels); on a device other than cuda, small stand-ins.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time

import numpy

# (N, C, H, K, R, padding): square inputs and kernels, stride 1
CONV_LAYERS = {
    "vgg16 256ch 56px": (32, 256, 56, 256, 3, 1),
    "resnet18 128ch 16px": (32, 128, 16, 128, 3, 1),
    "convnetjs conv2": (32, 16, 16, 20, 5, 2),
}
SMALL_CONV_LAYERS = {"small 3x3": (2, 16, 6, 16, 3, 1), "small 5x5": (2, 3, 7, 4, 5, 2)}


def profile_step(model_name: str, device: str, batch: int, steps: int, top: int, log=print) -> dict:
    """Times ``steps`` training steps (issued, and finished) and profiles as many more; returns the medians."""
    import gpucnn

    from .train import batch_data, build_pair, training_step

    target = gpucnn.device(device)
    model = build_pair(model_name)[0].to(target)
    x, y = (gpucnn.tensor(array, device=target) for array in batch_data(model_name, batch))
    step = training_step(gpucnn, model, x, y)
    for _ in range(3):
        step()
    issued, finished = [], []
    for _ in range(steps):
        target.synchronize()
        start = time.perf_counter()
        step()
        issued.append(time.perf_counter() - start)
        target.synchronize()
        finished.append(time.perf_counter() - start)
    result = dict(step_ms=statistics.median(finished) * 1e3, issued_ms=statistics.median(issued) * 1e3)
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
    return result


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
    conv = commands.add_parser("conv", help="conv layers once each, for a profiler such as ncu")
    conv.add_argument("--device", default="cuda")
    conv.add_argument("--path", default="chosen", help="a kernel path of gpucnn.ops.conv2d.KERNEL_PATHS")
    args = parser.parse_args(argv)
    if args.command == "step":
        if args.batch < 1 or args.steps < 1 or args.top < 0:
            parser.error(f"--batch and --steps must be positive and --top non-negative, got {args.batch}, "
                         f"{args.steps}, {args.top}")
        profile_step(args.model, args.device, args.batch, args.steps, args.top)
    else:
        profile_conv(args.device, args.path)


if __name__ == "__main__":
    main()
