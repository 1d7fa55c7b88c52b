"""conv2d forward + backward on gpucnn's cpu device against PyTorch CPU, on the same float32 data.

    python -m bench.conv2d                  # the layers below; table to stdout, .md/.json to bench/results/
    python -m bench.conv2d --quick          # tiny shapes, one repeat (what tests/test_bench.py runs)
    python -m bench.conv2d --repeats 9 --batch 16 --out /tmp/results

One step is conv2d forward then backward with a fixed upstream gradient, computing the input, weight
and bias gradients (``.grad`` cleared before each step). Per layer, gpucnn and then torch each run
their warm-up steps and timed repeats as one block (interleaving them step by step slowed both: each
library's idle threads still spin when the other starts); the table gives the medians and their ratio
torch_ms / gpucnn_ms (above 1: gpucnn is faster). A layer is timed again when other processes used
over 10 % of the CPU meanwhile (a shared machine); the table shows that share and warns when it stayed
high. PyTorch runs with as many threads as NumPy's BLAS uses; both counts are recorded.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import numpy

import gpucnn
from gpucnn.nn.functional import conv2d

from . import (RESULTS_DIR, blas_environment, blas_info, cpu_model, geometric_mean, quietest, suites, time_ms,
               write_results)
from .suites import Conv


_CONVNETJS = [case for case in suites.CONVNETJS if isinstance(case, Conv)]
_RESNET = {case.name: case for case in suites.RESNET18}
# Batch 32 throughout, a usual CIFAR mini-batch (--batch changes it for every layer): the ConvNetJS
# CIFAR-10 demo's convolutions, and CIFAR ResNet's stages and stride-2 shortcut.
LAYERS = _CONVNETJS + [_RESNET[name] for name in ("resnet18 64ch 32px", "resnet18 128ch 16px",
                                                  "resnet18 256ch 8px", "resnet18 1x1 s2 64->128")]

QUICK_LAYERS = [
    Conv("quick 3x3", 2, 3, 4, 8, 3, 1, 1),
    Conv("quick 1x1 s2", 2, 4, 6, 7, 1, 2, 0),
]


def _steps(layer: Conv, batch: int, seed: int = 0):
    """The gpucnn step and the torch step for ``layer``, on the same float32 data."""
    import torch

    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal((batch, layer.in_channels, layer.size, layer.size), dtype=numpy.float32)
    weight = rng.standard_normal((layer.out_channels, layer.in_channels, layer.kernel, layer.kernel),
                                 dtype=numpy.float32) * (layer.in_channels * layer.kernel**2) ** -0.5
    bias = rng.standard_normal(layer.out_channels, dtype=numpy.float32)
    arguments = dict(stride=layer.stride, padding=layer.padding)

    ours = [gpucnn.tensor(a, requires_grad=True) for a in (x, weight, bias)]
    out_shape = conv2d(*ours, **arguments).shape
    upstream = rng.standard_normal(out_shape, dtype=numpy.float32)
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, weight, bias)]
    upstream_torch = torch.from_numpy(upstream)

    def gpucnn_step():
        for tensor in ours:
            tensor.grad = None
        conv2d(*ours, **arguments).backward(upstream)

    def torch_step():
        for tensor in theirs:
            tensor.grad = None
        torch.nn.functional.conv2d(*theirs, **arguments).backward(upstream_torch)

    return gpucnn_step, torch_step


def _timed_block(step, warmup: int, repeats: int) -> list[float]:
    for _ in range(warmup):
        step()
    return [time_ms(step) for _ in range(repeats)]


def run(layers, repeats: int, batch: int | None = None, warmup: int = 2, attempts: int = 3) -> list[dict]:
    """Times each layer; one row per layer with both medians (ms) and the ratio torch / gpucnn.

    On a shared machine other processes' work slows whichever library runs beside it: a layer is
    measured again (up to ``attempts`` times, keeping the quietest) while other processes used more
    than 10 % of the CPU during it; ``other_load`` in each row is that share.
    """
    rows = []
    for layer in layers:
        n = batch or layer.batch
        gpucnn_step, torch_step = _steps(layer, n)
        # Each library runs its warm-up and repeats as one block (see the module docstring).
        (ours, theirs), other_load = quietest(
            lambda: (_timed_block(gpucnn_step, warmup, repeats), _timed_block(torch_step, warmup, repeats)),
            attempts)
        gpucnn_ms, torch_ms = statistics.median(ours), statistics.median(theirs)
        rows.append(dict(layer=layer.name, shape=layer.describe(n), batch=n, gpucnn_ms=gpucnn_ms,
                         torch_ms=torch_ms, ratio=torch_ms / gpucnn_ms,
                         other_load=None if other_load is None else round(other_load, 3)))
    return rows


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| layer | shape (N x C x H x W -> K, kernel, stride, pad) | gpucnn ms | torch ms | torch / gpucnn "
        "| other load |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        load = "n/a" if r["other_load"] is None else f"{r['other_load']:.0%}"
        lines.append(f"| {r['layer']} | {r['shape']} | {r['gpucnn_ms']:.2f} | {r['torch_ms']:.2f} | {r['ratio']:.2f} "
                     f"| {load} |")
    lines.append(f"| **geometric mean** | | | | **{geometric_mean(r['ratio'] for r in rows):.2f}** | |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.conv2d", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=11, help="timed repeats per layer (median reported)")
    parser.add_argument("--batch", type=int, default=None, help="batch size for every layer (default: per layer)")
    parser.add_argument("--quick", action="store_true", help="tiny shapes, one repeat: checks the script runs")
    parser.add_argument("--out", default=str(RESULTS_DIR), help="directory for the .md and .json results")
    args = parser.parse_args(argv)
    if args.repeats < 1 or (args.batch is not None and args.batch < 1):
        parser.error("--repeats and --batch must be at least 1")

    import torch

    blas = blas_info()
    torch.set_num_threads(blas["threads"])
    load_before = [round(load, 2) for load in os.getloadavg()] if hasattr(os, "getloadavg") else None
    layers, repeats = (QUICK_LAYERS, 1) if args.quick else (LAYERS, args.repeats)
    rows = run(layers, repeats, args.batch, warmup=0 if args.quick else 2, attempts=1 if args.quick else 3)

    when = datetime.datetime.now()
    header = (f"conv2d forward + backward (input, weight and bias gradients), float32, {when:%Y-%m-%d %H:%M}\n\n"
              f"CPU: {cpu_model()}; NumPy {numpy.__version__} BLAS threads: {blas['threads']}; "
              f"torch {torch.__version__} threads: {torch.get_num_threads()}; median of {repeats}; "
              f"BLAS environment: {blas_environment() or 'none set'}; load average before: {load_before}\n\n")
    markdown = header + markdown_table(rows)
    disturbed = [r["layer"] for r in rows if (r["other_load"] or 0) > 0.1]
    if disturbed:
        markdown += (f"\nWARNING: other processes used over 10 % of the CPU while timing {', '.join(disturbed)}; "
                     "those ratios are not reliable (contention slows the two libraries unequally).\n")
    record = dict(
        op="conv2d", date=when.isoformat(timespec="seconds"), cpu=cpu_model(), numpy=numpy.__version__,
        numpy_blas=blas, torch=torch.__version__, torch_threads=torch.get_num_threads(),
        blas_environment=blas_environment(), load_average_before=load_before, repeats=repeats, quick=args.quick,
        rows=rows,
        geometric_mean_ratio=geometric_mean(r["ratio"] for r in rows),
    )
    markdown_path, json_path = write_results(args.out, "conv2d" + ("-quick" if args.quick else ""), markdown, record)
    print(markdown)
    print(f"wrote {markdown_path} and {json_path}")
    return record


if __name__ == "__main__":
    main(sys.argv[1:])
