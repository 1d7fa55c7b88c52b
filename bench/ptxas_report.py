"""Registers, shared memory and spills of every CUDA kernel on every target GPU, from ptxas.

    python -m bench.ptxas_report                 # table to stdout, .md/.json to bench/results/
    python -m bench.ptxas_report --out /tmp/results

Compiles each cuda/*.cu with ``nvcc -cubin -arch=sm_XX -std=c++17 -I cuda -Xptxas -v`` for sm_75,
sm_80, sm_86, sm_87 (Jetson Orin), sm_89 and sm_90, and, when the ``nvidia-cuda-nvrtc-cu12`` wheel
is installed, with CUDA 12's NVRTC (``--ptxas-options=-v``) for the older targets nvcc 13 dropped:
sm_53 (Jetson Nano), sm_60 (P100), sm_62 (TX2), sm_70 (V100), sm_72 (Xavier). Parses ptxas's
report per kernel: registers per thread, static shared memory, stack frame and spill bytes. No GPU
needed. Writes ``ptxas_nvcc-<version>_<date>.md`` and ``.json``.

Where ``cuobjdump`` is on the PATH (the ``nvidia-cuda-cuobjdump`` wheel carries one), it also reads
the SASS of the nvcc cubins and reports each kernel's loop of the most FFMA (a loop: the instructions
from a backward branch's target to the branch; the longer of two with as many FFMA): how many
instructions one trip runs and how many of them are FFMA. For the conv2d GEMM kernels that is the
product's loop, a trip one reduction step (not a longer loop on a rare path), so the FFMA share says
how much of the issue bandwidth the multiply-adds get; a static count, not a timing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gpucnn.devices import nvrtc

from . import RESULTS_DIR

CUDA_DIR = Path(__file__).resolve().parents[1] / "cuda"
NVCC_ARCHS = ["sm_75", "sm_80", "sm_86", "sm_87", "sm_89", "sm_90"]
NVRTC_ARCHS = ["sm_53", "sm_60", "sm_62", "sm_70", "sm_72"]

_ENTRY = re.compile(r"Compiling entry function '(\w+)' for '(sm_\d+)'")
_PROPERTIES = re.compile(r"Function properties for (\w+)")
_SPILLS = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers(?:, used \d+ barriers)?(?:, \d+ bytes cumulative stack size)?"
                   r"(?:, (\d+) bytes smem)?")


def function_spills(text: str) -> dict:
    """{(function, arch): (stack bytes, spill store bytes, spill load bytes)} of every function in a
    ``ptxas -v`` report, kernels and the device functions they call (a ``__noinline__`` one has
    properties of its own, listed after its caller's: read as the caller's, they had hidden a
    kernel's spills)."""
    found, arch, function = {}, None, None
    for line in text.splitlines():
        entry = _ENTRY.search(line)
        if entry:
            arch = entry.group(2)
            continue
        properties = _PROPERTIES.search(line)
        if properties:
            function = properties.group(1)
            continue
        spills = _SPILLS.search(line)
        if spills and function is not None and arch is not None:
            found[function, arch] = tuple(map(int, spills.groups()))
            function = None
    return found


def parse_ptxas(text: str, source: str, compiler: str) -> list[dict]:
    """One row per kernel in a ``ptxas -v`` report: kernel, file, arch, compiler, registers,
    shared_bytes (static), stack_bytes, spill_store_bytes, spill_load_bytes."""
    rows, row = [], None
    spills = function_spills(text)
    for line in text.splitlines():
        entry = _ENTRY.search(line)
        if entry:
            row = {"kernel": entry.group(1), "file": source, "arch": entry.group(2), "compiler": compiler}
            if (entry.group(1), entry.group(2)) in spills:
                row["stack_bytes"], row["spill_store_bytes"], row["spill_load_bytes"] = spills[entry.groups()]
            rows.append(row)
            continue
        if row is None:
            continue
        used = _USED.search(line)
        if used:  # the entry's own line, which comes before those of the functions it calls
            row["registers"] = int(used.group(1))
            row["shared_bytes"] = int(used.group(2) or 0)
            row = None
    return rows


def nvcc_version(nvcc: str) -> str:
    output = subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout
    match = re.search(r"V(\d+\.\d+\.\d+)", output)
    return match.group(1) if match else "unknown"


def nvcc_rows(nvcc: str, sources: list[Path], out: str) -> list[dict]:
    """ptxas rows of every source for every nvcc arch (compiles run in parallel), the cubins written to
    ``out`` as <source stem>_<arch>.cubin; raises on a failed compile."""
    compiler = f"nvcc {nvcc_version(nvcc)}"

    def compile_one(job):
        source, arch = job
        command = [nvcc, "-cubin", f"-arch={arch}", "-std=c++17", "-I", str(CUDA_DIR), "-Xptxas", "-v",
                   "-o", os.path.join(out, f"{source.stem}_{arch}.cubin"), str(source)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
        return parse_ptxas(result.stdout + result.stderr, source.name, compiler)

    jobs = [(source, arch) for source in sources for arch in NVCC_ARCHS]
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return [row for rows in pool.map(compile_one, jobs) for row in rows]


_FUNCTION = re.compile(r"^\s*Function : (\w+)", re.MULTILINE)
_INSTRUCTION = re.compile(r"/\*([0-9a-f]{4,})\*/\s+([^;]*);")
_BRANCH_TARGET = re.compile(r"\bBRA\b.*?0x([0-9a-f]+)")


def ffma_loops(sass: str) -> dict:
    """{kernel: (instructions, ffma)} of each kernel's loop of the most FFMA (the longer of equals) in
    ``cuobjdump -sass`` output: the instructions from a backward branch's target up to the branch, and
    how many of them are FFMA."""
    loops = {}
    parts = _FUNCTION.split(sass)
    for kernel, body in zip(parts[1::2], parts[2::2]):
        code = [(int(address, 16), text.strip()) for address, text in _INSTRUCTION.findall(body)]
        best = (0, 0)
        for address, text in code:
            target = _BRANCH_TARGET.search(text)
            if target is None or int(target.group(1), 16) >= address:
                continue
            start = int(target.group(1), 16)
            trip = [text for at, text in code if start <= at <= address]
            opcodes = [text.split()[1] if text.startswith("@") else text.split()[0] for text in trip]
            best = max(best, (sum(opcode == "FFMA" for opcode in opcodes), len(trip)))
        if best[1]:
            loops[kernel] = best[::-1]
    return loops


def loop_rows(cuobjdump: str, sources: list[Path], out: str) -> list[dict]:
    """kernel, file, arch, loop_instructions, loop_ffma of every kernel with a loop, from the cubins in ``out``."""
    rows = []
    for source in sources:
        for arch in NVCC_ARCHS:
            cubin = os.path.join(out, f"{source.stem}_{arch}.cubin")
            sass = subprocess.run([cuobjdump, "-sass", cubin], capture_output=True, text=True, check=True).stdout
            for kernel, (instructions, ffma) in sorted(ffma_loops(sass).items()):
                rows.append({"kernel": kernel, "file": source.name, "arch": arch,
                             "loop_instructions": instructions, "loop_ffma": ffma})
    return rows


def loop_table(rows: list[dict]) -> str:
    """Instructions per trip of each kernel's loop of the most FFMA (FFMA share), kernel x arch, the
    kernels that run FFMA in it."""
    archs = sorted({row["arch"] for row in rows}, key=lambda arch: int(arch[3:]))
    by_key = {(row["kernel"], row["arch"]): row for row in rows}
    kernels = sorted({row["kernel"] for row in rows if row["loop_ffma"]})
    lines = ["## Loop of the most FFMA per kernel (SASS, cuobjdump)", "",
             "Instructions in one trip of the kernel's loop of the most FFMA (the longer of equals), and "
             "the FFMA share of them; kernels whose loops have no FFMA are left out.", "",
             "| kernel | " + " | ".join(archs) + " |", "|---|" + "---:|" * len(archs)]
    for kernel in kernels:
        cells = []
        for arch in archs:
            row = by_key.get((kernel, arch))
            cells.append("–" if row is None else
                         f"{row['loop_instructions']} ({row['loop_ffma'] / row['loop_instructions']:.0%} FFMA)")
        lines.append(f"| {kernel} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def nvrtc_rows(library, version: str, sources: list[Path]) -> list[dict]:
    """ptxas rows of every source for every old arch, compiled by NVRTC as CuPy would (plus -v)."""
    rows = []
    for source in sources:
        for arch in NVRTC_ARCHS:
            ok, log, _ = nvrtc.compile(library, source, arch, ["--ptxas-options=-v"])
            if not ok:
                raise RuntimeError(f"NVRTC {version} failed on {source.name} for {arch}:\n{log}")
            rows += parse_ptxas(log, source.name, f"nvrtc {version}")
    return rows


def markdown_table(rows: list[dict], title: str) -> str:
    """A kernel x arch table of registers (spills noted where not 0), then every row in full."""
    archs = sorted({row["arch"] for row in rows}, key=lambda arch: int(arch[3:]))
    kernels = sorted({(row["file"], row["kernel"]) for row in rows})
    by_key = {(row["kernel"], row["arch"]): row for row in rows}
    spilling = [row for row in rows if row["spill_store_bytes"] or row["spill_load_bytes"]]
    lines = [title, "",
             "Registers per thread; shared memory is static bytes per block (the same on every arch). "
             + ("**Spills:** " + ", ".join(f"{r['kernel']} on {r['arch']}" for r in spilling) if spilling
                else "No kernel spills registers on any arch (0 bytes spill stores and loads everywhere)."),
             "", "| kernel | shared memory B | " + " | ".join(archs) + " |",
             "|---|---:|" + "---:|" * len(archs)]
    for file, kernel in kernels:
        cells = []
        for arch in archs:
            row = by_key.get((kernel, arch))
            if row is None:
                cells.append("–")
                continue
            spill = row["spill_store_bytes"] or row["spill_load_bytes"]
            cells.append(f"{row['registers']}" + (f" (spill {row['spill_store_bytes']}/{row['spill_load_bytes']} B)"
                                                  if spill else ""))
        shared = max(by_key[(kernel, arch)]["shared_bytes"] for arch in archs if (kernel, arch) in by_key)
        lines.append(f"| {kernel} | {shared} | " + " | ".join(cells) + " |")
    lines += ["", "| kernel | file | arch | compiler | registers | shared memory B | stack B | spill stores B | "
              "spill loads B |", "|---|---|---|---|---:|---:|---:|---:|---:|"]
    for row in sorted(rows, key=lambda r: (r["file"], r["kernel"], int(r["arch"][3:]))):
        lines.append(f"| {row['kernel']} | {row['file']} | {row['arch']} | {row['compiler']} | {row['registers']} | "
                     f"{row['shared_bytes']} | {row['stack_bytes']} | {row['spill_store_bytes']} | "
                     f"{row['spill_load_bytes']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(RESULTS_DIR), help="folder for the .md and .json (default bench/results)")
    args = parser.parse_args(argv)
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        print("nvcc is not installed: nothing to report", file=sys.stderr)
        return 1
    sources = sorted(CUDA_DIR.glob("*.cu"))
    cuobjdump = shutil.which("cuobjdump")
    with tempfile.TemporaryDirectory() as cubins:
        rows = nvcc_rows(nvcc, sources, cubins)
        loops = loop_rows(cuobjdump, sources, cubins) if cuobjdump else []
    if not cuobjdump:
        print("cuobjdump is not installed: no loop report", file=sys.stderr)
    compilers = [f"nvcc {nvcc_version(nvcc)} ({', '.join(NVCC_ARCHS)})"]
    library, nvrtc_version = nvrtc.load()
    if library is not None:
        rows += nvrtc_rows(library, nvrtc_version, sources)
        compilers.append(f"NVRTC {nvrtc_version} ({', '.join(NVRTC_ARCHS)})")
    else:
        print(f"old archs skipped: {nvrtc_version}", file=sys.stderr)
    today = datetime.date.today().isoformat()
    title = f"# ptxas report: cuda/*.cu, {today}\n\nCompilers: {'; '.join(compilers)}."
    markdown = markdown_table(rows, title) + ("\n" + loop_table(loops) if loops else "")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"ptxas_nvcc-{nvcc_version(nvcc)}_{today}"
    (out / f"{stem}.md").write_text(markdown)
    record = {"date": today, "compilers": compilers, "sources": [s.name for s in sources], "rows": rows,
              "loops": loops}
    (out / f"{stem}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(markdown)
    print(f"wrote {out / (stem + '.md')} and {out / (stem + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
