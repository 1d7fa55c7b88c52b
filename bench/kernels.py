"""conv2d's GPU kernel paths against each other and against PyTorch, layer by layer, in one run.

    python -m bench kernels --device cuda --suite resnet18
    python -m bench kernels --device cuda --suite vgg16 --batch 32   # each distinct layer once
    python -m bench kernels --device cuda --device-times             # and each call on the device alone
    python -m bench kernels --device cuda --paths unsplit,split768   # chosen and these paths only
    python -m bench kernels --quick --device cudasim                 # tiny shapes: checks the code runs

Every conv layer's forward, backward-data and backward-filter is timed with each kernel path of
``gpucnn.ops.conv2d.KERNEL_PATHS`` (the launcher's choice; the same with no reduction split, with
more splits, with shorter chunks; the direct kernels without the taps kernels; the launcher's choice
with the tiles for short forward reductions and narrow layers, with the pixels forward for reductions of
up to 160 indices whatever the output channels; the launcher's choice with backward-filter's splits not
fitted to the GPU's waves; the launcher's choice with backward-data's exact gather for up to 20
channels a group; the direct kernels with the 64 tile everywhere, with the 128 tile
everywhere; Winograd's F(2x2, 3x3) and F(4x4, 3x3) on every 3x3 stride-1 layer) and with PyTorch
(cuDNN, TF32 off), each as a block of repeats after warm-up, the device synchronised around each
call (as ``python -m bench ops``). With ``--device-times`` each call is timed again on the device
alone (``Environment.device_ms``), in a second table: a small layer's per-call time is mostly the
host's, and varies with it by more than two paths' kernels differ. The tables mark the fastest path
per op, so the launcher's thresholds (``Conv2d.SPLIT_TARGET_BLOCKS``, ``Conv2d.WIDE_TILE_BLOCKS``,
``Conv2d.GATHER_MAX_CHANNELS``, ``Conv2d.TAP_STEP_CHANNELS``,
``Conv2d.PIXELS_FORWARD_MAX_REDUCTION``, ``Conv2d.FILL_WAVES``, ``Conv2d.SPLIT_MIN_CHUNK``,
``Conv2d.WINOGRAD_GPU_MIN_MACS``) can be set from measurements. ``--paths`` times the launcher's
choice and the paths named only. The results' name carries ``--batch`` and ``--paths``
(``kernels-vgg16-b32-cuda_...``, ``kernels-convnetjs-pixels_off+pixels_wide-cuda_...``).
"""

from __future__ import annotations

import datetime
import statistics

import numpy

from gpucnn.ops.conv2d import kernel_path, kernel_paths

from . import comma_list, geometric_mean, write_results
from .environment import Environment
from .ops import _contenders, _time_block, add_layer_arguments
from .suites import SUITES, Conv, at_batch


def run(env: Environment, layers, repeats: int, warmup: int, batch=None, seed: int = 0, log=print,
        device_times: bool = False, paths: list[str] | None = None) -> list[dict]:
    """One row per (conv layer, op): the median ms of each of ``paths`` (default: every path the
    device has; "chosen" always) and of torch, the fastest path; with ``device_times``, on a GPU, each
    one's median device time too (None where it had none)."""
    rng = numpy.random.default_rng(seed)
    paths = paths or kernel_paths(env.device)
    rows = []

    def median_ms(contender):
        times = _time_block(env, contender, warmup, repeats, device_times=device_times)
        return statistics.median(times["call"]), statistics.median(times["device"]) if times["device"] else None

    for layer in at_batch(layers, batch):  # with a batch for every layer, each distinct layer once
        if not isinstance(layer, Conv):
            continue
        shape = layer.describe()
        for op, (work, _, contenders) in _contenders(layer, env, rng).items():
            times, device = {}, {}
            for path in paths:
                with kernel_path(path):
                    times[path], device[path] = median_ms(contenders["gpucnn"])
            times["torch"], device["torch"] = median_ms(contenders["torch"])
            row = dict(layer=layer.name, op=op, shape=shape, flop=work)
            row.update(_compared(paths, times, ""), **_compared(paths, device, "_device"))
            rows.append(row)
            log(f"  {layer.name:40s} {op:24s} " + "  ".join(f"{name} {ms:8.3f}" for name, ms in times.items())
                + f"  fastest {row['fastest']}")
    return rows


def _compared(paths: list[str], times: dict, kind: str) -> dict:
    """A row's entries for ``times`` (ms of each path and of "torch"; None where not measured): each
    time as ``<name><kind>_ms``, the fastest measured path, chosen's time over the fastest's and torch's
    over chosen's (None where chosen or torch has no time)."""
    measured = [path for path in paths if times[path] is not None]
    fastest = min(measured, key=times.get) if measured else None
    chosen, torch = times["chosen"], times["torch"]
    return {**{f"{name}{kind}_ms": ms for name, ms in times.items()}, f"fastest{kind}": fastest,
            f"chosen_over_fastest{kind}": None if chosen is None else chosen / times[fastest],
            f"ratio{kind}": None if chosen is None or torch is None else torch / chosen}


def markdown_table(rows: list[dict], paths: list[str], kind: str = "") -> str:
    """The table of per-call times (``kind`` ""), or of device times ("_device"; n/a where none)."""
    def ms(value, bold=False):
        return "n/a" if value is None else f"**{value:.3f}**" if bold else f"{value:.3f}"

    def ratio(value):
        return "n/a" if value is None else f"{value:.2f}"

    lines = ["| layer | op | shape | " + " | ".join(f"{path} ms" for path in paths) + " | torch ms | "
             "chosen / fastest | torch / chosen |",
             "|---|---|---|" + "---:|" * (len(paths) + 3)]
    for r in rows:
        cells = " | ".join(ms(r[f"{path}{kind}_ms"], path == r[f"fastest{kind}"]) for path in paths)
        lines.append(f"| {r['layer']} | {r['op']} | {r['shape']} | {cells} | {ms(r[f'torch{kind}_ms'])} | "
                     f"{ratio(r[f'chosen_over_fastest{kind}'])} | {ratio(r[f'ratio{kind}'])} |")
    return "\n".join(lines) + "\n"


def add_arguments(parser) -> None:
    add_layer_arguments(parser, "resnet18", "cuda", "cuda, cuda:N or cudasim")
    parser.add_argument("--device-times", action="store_true",
                        help="on a GPU, also time each call on the device alone (a second table)")
    parser.add_argument("--paths", default=None,
                        help="conv2d's kernel paths, comma-separated (gpucnn.ops.conv2d.KERNEL_PATHS; chosen is "
                             "always timed; default: every path the device has)")


def main(args, out_dir) -> dict:
    if args.repeats < 1 or args.warmup < 0 or (args.batch is not None and args.batch < 1):
        raise SystemExit("--repeats and --batch must be at least 1, --warmup at least 0")
    env = Environment(args.device)
    if not env.device.runs_kernels:
        raise SystemExit(f"--device {args.device} runs no kernels: choose cuda, cuda:N or cudasim")
    if args.device_times and not env.is_gpu:
        raise SystemExit(f"--device-times needs a GPU: --device {args.device} has no device clock to time calls by")
    suite = "tiny" if args.quick else args.suite
    repeats, warmup = (1, 0) if args.quick else (args.repeats, args.warmup)
    paths = kernel_paths(env.device)
    if args.paths:
        asked = comma_list(args.paths)
        unknown = [path for path in asked if path not in paths]
        if unknown:
            raise SystemExit(f"--paths: {', '.join(unknown)} not among the kernel paths of {env.device}: "
                             f"{', '.join(paths)}")
        paths = ["chosen"] + [path for path in paths if path in asked and path != "chosen"]
    print(f"conv2d kernel paths {', '.join(paths)} against torch, suite {suite} on {env.device} ({env.machine()})")
    rows = run(env, SUITES[suite], repeats, warmup, batch=args.batch, device_times=args.device_times, paths=paths)
    when = datetime.datetime.now()
    slowdown = geometric_mean(row["chosen_over_fastest"] for row in rows)
    device_slowdowns = [row["chosen_over_fastest_device"] for row in rows if row["chosen_over_fastest_device"]]
    device_slowdown = geometric_mean(device_slowdowns) if device_slowdowns else None
    header = (f"conv2d kernel paths on {env.device}, suite {suite}, float32, {when:%Y-%m-%d %H:%M}\n\n"
              f"Machine: {env.machine()}; " + "; ".join(f"{k}: {v}" for k, v in env.describe().items()) +
              f"; median of {repeats} after {warmup} warm-up; torch: cuDNN with TF32 off on a GPU\n\n"
              "Paths (gpucnn.ops.conv2d.KERNEL_PATHS): chosen = the launcher's choice; unsplit = the same with "
              "no reduction split into chunks; split768 = the same with reductions split until about 768 blocks "
              "run (512 for chosen); chunk64 = the same with chunks down to 64 indices (128); taps_off = the "
              "direct kernels as the launcher picks them, without the taps kernels; taps_forward = the same "
              "with the taps kernels in the forward too; pixels_off = the launcher's choice with the tiles for "
              "short forward reductions and narrow layers too; pixels_wide = the launcher's choice with the "
              "pixels forward for reductions of up to 160 indices whatever the output channels (27, or 160 for "
              "up to 32 a group); waves_off = the launcher's choice with backward-filter's splits "
              "not fitted to the GPU's waves; gather20 = the launcher's choice with backward-data's exact "
              "gather for up to 20 channels a group (8); tileN = the direct kernels with the N tile for every "
              "product and the taps kernels wherever they apply, no gather; winogradM = F(M x M, 3x3) on every "
              "3x3 stride-1 layer, the launcher's choice elsewhere. The fastest path per row is in bold.\n\n")
    markdown = header + markdown_table(rows, paths) + (
        f"\nGeometric mean of chosen / fastest: {slowdown:.2f} (1.00: the launcher always picks the fastest)\n")
    if device_slowdown is not None:
        markdown += ("\nOn the device alone (CUDA events around each call's queued work, ``Environment.device_ms``; "
                     "n/a where the call waits on the GPU itself; "
                     "the fastest of the paths timed so in bold):\n\n" + markdown_table(rows, paths, "_device") +
                     f"\nGeometric mean of chosen / fastest on the device: {device_slowdown:.2f} (rows where chosen "
                     "has a device time)\n")
    record = dict(bench="kernels", suite=suite, date=when.isoformat(timespec="seconds"), machine=env.machine(),
                  **env.describe(), repeats=repeats, warmup=warmup, quick=args.quick, paths=paths, rows=rows,
                  chosen_over_fastest=slowdown, chosen_over_fastest_device=device_slowdown)
    batch = f"-b{args.batch}" if args.batch else ""  # a batch for every layer: named, so runs keep apart
    only = "-" + "+".join(paths[1:]) if args.paths else ""  # and so do runs of some paths
    name = f"kernels-{suite}{batch}{only}-{env.kind}" + ("-quick" if args.quick else "")
    markdown_path, json_path = write_results(out_dir, name, markdown, record, machine=env.machine())
    print(markdown)
    print(f"wrote {markdown_path} and {json_path}")
    return record
