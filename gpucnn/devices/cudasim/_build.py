"""Compiling a ``.cu`` file into a shared library with g++, cached by a hash of every input.

Two cached artefacts, both written to a temporary name and renamed into place (so concurrent
builds never expose a half-written file):

- ``runtime-<hash>.o``: runtime.cpp for one set of flags (asm or ucontext switch, sanitizers);
- ``<stem>-<hash>.so``: one ``.cu`` file's translation unit linked with that runtime object.

The hash covers the ``.cu`` text and path, the headers it includes from its folder and the include
dirs, cudasim.h, runtime.cpp, the generated wrapper, the flags and the compiler's version.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from . import _source
from ._errors import CompileError

HERE = os.path.dirname(os.path.abspath(__file__))
SHIM = os.path.join(HERE, "cudasim.h")
RUNTIME = os.path.join(HERE, "runtime.cpp")
FORMAT_VERSION = "1"
SANITIZE_CHOICES = ("address,undefined", "address", "undefined")
SWITCH_CHOICES = ("asm", "ucontext")
STATS = {"compiles": 0, "cache_hits": 0}
_identities: dict[tuple, str] = {}


@dataclass
class Build:
    """What :func:`build` produced: the library, the parsed source, and whether g++ ran."""

    library: str
    source: _source.Source
    compiled: bool
    sanitize: str | None
    switch: str


def cache_dir() -> str:
    """``$GPUCNN_CACHE_DIR/cudasim`` when set, else ``$XDG_CACHE_HOME/gpucnn/cudasim`` (``~/.cache``)."""
    root = os.environ.get("GPUCNN_CACHE_DIR")
    if root:
        return os.path.join(os.path.expanduser(root), "cudasim")
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "gpucnn", "cudasim")


def compiler() -> list[str]:
    """The compiler command: ``$CXX`` (split like a shell would) or ``g++``.

    Raises:
        RuntimeError: the compiler is not installed.
    """
    command = shlex.split(os.environ.get("CXX") or "g++")
    if not command or shutil.which(command[0]) is None:
        name = command[0] if command else "(empty $CXX)"
        raise RuntimeError(
            f"cudasim needs g++ to compile CUDA kernels for the CPU, but the compiler '{name}' "
            f"({'from $CXX' if os.environ.get('CXX') else 'the default'}) was not found; "
            "install it with apt-get install g++ (or point $CXX at a C++17 compiler)"
        )
    return command


def _identity(command: list[str]) -> str:
    key = tuple(command)
    if key not in _identities:
        parts = []
        for flag in ("--version", "-dumpmachine"):
            result = subprocess.run(command + [flag], capture_output=True, text=True)
            parts.append(result.stdout.strip())
        _identities[key] = "\n".join(parts)
    return _identities[key]


def normalize_sanitize(sanitize) -> str | None:
    if sanitize in (None, False, "", "none"):
        return None
    if sanitize is True:
        return "address,undefined"
    if isinstance(sanitize, str):
        canonical = ",".join(sorted(part.strip() for part in sanitize.split(",") if part.strip()))
        if canonical in SANITIZE_CHOICES:
            return canonical
    raise ValueError(f"sanitize must be True, False, 'address,undefined', 'address' or 'undefined', got {sanitize!r}")


def normalize_switch(switch) -> str:
    switch = switch or os.environ.get("GPUCNN_CUDASIM_SWITCH") or "asm"
    if switch not in SWITCH_CHOICES:
        raise ValueError(f"switch must be 'asm' or 'ucontext' (or $GPUCNN_CUDASIM_SWITCH), got {switch!r}")
    return switch


def flags(sanitize: str | None, switch: str) -> list[str]:
    """Compiler flags shared by the runtime object and the kernel library."""
    result = ["-std=c++17", "-fPIC", "-fvisibility=hidden", "-fno-strict-aliasing", "-fno-math-errno",
              "-fstack-clash-protection", "-Wno-unknown-pragmas"]
    if switch == "ucontext":
        result.append("-DCUDASIM_UCONTEXT=1")
    if sanitize:
        result += ["-O1", "-g", "-fno-omit-frame-pointer", f"-fsanitize={sanitize}", "-fno-sanitize-recover=all",
                   "-DCUDASIM_STACK_SIZE=262144"]
        if "address" in sanitize:
            result.append("-fsanitize-sections=cudasim_shared")
    else:
        result.append("-O2")
    return result


def _digest(*parts) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        hasher.update(len(data).to_bytes(8, "little"))
        hasher.update(data)
    return hasher.hexdigest()[:24]


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _run_compiler(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    STATS["compiles"] += 1
    if result.returncode != 0:
        log = (result.stderr + result.stdout).strip()
        raise CompileError(f"cudasim: {command[0]} failed to compile {what}:\n{log}", log, command)


def _produce(target: str, make) -> bool:
    """Builds ``target`` unless it exists: ``make(temporary_folder, output_path)`` writes it under
    a temporary name that is then renamed into place. Returns True when it compiled."""
    if os.path.exists(target):
        STATS["cache_hits"] += 1
        return False
    folder = os.path.dirname(target)
    os.makedirs(folder, exist_ok=True)
    work = tempfile.mkdtemp(prefix="build-", dir=folder)
    try:
        output = os.path.join(work, os.path.basename(target))
        make(work, output)
        os.replace(output, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return True


def build(path, include_dirs=(), options=(), *, sanitize=None, switch=None, cache_dir_path=None) -> Build:
    """Compiles ``path`` (a ``.cu`` file) unless an identical build is cached.

    See :func:`gpucnn.devices.cudasim.load` for the arguments.
    """
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"cudasim: no such CUDA source file: {path}")
    include_dirs = [os.path.abspath(os.fspath(d)) for d in include_dirs]
    options = [str(option) for option in options]
    sanitize = normalize_sanitize(sanitize)
    switch = normalize_switch(switch)
    command = compiler()
    identity = _identity(command)
    folder = os.path.abspath(cache_dir_path or cache_dir())
    common = flags(sanitize, switch)
    shim, runtime = _read(SHIM), _read(RUNTIME)

    runtime_key = _digest(FORMAT_VERSION, identity, command, common, shim, runtime)
    runtime_object = os.path.join(folder, f"runtime-{runtime_key}.o")

    def make_runtime(work, output):
        _run_compiler(command + common + ["-c", RUNTIME, "-o", output], RUNTIME)

    source = _source.parse(path, include_dirs)
    unit = _source.translation_unit(source)
    headers = [part for header in source.headers for part in (header, _read(header))]
    key = _digest(FORMAT_VERSION, runtime_key, path, unit, include_dirs, options, *headers)
    stem = os.path.splitext(os.path.basename(path))[0]
    library = os.path.join(folder, f"{stem}-{key}.so")

    def make_library(work, output):
        _produce(runtime_object, make_runtime)
        unit_path = os.path.join(work, f"{stem}.cudasim.cpp")
        with open(unit_path, "w", encoding="utf-8") as handle:
            handle.write(unit)
        include_flags = [f"-I{d}" for d in include_dirs] + ["-iquote", os.path.dirname(path)]
        _run_compiler(command + common + ["-shared", "-include", SHIM] + include_flags + options
                      + [unit_path, runtime_object, "-Wl,--no-undefined", "-o", output], path)

    compiled = _produce(library, make_library)
    return Build(library, source, compiled, sanitize, switch)
