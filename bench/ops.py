"""Per-op benchmark: gpucnn against PyTorch on the same device, in the same run, on the same data.

    python -m bench ops                              # the default suite ("mix") on the cpu
    python -m bench ops --suite resnet18 --device cuda --repeats 21
    python -m bench ops --quick --device cudasim     # tiny shapes, one repeat (what the tests run)

Ops: conv2d forward / backward-data / backward-filter (no bias), max_pool2d and avg_pool2d forward and
backward, relu forward and backward, each timed alone:

- forward runs without a graph, as inference runs it (gpucnn: no tensor requires grad; torch:
  ``no_grad``): max pooling's forward keeps no argmax indices then (its backward's timing needs them,
  and its forward ran with a graph);
- a backward is the op's own backward on a fixed upstream gradient: gpucnn's Function.backward, with
  only the gradient asked for (input or weight); torch's ATen backward op (``convolution_backward``
  with one output mask, ``max_pool2d_with_indices_backward``, ``avg_pool2d_backward``,
  ``threshold_backward``). A gpucnn conv backward needs its forward's saved im2col buffer, so each
  repeat runs a forward first, untimed.

Each contender runs its warm-up and repeats as one block, then the next (see bench/conv2d.py for
why; on the CPU a block starts after ``bench.settle``'s quiet, and its warm-up lasts at least
``bench.WARMUP_SECONDS``: ``bench.warm_up``), in ``--rounds`` rounds (default 3 on the CPU, 1 on a
GPU); a contender's time is the least of its rounds' medians (``bench.least_median``). On ``cuda``
the device is synchronised before and after each timed call, which a short call's host work and
synchronisation weigh on; each contender's block then times its calls again on the device alone
(``Environment.device_ms``: CUDA events around work queued behind a busy kernel), the "device"
columns. torch runs conv ops twice, cuDNN with TF32 off (``torch``) and on (``torch TF32``,
PyTorch's default for cuDNN convolutions). Rates: conv ops in GFLOP/s (2*N*K*P*Q*C*R*S), the others
in GB/s of the least traffic the op needs (inputs read once, outputs written once; the int64 indices
that max pooling's backward reads included).
The roofline, measured in the same run: FP32 GEMM rate for conv, large-copy bandwidth for the rest.
On the CPU a case is timed again when other processes used over 10 % of the CPU meanwhile.
"""

from __future__ import annotations

import datetime

import numpy

import gpucnn
from gpucnn.nn import functional as F

from . import WARMUP_SECONDS, geometric_mean, least_median, quietest, settle, warm_up, write_results
from .environment import Environment
from .suites import SUITES, Conv, Norm, Pool, Relu, at_batch


class Contender:
    """One library's way to run one op: ``prepare()`` (untimed, before every run) and ``run()`` (timed)."""

    def __init__(self, run, prepare=None, tf32=None):
        self.run, self.prepare, self.tf32 = run, prepare or (lambda: None), tf32


def _gpucnn_backward(make_output, grad):
    """(prepare, run) timing the backward of the Function that produced ``make_output()``."""
    state = {}

    def prepare():
        state["function"] = make_output()._creator

    return prepare, lambda: state["function"].backward(grad)


def _contenders(layer, env: Environment, rng) -> dict:
    """{op: (work, unit, {name: Contender})} for the ops of ``layer``; work in FLOP or bytes."""
    torch, device, torch_device = env.torch, env.device, env.torch_device
    aten = torch.ops.aten
    shape = layer.input_shape()
    # On a GPU the data is drawn there: drawing VGG-16's gigabytes on the host took longer than timing them.
    draw = (device.xp.random.RandomState(int(rng.integers(2**31))) if env.is_gpu else rng).standard_normal
    x_data = draw(shape, dtype=numpy.float32)

    def ours(array, requires_grad=False):
        return gpucnn.tensor(array, device=device, requires_grad=requires_grad)

    def theirs(array):
        if isinstance(array, numpy.ndarray):
            return torch.from_numpy(numpy.ascontiguousarray(array)).to(torch_device)
        return torch.from_dlpack(array).clone()  # a CuPy array: torch's own copy on the same GPU

    x_t = theirs(x_data)
    cases = {}
    if isinstance(layer, Conv):
        K, C, R = layer.out_channels, layer.in_channels, layer.kernel
        P = layer.output_size()
        w_data = draw((K, C, R, R), dtype=numpy.float32) * numpy.float32((C * R * R) ** -0.5)
        g_data = draw((shape[0], K, P, P), dtype=numpy.float32)
        w_t, g_t = theirs(w_data), theirs(g_data)
        g_ours = device.asarray(g_data)
        arguments = dict(stride=layer.stride, padding=layer.padding)
        flops = 2 * shape[0] * K * P * P * C * R * R
        pair_stride, pair_pad = [layer.stride] * 2, [layer.padding] * 2

        def torch_backward(mask):
            return lambda: aten.convolution_backward(g_t, x_t, w_t, None, pair_stride, pair_pad, [1, 1], False,
                                                     [0, 0], 1, mask)

        x_plain, w_plain = ours(x_data), ours(w_data)
        x_grad, w_grad = ours(x_data, True), ours(w_data, True)

        def forward_torch():
            with torch.no_grad():
                torch.nn.functional.conv2d(x_t, w_t, **arguments)

        cases["conv2d_forward"] = (flops, "FLOP", dict(
            gpucnn=Contender(lambda: F.conv2d(x_plain, w_plain, **arguments)), torch=Contender(forward_torch)))
        prepare, run = _gpucnn_backward(lambda: F.conv2d(x_grad, w_plain, **arguments), g_ours)
        cases["conv2d_backward_data"] = (flops, "FLOP", dict(
            gpucnn=Contender(run, prepare), torch=Contender(torch_backward([True, False, False]))))
        prepare, run = _gpucnn_backward(lambda: F.conv2d(x_plain, w_grad, **arguments), g_ours)
        cases["conv2d_backward_filter"] = (flops, "FLOP", dict(
            gpucnn=Contender(run, prepare), torch=Contender(torch_backward([False, True, False]))))
        if env.is_gpu:  # the same torch calls again with TF32 allowed
            for _, _, contenders in cases.values():
                contenders["torch"].tf32 = False
                contenders["torch_tf32"] = Contender(contenders["torch"].run, tf32=True)
        return cases

    n_in = int(numpy.prod(shape))
    if isinstance(layer, Relu):
        g_data = draw(shape, dtype=numpy.float32)
        g_t, g_ours = theirs(g_data), device.asarray(g_data)
        x_plain = ours(x_data)
        y_t = torch.relu(x_t)
        function = F.relu(ours(x_data, True))._creator

        def forward_torch():
            with torch.no_grad():
                torch.relu(x_t)

        cases["relu_forward"] = (8 * n_in, "B", dict(
            gpucnn=Contender(lambda: F.relu(x_plain)), torch=Contender(forward_torch)))
        cases["relu_backward"] = (12 * n_in, "B", dict(
            gpucnn=Contender(lambda: function.backward(g_ours)),
            torch=Contender(lambda: aten.threshold_backward(g_t, y_t, 0))))
        return cases

    if isinstance(layer, Norm):
        channels = shape[1]
        g_data = draw(shape, dtype=numpy.float32)
        w_data, b_data = (draw((channels,), dtype=numpy.float32) for _ in range(2))
        g_t, g_ours = theirs(g_data), device.asarray(g_data)
        running = [ours(numpy.zeros(channels, numpy.float32)), ours(numpy.ones(channels, numpy.float32))]
        running_t = [theirs(numpy.zeros(channels, numpy.float32)), theirs(numpy.ones(channels, numpy.float32))]
        x_plain, w_plain, b_plain = ours(x_data), ours(w_data), ours(b_data)
        w_t, b_t = theirs(w_data), theirs(b_data)

        def forward_torch():
            with torch.no_grad():
                torch.nn.functional.batch_norm(x_t, *running_t, w_t, b_t, training=True)

        # backward: the input's, the weight's and the bias's gradients, through each library's autograd
        prepare, run = _gpucnn_backward(lambda: F.batch_norm(ours(x_data, True), *running, ours(w_data, True),
                                                             ours(b_data, True), training=True), g_ours)
        inputs_t = [tensor.detach().requires_grad_() for tensor in (x_t, w_t, b_t)]
        y_t = torch.nn.functional.batch_norm(inputs_t[0], *running_t, *inputs_t[1:], training=True)
        # the minimal traffic: forward reads x for the statistics, then x again and writes y; backward
        # reads x and dy for the sums, then both again and writes dx
        cases["batchnorm_forward"] = (12 * n_in, "B", dict(
            gpucnn=Contender(lambda: F.batch_norm(x_plain, *running, w_plain, b_plain, training=True)),
            torch=Contender(forward_torch)))
        cases["batchnorm_backward"] = (20 * n_in, "B", dict(
            gpucnn=Contender(run, prepare),
            torch=Contender(lambda: torch.autograd.grad(y_t, inputs_t, g_t, retain_graph=True))))
        return cases

    assert isinstance(layer, Pool)
    k, s, p = layer.kernel, layer.stride, layer.padding
    P = layer.output_size()
    n_out = shape[0] * shape[1] * P * P
    g_data = draw(shape[:2] + (P, P), dtype=numpy.float32)
    g_t, g_ours = theirs(g_data), device.asarray(g_data)
    x_plain = ours(x_data)
    if layer.kind == "max":
        function = F.max_pool2d(ours(x_data, True), k, s, p)._creator
        _, indices_t = aten.max_pool2d_with_indices(x_t, [k, k], [s, s], [p, p])

        def forward_torch():
            with torch.no_grad():
                torch.nn.functional.max_pool2d(x_t, k, s, p)

        # the forward as inference runs it (no gradient: neither side keeps the argmax indices)
        cases["maxpool2d_forward"] = (4 * n_in + 4 * n_out, "B", dict(
            gpucnn=Contender(lambda: F.max_pool2d(x_plain, k, s, p)), torch=Contender(forward_torch)))
        cases["maxpool2d_backward"] = (4 * n_in + 12 * n_out, "B", dict(
            gpucnn=Contender(lambda: function.backward(g_ours)),
            torch=Contender(lambda: aten.max_pool2d_with_indices_backward(g_t, x_t, [k, k], [s, s], [p, p], [1, 1],
                                                                          False, indices_t))))
    else:
        function = F.avg_pool2d(ours(x_data, True), k, s, p)._creator

        def forward_torch():
            with torch.no_grad():
                torch.nn.functional.avg_pool2d(x_t, k, s, p)

        cases["avgpool2d_forward"] = (4 * n_in + 4 * n_out, "B", dict(
            gpucnn=Contender(lambda: F.avg_pool2d(x_plain, k, s, p)), torch=Contender(forward_torch)))
        cases["avgpool2d_backward"] = (4 * n_in + 4 * n_out, "B", dict(
            gpucnn=Contender(lambda: function.backward(g_ours)),
            torch=Contender(lambda: aten.avg_pool2d_backward(g_t, x_t, [k, k], [s, s], [p, p], False, True, None))))
    return cases


def _time_block(env: Environment, contender: Contender, warmup: int, repeats: int,
                device_times: bool = True) -> dict[str, list[float]]:
    """{"call": per-call times, "issue": the host's time to issue each of those calls (on a GPU; off one a
    call returns when done, and this list is empty), "device": the GPU's own times (``Environment.device_ms``:
    on a GPU, with ``device_times``; none for a call that waits on the GPU itself)}, in ms."""
    torch = env.torch
    if contender.tf32 is not None:
        torch.backends.cudnn.allow_tf32 = contender.tf32

    def step():
        contender.prepare()
        contender.run()

    if env.is_gpu:  # GPU blocks wait on the device, not on spinning threads (0.2 s a block saved)
        for _ in range(warmup):
            step()
    else:
        settle()
        warm_up(step, warmup)
    times, issue = [], []
    for _ in range(repeats):
        contender.prepare()
        issued, whole = env.time_call(contender.run)
        times.append(whole)
        issue.append(issued)
    on_device = []
    for _ in range(repeats if env.is_gpu and device_times else 0):
        device = env.device_ms(contender.run, max(issue), contender.prepare)
        if device is None:  # three tries found the call waiting on the GPU itself: so will the next ones
            break
        on_device.append(device)
    if contender.tf32 is not None:
        torch.backends.cudnn.allow_tf32 = True  # PyTorch's default
    return dict(call=times, issue=issue if env.is_gpu else [], device=on_device)



def run(env: Environment, layers, repeats: int, warmup: int = 2, attempts: int = 3, batch=None, seed: int = 0,
        roofline: dict | None = None, log=print, rounds: int = 1) -> list[dict]:
    """One row per (layer, op): each contender's time (the least of ``rounds`` medians), rates, ratios
    against gpucnn, roofline share."""
    rng = numpy.random.default_rng(seed)
    rows = []
    for layer in at_batch(layers, batch):
        for op, (work, unit, contenders) in _contenders(layer, env, rng).items():
            blocks, other_load = quietest(
                lambda: [{name: _time_block(env, c, warmup, repeats) for name, c in contenders.items()}
                         for _ in range(rounds)],
                attempts, on_cpu=not env.is_gpu)
            # each contender's least median of its per-call times, of its issue times and of its device
            # times (None off a GPU)
            medians, issue, device = (least_median([{name: block[kind] for name, block in r.items()} for r in blocks])
                                      for kind in ("call", "issue", "device"))
            scale = 1e6  # work / ms / 1e6: GFLOP/s or GB/s
            rate = work / medians["gpucnn"] / scale
            peak = None if roofline is None else roofline["gemm_gflops" if unit == "FLOP" else "copy_gbps"]
            row = dict(layer=layer.name, op=op, shape=layer.describe(), work=work,
                       rate_unit="GFLOP/s" if unit == "FLOP" else "GB/s",
                       **{f"{name}_ms": ms for name, ms in medians.items()},
                       gpucnn_rate=rate, torch_rate=work / medians["torch"] / scale,
                       ratio=medians["torch"] / medians["gpucnn"],
                       roofline_fraction=None if not peak else rate / peak,
                       other_load=None if other_load is None else round(other_load, 3))
            if "torch_tf32" in medians:
                row["ratio_tf32"] = medians["torch_tf32"] / medians["gpucnn"]
            if env.is_gpu:
                row.update({f"{name}_issue_ms": ms for name, ms in issue.items()})
                row["ratio_issue"] = issue["torch"] / issue["gpucnn"]
                row.update({f"{name}_device_ms": ms for name, ms in device.items()})
                measured = device["gpucnn"] is not None and device["torch"] is not None
                row["ratio_device"] = device["torch"] / device["gpucnn"] if measured else None
                row["roofline_fraction_device"] = (work / device["gpucnn"] / scale / peak
                                                   if peak and device["gpucnn"] is not None else None)
            rows.append(row)
            device_line = ""
            if row.get("ratio_device") is not None:
                device_line = (f"  device {row['gpucnn_device_ms']:.3f} / {row['torch_device_ms']:.3f} ms,"
                               f" ratio {row['ratio_device']:.2f}")
            log(f"  {layer.name:40s} {op:24s} gpucnn {medians['gpucnn']:9.3f} ms  torch {medians['torch']:9.3f} ms"
                f"  ratio {row['ratio']:.2f}{device_line}")
    return rows


def summary(rows: list[dict]) -> dict:
    """Geometric means of torch / gpucnn per op, and per conv layer over its three ops together
    (forward + backward-data + backward-filter: torch's summed time over gpucnn's); on a GPU the same
    again for the host's issue times and the device times, named "<op>, host time" and "<op>, device
    time"."""
    result = _geometric_means(rows, "")
    for kind, name in (("_issue", "host time"), ("_device", "device time")):
        if any(row.get(f"ratio{kind}") is not None for row in rows):
            result.update({f"{op}, {name}": value for op, value in _geometric_means(rows, kind).items()})
    return result


def _geometric_means(rows: list[dict], kind: str) -> dict:
    """``summary``'s means over the per-call times (``kind`` ""), the issue times ("_issue") or the
    device times ("_device"), of the rows where both libraries' times were measured."""
    rows = [row for row in rows if row.get(f"ratio{kind}") is not None]
    by_op = {}
    for row in rows:
        by_op.setdefault(row["op"], []).append(row[f"ratio{kind}"])
    result = {op: geometric_mean(values) for op, values in by_op.items()}
    conv_layers = {}
    for row in rows:
        if row["op"].startswith("conv2d"):
            total = conv_layers.setdefault(row["layer"], [0.0, 0.0])
            total[0] += row[f"torch{kind}_ms"]
            total[1] += row[f"gpucnn{kind}_ms"]
    if conv_layers:
        result["conv2d_forward_backward"] = geometric_mean(t / g for t, g in conv_layers.values())
    return result


def markdown_table(rows: list[dict], gpu: bool) -> str:
    """One line per row; on a GPU with torch's TF32 times and both libraries' host and device times besides."""
    def ms(value):
        return "n/a" if value is None else f"{value:.3f}"

    def share(value):
        return "n/a" if value is None else f"{value:.0%}"

    gpu_columns = (" torch TF32 ms | torch TF32 / gpucnn | gpucnn host ms | torch host ms | gpucnn device ms "
                   "| torch device ms | device ratio | device roofline |")
    lines = [f"| layer | op | shape | gpucnn ms | torch ms | torch / gpucnn |{gpu_columns if gpu else ''} "
             "gpucnn rate | roofline | other load |",
             "|---|---|---|---:|---:|---:|" + ("---:|" * 8 if gpu else "") + "---:|---:|---:|"]
    for r in rows:
        extra = ""
        if gpu:
            tf32 = (f" {r['torch_tf32_ms']:.3f} | {r['ratio_tf32']:.2f} |" if "torch_tf32_ms" in r else " | |")
            ratio = "n/a" if r["ratio_device"] is None else f"{r['ratio_device']:.2f}"
            extra = (f"{tf32} {ms(r['gpucnn_issue_ms'])} | {ms(r['torch_issue_ms'])} | {ms(r['gpucnn_device_ms'])} | "
                     f"{ms(r['torch_device_ms'])} | {ratio} | {share(r['roofline_fraction_device'])} |")
        lines.append(f"| {r['layer']} | {r['op']} | {r['shape']} | {r['gpucnn_ms']:.3f} | {r['torch_ms']:.3f} | "
                     f"{r['ratio']:.2f} |{extra} {r['gpucnn_rate']:.1f} {r['rate_unit']} | "
                     f"{share(r['roofline_fraction'])} | {share(r['other_load'])} |")
    return "\n".join(lines) + "\n"


def add_layer_arguments(parser, suite: str, device: str, devices: str) -> None:
    """The options of a benchmark over a suite's layers: --suite, --device, --repeats, --warmup, --batch, --quick."""
    parser.add_argument("--suite", default=suite, choices=sorted(SUITES), help=f"shape suite (default: {suite})")
    parser.add_argument("--device", default=device, help=devices)
    parser.add_argument("--repeats", type=int, default=11, help="timed repeats (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs before the repeats")
    parser.add_argument("--batch", type=int, default=None,
                        help="batch size for every layer, each distinct layer once (default: per layer)")
    parser.add_argument("--quick", action="store_true", help="the tiny suite, one repeat: checks the code runs")


def add_arguments(parser) -> None:
    add_layer_arguments(parser, "mix", "cpu", "cpu, cuda, cuda:N or cudasim")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds of every contender's block; the fastest round's median counts "
                             "(default: 3 on the CPU, 1 on a GPU)")


def main(args, out_dir) -> dict:
    if (args.repeats < 1 or args.warmup < 0 or (args.batch is not None and args.batch < 1)
            or (args.rounds is not None and args.rounds < 1)):
        raise SystemExit("--repeats, --rounds and --batch must be at least 1, --warmup at least 0")
    env = Environment(args.device)
    suite = "tiny" if args.quick else args.suite
    repeats, warmup = (1, 0) if args.quick else (args.repeats, args.warmup)
    rounds = 1 if args.quick else args.rounds or (1 if env.is_gpu else 3)
    description = env.describe()
    roofline = env.roofline(quick=args.quick)
    print(f"ops, suite {suite} on {env.device} ({env.machine()}); roofline: {roofline['gemm_gflops']:.1f} GFLOP/s "
          f"FP32 GEMM, {roofline['copy_gbps']:.1f} GB/s copy")
    rows = run(env, SUITES[suite], repeats, warmup=warmup, attempts=1 if args.quick else 3, batch=args.batch,
               roofline=roofline, rounds=rounds)
    means = summary(rows)
    when = datetime.datetime.now()
    torch_name = "PyTorch CUDA (cuDNN), TF32 off; TF32 on separately" if env.is_gpu else "PyTorch CPU"
    header = (f"gpucnn ops on {env.device} against {torch_name}, suite {suite}, float32, {when:%Y-%m-%d %H:%M}\n\n"
              f"Machine: {env.machine()}; " + "; ".join(f"{k}: {v}" for k, v in description.items()) +
              f"; the least of {rounds} rounds' medians of {repeats} after {warmup} warm-up"
              + (f" and at least {WARMUP_SECONDS} s of them" if warmup and not env.is_gpu else "") + "\n\n"
              f"Roofline (same run): FP32 GEMM {roofline['gemm_gflops']:.1f} GFLOP/s (n={roofline['gemm_size']}), "
              f"copy {roofline['copy_gbps']:.1f} GB/s (read + write, {roofline['copy_bytes'] >> 20} MiB)\n\n")
    if env.is_gpu:
        header += ("ms: a call's whole time, the GPU synchronised before and after; host ms: until the call "
                   "returned, the host's work to issue it; device ms: the GPU's own time for its queued work "
                   "(CUDA events, the work queued behind a waiting kernel)\n\n")
    markdown = header + markdown_table(rows, env.is_gpu)
    markdown += "\nGeometric means of torch / gpucnn (above 1: gpucnn is faster):\n\n" + "".join(
        f"- {op}: {value:.2f}\n" for op, value in means.items())
    disturbed = sorted({r["layer"] for r in rows if (r["other_load"] or 0) > 0.1})
    if disturbed:
        markdown += (f"\nWARNING: other processes used over 10 % of the CPU while timing {', '.join(disturbed)}; "
                     "those ratios are not reliable.\n")
    record = dict(bench="ops", suite=suite, date=when.isoformat(timespec="seconds"), machine=env.machine(),
                  **description, repeats=repeats, warmup=warmup, rounds=rounds, quick=args.quick, roofline=roofline,
                  rows=rows, geometric_means=means)
    batch = f"-b{args.batch}" if args.batch else ""  # a batch for every layer: named, so runs keep apart
    name = f"ops-{suite}{batch}-{env.kind}" + ("-quick" if args.quick else "")
    markdown_path, json_path = write_results(out_dir, name, markdown, record, machine=env.machine())
    print(markdown)
    print(f"wrote {markdown_path} and {json_path}")
    return record
