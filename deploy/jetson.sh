#!/usr/bin/env bash
# Sets gpucnn up on an NVIDIA Jetson in one command, then checks it on the GPU.
#
#   deploy/jetson.sh                       # venv, CuPy, gpucnn from this checkout, gpucnn info, smoke test
#   deploy/jetson.sh --trt model.onnx      # also: a TensorRT fp16 engine of model.onnx and its latency
#   deploy/jetson.sh --dry-run             # print every command instead of running it
#
# The L4T release in /etc/nv_tegra_release names the JetPack and so the CUDA major version:
#   L4T R35 = JetPack 5 (Ubuntu 20.04, CUDA 11.4) -> cupy-cuda11x
#   L4T R36 = JetPack 6 (Ubuntu 22.04, CUDA 12.2/12.6) -> cupy-cuda12x
# Older releases (JetPack 4: CUDA 10.2, which CuPy no longer supports) and newer ones are refused.
# CuPy is never installed with its 'ctk' extra here: NVIDIA's pip CUDA wheels are built for server
# ARM (SBSA), not for Jetson's integrated GPU; CuPy uses JetPack's own CUDA in /usr/local/cuda.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CHECKOUT="$(dirname "$SCRIPT_DIR")"

usage() {
    cat <<EOF
usage: $(basename "$0") [options]

  --venv DIR        virtual environment to create or update (default: \$HOME/.venvs/gpucnn)
  --source PATH     gpucnn to install: a checkout or a wheel file (default: $CHECKOUT)
  --python PATH     interpreter for the venv, Python >= 3.10 (default: the newest python3.1x found)
  --trt MODEL.onnx  build a TensorRT engine of MODEL.onnx with trtexec (fp16) and report its latency
  --trt-only        with --trt: skip the installation and the checks, only build and time the engine
  --dry-run         print every command instead of running it
  --root DIR        read the board's files (/etc/nv_tegra_release, trtexec) under DIR (for tests)
  -h, --help        this help
EOF
}

die() {
    echo "jetson.sh: error: $*" >&2
    exit 1
}

DRY_RUN=0
ROOT=""
VENV="${HOME:-/root}/.venvs/gpucnn"
SOURCE="$CHECKOUT"
PYTHON=""
TRT_MODEL=""
TRT_ONLY=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --root) ROOT="${2:?--root needs a folder}"; shift ;;
        --venv) VENV="${2:?--venv needs a folder}"; shift ;;
        --source) SOURCE="${2:?--source needs a path}"; shift ;;
        --python) PYTHON="${2:?--python needs a path}"; shift ;;
        --trt) TRT_MODEL="${2:?--trt needs an .onnx file}"; shift ;;
        --trt-only) TRT_ONLY=1 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown option '$1'" ;;
    esac
    shift
done
[[ $TRT_ONLY -eq 0 || -n $TRT_MODEL ]] || die "--trt-only needs --trt MODEL.onnx"
[[ -z $TRT_MODEL || -f $TRT_MODEL ]] || die "--trt: no such file: $TRT_MODEL"

# Prints a command, shell-quoted so that it can be pasted.
show() {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
}

# Runs a command, or with --dry-run only prints it.
run() {
    show "$@"
    if [[ $DRY_RUN -eq 0 ]]; then
        "$@"
    fi
}

# Root privileges for apt: sudo unless already root.
as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        run "$@"
    else
        run sudo "$@"
    fi
}

# ---------------------------------------------------------------------------------------- release
# The first line reads like: "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, ..."
RELEASE_FILE="$ROOT/etc/nv_tegra_release"
[[ -f $RELEASE_FILE ]] || die "$RELEASE_FILE not found: this does not look like a Jetson running L4T (JetPack)"
release_line="$(head -n 1 "$RELEASE_FILE")"
if [[ $release_line =~ R([0-9]+)[[:space:]]*\(release\),[[:space:]]*REVISION:[[:space:]]*([0-9.]+) ]]; then
    L4T_MAJOR="${BASH_REMATCH[1]}"
    L4T_REVISION="${BASH_REMATCH[2]}"
else
    die "cannot read the L4T release from $RELEASE_FILE (first line: '$release_line')"
fi
L4T="R$L4T_MAJOR.$L4T_REVISION"
case "$L4T_MAJOR" in
    35) JETPACK=5; CUDA_MAJOR=11; CUPY_WHEEL="cupy-cuda11x" ;;
    36) JETPACK=6; CUDA_MAJOR=12; CUPY_WHEEL="cupy-cuda12x" ;;
    *)
        if [[ $L4T_MAJOR -lt 34 ]]; then
            echo "jetson.sh: L4T $L4T is older than JetPack 5: it ships CUDA 10.2 or older (JetPack 4), which" \
                "CuPy and gpucnn do not support. Flash JetPack 5 (L4T R35) or JetPack 6 (L4T R36)." >&2
        elif [[ $L4T_MAJOR -eq 34 ]]; then
            echo "jetson.sh: L4T $L4T is a JetPack 5.0 developer preview, not supported: flash JetPack 5.1" \
                "(L4T R35) or JetPack 6 (L4T R36)." >&2
        else
            echo "jetson.sh: L4T $L4T is newer than JetPack 6 and not supported by this script yet;" \
                "supported: JetPack 5 (L4T R35) and JetPack 6 (L4T R36)." >&2
        fi
        exit 2
        ;;
esac
echo "L4T $L4T: JetPack $JETPACK, CUDA $CUDA_MAJOR -> $CUPY_WHEEL"

# JetPack's CUDA: CuPy finds NVRTC and the headers it compiles gpucnn's kernels with here.
export CUDA_PATH=/usr/local/cuda
export PATH="$CUDA_PATH/bin:$PATH"
export LD_LIBRARY_PATH="$CUDA_PATH/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# ----------------------------------------------------------------------------------------- install
# gpucnn needs Python >= 3.10. JetPack 6 (Ubuntu 22.04) has 3.10; JetPack 5 (Ubuntu 20.04) has 3.8,
# so there Python 3.10 comes from the deadsnakes PPA (built for arm64).
find_python() {
    local candidate
    for candidate in python3.13 python3.12 python3.11 python3.10 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

install_gpucnn() {
    if [[ -z $PYTHON ]] && ! PYTHON="$(find_python)"; then
        echo "no Python >= 3.10 found: installing python3.10 from the deadsnakes PPA"
        as_root apt-get update
        as_root apt-get install -y software-properties-common
        as_root add-apt-repository -y ppa:deadsnakes/ppa
        as_root apt-get install -y python3.10 python3.10-venv python3.10-dev
        PYTHON=python3.10
    fi
    # --system-site-packages: JetPack installs its Python bindings (TensorRT's tensorrt module, VPI,
    # OpenCV with CUDA) into the system Python, and they cannot come from PyPI; the venv keeps them
    # visible, while its own packages (NumPy, CuPy) take precedence.
    run "$PYTHON" -m venv --system-site-packages "$VENV"
    run "$VENV/bin/python" -m pip install --upgrade pip
    # CuPy for JetPack's CUDA major version, without the ctk extra (see the top of this file).
    run "$VENV/bin/python" -m pip install "$CUPY_WHEEL>=13"
    # gpucnn with the command's extra; a checkout or a wheel, the extra appended to the path.
    run "$VENV/bin/python" -m pip install "${SOURCE}[cli]"
}

# A 3x3 convolution and ReLU on the GPU, compared with the same layer on the CPU. argv[1]: the device.
SMOKE_TEST='
import sys
import numpy, gpucnn
from gpucnn import nn
device = sys.argv[1] if len(sys.argv) > 1 else "cuda"
gpucnn.manual_seed(0)
conv = nn.Conv2d(3, 8, 3, padding=1)
x = numpy.random.default_rng(0).standard_normal((2, 3, 32, 32), dtype=numpy.float32)
expected = nn.functional.relu(conv(gpucnn.tensor(x, device="cpu"))).numpy()
conv.to(device)
actual = nn.functional.relu(conv(gpucnn.tensor(x, device=device))).numpy()
error = float(numpy.abs(actual - expected).max())
print(f"smoke inference on {device}: Conv2d(3, 8, 3) + ReLU on (2, 3, 32, 32), max |{device} - cpu| = {error:.1e}")
sys.exit(0 if error <= 1e-3 else f"smoke inference failed: {device} and cpu differ by {error}")
'

check_gpucnn() {
    run "$VENV/bin/gpucnn" info
    run "$VENV/bin/python" -c "$SMOKE_TEST" cuda
}

# --------------------------------------------------------------------------------------- TensorRT
find_trtexec() {
    if command -v trtexec >/dev/null 2>&1; then
        command -v trtexec
    elif [[ -x $ROOT/usr/src/tensorrt/bin/trtexec ]]; then
        echo "$ROOT/usr/src/tensorrt/bin/trtexec"  # where JetPack puts it, off the PATH
    else
        return 1
    fi
}

# Builds MODEL.fp16.engine beside MODEL.onnx; trtexec then times it, and its latency summary is
# printed from the log. A dynamic batch dimension (gpucnn's export has one) is fixed at 1 by
# trtexec, which says so in the log.
build_engine() {
    local trtexec engine log latency throughput
    trtexec="$(find_trtexec)" || die "trtexec not found (on the PATH or in /usr/src/tensorrt/bin): install" \
        "TensorRT with JetPack (sudo apt-get install nvidia-tensorrt)"
    engine="${TRT_MODEL%.onnx}.fp16.engine"
    log="${TRT_MODEL%.onnx}.fp16.trtexec.log"
    show "$trtexec" "--onnx=$TRT_MODEL" --fp16 "--saveEngine=$engine"
    echo "  (output to $log)"
    if [[ $DRY_RUN -eq 1 ]]; then
        return 0
    fi
    "$trtexec" "--onnx=$TRT_MODEL" --fp16 "--saveEngine=$engine" >"$log" 2>&1 ||
        die "trtexec failed on $TRT_MODEL: see $log"
    # "[I] Latency: min = ..., mean = ..., median = ..." (not the "H2D Latency" or "D2H Latency" lines)
    latency="$(grep -E '\] Latency: ' "$log" | tail -n 1 | sed -E 's/.*\] Latency: //')" || true
    throughput="$(grep -E '\] Throughput: ' "$log" | tail -n 1 | sed -E 's/.*\] Throughput: //')" || true
    [[ -n $latency ]] || die "no latency in trtexec's output: see $log"
    echo "TensorRT fp16 engine: $engine"
    echo "latency: $latency"
    if [[ -n $throughput ]]; then
        echo "throughput: $throughput"
    fi
}

if [[ $TRT_ONLY -eq 0 ]]; then
    install_gpucnn
    check_gpucnn
fi
if [[ -n $TRT_MODEL ]]; then
    build_engine
fi
if [[ $DRY_RUN -eq 1 ]]; then
    echo "dry run: nothing was run"
elif [[ $TRT_ONLY -eq 0 ]]; then
    echo "gpucnn is ready: $VENV/bin/gpucnn (activate with: source $VENV/bin/activate)"
fi
