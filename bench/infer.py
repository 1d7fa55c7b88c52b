"""Inference latency: torchvision's networks in gpucnn against the same networks in PyTorch, same weights, same images.

    python -m bench infer                                  # resnet18, mobilenet_v2 at batch 1 and 8 on the cpu
    python -m bench infer --device cuda --batches 1,32 --models resnet18,resnet50,mobilenet_v2
    python -m bench infer --quick                          # 32x32 images, batch 1, two calls (what the tests run)

Models: ``gpucnn.models``' ResNet-18, -34, -50 and MobileNetV2 (1000 classes, 3x224x224 images unless
``--size``) against their torch.nn twins (``bench/twins.py``, torchvision's layers and names) with gpucnn's
weights loaded, both in eval mode under no_grad: what a deployed classifier runs, on a Jetson at batch 1.
Each (framework, model) runs in its own subprocess, as ``bench train``'s do; per batch size, the median
latency of ``--calls`` forward calls after warm-up ones (synchronised on a GPU), images/s, and the peak
memory of the process (cpu: the rise of its peak resident set; cuda: CuPy's pool, torch's
max_memory_allocated). The largest difference between the two libraries' outputs on the first batch, relative
to the largest output, is recorded, so a table whose networks disagree shows it (relative: at these initial
weights MobileNetV2's outputs are about 1e-9, its activations shrinking block by block in eval mode).
"""

from __future__ import annotations

import datetime
import json
import statistics
import sys
import time

import numpy

from . import comma_list, foreign_cpu_share, peak_rss_bytes, reset_peak_rss, run_worker, write_results
from .twins import MODELS

DEFAULT_MODELS = ("resnet18", "mobilenet_v2")
CLASSES = 1000
GPU_WARMUP_SECONDS = 1.0  # of warm-up calls on a GPU, at least (see bench/train.py)


def images(batch: int, size: int) -> numpy.ndarray:
    """The benchmark's random float32 images (batch, 3, size, size)."""
    return numpy.random.default_rng(1).standard_normal((batch, 3, size, size), dtype=numpy.float32)


def worker(framework: str, name: str, device: str, batches: list, size: int, calls: int, warmup: int) -> dict:
    """Times ``name``'s forward at each batch size in this process with one framework; the measurements."""
    import torch

    import gpucnn

    from .twins import torch_model

    gpucnn.manual_seed(0)
    ours = getattr(gpucnn.models, name)(num_classes=CLASSES).eval()
    gpu = device.startswith("cuda")
    if framework == "gpucnn":
        target = gpucnn.device(device)
        model, synchronize = ours.to(target), target.synchronize

        def forward(x):
            with gpucnn.no_grad():
                return model(x)

        def inputs(array):
            return gpucnn.tensor(array, device=target)
    else:
        target = torch.device(device)
        model = torch_model(name, CLASSES)
        model.load_state_dict({key: torch.from_numpy(value.numpy()) for key, value in ours.state_dict().items()})
        model = model.eval().to(target)
        synchronize = (lambda: torch.cuda.synchronize(target)) if gpu else (lambda: None)

        def forward(x):
            with torch.no_grad():
                return model(x)

        def inputs(array):
            return torch.from_numpy(array).to(target)

    reset_peak_rss()
    memory_before = peak_rss_bytes()
    if gpu and framework == "gpucnn":
        pool = target.xp.get_default_memory_pool()
        pool_before = pool.total_bytes()
    elif gpu:
        torch.cuda.reset_peak_memory_stats(target)
        allocated_before = torch.cuda.memory_allocated(target)
    rows, first_output = [], None
    for batch in batches:
        x = inputs(images(batch, size))
        output = forward(x)
        if first_output is None:
            first_output = numpy.asarray(output.cpu().numpy(), dtype=numpy.float64).tolist()
        for _ in range(warmup):
            forward(x)
        warm_until = time.perf_counter() + (GPU_WARMUP_SECONDS if gpu and warmup else 0.0)
        while time.perf_counter() < warm_until:
            forward(x)
            synchronize()

        def timed():
            times = []
            for _ in range(calls):
                synchronize()
                start = time.perf_counter()
                forward(x)
                synchronize()
                times.append(time.perf_counter() - start)
            return times

        times, other_load = foreign_cpu_share(timed)
        median = statistics.median(times)
        rows.append(dict(batch=batch, median_ms=median * 1e3, images_per_s=batch / median,
                         other_load=None if other_load is None else round(other_load, 3)))
    if gpu and framework == "gpucnn":
        memory = dict(peak_memory_bytes=pool.total_bytes() - pool_before, memory_measure="cupy pool total_bytes")
    elif gpu:
        memory = dict(peak_memory_bytes=torch.cuda.max_memory_allocated(target) - allocated_before,
                      memory_measure="torch max_memory_allocated")
    else:
        memory = dict(peak_memory_bytes=peak_rss_bytes() - memory_before, memory_measure="peak RSS rise")
    return dict(framework=framework, model=name, size=size, rows=rows, first_output=first_output, **memory)


def add_arguments(parser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    parser.add_argument("--batches", default="1,8", help="comma-separated batch sizes")
    parser.add_argument("--size", type=int, default=224, help="image height and width")
    parser.add_argument("--calls", type=int, default=10, help="timed calls a batch size (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls after the first")
    parser.add_argument("--quick", action="store_true", help="32x32 images, batch 1, two calls: checks the code runs")


def main(args, out_dir) -> dict:
    from .environment import Environment

    if args.device == "cudasim":
        raise SystemExit("bench infer: cudasim would take minutes a call; use cpu or cuda")
    names = comma_list(args.models)
    unknown = [n for n in names if n not in MODELS]
    if unknown or not names:
        raise SystemExit(f"bench infer: unknown model(s) {unknown}; expected some of {', '.join(MODELS)}")
    try:
        batches = [int(batch) for batch in comma_list(args.batches)]
    except ValueError:
        raise SystemExit(f"bench infer: --batches must be comma-separated ints, got {args.batches!r}") from None
    batches, size, calls, warmup = (([1], 32, 2, 0) if args.quick else (batches, args.size, args.calls, args.warmup))
    if not batches or min(batches) < 1 or size < 32 or calls < 1 or warmup < 0:
        raise SystemExit("bench infer: --batches at least 1 each, --size at least 32, --calls at least 1, "
                         "--warmup at least 0")
    env = Environment(args.device)
    description = env.describe()
    arguments = (args.device, ",".join(map(str, batches)), str(size), str(calls), str(warmup))
    rows = []
    for name in names:
        results = {fw: run_worker("bench.infer", "--worker", fw, name, *arguments) for fw in ("gpucnn", "torch")}
        ours, theirs = results["gpucnn"], results["torch"]
        difference = float(numpy.abs(numpy.subtract(ours["first_output"], theirs["first_output"])).max()
                           / numpy.abs(theirs["first_output"]).max())
        for mine, reference in zip(ours["rows"], theirs["rows"]):
            rows.append(dict(model=name, batch=mine["batch"], gpucnn=mine, torch=reference,
                             ratio=reference["median_ms"] / mine["median_ms"], output_difference=difference,
                             gpucnn_peak_bytes=ours["peak_memory_bytes"], torch_peak_bytes=theirs["peak_memory_bytes"]))
            print(f"  {name:12s} batch {mine['batch']:3d}  gpucnn {mine['median_ms']:9.2f} ms  "
                  f"torch {reference['median_ms']:9.2f} ms")
    when = datetime.datetime.now()
    lines = [f"Inference latency, gpucnn against PyTorch on {env.device}, eval mode, no_grad, float32, 3x{size}x{size} "
             f"images, {CLASSES} classes, {when:%Y-%m-%d %H:%M}", "",
             f"Machine: {env.machine()}; " + "; ".join(f"{k}: {v}" for k, v in description.items()) +
             f"; median of {calls} calls after {warmup + 1} warm-up" +
             (f" and at least {GPU_WARMUP_SECONDS} s of them" if env.is_gpu and warmup else "") +
             "; peak memory over all the batch sizes, a subprocess per framework and model", "",
             "| model | batch | gpucnn ms | torch ms | torch / gpucnn | gpucnn img/s | gpucnn peak MiB "
             "| torch peak MiB | largest output difference, relative | other load |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        load = max((r[f]["other_load"] or 0) for f in ("gpucnn", "torch"))
        lines.append(f"| {r['model']} | {r['batch']} | {r['gpucnn']['median_ms']:.2f} | "
                     f"{r['torch']['median_ms']:.2f} | {r['ratio']:.2f} | {r['gpucnn']['images_per_s']:.1f} | "
                     f"{r['gpucnn_peak_bytes'] / 2**20:.1f} | {r['torch_peak_bytes'] / 2**20:.1f} | "
                     f"{r['output_difference']:.1e} | {load:.0%} |")
    markdown = "\n".join(lines) + "\n"
    record = dict(bench="infer", date=when.isoformat(timespec="seconds"), machine=env.machine(), **description,
                  size=size, batches=batches, calls=calls, warmup=warmup, quick=args.quick, rows=rows)
    stem = f"infer-{env.kind}" + ("-quick" if args.quick else "")
    markdown_path, json_path = write_results(out_dir, stem, markdown, record, machine=env.machine())
    print(markdown)
    print(f"wrote {markdown_path} and {json_path}")
    return record


if __name__ == "__main__":
    if len(sys.argv) == 9 and sys.argv[1] == "--worker":
        framework, name, device, batches, size, calls, warmup = sys.argv[2:]
        print(json.dumps(worker(framework, name, device, [int(b) for b in batches.split(",")], int(size), int(calls),
                                int(warmup))))
    else:
        from .__main__ import main as bench_main

        bench_main(["infer"] + sys.argv[1:])
