"""conv2d forward + backward on gpucnn's cpu device against PyTorch CPU: time and peak memory, same float32 data.

    python -m bench.conv2d                        # every conv layer of the CPU suites; .md/.json to bench/results/
    python -m bench.conv2d --suite resnet18,jetson --no-memory
    python -m bench.conv2d --suite vgg16          # VGG-16 at 224 px: minutes on a CPU, so not in the default
    python -m bench.conv2d --suite smallresnet    # bench.train's small ResNet, layer by layer
    python -m bench.conv2d --quick                # tiny shapes, one repeat (what tests/test_bench.py runs)
    python -m bench.conv2d --repeats 9 --batch 16 --out /tmp/results

Layers: the conv cases of the suites in bench/suites.py named by ``--suite`` (repeatable or
comma-separated; default: lecture, convnetjs and resnet18 at batch 32, jetson at batch 1), each at its
suite's batch unless ``--batch`` sets one for all (then each distinct layer once: ``suites.at_batch``).

Time: one step is conv2d forward then backward with a fixed upstream gradient, computing the input,
weight and bias gradients (``.grad`` cleared before each step). Per layer, gpucnn and then torch each
run their warm-up steps and timed repeats as one block (interleaving them step by step slowed both:
each library's idle threads still spin when the other starts; a block starts after ``bench.settle``'s
quiet and warms up for at least ``bench.WARMUP_SECONDS``), in ``--rounds`` rounds (default 3); a
library's time is the least of its rounds' medians (``bench.least_median``: a burst of other work on
the host spoils a round, not the result). The table gives those times and their ratio
torch_ms / gpucnn_ms (above 1: gpucnn is faster), and the geometric mean of that ratio per suite and
over all layers timed (the headline number). A layer is timed again when other processes used
over 10 % of the CPU meanwhile (a shared machine); the table shows that share and warns when it stayed
high. PyTorch runs with as many threads as NumPy's BLAS uses; both counts are recorded.

GEMM bound: a third block per layer times only the three BLAS products of gpucnn's plain im2col step,
with their shapes and operand layouts, on ready data (``make_gemm_step``). ``torch / GEMMs`` is the
ratio the plain columns would reach if their memory passes took no time (skipped, n/a, where its
arrays would pass GEMM_MAX_BYTES: VGG-16's 64-channel 224x224 layer at batch 64 would take 17 GB).
Layers that take Winograd (``gpucnn/ops/winograd.py``) or the 2x2-block products
(``Conv2d.BLOCKED_CPU_RULE``) run other products and can pass it; stride-2 layers whose
backward-data goes by phases (``Conv2d.PHASES_*``) run it on rows up to an eighth wider.

Peak memory (skipped with ``--no-memory``): for each layer and library, a fresh Python process
(``--memory-probe``) that imports only that library runs one step of a small conv (each library's
one-time start-up on its first conv, code pages read in, threads started, some 45 MiB for PyTorch, is
then the layer's in neither), builds the layer's data, then runs two of the timed steps and reports
how far its peak resident set rose from just before the first of them. The peak resident set is what
``ru_maxrss`` counts: the most physical memory the process held at once, at page granularity, whoever
allocated it, so memory that either library's allocator keeps cached after a free (NumPy's through
malloc, PyTorch's own CPU allocator) counts alike for both; tracemalloc would see NumPy's allocations
but not PyTorch's. It is read as Linux's VmHWM, the process's own peak, because getrusage's
``ru_maxrss`` also carries the parent's peak over into a child at exec (a probe started by this
benchmark would report at least the benchmark's own peak); and just before the first step it is
lowered to the current resident set (``/proc/self/clear_refs``), so memory held earlier and freed
(the data's temporaries) cannot hide the step's. Off Linux it is ``ru_maxrss``, not lowered. The rise
has a lower bound, ``least MiB``: the arrays the step creates, its output and the input, weight and
bias gradients (the input, weight, bias and upstream gradient exist before the baseline); small
layers can come out below it, their arrays fitting in memory the process already held. The memory
ratio is gpucnn / torch (above 1: gpucnn needs more), formed only where both rises reach 1 MiB
(below, a few pages either way decide it); its geometric means skip the layers without one.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys

import numpy

from . import (RESULTS_DIR, blas_environment, blas_info, comma_list, cpu_model, geometric_mean, least_median,
               peak_rss_bytes, quietest, reset_peak_rss, run_worker, settle, time_ms, warm_up, write_results)
from .suites import SUITES, Conv, at_batch

DEFAULT_SUITES = ("lecture", "convnetjs", "resnet18", "jetson")  # sized for a CPU
SUITE_CHOICES = DEFAULT_SUITES + ("smallresnet", "vgg16")
LIBRARIES = ("gpucnn", "torch")
# Rises below this are a few pages either way (the process's own noise): no memory ratio is formed.
MEMORY_FLOOR_BYTES = 1 << 20

# What a memory probe runs before its layer, so that the library's start-up does not count: small, but
# enough work that PyTorch starts its second thread (batch 1 at 8 px did not; that thread's start-up,
# some 9 MiB, then counted for the layer).
WARM_UP_LAYER = Conv("warm-up", 8, 16, 16, 16, 3, 1, 1)

QUICK_LAYERS = [Conv("quick 3x3", 2, 3, 4, 8, 3, 1, 1), Conv("quick 1x1 s2", 2, 4, 6, 7, 1, 2, 0)]


def conv_layers(suite_names, batch: int | None = None) -> list[tuple[str, Conv]]:
    """(suite name, layer) for every Conv case of the named suites, suite by suite in the order given, at
    ``batch`` images where given (``suites.at_batch``)."""
    return [(name, case) for name in suite_names for case in at_batch(SUITES[name], batch) if isinstance(case, Conv)]


def _suite_list(text: str) -> list[str]:
    """``--suite``'s type: a comma-separated list of suite names, each one of SUITE_CHOICES."""
    names = comma_list(text)
    unknown = [name for name in names if name not in SUITE_CHOICES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown suite {', '.join(map(repr, unknown)) or repr(text)}; "
                                         f"choose from {', '.join(SUITE_CHOICES)}")
    return names


def _layer_data(layer: Conv, seed: int = 0):
    """The layer's input, weight, bias and upstream gradient, as float32 NumPy arrays."""
    rng = numpy.random.default_rng(seed)
    x = rng.standard_normal(layer.input_shape(), dtype=numpy.float32)
    weight = rng.standard_normal((layer.out_channels, layer.in_channels, layer.kernel, layer.kernel),
                                 dtype=numpy.float32) * (layer.in_channels * layer.kernel**2) ** -0.5
    bias = rng.standard_normal(layer.out_channels, dtype=numpy.float32)
    out_size = layer.output_size()
    upstream = rng.standard_normal((layer.batch, layer.out_channels, out_size, out_size), dtype=numpy.float32)
    return x, weight, bias, upstream


def make_step(library: str, layer: Conv, seed: int = 0):
    """One forward + backward step of ``layer`` in ``library`` ("gpucnn" or "torch"), on data that is the
    same for both; imports only that library."""
    x, weight, bias, upstream = _layer_data(layer, seed)
    if library == "gpucnn":
        import gpucnn
        from gpucnn.nn.functional import conv2d

        tensors = [gpucnn.tensor(a, requires_grad=True) for a in (x, weight, bias)]
        grad = upstream
    else:
        import torch

        conv2d = torch.nn.functional.conv2d
        tensors = [torch.tensor(a, requires_grad=True) for a in (x, weight, bias)]
        grad = torch.from_numpy(upstream)

    def step():
        for tensor in tensors:
            tensor.grad = None
        conv2d(*tensors, stride=layer.stride, padding=layer.padding).backward(grad)

    return step


#: The most bytes the GEMM bound's arrays may take (``gemm_step_bytes``); past it the layer has none.
GEMM_MAX_BYTES = 4 << 30


def gemm_step_bytes(layer: Conv) -> int:
    """The bytes of ``make_gemm_step``'s arrays for ``layer``: the weight, the columns,
    the forward's output and the gradient, backward-data's gradient and its columns; for the forward's
    products an image at a time, the weight with the bias and the columns' row of ones."""
    K, C, R = layer.out_channels, layer.in_channels, layer.kernel
    columns, data_columns = _gemm_columns(layer)
    with_bias = K * (C * R * R + 1) + columns if _forward_by_image(layer) else 0
    return 4 * (K * C * R * R + (C * R * R + 2 * K) * columns + (K + C * R * R) * data_columns + with_bias)


def _forward_by_image(layer: Conv) -> bool:
    """Whether gpucnn's forward on the plain columns of ``layer`` takes a product an image (in one go),
    ``Conv2d.BY_IMAGE_ROWS_MAX``."""
    from gpucnn.ops.conv2d import Conv2d

    return (layer.in_channels * layer.kernel**2 <= Conv2d.BY_IMAGE_ROWS_MAX and layer.batch > 1
            and layer.output_size() ** 2 >= Conv2d.BY_IMAGE_MIN_PIXELS)


def _gemm_columns(layer: Conv) -> tuple[int, int]:
    """(the columns of the forward's product, those of backward-data's): with stride 1 backward-data's
    gradient has the padded width's columns (N*P*Wp, ``Conv2d._col2im_wide``)."""
    P = layer.output_size()
    columns = layer.batch * P * P
    return columns, layer.batch * P * (layer.size + 2 * layer.padding) if layer.stride == 1 else columns


def make_gemm_step(layer: Conv, seed: int = 0):
    """The three BLAS products of gpucnn's plain im2col conv2d step on ``layer``, alone: the same shapes
    and operand layouts as ``Conv2d.forward_cpu``/``backward_cpu`` take in one go (no chunks), on
    random data, without im2col, col2im or any other memory pass. Its time bounds what the plain
    columns can reach on this machine.

    forward W (K, CRS) @ cols (CRS, NPQ), or up to ``Conv2d.BY_IMAGE_ROWS_MAX`` rows an image at a time
    with the bias, [W | b] (K, CRS + 1) @ each image's (CRS + 1, PQ) columns and a row of ones;
    backward-filter cols @ dy^T with dy (K, NPQ), an image at a time (dy (N, K, PQ)) up to
    ``Conv2d.BY_IMAGE_FILTER_MAX_BESIDE_COLUMNS`` values, or dy @ cols^T past
    ``Conv2d.TRANSPOSED_FILTER_MAX``; backward-data W^T @ dy, where with stride 1 dy has the padded
    width's columns (N*P*Wp, ``Conv2d._col2im_wide``)."""
    from gpucnn.ops.conv2d import Conv2d

    rng = numpy.random.default_rng(seed)
    K, C, R = layer.out_channels, layer.in_channels, layer.kernel
    rows, (columns, data_columns) = C * R * R, _gemm_columns(layer)
    forward_by_image = _forward_by_image(layer)
    weight = rng.standard_normal((K, rows), dtype=numpy.float32)
    weight_bias = rng.standard_normal((K, rows + 1), dtype=numpy.float32) if forward_by_image else None
    cols_ones = rng.standard_normal((rows + forward_by_image, columns), dtype=numpy.float32)
    cols = cols_ones[:rows]
    grad = rng.standard_normal((K, columns), dtype=numpy.float32)
    grad_data = rng.standard_normal((K, data_columns), dtype=numpy.float32)
    y = numpy.empty((K, columns), numpy.float32)
    grad_cols = numpy.empty((C * R * R, data_columns), numpy.float32)

    transposed = K * C * R * R <= Conv2d.TRANSPOSED_FILTER_MAX
    N, pixels = layer.batch, layer.output_size() ** 2
    by_image = (transposed and K * C * R * R <= Conv2d.BY_IMAGE_FILTER_MAX_BESIDE_COLUMNS and N > 1
                and pixels >= Conv2d.BY_IMAGE_MIN_PIXELS)

    def step():
        if forward_by_image:
            numpy.matmul(weight_bias, cols_ones.reshape(rows + 1, N, pixels).transpose(1, 0, 2),
                         out=y.reshape(N, K, pixels))
        else:
            numpy.matmul(weight, cols, out=y)
        if by_image:
            numpy.matmul(cols.reshape(rows, N, pixels).transpose(1, 0, 2),
                         grad.reshape(N, K, pixels).swapaxes(1, 2))
        else:
            numpy.matmul(cols, grad.T) if transposed else numpy.matmul(grad, cols.T)
        numpy.matmul(weight.T, grad_data, out=grad_cols)

    return step


def least_step_bytes(layer: Conv) -> int:
    """The bytes of the arrays one step creates: its output and the input, weight and bias gradients."""
    out_size = layer.output_size()
    return 4 * (layer.batch * layer.out_channels * out_size**2 + numpy.prod(layer.input_shape())
                + layer.out_channels * layer.in_channels * layer.kernel**2 + layer.out_channels).item()


def memory_probe(library: str, layer: list, torch_threads: int) -> dict:
    """Run in a fresh interpreter (``--memory-probe``): the rise of the peak resident set over two steps of
    ``library`` on ``layer`` (its Conv fields), measured from just before the first step, after a step of
    WARM_UP_LAYER."""
    if library == "torch":
        import torch

        torch.set_num_threads(torch_threads)
    make_step(library, WARM_UP_LAYER)()
    step = make_step(library, Conv(*layer))
    lowered = reset_peak_rss()
    before = peak_rss_bytes()
    step()
    step()
    return dict(peak_rise_bytes=peak_rss_bytes() - before, peak_lowered=lowered,
                libraries_loaded=sorted(set(LIBRARIES) & set(sys.modules)))


def measure_memory(library: str, layer: Conv, torch_threads: int) -> dict:
    """``memory_probe`` run in a fresh Python process (see the module docstring)."""
    probe = dict(library=library, layer=list(layer), torch_threads=torch_threads)
    result = run_worker("bench.conv2d", "--memory-probe", json.dumps(probe))
    if result["libraries_loaded"] != [library]:
        raise RuntimeError(f"the {library} memory probe loaded {result['libraries_loaded']}")
    return result


def _timed_block(step, warmup: int, repeats: int) -> list[float]:
    settle()
    warm_up(step, warmup)
    return [time_ms(step) for _ in range(repeats)]


def run(layers, repeats: int, warmup: int = 2, attempts: int = 3, memory: bool = True, torch_threads: int = 1,
        rounds: int = 1) -> list[dict]:
    """Times each (suite, layer) and, with ``memory``, measures its peak memory; one row per layer with both
    times (ms, the least of ``rounds`` medians), the ratio torch / gpucnn and both peak memory rises (bytes).

    On a shared machine other processes' work slows whichever library runs beside it: a layer is
    measured again (up to ``attempts`` times, keeping the quietest) while other processes used more
    than 10 % of the CPU during it; ``other_load`` in each row is that share.
    """
    rows = []
    for suite, layer in layers:
        steps = dict(gpucnn=make_step("gpucnn", layer), torch=make_step("torch", layer))
        if gemm_step_bytes(layer) <= GEMM_MAX_BYTES:
            steps["gemms"] = make_gemm_step(layer)
        # Each library runs its warm-up and repeats as one block (see the module docstring).
        times, other_load = quietest(
            lambda: [{name: _timed_block(step, warmup, repeats) for name, step in steps.items()}
                     for _ in range(rounds)],
            attempts)
        steps.clear()  # before the next layer's data: VGG-16's take gigabytes
        medians = least_median(times)
        gpucnn_ms, torch_ms, gemms_ms = medians["gpucnn"], medians["torch"], medians.get("gemms")
        row = dict(suite=suite, layer=layer.name, shape=layer.describe(), batch=layer.batch, gpucnn_ms=gpucnn_ms,
                   torch_ms=torch_ms, ratio=torch_ms / gpucnn_ms, gemms_ms=gemms_ms,
                   gemm_bound=None if gemms_ms is None else torch_ms / gemms_ms,
                   other_load=None if other_load is None else round(other_load, 3),
                   gpucnn_peak_bytes=None, torch_peak_bytes=None, memory_ratio=None, peak_lowered=None,
                   least_bytes=least_step_bytes(layer))
        if memory:
            probes = {library: measure_memory(library, layer, torch_threads) for library in LIBRARIES}
            row.update(gpucnn_peak_bytes=probes["gpucnn"]["peak_rise_bytes"],
                       torch_peak_bytes=probes["torch"]["peak_rise_bytes"],
                       peak_lowered=all(probe["peak_lowered"] for probe in probes.values()))
            if min(row["gpucnn_peak_bytes"], row["torch_peak_bytes"]) >= MEMORY_FLOOR_BYTES:
                row["memory_ratio"] = row["gpucnn_peak_bytes"] / row["torch_peak_bytes"]
        rows.append(row)
        memory_note = "" if row["memory_ratio"] is None else f", memory gpucnn / torch {row['memory_ratio']:.2f}"
        print(f"  {suite:9s} {layer.name:30s} torch / gpucnn {row['ratio']:.2f}{memory_note}", flush=True)
    return rows


def summarize(rows: list[dict]) -> dict:
    """Per suite (in the rows' order) and over all rows (``"all"``): the layer count and the geometric
    means of the time ratio, of the GEMM bound and of the memory ratio (each of the last two over the
    layers that have one; None where none has)."""
    groups = {suite: [r for r in rows if r["suite"] == suite] for suite in dict.fromkeys(r["suite"] for r in rows)}
    groups["all"] = rows
    summary = {}
    for name, group in groups.items():
        memory_ratios = [r["memory_ratio"] for r in group if r["memory_ratio"] is not None]
        gemm_bounds = [r["gemm_bound"] for r in group if r["gemm_bound"] is not None]
        summary[name] = dict(layers=len(group), geometric_mean_ratio=geometric_mean(r["ratio"] for r in group),
                             geometric_mean_gemm_bound=geometric_mean(gemm_bounds) if gemm_bounds else None,
                             geometric_mean_memory_ratio=geometric_mean(memory_ratios) if memory_ratios else None)
    return summary


def _mib(value) -> str:
    return "n/a" if value is None else f"{value / 2**20:.1f}"


def _two_places(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def markdown_tables(rows: list[dict], summary: dict) -> str:
    """The per-layer table, then the geometric means per suite and over all layers."""
    lines = [
        "| suite | layer | shape (N x C x H x W -> K, kernel, stride, pad) | gpucnn ms | torch ms | torch / gpucnn "
        "| GEMMs ms | torch / GEMMs | gpucnn MiB | torch MiB | gpucnn / torch MiB | least MiB | other load |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        load = "n/a" if r["other_load"] is None else f"{r['other_load']:.0%}"
        lines.append(f"| {r['suite']} | {r['layer']} | {r['shape']} | {r['gpucnn_ms']:.2f} | {r['torch_ms']:.2f} "
                     f"| {r['ratio']:.2f} | {_two_places(r['gemms_ms'])} | {_two_places(r['gemm_bound'])} "
                     f"| {_mib(r['gpucnn_peak_bytes'])} | {_mib(r['torch_peak_bytes'])} "
                     f"| {_two_places(r['memory_ratio'])} | {_mib(r['least_bytes'])} | {load} |")
    lines += ["", "| suite | layers | geometric mean torch / gpucnn | geometric mean torch / GEMMs "
              "| geometric mean gpucnn / torch MiB |", "|---|---:|---:|---:|---:|"]
    for name, s in summary.items():
        ratio = f"{s['geometric_mean_ratio']:.2f}"
        if name == "all":
            name, ratio = "**all**", f"**{ratio}**"
        lines.append(f"| {name} | {s['layers']} | {ratio} | {_two_places(s['geometric_mean_gemm_bound'])} "
                     f"| {_two_places(s['geometric_mean_memory_ratio'])} |")
    return "\n".join(lines) + "\n"


def parse_arguments(argv=None) -> argparse.Namespace:
    """The command line, checked; ``suites`` lists the suites named by ``--suite`` (each once, in order),
    else DEFAULT_SUITES."""
    parser = argparse.ArgumentParser(prog="python -m bench.conv2d", description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", type=_suite_list, action="append", metavar="NAME[,NAME...]",
                        help=f"suites whose conv layers to run, of {', '.join(SUITE_CHOICES)} (repeatable; "
                             f"default: {','.join(DEFAULT_SUITES)})")
    parser.add_argument("--repeats", type=int, default=11, help="timed repeats per layer and round")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of both libraries' blocks; each library's fastest round's median counts")
    parser.add_argument("--batch", type=int, default=None,
                        help="batch size for every layer, each distinct layer once (default: per layer)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak memory probes")
    parser.add_argument("--quick", action="store_true", help="tiny shapes, one repeat: checks the script runs")
    parser.add_argument("--out", default=str(RESULTS_DIR), help="directory for the .md and .json results")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.rounds < 1 or (args.batch is not None and args.batch < 1):
        parser.error("--repeats, --rounds and --batch must be at least 1")
    if args.quick and args.suite:
        parser.error("--quick runs its own tiny layers; it takes no --suite")
    args.suites = list(dict.fromkeys(name for names in args.suite or [DEFAULT_SUITES] for name in names))
    return args


def results_name(args: argparse.Namespace) -> str:
    """The results files' name before the machine and date: "conv2d" for the default suites,
    "conv2d-quick" for --quick, else the suites run ("conv2d-smallresnet"), and the batch where
    ``--batch`` sets one ("conv2d-vgg16-b32"): their runs keep files of their own."""
    if args.quick:
        name = "conv2d-quick"
    else:
        name = "conv2d" if tuple(args.suites) == DEFAULT_SUITES else "-".join(("conv2d",) + tuple(args.suites))
    return name + (f"-b{args.batch}" if args.batch else "")


def main(argv=None) -> dict:
    args = parse_arguments(argv)

    import torch

    blas = blas_info()
    torch.set_num_threads(blas["threads"])
    load_before = [round(load, 2) for load in os.getloadavg()] if hasattr(os, "getloadavg") else None
    if args.quick:
        layers, repeats = [("quick", layer) for layer in at_batch(QUICK_LAYERS, args.batch)], 1
    else:
        layers, repeats = conv_layers(args.suites, args.batch), args.repeats
    rounds = 1 if args.quick else args.rounds
    rows = run(layers, repeats, warmup=0 if args.quick else 2, attempts=1 if args.quick else 3,
               memory=not args.no_memory, torch_threads=torch.get_num_threads(), rounds=rounds)
    summary = summarize(rows)

    when = datetime.datetime.now()
    memory = ("not measured (--no-memory)" if args.no_memory else
              "rise of the peak resident set over two steps, a fresh process per layer and library")
    header = (f"conv2d forward + backward (input, weight and bias gradients), float32, {when:%Y-%m-%d %H:%M}\n\n"
              f"Suites: {'quick' if args.quick else ', '.join(args.suites)}; batch: {args.batch or 'per suite'}; "
              f"CPU: {cpu_model()}; NumPy {numpy.__version__} BLAS threads: {blas['threads']}; "
              f"torch {torch.__version__} threads: {torch.get_num_threads()}; the least of {rounds} rounds' medians "
              f"of {repeats}; "
              f"BLAS environment: {blas_environment() or 'none set'}; load average before: {load_before}; "
              f"peak memory: {memory}\n\n")
    markdown = header + markdown_tables(rows, summary)
    disturbed = [r["layer"] for r in rows if (r["other_load"] or 0) > 0.1]
    if disturbed:
        markdown += (f"\nWARNING: other processes used over 10 % of the CPU while timing {', '.join(disturbed)}; "
                     "those ratios are not reliable (contention slows the two libraries unequally).\n")
    if any(r["peak_lowered"] is False for r in rows):
        markdown += ("\nWARNING: the peak resident set could not be lowered before the steps (no "
                     "/proc/self/clear_refs); memory held earlier can hide part of a step's.\n")
    record = dict(
        op="conv2d", date=when.isoformat(timespec="seconds"), cpu=cpu_model(), numpy=numpy.__version__,
        numpy_blas=blas, torch=torch.__version__, torch_threads=torch.get_num_threads(),
        blas_environment=blas_environment(), load_average_before=load_before, repeats=repeats, rounds=rounds,
        quick=args.quick,
        suites=["quick"] if args.quick else args.suites, batch=args.batch, memory_measure=memory, rows=rows,
        by_suite={name: s for name, s in summary.items() if name != "all"},
        geometric_mean_ratio=summary["all"]["geometric_mean_ratio"],
        geometric_mean_gemm_bound=summary["all"]["geometric_mean_gemm_bound"],
        geometric_mean_memory_ratio=summary["all"]["geometric_mean_memory_ratio"],
    )
    markdown_path, json_path = write_results(args.out, results_name(args), markdown, record)
    print(markdown)
    print(f"wrote {markdown_path} and {json_path}")
    return record


if __name__ == "__main__":
    if sys.argv[1:2] == ["--memory-probe"]:
        print(json.dumps(memory_probe(**json.loads(sys.argv[2]))))
    else:
        main(sys.argv[1:])
