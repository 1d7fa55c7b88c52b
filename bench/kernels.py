"""conv2d's GPU kernel paths against each other and against PyTorch, layer by layer, in one run.

    python -m bench kernels --device cuda --suite resnet18
    python -m bench kernels --device cuda --suite vgg16 --batch 32   # each distinct layer once
    python -m bench kernels --quick --device cudasim                 # tiny shapes: checks the code runs

Every conv layer's forward, backward-data and backward-filter is timed with each kernel path of
``gpucnn.ops.conv2d.KERNEL_PATHS`` (the launcher's choice; the same with no reduction split; the
direct kernels without the taps kernels; the launcher's choice with the tiles for short forward
reductions; the launcher's choice with backward-filter's splits not fitted to the GPU's waves; the
direct kernels with the 64 tile everywhere, with the 128 tile everywhere; Winograd's F(2x2, 3x3) and
F(4x4, 3x3) on every 3x3 stride-1 layer) and with PyTorch (cuDNN, TF32 off), each as a block of
repeats after warm-up, the device synchronised around each call (as ``python -m bench ops``). The
table marks the fastest path per op, so the launcher's thresholds (``Conv2d.SPLIT_TARGET_BLOCKS``,
``Conv2d.WIDE_TILE_BLOCKS``, ``Conv2d.GATHER_MAX_CHANNELS``, ``Conv2d.TAP_STEP_CHANNELS``,
``Conv2d.PIXELS_FORWARD_MAX_REDUCTION``, ``Conv2d.FILL_WAVES``, ``Conv2d.WINOGRAD_GPU_MIN_MACS``) can
be set from measurements. With ``--batch`` the results' name carries it (``kernels-vgg16-b32-cuda_...``).
"""

from __future__ import annotations

import datetime
import statistics

import numpy

from gpucnn.ops.conv2d import kernel_path, kernel_paths

from . import geometric_mean, write_results
from .environment import Environment
from .ops import _contenders, _time_block, add_layer_arguments
from .suites import SUITES, Conv


def run(env: Environment, layers, repeats: int, warmup: int, batch=None, seed: int = 0, log=print) -> list[dict]:
    """One row per (distinct conv layer, op): the median ms of each path and of torch, the fastest path."""
    rng = numpy.random.default_rng(seed)
    paths = kernel_paths(env.device)
    rows, seen = [], set()

    def median_ms(contender):
        return statistics.median(_time_block(env, contender, warmup, repeats, device_times=False)["call"])

    for layer in layers:
        shape = layer.describe(batch)
        if not isinstance(layer, Conv) or shape in seen:
            continue
        seen.add(shape)
        for op, (work, _, contenders) in _contenders(layer, env, batch, rng).items():
            times = {}
            for path in paths:
                with kernel_path(path):
                    times[path] = median_ms(contenders["gpucnn"])
            times["torch"] = median_ms(contenders["torch"])
            fastest = min(paths, key=times.get)
            rows.append(dict(layer=layer.name, op=op, shape=shape, flop=work, fastest=fastest,
                             **{f"{name}_ms": ms for name, ms in times.items()},
                             chosen_over_fastest=times["chosen"] / times[fastest],
                             ratio=times["torch"] / times["chosen"]))
            log(f"  {layer.name:40s} {op:24s} " + "  ".join(f"{name} {ms:8.3f}" for name, ms in times.items())
                + f"  fastest {fastest}")
    return rows


def markdown_table(rows: list[dict], paths: list[str]) -> str:
    lines = ["| layer | op | shape | " + " | ".join(f"{path} ms" for path in paths) + " | torch ms | "
             "chosen / fastest | torch / chosen |",
             "|---|---|---|" + "---:|" * (len(paths) + 3)]
    for r in rows:
        cells = " | ".join((f"**{r[f'{path}_ms']:.3f}**" if path == r["fastest"] else f"{r[f'{path}_ms']:.3f}")
                           for path in paths)
        lines.append(f"| {r['layer']} | {r['op']} | {r['shape']} | {cells} | {r['torch_ms']:.3f} | "
                     f"{r['chosen_over_fastest']:.2f} | {r['ratio']:.2f} |")
    return "\n".join(lines) + "\n"


def add_arguments(parser) -> None:
    add_layer_arguments(parser, "resnet18", "cuda", "cuda, cuda:N or cudasim")


def main(args, out_dir) -> dict:
    if args.repeats < 1 or args.warmup < 0 or (args.batch is not None and args.batch < 1):
        raise SystemExit("--repeats and --batch must be at least 1, --warmup at least 0")
    env = Environment(args.device)
    if not env.device.runs_kernels:
        raise SystemExit(f"--device {args.device} runs no kernels: choose cuda, cuda:N or cudasim")
    suite = "tiny" if args.quick else args.suite
    repeats, warmup = (1, 0) if args.quick else (args.repeats, args.warmup)
    paths = kernel_paths(env.device)
    print(f"conv2d kernel paths {', '.join(paths)} against torch, suite {suite} on {env.device} ({env.machine()})")
    rows = run(env, SUITES[suite], repeats, warmup, batch=args.batch)
    when = datetime.datetime.now()
    slowdown = geometric_mean(row["chosen_over_fastest"] for row in rows)
    header = (f"conv2d kernel paths on {env.device}, suite {suite}, float32, {when:%Y-%m-%d %H:%M}\n\n"
              f"Machine: {env.machine()}; " + "; ".join(f"{k}: {v}" for k, v in env.describe().items()) +
              f"; median of {repeats} after {warmup} warm-up; torch: cuDNN with TF32 off on a GPU\n\n"
              "Paths (gpucnn.ops.conv2d.KERNEL_PATHS): chosen = the launcher's choice; unsplit = the same with no "
              "reduction split into chunks; taps_off = the direct kernels as the launcher picks them, without the "
              "taps kernels; taps_forward = the same with the taps kernels in the forward too; pixels_off = the "
              "launcher's choice with the tiles for short forward reductions too; waves_off = the launcher's choice "
              "with backward-filter's splits not fitted to the GPU's waves; tileN = the direct "
              "kernels with the N tile for every product and the taps kernels wherever they apply, no gather; "
              "winogradM = F(M x M, 3x3) on every 3x3 stride-1 layer, the launcher's choice elsewhere. The fastest "
              "path per row is in bold.\n\n")
    markdown = header + markdown_table(rows, paths) + (
        f"\nGeometric mean of chosen / fastest: {slowdown:.2f} (1.00: the launcher always picks the fastest)\n")
    record = dict(bench="kernels", suite=suite, date=when.isoformat(timespec="seconds"), machine=env.machine(),
                  **env.describe(), repeats=repeats, warmup=warmup, quick=args.quick, paths=paths, rows=rows,
                  chosen_over_fastest=slowdown)
    batch = f"-b{args.batch}" if args.batch else ""  # a batch for every layer: named, so runs keep apart
    name = f"kernels-{suite}{batch}-{env.kind}" + ("-quick" if args.quick else "")
    markdown_path, json_path = write_results(out_dir, name, markdown, record, machine=env.machine())
    print(markdown)
    print(f"wrote {markdown_path} and {json_path}")
    return record
