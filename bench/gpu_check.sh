#!/usr/bin/env bash
# The GPU half of the checks, in one command, on a machine with an NVIDIA GPU, CuPy and PyTorch
# installed and no network:
#
#   bench/gpu_check.sh OUT_DIR
#
# Runs the GPU tests and the whole suite (whose op tests then include the GPU), compute-sanitizer's
# memcheck, racecheck, initcheck and synccheck over a small run of every kernel, and the benchmarks:
# python -m bench ops --device cuda (the default mix, then the resnet18, jetson and vgg16 suites),
# python -m bench train --device cuda, and the CPU conv2d benchmark.
# Each step's log goes to OUT_DIR/<step>.log; OUT_DIR/summary.txt lists every step's exit status and
# seconds. The most telling steps run first.
# Exits non-zero when any step failed.
set -u
out="${1:?usage: bench/gpu_check.sh OUT_DIR}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$(dirname "$0")/.." || exit 1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python="${PYTHON:-python3}"
: > "$out/summary.txt"
failed=0

step() {
  local name="$1"
  shift
  echo "== $name: $*"
  local start=$SECONDS
  "$@" > "$out/$name.log" 2>&1
  local rc=$?
  tail -n 5 "$out/$name.log"
  echo "$name: exit $rc, $((SECONDS - start)) s" | tee -a "$out/summary.txt"
  [ "$rc" -eq 0 ] || failed=1
}

step gpu-info nvidia-smi
step pytest-gpu "$python" -m pytest -m gpu -q -rs -p no:cacheprovider

sanitizer="$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)"
if [ -x "$sanitizer" ]; then
  for tool in memcheck racecheck initcheck synccheck; do
    step "sanitizer-$tool" "$sanitizer" --tool "$tool" --error-exitcode 9 "$python" -m bench.kernel_smoke --device cuda
  done
else
  echo "compute-sanitizer not found: sanitizer steps skipped" | tee -a "$out/summary.txt"
fi

step bench-ops-cuda "$python" -m bench ops --device cuda --out "$out"
step bench-train-cuda "$python" -m bench train --device cuda --batch 128 --out "$out"
step bench-ops-cuda-resnet18 "$python" -m bench ops --device cuda --suite resnet18 --out "$out"
step bench-ops-cuda-jetson "$python" -m bench ops --device cuda --suite jetson --out "$out"
# test_packaging builds a wheel, which needs the network for its build backend.
step pytest-all "$python" -m pytest -q -p no:cacheprovider --deselect tests/test_packaging.py
step ptxas-report "$python" -m bench.ptxas_report --out "$out"
# The longest steps last: what ran before them is in OUT_DIR even if a time limit stops these.
step bench-ops-cuda-vgg16 "$python" -m bench ops --device cuda --suite vgg16 --out "$out"
step bench-conv2d-cpu "$python" -m bench.conv2d --out "$out"

echo "summary:"
cat "$out/summary.txt"
exit "$failed"
