#!/usr/bin/env bash
# The GPU half of the checks, in one command, on a machine with an NVIDIA GPU, CuPy and PyTorch
# installed and no network:
#
#   bench/gpu_check.sh OUT_DIR [SECONDS [BEFORE]]
#
# Runs the GPU tests, compute-sanitizer's memcheck, racecheck, initcheck and synccheck over a small
# run of every kernel, the op tests (which then include the GPU), and the benchmarks:
# with BEFORE (a folder with another version's gpucnn/ and cuda/), python -m bench compare against it
# first (the small ResNet's layers at batch 128, then ResNet-18's with the 64 and 128 tiles forced too,
# then VGG-16's max pooling, then the Jetson layers' backward-data, whose RGB stem takes the exact gather);
# python -m bench kernels (conv2d's kernel paths on the Jetson layers and the resnet18 ones at batch 32, also
# on the device alone; every path on the ConvNetJS and lecture layers, backward-data's wider gather and the
# narrow layers on the tiles on the small ResNet's; then the resnet18 ones at batch 64 and the VGG-16 ones),
# python -m bench ops --device cuda (the resnet18 and jetson suites, the default mix, the convnetjs and lecture
# suites, then vgg16),
# python -m bench train and infer --device cuda, python -m bench.profile (a training step's host profile, its host
# work on cudasim, single op calls and a launch's host time; ncu over conv2d's kernels where ncu is installed),
# then the whole suite and the CPU conv2d benchmark.
# Each step's log goes to OUT_DIR/<step>.log; OUT_DIR/summary.txt lists every step's exit status and
# seconds. The most telling steps run first. With SECONDS, the whole check ends within that time:
# each step may use what is left (some have a cap of their own), and the steps that no longer fit are
# listed as skipped; exit status 124 in the summary is a step stopped by its time limit. With STEPS in
# the environment (shell patterns of step names, space-separated), only the steps it names run, e.g.
# STEPS='gpu-info pytest-gpu bench-compare-*' first and the rest in a second call; the others are
# listed as not selected.
# Exits non-zero when any step failed or was skipped.
set -u
out="${1:?usage: bench/gpu_check.sh OUT_DIR [SECONDS [BEFORE]]}"
budget="${2:-0}"
before="${3:-}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
if [ -n "$before" ] && ! before="$(cd "$before" 2> /dev/null && pwd)"; then
  echo "bench/gpu_check.sh: BEFORE ${3} is no folder" >&2
  exit 2
fi
cd "$(dirname "$0")/.." || exit 1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
python="${PYTHON:-python3}"
: > "$out/summary.txt"
failed=0
deadline=$((SECONDS + budget))

# Whether STEPS (unset or empty: every step) names step NAME.
selected() {
  [ -z "${STEPS:-}" ] && return 0
  local patterns pattern
  read -r -a patterns <<< "$STEPS"
  for pattern in "${patterns[@]}"; do
    # shellcheck disable=SC2053  # a pattern: unquoted on purpose
    [[ "$1" == $pattern ]] && return 0
  done
  return 1
}

# step NAME CAP COMMAND...: runs COMMAND with its output in OUT_DIR/NAME.log, for at most CAP seconds
# (0: no cap of its own) and never past the deadline.
step() {
  local name="$1" cap="$2"
  shift 2
  if ! selected "$name"; then
    echo "$name: not selected" >> "$out/summary.txt"
    return
  fi
  local limit="$cap"
  if [ "$budget" -gt 0 ]; then
    local left=$((deadline - SECONDS))
    if [ "$left" -lt 10 ]; then
      echo "$name: skipped, the time budget is spent" | tee -a "$out/summary.txt"
      failed=1
      return
    fi
    if [ "$limit" -eq 0 ] || [ "$limit" -gt "$left" ]; then limit="$left"; fi
  fi
  echo "== $name: $*"
  local start=$SECONDS rc
  if [ "$limit" -gt 0 ]; then
    timeout -k 5 "$limit" "$@" > "$out/$name.log" 2>&1
  else
    "$@" > "$out/$name.log" 2>&1
  fi
  rc=$?
  tail -n 5 "$out/$name.log"
  echo "$name: exit $rc, $((SECONDS - start)) s" | tee -a "$out/summary.txt"
  [ "$rc" -eq 0 ] || failed=1
}

# Parallel workers for the op tests when pytest-xdist is installed.
workers=()
if "$python" -c "import xdist" 2> /dev/null; then workers=(-n 8); fi

step gpu-info 30 nvidia-smi
step pytest-gpu 180 "$python" -m pytest -m gpu -q -rs -p no:cacheprovider

sanitizer="$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)"
sanitize() {
  if [ -x "$sanitizer" ]; then
    for tool in "$@"; do
      step "sanitizer-$tool" 120 "$sanitizer" --tool "$tool" --error-exitcode 9 \
        "$python" -m bench.kernel_smoke --device cuda
    done
  else
    echo "compute-sanitizer not found: sanitizer steps $* skipped" | tee -a "$out/summary.txt"
  fi
}
sanitize memcheck racecheck

# what changed since BEFORE, timed against it in the same run
if [ -n "$before" ]; then
  step bench-compare-smallresnet 150 "$python" -m bench compare "$before" --device cuda --suite smallresnet \
    --batch 128 --out "$out"
  step bench-compare-resnet18 150 "$python" -m bench compare "$before" --device cuda --suite resnet18 \
    --paths chosen,tile64,tile128 --out "$out"
  step bench-compare-pool 120 "$python" -m bench compare "$before" --device cuda --suite vgg16 \
    --ops maxpool2d_forward,maxpool2d_backward --out "$out"
  step bench-compare-jetson 90 "$python" -m bench compare "$before" --device cuda --suite jetson \
    --ops conv2d_backward_data --out "$out"
fi

# conv2d's kernel paths (split reductions, the 64 and 128 tiles, Winograd) layer by layer: what the
# launcher is set from; first ResNet-18's layers at batch 32, where the 128 tile's backward-filter runs,
# per call and on the device alone (12 paths; the caps grew with the paths from 10)
step bench-kernels-cuda 180 "$python" -m bench kernels --device cuda --suite resnet18 --device-times --out "$out"
# every op per call and on the device alone, on the suites with targets; then training, and where a
# training step's time goes
step bench-ops-cuda-resnet18 120 "$python" -m bench ops --device cuda --suite resnet18 --out "$out"
step bench-ops-cuda-jetson 120 "$python" -m bench ops --device cuda --suite jetson --out "$out"
step bench-train-cuda 180 "$python" -m bench train --device cuda --batch 128 --out "$out"
# torchvision's networks' inference, batch 1 (a Jetson's) and 32
step bench-infer-cuda 120 "$python" -m bench infer --device cuda --models resnet18,resnet50,mobilenet_v2 \
  --batches 1,32 --out "$out"
step profile-step 60 "$python" -m bench.profile step --device cuda --model resnet --batch 128
# LeNet's step (0.64 of torch's images/s on an H200 on 2026-11-26, 1.09 on the next day): how much of it is
# the host's
step profile-step-lenet 60 "$python" -m bench.profile step --device cuda --model lenet --batch 128
# the batch-1 Jetson layers, where few tiles make the reductions split, and the default mix of ops
step bench-kernels-cuda-jetson 150 "$python" -m bench kernels --device cuda --suite jetson --device-times \
  --out "$out"
step bench-ops-cuda 180 "$python" -m bench ops --device cuda --out "$out"
# the ConvNetJS and lecture suites' small layers (the default mix holds one ConvNetJS layer), which the
# host's work per call bounds
step bench-ops-cuda-convnetjs 60 "$python" -m bench ops --device cuda --suite convnetjs --out "$out"
step bench-ops-cuda-lecture 60 "$python" -m bench ops --device cuda --suite lecture --out "$out"
# every kernel path on the ConvNetJS and lecture layers, also on the device alone, where gpucnn's device time
# is furthest from cuDNN's (0.65-0.74 of its speed over forward and both backwards on an H100, 2026-11-28,
# before their narrow forwards took the pixels kernel); then the small ResNet's layers at batch 128 with
# backward-data's exact gather for its 16 channels, with its narrow layers on the tiles (forward,
# backward-data and backward-filter, which take the pixels kernels), and with the forwards and
# backward-data of its 32-channel layers on the pixels kernel in splits
step bench-kernels-cuda-convnetjs 90 "$python" -m bench kernels --device cuda --suite convnetjs --device-times \
  --out "$out"
step bench-kernels-cuda-lecture 60 "$python" -m bench kernels --device cuda --suite lecture --device-times \
  --out "$out"
step bench-kernels-cuda-smallresnet 60 "$python" -m bench kernels --device cuda --suite smallresnet --batch 128 \
  --device-times --paths gather20,pixels_off,pixels_split --out "$out"
# the same step's host work without a GPU (cudasim, launches skipped): the number the CPU-only machines
# measure, so this host's Python speed is known against theirs (it builds its kernels with g++ first)
step profile-host 120 "$python" -m bench.profile host --model resnet
# single op calls of the Jetson suite's size, per call and profiled: where a small op's host time goes
step profile-calls 90 "$python" -m bench.profile calls --device cuda
# a kernel launch's host time, CuPy's way and from packed arguments (every op's launches): conv2d's 22
# arguments, ReLU's 3
step profile-launches 60 "$python" -m bench.profile launches --device cuda

sanitize initcheck synccheck
step pytest-ops 240 "$python" -m pytest -q -p no:cacheprovider "${workers[@]}" tests/ops
# at batch 64 ResNet-18's 3x3 layers have 2.4e9 multiply-adds, just above Conv2d.WINOGRAD_GPU_MIN_MACS
step bench-kernels-cuda-b64 120 "$python" -m bench kernels --device cuda --suite resnet18 --batch 64 --out "$out"
step bench-kernels-cuda-vgg16 240 "$python" -m bench kernels --device cuda --suite vgg16 --batch 32 --out "$out"
# ncu over conv2d's kernels (occupancy, stalls), where ncu is installed
if command -v ncu > /dev/null; then
  step ncu-conv2d 120 ncu --section SpeedOfLight --section Occupancy --section WarpStateStats \
    --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis \
    -k 'regex:conv2d_(forward|backward_data|backward_filter)_' --launch-count 12 "$python" -m bench.profile conv
  # every kernel of one training step, summed per kernel name: where the device's time goes (the
  # program's last step runs alone in the profiler's range)
  step ncu-train-step 120 ncu --profile-from-start off --section SpeedOfLight --print-summary per-kernel \
    "$python" -m bench.profile step --device cuda --model resnet --batch 128 --steps 1 --top 0
fi
# The longest steps last: what ran before them is in OUT_DIR even if a time limit stops these.
step bench-ops-cuda-vgg16 0 "$python" -m bench ops --device cuda --suite vgg16 --out "$out"
step ptxas-report 120 "$python" -m bench.ptxas_report --out "$out"
# test_packaging builds a wheel, which needs the network for its build backend; the linters of the
# Dockerfile and the shell scripts come from the test extra, which cannot be installed without it.
step pytest-all 0 "$python" -m pytest -q -p no:cacheprovider "${workers[@]}" --deselect tests/test_packaging.py \
  --deselect tests/deploy/test_dockerfile.py::test_hadolint_clean \
  --deselect tests/deploy/test_jetson.py::test_shellcheck_clean \
  --deselect tests/deploy/test_gpu_check.py::test_shellcheck_clean
step bench-conv2d-cpu 0 "$python" -m bench.conv2d --out "$out"

echo "summary:"
cat "$out/summary.txt"
exit "$failed"
