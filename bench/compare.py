"""Another version of gpucnn against this checkout's, op by op on one device, in alternating processes.

    git archive REV gpucnn cuda | tar -x -C /path/to/before   # the version to compare against
    python -m bench compare /path/to/before --device cuda --suite resnet18 --batch 128 --paths chosen,tile128
    python -m bench compare /path/to/before --device cudasim --quick   # tiny sizes: checks the code runs

BEFORE is a folder that holds another version's ``gpucnn/`` package with its ``cuda/`` folder beside
it, as a checkout does. Each round runs one process on BEFORE's gpucnn, then one on this checkout's,
each timing every op of the suite (``bench.suites``; conv2d's ops once per kernel path of
``--paths``, those the version has) as ``python -m bench ops`` does: a block of repeats after warm-up,
the median, on a GPU the device's own time (``Environment.device_ms``) where it can be measured, else
the time per call. On a GPU the host's time to issue each call is taken too (until the call returns):
a change of the host's work (launches, allocations) shows there and not in the device's time.
PyTorch's time for the same call is taken in each process too, so that a drift of the machine between
processes shows. The table gives each side's times over the rounds and after / before (the least of
each side's times); the suite's Python half (shapes, data, timing) is this checkout's for both.
"""

from __future__ import annotations

import datetime
import json
import os
import statistics
import sys
from pathlib import Path

import numpy

from . import comma_list, geometric_mean, write_results

ROOT = Path(__file__).resolve().parents[1]


def add_arguments(parser) -> None:
    from .ops import add_layer_arguments

    parser.add_argument("before", help="a folder holding the other version's gpucnn/ and cuda/")
    add_layer_arguments(parser, "resnet18", "cuda", "cuda, cuda:N, cudasim or cpu")
    parser.add_argument("--paths", default="chosen",
                        help="conv2d's kernel paths, comma-separated (gpucnn.ops.conv2d.KERNEL_PATHS; default: chosen)")
    parser.add_argument("--ops", default=None, help="only these ops, comma-separated (e.g. conv2d_backward_filter)")
    parser.add_argument("--rounds", type=int, default=2, help="processes on each side, alternating (default: 2)")


def measure(spec: dict) -> list[dict]:
    """One process's rows: {layer, op, path, ms, timing, issue_ms, torch_ms, torch_timing} for each op of
    the spec's suite (timing: "device" or "call", what ``_time_block`` could measure; issue_ms: the
    median time to issue a call, None off a GPU)."""
    from gpucnn.ops.conv2d import KERNEL_PATHS, kernel_path

    from .environment import Environment
    from .ops import _contenders, _time_block
    from .suites import SUITES, at_batch

    env = Environment(spec["device"])
    rng = numpy.random.default_rng(0)
    rows = []

    def median_ms(contender):
        times = _time_block(env, contender, spec["warmup"], spec["repeats"])
        issue = statistics.median(times["issue"]) if times["issue"] else None
        return ((statistics.median(times["device"]), "device") if times["device"] else (
            statistics.median(times["call"]), "call")) + (issue,)

    for layer in at_batch(SUITES[spec["suite"]], spec["batch"]):
        for op, (_, _, contenders) in _contenders(layer, env, rng).items():
            if spec["ops"] and op not in spec["ops"]:
                continue
            torch_ms, torch_timing, _ = median_ms(contenders["torch"])
            for path in spec["paths"] if op.startswith("conv2d") else ["chosen"]:
                if path not in KERNEL_PATHS:
                    continue  # a path this version does not have
                with kernel_path(path):
                    ms, timing, issue_ms = median_ms(contenders["gpucnn"])
                rows.append(dict(layer=layer.name, op=op, shape=layer.describe(), path=path, ms=ms,
                                 timing=timing, issue_ms=issue_ms, torch_ms=torch_ms, torch_timing=torch_timing))
    return rows


def _run_side(tree: Path, spec: dict) -> list[dict]:
    """``measure(spec)`` in a fresh process whose ``gpucnn`` is the one in ``tree``, bench's this checkout's."""
    import subprocess

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree), str(ROOT)] + (
        [os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
    # python -m puts the working folder first on sys.path: run in tree, so that its gpucnn is the one found
    done = subprocess.run([sys.executable, "-m", "bench.compare", json.dumps(spec)], cwd=tree, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the measuring process on {tree} failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if Path(result["gpucnn"]).resolve().parent.parent != tree.resolve():
        raise RuntimeError(f"the process meant for {tree} imported gpucnn from {result['gpucnn']}")
    return result["rows"]


def markdown_table(rows: list[dict]) -> str:
    """The table of ``main``'s rows, with the host's columns where some row has both sides' issue times."""
    def times(values):
        return " / ".join(f"{value:.4f}" for value in values) if values else "n/a"

    def ratio(value):
        return "n/a" if value is None else f"{value:.2f}"

    host = (["before host ms", "after host ms", "host after / before"]
            if any(row["issue_after_over_before"] for row in rows) else [])
    lines = ["| " + " | ".join(["layer", "op", "shape", "path", "timing", "before ms", "after ms", "after / before"]
                               + host + ["torch ms"]) + " |",
             "|---|---|---|---|---|" + "---:|" * (4 + len(host))]
    for row in rows:
        timing = row["timing"]
        if row["torch_timing"] != timing:
            timing += f", torch's {row['torch_timing']}"
        host_cells = (f"{times(row['before_issue_ms'])} | {times(row['after_issue_ms'])} | "
                      f"{ratio(row['issue_after_over_before'])} | ") if host else ""
        lines.append(f"| {row['layer']} | {row['op']} | {row['shape']} | {row['path']} | {timing} | "
                     f"{times(row['before_ms'])} | {times(row['after_ms'])} | {ratio(row['after_over_before'])} | "
                     f"{host_cells}{times(row['torch_ms'])} |")
    return "\n".join(lines)


def main(args, out_dir) -> dict:
    from gpucnn.ops.conv2d import KERNEL_PATHS

    from .environment import Environment
    from .suites import SUITES

    before = Path(args.before)
    if not (before / "gpucnn" / "__init__.py").is_file():
        raise SystemExit(f"{before} holds no gpucnn/ package (make one with: git archive REV gpucnn cuda | tar -x -C "
                         f"{before})")
    if before.resolve() == ROOT:
        raise SystemExit(f"{before} is this checkout: give the other version's folder")
    if args.repeats < 1 or args.warmup < 0 or args.rounds < 1 or (args.batch is not None and args.batch < 1):
        raise SystemExit("--repeats, --rounds and --batch must be at least 1, --warmup at least 0")
    suite = "tiny" if args.quick else args.suite
    paths, ops = comma_list(args.paths), comma_list(args.ops) if args.ops else None
    unknown = sorted(set(paths) - set(KERNEL_PATHS))
    if unknown:
        raise SystemExit(f"--paths: unknown kernel paths {', '.join(unknown)}; choose from {', '.join(KERNEL_PATHS)}")
    suite_ops = {op for layer in SUITES[suite] for op in layer.ops}
    if ops and set(ops) - suite_ops:
        raise SystemExit(f"--ops: suite {suite} has no {', '.join(sorted(set(ops) - suite_ops))}; its ops: "
                         f"{', '.join(sorted(suite_ops))}")
    repeats, warmup = (1, 0) if args.quick else (args.repeats, args.warmup)
    spec = dict(device=args.device, suite=suite, batch=args.batch, repeats=repeats, warmup=warmup, paths=paths,
                ops=ops)
    env = Environment(args.device)
    sides = {"before": [], "after": []}
    for round_ in range(args.rounds):
        for side, tree in (("before", before), ("after", ROOT)):
            sides[side].append(_run_side(tree, spec))
            print(f"round {round_ + 1}: {side} measured", flush=True)
    rows = []
    for index, row in enumerate(sides["after"][0]):
        key = (row["layer"], row["op"], row["path"])
        befores = [r for run in sides["before"] for r in run if (r["layer"], r["op"], r["path"]) == key]
        afters = [run[index] for run in sides["after"]]
        entry = dict(layer=row["layer"], op=row["op"], shape=row["shape"], path=row["path"], timing=row["timing"],
                     torch_timing=row["torch_timing"], before_ms=[r["ms"] for r in befores],
                     after_ms=[r["ms"] for r in afters],
                     before_issue_ms=[r["issue_ms"] for r in befores if r["issue_ms"] is not None],
                     after_issue_ms=[r["issue_ms"] for r in afters if r["issue_ms"] is not None],
                     torch_ms=[r["torch_ms"] for r in befores + afters])
        entry["after_over_before"] = min(entry["after_ms"]) / min(entry["before_ms"]) if befores else None
        entry["issue_after_over_before"] = (min(entry["after_issue_ms"]) / min(entry["before_issue_ms"])
                                            if entry["before_issue_ms"] and entry["after_issue_ms"] else None)
        rows.append(entry)
    ratios = [row["after_over_before"] for row in rows if row["after_over_before"]]
    issue_ratios = [row["issue_after_over_before"] for row in rows if row["issue_after_over_before"]]
    when = datetime.datetime.now()

    markdown = (f"gpucnn at {before} (before) against this checkout (after) on {env.device}, suite {suite}, "
                f"float32, {when:%Y-%m-%d %H:%M}\n\n"
                f"Machine: {env.machine()}; " + "; ".join(f"{k}: {v}" for k, v in env.describe().items()) +
                f"; median of {repeats} after {warmup} warm-up, {args.rounds} processes a side, alternating; "
                "timing: the device's own (device) or per call (call); host: the time to issue a call, until it "
                "returns (on a GPU); torch: cuDNN with TF32 off on a GPU, in every process\n\n" + markdown_table(rows) +
                f"\n\nGeometric mean of after / before: {geometric_mean(ratios):.2f}\n"
                + (f"Geometric mean of the host's after / before: {geometric_mean(issue_ratios):.2f}\n"
                   if issue_ratios else ""))
    record = dict(bench="compare", before=str(before), suite=suite, date=when.isoformat(timespec="seconds"),
                  machine=env.machine(), **env.describe(), repeats=repeats, warmup=warmup, rounds=args.rounds,
                  quick=args.quick, paths=spec["paths"], ops=spec["ops"], rows=rows,
                  after_over_before=geometric_mean(ratios),
                  issue_after_over_before=geometric_mean(issue_ratios) if issue_ratios else None)
    batch = f"-b{args.batch}" if args.batch else ""
    only = "-" + "+".join(ops) if ops else ""  # runs of one suite on other ops write files of their own
    name = f"compare-{suite}{batch}{only}-{env.kind}" + ("-quick" if args.quick else "")
    markdown_path, json_path = write_results(out_dir, name, markdown, record, machine=env.machine())
    print(markdown)
    print(f"wrote {markdown_path} and {json_path}")
    return record


if __name__ == "__main__":  # one side's measuring process (see _run_side)
    import gpucnn

    print(json.dumps(dict(gpucnn=gpucnn.__file__, rows=measure(json.loads(sys.argv[1])))))
