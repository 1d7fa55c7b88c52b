"""Training throughput: gpucnn against the same network in PyTorch, same initial weights, batch, optimizer.

    python -m bench train                           # lenet, convnetjs, resnet on the cpu
    python -m bench train --device cuda --batch 128 --steps 50
    python -m bench train --quick                   # tiny batch, two steps (what the tests run)

Models: ``lenet`` (gpucnn.models' LeNet-5 on 1x28x28, MNIST-shaped), ``convnetjs`` (the ConvNetJS
CIFAR-10 network on 3x32x32), ``resnet`` (a small CIFAR ResNet: 3x3 stem, three stages of one basic
block each with 16/32/64 channels, batch norm, global average pool; 3x32x32). The PyTorch network is
built layer for layer beside gpucnn's and gets gpucnn's initial weights copied in; both train with SGD
(lr 0.01, momentum 0.9) on the same random images and labels, and their first losses are recorded
(they agree to float32 rounding when the networks match). One step: forward, cross-entropy, zero_grad,
backward, optimizer step; images/s is batch / median step time after warm-up steps (on a GPU also
after GPU_WARMUP_SECONDS of steps: an idle GPU runs at low clocks until it has been busy a while, and
two runs of 20 steps after 4 warm-up ones had torch's convnetjs at 68,411 and 106,719 img/s on an H100).

Each (framework, model) runs in its own subprocess, so neither library's threads or caches disturb
the other and peak memory can be measured per framework. Peak memory:

- cpu: the rise of the process's peak resident set (``bench.peak_rss_bytes``: VmHWM on Linux, what
  ru_maxrss reports but for a peak inherited from the parent process) from just before the first
  step, where it is lowered to the current resident set (``bench.reset_peak_rss``), to the end.
  tracemalloc would see NumPy's allocations but not PyTorch's (its CPU allocator does not report
  to it), so it cannot compare the two; the resident-set peak counts both alike (allocator caches
  and all) at page granularity.
- cuda: gpucnn: the growth of CuPy's default memory pool (``total_bytes``, the blocks it holds: a
  high-water mark of the pool, like torch's reserved memory); torch: ``max_memory_allocated`` and
  ``max_memory_reserved`` above their values before the first step.
"""

from __future__ import annotations

import datetime
import json
import statistics
import sys
import time

import numpy

from . import comma_list, foreign_cpu_share, peak_rss_bytes, reset_peak_rss, run_worker, write_results

MODELS = ("lenet", "convnetjs", "resnet")
BATCH = 64  # images per step unless --batch says otherwise
GPU_WARMUP_SECONDS = 1.0  # of warm-up steps on a GPU, at least
SHAPES = {"lenet": (1, 28, 28), "convnetjs": (3, 32, 32), "resnet": (3, 32, 32)}


def small_resnet(nn, num_classes: int = 10):
    """A CIFAR ResNet with one basic block per stage (16, 32, 64 channels), built from ``nn`` (gpucnn.nn
    or torch.nn: the same constructors), for 3x32x32 inputs."""

    class BasicBlock(nn.Module):
        def __init__(self, in_channels, out_channels, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(out_channels)
            self.relu1 = nn.ReLU()
            self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(out_channels)
            self.relu2 = nn.ReLU()
            self.shortcut = None
            if stride != 1 or in_channels != out_channels:
                self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                              nn.BatchNorm2d(out_channels))

        def forward(self, x):
            out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
            return self.relu2(out + (x if self.shortcut is None else self.shortcut(x)))

    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        BasicBlock(16, 16, 1), BasicBlock(16, 32, 2), BasicBlock(32, 64, 2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes),
    )


def _torch_twin(model):
    """The torch.nn.Sequential with the same layers as a gpucnn Sequential of Conv2d, ReLU, MaxPool2d,
    Flatten and Linear (what gpucnn.models builds)."""
    import torch

    layers = []
    for layer in model.children():
        kind = type(layer).__name__
        if kind == "Conv2d":
            layers.append(torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                                          stride=layer.stride, padding=layer.padding, bias=layer.bias is not None))
        elif kind == "MaxPool2d":
            layers.append(torch.nn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding))
        elif kind == "Linear":
            layers.append(torch.nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None))
        elif kind in ("ReLU", "Flatten"):
            layers.append(getattr(torch.nn, kind)())
        else:
            raise TypeError(f"no torch twin for layer {kind}")
    return torch.nn.Sequential(*layers)


def build_pair(name: str, seed: int = 0):
    """(gpucnn model, torch model with gpucnn's initial weights), both in training mode."""
    import torch

    import gpucnn

    gpucnn.manual_seed(seed)
    if name == "resnet":
        ours, theirs = small_resnet(gpucnn.nn), small_resnet(torch.nn)
    else:
        ours = gpucnn.models.build(name, SHAPES[name][0], SHAPES[name][1:], 10)
        theirs = _torch_twin(ours)
    our_parameters, their_parameters = list(ours.named_parameters()), list(theirs.named_parameters())
    if [p.shape for _, p in our_parameters] != [tuple(p.shape) for _, p in their_parameters]:
        raise RuntimeError(f"{name}: the gpucnn and torch networks differ in their parameters")
    with torch.no_grad():
        for (_, mine), (_, twin) in zip(our_parameters, their_parameters):
            twin.copy_(torch.from_numpy(mine.numpy()))
    return ours.train(), theirs.train()


def batch_data(name: str, batch: int) -> tuple:
    """The benchmark's random (images, labels) for model ``name``: float32 and int64 NumPy arrays."""
    rng = numpy.random.default_rng(1)
    return rng.standard_normal((batch,) + SHAPES[name], dtype=numpy.float32), rng.integers(0, 10, batch)


def training_step(library, model, x, y):
    """The benchmarked step of ``model`` on (x, y) in ``library`` (gpucnn or torch: one API) as a function:
    forward, cross-entropy, zero_grad, backward, an SGD step (lr 0.01, momentum 0.9); it returns the loss."""
    optimizer = library.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        loss = library.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    return step


def worker(framework: str, name: str, device: str, batch: int, steps: int, warmup: int) -> dict:
    """Trains ``name`` for warmup + steps steps in this process with one framework; the measurements."""
    import torch

    import gpucnn

    images, labels = batch_data(name, batch)
    ours, theirs = build_pair(name)
    gpu = device.startswith("cuda")
    library = gpucnn if framework == "gpucnn" else torch  # one API: the same step serves both
    if framework == "gpucnn":
        target = gpucnn.device(device)
        model = ours.to(target)
        x, y = gpucnn.tensor(images, device=target), gpucnn.tensor(labels, device=target)
        synchronize = target.synchronize
    else:
        target = torch.device(device)
        model = theirs.to(target)
        x, y = torch.from_numpy(images).to(target), torch.from_numpy(labels).to(target)
        synchronize = (lambda: torch.cuda.synchronize(target)) if gpu else (lambda: None)
    step = training_step(library, model, x, y)

    reset_peak_rss()
    memory_before = peak_rss_bytes()
    if gpu and framework == "gpucnn":
        pool = gpucnn.device(device).xp.get_default_memory_pool()
        pool_before = pool.total_bytes()
    elif gpu:
        torch.cuda.reset_peak_memory_stats(target)
        allocated_before, reserved_before = torch.cuda.memory_allocated(target), torch.cuda.memory_reserved(target)
    first_loss = float(step().item())
    for _ in range(warmup):
        step()
    warm_until = time.perf_counter() + (GPU_WARMUP_SECONDS if gpu and warmup else 0.0)
    while time.perf_counter() < warm_until:
        step()
        synchronize()

    def timed():
        times = []
        for _ in range(steps):
            synchronize()
            start = time.perf_counter()
            step()
            synchronize()
            times.append(time.perf_counter() - start)
        return times

    times, other_load = foreign_cpu_share(timed)
    result = dict(framework=framework, model=name, batch=batch, steps=steps, first_loss=first_loss,
                  median_step_ms=statistics.median(times) * 1e3,
                  images_per_s=batch / statistics.median(times),
                  other_load=None if other_load is None else round(other_load, 3))
    if gpu and framework == "gpucnn":
        result.update(peak_memory_bytes=pool.total_bytes() - pool_before, memory_measure="cupy pool total_bytes")
    elif gpu:
        result.update(peak_memory_bytes=torch.cuda.max_memory_allocated(target) - allocated_before,
                      peak_reserved_bytes=torch.cuda.max_memory_reserved(target) - reserved_before,
                      memory_measure="torch max_memory_allocated")
    else:
        result.update(peak_memory_bytes=peak_rss_bytes() - memory_before, memory_measure="peak RSS rise")
    return result


def add_arguments(parser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    parser.add_argument("--batch", type=int, default=BATCH, help="images per step")
    parser.add_argument("--steps", type=int, default=20, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps after the first")
    parser.add_argument("--quick", action="store_true", help="batch 2, two steps: checks the code runs")


def _run_worker(framework, name, args, batch, steps, warmup) -> dict:
    return run_worker("bench.train", "--worker", framework, name, args.device, str(batch), str(steps), str(warmup))


def main(args, out_dir) -> dict:
    from .environment import Environment

    if args.device == "cudasim":
        raise SystemExit("bench train: cudasim would take hours per step; use cpu or cuda")
    names = comma_list(args.models)
    unknown = [n for n in names if n not in MODELS]
    if unknown or not names:
        raise SystemExit(f"bench train: unknown model(s) {unknown}; expected some of {', '.join(MODELS)}")
    batch, steps, warmup = (2, 2, 0) if args.quick else (args.batch, args.steps, args.warmup)
    if batch < 1 or steps < 1 or warmup < 0:
        raise SystemExit("--batch and --steps must be at least 1, --warmup at least 0")
    env = Environment(args.device)
    description = env.describe()
    rows = []
    for name in names:
        results = {fw: _run_worker(fw, name, args, batch, steps, warmup) for fw in ("gpucnn", "torch")}
        ours, theirs = results["gpucnn"], results["torch"]
        rows.append(dict(model=name, batch=batch, gpucnn=ours, torch=theirs,
                         ratio=ours["images_per_s"] / theirs["images_per_s"],
                         first_loss_difference=abs(ours["first_loss"] - theirs["first_loss"])))
        print(f"  {name:10s} gpucnn {ours['images_per_s']:9.1f} img/s  torch {theirs['images_per_s']:9.1f} img/s")
    when = datetime.datetime.now()
    memory = ("peak RSS rise in a subprocess per framework" if not env.is_gpu
              else "gpucnn: CuPy pool growth; torch: max_memory_allocated rise")
    lines = [f"Training throughput, gpucnn against PyTorch on {env.device}, SGD momentum 0.9, float32, "
             f"{when:%Y-%m-%d %H:%M}", "",
             f"Machine: {env.machine()}; " + "; ".join(f"{k}: {v}" for k, v in description.items()) +
             f"; median of {steps} steps after {warmup + 1} warm-up" +
             (f" and at least {GPU_WARMUP_SECONDS} s of them" if env.is_gpu and warmup else "") +
             f"; peak memory: {memory}", "",
             "| model | batch | gpucnn img/s | torch img/s | gpucnn / torch | gpucnn peak MiB | torch peak MiB "
             "| first loss (gpucnn, torch) | other load |",
             "|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        load = max((r[f]["other_load"] or 0) for f in ("gpucnn", "torch"))
        lines.append(f"| {r['model']} | {r['batch']} | {r['gpucnn']['images_per_s']:.1f} | "
                     f"{r['torch']['images_per_s']:.1f} | {r['ratio']:.2f} | "
                     f"{r['gpucnn']['peak_memory_bytes'] / 2**20:.1f} | "
                     f"{r['torch']['peak_memory_bytes'] / 2**20:.1f} | "
                     f"{r['gpucnn']['first_loss']:.5f}, {r['torch']['first_loss']:.5f} | {load:.0%} |")
    markdown = "\n".join(lines) + "\n"
    record = dict(bench="train", date=when.isoformat(timespec="seconds"), machine=env.machine(), **description,
                  batch=batch, steps=steps, warmup=warmup, quick=args.quick, memory_measure=memory, rows=rows)
    name = f"train-{env.kind}" + ("-quick" if args.quick else "")
    markdown_path, json_path = write_results(out_dir, name, markdown, record, machine=env.machine())
    print(markdown)
    print(f"wrote {markdown_path} and {json_path}")
    return record


if __name__ == "__main__":
    if len(sys.argv) == 8 and sys.argv[1] == "--worker":
        framework, name, device, batch, steps, warmup = sys.argv[2:]
        print(json.dumps(worker(framework, name, device, int(batch), int(steps), int(warmup))))
    else:
        from .__main__ import main as bench_main

        bench_main(["train"] + sys.argv[1:])
