"""Benchmarks: gpucnn against PyTorch on the same data, one module per op (``python -m bench.conv2d``).

Timing lives here, never in a test's assertion. This module holds what every op's benchmark shares:
the machine description (CPU model, BLAS threads), the timing loop, a process's peak memory, the
worker subprocess runner and the results writer.
"""

from __future__ import annotations

import ctypes
import datetime
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown-cpu"


def blas_info() -> dict:
    """NumPy's BLAS: its name, the threads it uses and (for OpenBLAS) its run-time configuration.

    The thread count comes from OpenBLAS itself when it can be asked, else from threadpoolctl, else
    from ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS`` or the usable cores (``threads_source`` says which).
    """
    config = getattr(numpy.__config__, "CONFIG", {})
    info = {"name": config.get("Build Dependencies", {}).get("blas", {}).get("name", "unknown")}
    try:  # imported here: a memory probe of torch imports only torch
        from gpucnn.ops._parallel import blas_threads
    except ImportError:  # ``bench compare`` runs older versions of gpucnn, without it, too
        blas_threads = None
    openblas = blas_threads() if blas_threads else None
    if openblas is not None and openblas.usable:
        info.update(threads=openblas.get(), threads_source="openblas")
        get_config = getattr(openblas.library, openblas.symbol("get_config"), None)
        if get_config is not None:
            get_config.restype = ctypes.c_char_p
            info["config"] = get_config().decode()
        return info
    try:
        import threadpoolctl

        for pool in threadpoolctl.threadpool_info():
            if pool.get("user_api") == "blas":
                return {**info, "threads": int(pool["num_threads"]), "threads_source": "threadpoolctl"}
    except ImportError:
        pass
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(variable, "").isdigit():
            return {**info, "threads": int(os.environ[variable]), "threads_source": variable}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return {**info, "threads": cores, "threads_source": "usable cores"}


def blas_environment() -> dict:
    """The OpenBLAS/OpenMP variables set in this process (they change NumPy's speed)."""
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith(("OPENBLAS_", "OMP_", "MKL_", "GOTO"))}


def _busy_ticks():
    """(ticks all CPUs spent busy, ticks this process used), both in clock ticks; None off Linux."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    own = os.times()
    return sum(fields) - idle, (own.user + own.system) * os.sysconf("SC_CLK_TCK")


def foreign_cpu_share(run):
    """Calls ``run()``; returns its result and the share of the machine's CPU time that other processes
    used meanwhile (0 on a quiet machine, None where it cannot be measured). Resolution: 1/100 s."""
    before = _busy_ticks()
    start = time.perf_counter()
    result = run()
    after = _busy_ticks()
    if before is None or after is None:
        return result, None
    capacity = (time.perf_counter() - start) * os.sysconf("SC_CLK_TCK") * (os.cpu_count() or 1)
    foreign = (after[0] - before[0]) - (after[1] - before[1])
    return result, max(0.0, foreign / capacity) if capacity > 0 else None


def quietest(measure, attempts: int, on_cpu: bool = True):
    """Runs ``measure()`` again (up to ``attempts`` times) while other processes used more than 10 %
    of the CPU meanwhile; returns (result, other_load) of the quietest run. On a shared machine other
    work slows whichever library runs beside it, unequally. ``on_cpu=False`` (a GPU timing) measures once."""
    best = None
    for _ in range(attempts):
        result, other_load = foreign_cpu_share(measure) if on_cpu else (measure(), None)
        if best is None or (other_load or 0) < (best[1] or 0):
            best = result, other_load
        if other_load is None or other_load <= 0.1:
            break
    return best


def least_median(rounds: list[dict]) -> dict:
    """{contender: the least of its medians} over ``rounds``, each {contender: [times of one block]};
    None for a contender whose blocks timed nothing (a GPU device time that could not be measured).

    A shared machine has bursts of other work that this process cannot see (other virtual machines on
    the host): one that falls into a block slows that contender's median. Running the blocks in a few
    rounds and keeping each contender's fastest round keeps such a burst out of the result, as timeit
    keeps the fastest of its repeats."""
    return {name: min((statistics.median(times[name]) for times in rounds if times[name]), default=None)
            for name in rounds[0]}


def peak_rss_bytes() -> int:
    """This process's peak resident set size in bytes: on Linux its VmHWM, else ``ru_maxrss``.

    Both are the most physical memory the process has held at once (page granularity, whatever
    allocated it). Linux's ``ru_maxrss`` also carries a parent's peak over into a child at exec (a
    worker started by a 1 GiB benchmark reports at least 1 GiB), which VmHWM, the process's own
    peak, does not.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS reports bytes, Linux KiB


def reset_peak_rss() -> bool:
    """Lowers this process's peak resident set to its current one (Linux: ``/proc/self/clear_refs``), so
    that a rise of ``peak_rss_bytes()`` from now on counts only later memory, not memory held earlier
    and since freed. False where it cannot (the peak then stays the earlier one)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def run_worker(module: str, *arguments: str) -> dict:
    """Runs ``python -m module arguments...`` in a fresh interpreter (this one's executable) and returns
    the JSON object on the last line of its stdout; raises RuntimeError with its stderr if it fails."""
    done = subprocess.run([sys.executable, "-m", module, *arguments], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"python -m {module} {' '.join(arguments)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


SETTLE_SECONDS = 0.2


def settle() -> None:
    """Waits until the other library's idle threads have stopped spinning, before a block of timings.

    After a parallel call, OpenBLAS's worker threads spin for up to ~2^28 cycles (some 0.1 s) and
    PyTorch's OpenMP threads for a while too before they sleep; a block started at once shares the
    cores with them and runs slower by as much as the other library's threads take. In real use one
    library runs alone, so each block starts after SETTLE_SECONDS of quiet.

    It also ends gpucnn's window of split work (``gpucnn.ops._parallel.end_split``), so that an op is
    timed as a call on its own runs whatever the op timed before it did. For a second after an op splits
    its work among threads, the cpu runs BLAS on one thread: ConvNetJS's conv2 at batch 32, whose 2x2-block
    products split no work of their own, took 1.56 ms a forward outside that window and 2.26 inside it,
    where the suite timed it right after conv1, which splits its batch into parts.
    """
    time.sleep(SETTLE_SECONDS)
    try:
        from gpucnn.ops import _parallel
    except ImportError:  # a version without threads of its own (``bench compare``'s BEFORE may be one)
        return
    if hasattr(_parallel, "end_split"):
        _parallel.end_split()
    else:  # a version from before end_split, which keeps the window's end there
        _parallel._split_until = 0.0


#: After ``settle``, the warm-up runs for this long at least (where it runs at all).
WARMUP_SECONDS = 0.1


def warm_up(step, calls: int) -> None:
    """Calls ``step`` ``calls`` times and, where ``calls`` > 0, on until WARMUP_SECONDS have passed:
    the warm-up of a block of timings that starts after ``settle``.

    After such a pause the second core of a 2-core VM ran a split op slowly for tens of milliseconds:
    a 2M-element ReLU backward on two threads took 1.3-1.5 ms a call for its first 15-40 calls after
    0.3 s of quiet, then 0.82-0.84 ms, the time it took called back to back (one thread: 0.96-0.98 ms
    either way). Two warm-up calls timed that start, not the op; a training step, whose ops follow
    one another, never sees it."""
    start = time.perf_counter()
    for _ in range(calls):
        step()
    while calls and time.perf_counter() - start < WARMUP_SECONDS:
        step()


def time_ms(step) -> float:
    """Wall time of one call of ``step``, in milliseconds."""
    start = time.perf_counter()
    step()
    return (time.perf_counter() - start) * 1e3


def comma_list(text: str) -> list[str]:
    """The names of a comma-separated option value, in order, spaces around each dropped, empty ones too:
    "chosen, tile64," -> ["chosen", "tile64"]."""
    return [name.strip() for name in text.split(",") if name.strip()]


def geometric_mean(values) -> float:
    values = list(values)
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def results_stem(op: str, when: datetime.date | None = None, machine: str | None = None) -> str:
    """``<op>_<machine>_<date>``, the name (without extension) of a results file; the machine is the
    CPU model unless given (a GPU's name for GPU runs)."""
    model = re.sub(r"[^a-z0-9]+", "-", (machine or cpu_model()).lower()).strip("-") or "unknown-machine"
    return f"{op}_{model}_{(when or datetime.date.today()).isoformat()}"


def write_results(out_dir, op: str, markdown: str, record: dict, machine: str | None = None) -> tuple[Path, Path]:
    """Writes ``markdown`` and ``record`` (as JSON) to ``out_dir``; returns both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = results_stem(op, machine=machine)
    markdown_path, json_path = out_dir / f"{stem}.md", out_dir / f"{stem}.json"
    markdown_path.write_text(markdown)
    json_path.write_text(json.dumps(record, indent=2) + "\n")
    return markdown_path, json_path
