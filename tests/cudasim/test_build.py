"""Building: the cache, compiler errors, source parsing, and the sanitizer builds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from gpucnn.devices import cudasim
from gpucnn.devices.cudasim import _source

KERNELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernels")
REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def workspace(tmp_path):
    """A copy of uses_header.cu and its include dir, and an empty cache dir."""
    shutil.copy(os.path.join(KERNELS, "uses_header.cu"), tmp_path)
    shutil.copytree(os.path.join(KERNELS, "include"), tmp_path / "include")
    return tmp_path


def test_cache_reuse_and_invalidation(workspace):
    source, include, cache = workspace / "uses_header.cu", [workspace / "include"], workspace / "cache"
    compiles = cudasim.stats["compiles"]
    first = cudasim.build(source, include, cache_dir=cache)
    assert cudasim.stats["compiles"] == compiles + 2  # the runtime object and the module
    mtime = os.stat(first).st_mtime_ns
    assert cudasim.build(source, include, cache_dir=cache) == first
    assert cudasim.stats["compiles"] == compiles + 2 and os.stat(first).st_mtime_ns == mtime
    module = cudasim.load(source, include, cache_dir=cache)
    assert not module.compiled and cudasim.load(source, include, cache_dir=cache) is module
    x = np.arange(4, dtype=np.float32)
    y = np.zeros(4, np.float32)
    module.get_function("scale")(1, 4, (x, y))
    np.testing.assert_array_equal(y, 2 * x)

    (workspace / "include" / "scale.cuh").write_text("#define SCALE 3.0f\n")  # a header change rebuilds
    changed = cudasim.load(source, include, cache_dir=cache)
    assert changed.compiled and changed.library != first
    assert cudasim.stats["compiles"] == compiles + 3  # the runtime object was reused
    changed.get_function("scale")(1, 4, (x, y))
    np.testing.assert_array_equal(y, 3 * x)
    assert cudasim.build(source, include, options=["-DUNUSED=1"], cache_dir=cache) not in (first, changed.library)
    assert not [name for name in os.listdir(cache) if name.startswith("build-")]  # no temporaries left


def test_concurrent_builds_share_one_library(workspace):
    script = ("import sys; from gpucnn.devices import cudasim; "
              "print(cudasim.build(sys.argv[1], [sys.argv[2]], cache_dir=sys.argv[3]))")
    env = {**os.environ, "PYTHONPATH": REPOSITORY}
    processes = [subprocess.Popen([sys.executable, "-c", script, str(workspace / "uses_header.cu"),
                                   str(workspace / "include"), str(workspace / "cache")],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(3)]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    assert len({out.strip() for out, _ in outputs}) == 1
    assert sorted(name.split("-")[0] for name in os.listdir(workspace / "cache")) == ["runtime", "uses_header"]


def test_missing_compiler(workspace, monkeypatch):
    monkeypatch.setenv("CXX", "/nonexistent/g++")
    with pytest.raises(RuntimeError, match=r"cudasim needs g\+\+.*/nonexistent/g\+\+.*apt-get install g\+\+"):
        cudasim.load(workspace / "uses_header.cu", [workspace / "include"], cache_dir=workspace / "cache")
    assert not cudasim.available()
    monkeypatch.delenv("CXX")
    monkeypatch.setenv("PATH", str(workspace / "no-compilers-here"))  # the default g++ is missing too
    with pytest.raises(RuntimeError, match=r"compiler 'g\+\+'.*apt-get install g\+\+"):
        cudasim.build(workspace / "uses_header.cu", [workspace / "include"], cache_dir=workspace / "cache")


def test_compile_error_shows_the_compiler_output(tmp_path):
    with pytest.raises(cudasim.CompileError) as info:
        cudasim.load(os.path.join(KERNELS, "broken.cu"), cache_dir=tmp_path)
    assert isinstance(info.value, RuntimeError)
    assert "broken.cu:3" in str(info.value) and "undeclared_name" in str(info.value)
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".so")]


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        cudasim.load(os.path.join(KERNELS, "no_such_file.cu"))


def test_kernel_declarations_are_parsed():
    text = textwrap.dedent('''
        // extern "C" __global__ void commented_out(int x) {}
        extern "C" __global__ void __launch_bounds__(256, 2) first(const float* __restrict__ x,
                                                                   float *y, long long n) {}
        extern "C" __global__ void no_params() {}
        template <int N> __global__ void templated(float* y) {}
        __global__ void plain(unsigned int count, double scale) {}
        /* extern "C" __global__ void also_commented(int x) {} */
        extern "C" {
        __global__ void in_block(bool flag) { if (flag) { return; } }
        }
    ''')
    kernels = _source.find_kernels(_source.strip_comments(text))
    assert list(kernels) == ["first", "no_params", "plain", "in_block"]
    assert kernels["in_block"].extern_c
    assert [(p.name, p.declared) for p in kernels["first"].params] == [
        ("x", "const float* __restrict__"), ("y", "float*"), ("n", "long long")]
    assert kernels["first"].extern_c and not kernels["plain"].extern_c and kernels["no_params"].params == []
    assert [(p.name, p.declared) for p in kernels["plain"].params] == [("count", "unsigned int"), ("scale", "double")]


def test_dynamic_shared_declarations_are_rewritten_in_place():
    text = "a\nextern __shared__ __align__(16) float tile[];\nextern __shared__\n  unsigned char raw [ ];\nb\n"
    rewritten = _source.rewrite_dynamic_shared(text, _source.strip_comments(text))
    assert "CUDASIM_EXTERN_SHARED(float, tile);" in rewritten
    assert "CUDASIM_EXTERN_SHARED(unsigned char, raw);" in rewritten
    assert rewritten.count("\n") == text.count("\n") and rewritten.endswith("b\n")


SANITIZER_SCRIPT = """
import sys
import numpy as np
from gpucnn.devices import cudasim
module = cudasim.load(sys.argv[1], sanitize=sys.argv[3])
run = lambda name, *args, shared_mem=0: module.get_function(name)(1, 64, args, shared_mem=shared_mem)
x, y = np.arange(64, dtype=np.float32), np.zeros(64, np.float32)
run("double_it", x, y, np.int32(64))
assert (y == 2 * x).all()
try:
    run("checked", y, np.int32(1))
except cudasim.DeviceAssertError:
    pass
run("checked", y, np.int32(0))  # fibers abandoned by the assert leave no stale ASan state behind
case = sys.argv[2]
if case == "shared":
    run("shared_overflow", y, np.int32(1))
elif case == "dynamic":
    run("dynamic_shared_overflow", y, np.int32(1), shared_mem=64 * 4)
elif case == "local":
    run("local_overflow", y, np.int32(8))
elif case == "global":
    run("global_overflow", np.zeros(4096, np.float32), np.int32(4096), np.int32(0))
elif case == "undefined":
    run("signed_overflow", np.zeros(64, np.int32), np.int32(2**31 - 1))
print("finished", case)
"""
# What the report must say: ASan's report, or UBSan's "runtime error" (its object-size check sees
# some overflows first).
ANY_REPORT = ("AddressSanitizer", "runtime error")
SANITIZER_CASES = {"clean": None, "shared": ANY_REPORT, "dynamic": ANY_REPORT, "local": ANY_REPORT,
                   "global": ("AddressSanitizer: heap-buffer-overflow",),
                   "undefined": ("runtime error: signed integer overflow",)}


def test_sanitizers(tmp_path):
    """ASan + UBSan in subprocesses with libasan preloaded: a clean kernel passes, each bug is reported."""
    try:
        env = {**os.environ, **cudasim.sanitizer_env(), "PYTHONPATH": REPOSITORY}
    except RuntimeError as error:
        pytest.skip(str(error))
    source = os.path.join(KERNELS, "sanitize.cu")
    # ASan alone too: with UBSan, its object-size check reports some overflows before ASan can.
    runs = [("address,undefined", case, expected) for case, expected in SANITIZER_CASES.items()]
    runs += [("address", "shared", ("AddressSanitizer: global-buffer-overflow",)),
             ("address", "local", ("AddressSanitizer: stack-buffer-overflow",))]
    for sanitize in ("address,undefined", "address"):
        cudasim.build(source, sanitize=sanitize)  # fill the cache once, before the subprocesses start
    script = tmp_path / "sanitized.py"
    script.write_text(SANITIZER_SCRIPT)
    processes = [(case, expected, subprocess.Popen([sys.executable, str(script), source, case, sanitize], env=env,
                                                   text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
                 for sanitize, case, expected in runs]
    for case, expected, process in processes:
        out, err = process.communicate(timeout=120)
        if expected is None:
            assert process.returncode == 0 and f"finished {case}" in out, err
        else:
            assert process.returncode != 0 and f"finished {case}" not in out, (case, out, err)
            assert any(marker in err for marker in expected) and "sanitize.cu:" in err, (case, err)


def test_sanitizer_build_needs_the_preload():
    if cudasim.asan_loaded():
        pytest.skip("this process has libasan preloaded")
    with pytest.raises(RuntimeError, match="LD_PRELOAD"):
        cudasim.load(os.path.join(KERNELS, "sanitize.cu"), sanitize=True)


def test_undefined_behaviour_sanitizer_needs_no_preload(tmp_path):
    script = ("import sys, numpy as np; from gpucnn.devices import cudasim; "
              "m = cudasim.load(sys.argv[1], sanitize='undefined'); "
              "m.get_function('signed_overflow')(1, 4, (np.zeros(4, np.int32), np.int32(2**31 - 1)))")
    env = {**os.environ, "PYTHONPATH": REPOSITORY}
    env.pop("LD_PRELOAD", None)
    result = subprocess.run([sys.executable, "-c", script, os.path.join(KERNELS, "sanitize.cu")],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode != 0 and "signed integer overflow" in result.stderr


def test_bad_options():
    with pytest.raises(ValueError, match="sanitize"):
        cudasim.load(os.path.join(KERNELS, "basic.cu"), sanitize="memory")
    with pytest.raises(ValueError, match="switch"):
        cudasim.load(os.path.join(KERNELS, "basic.cu"), switch="threads")
