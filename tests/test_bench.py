"""The benchmarks run (tiny shapes, one repeat) so they cannot rot; timings are never asserted."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_conv2d_benchmark_quick_run_writes_its_tables(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bench.conv2d", "--quick", "--out", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (markdown,) = tmp_path.glob("conv2d-quick_*.md")
    (record_path,) = tmp_path.glob("conv2d-quick_*.json")
    assert "| **geometric mean** |" in markdown.read_text() and "geometric mean" in result.stdout
    record = json.loads(record_path.read_text())
    assert record["op"] == "conv2d" and record["quick"] and len(record["rows"]) >= 2
    assert record["torch_threads"] == record["numpy_blas"]["threads"] >= 1
    for row in record["rows"]:
        assert row["gpucnn_ms"] > 0 and row["torch_ms"] > 0 and row["ratio"] > 0


def _run_bench(tmp_path, *arguments):
    result = subprocess.run([sys.executable, "-m", "bench", *arguments, "--quick", "--out", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.parametrize("device", ["cpu", "cudasim"])
def test_ops_benchmark_quick_run_writes_its_tables(tmp_path, device):
    result = _run_bench(tmp_path, "ops", "--device", device)
    (markdown,) = tmp_path.glob(f"ops-tiny-{device}-quick_*.md")
    (record_path,) = tmp_path.glob(f"ops-tiny-{device}-quick_*.json")
    assert "| layer | op |" in markdown.read_text() and "conv2d_forward_backward" in result.stdout
    record = json.loads(record_path.read_text())
    assert record["bench"] == "ops" and record["quick"] and record["device"] == device
    assert record["roofline"]["gemm_gflops"] > 0 and record["roofline"]["copy_gbps"] > 0
    ops = {row["op"] for row in record["rows"]}
    assert ops == {"conv2d_forward", "conv2d_backward_data", "conv2d_backward_filter", "maxpool2d_forward",
                   "maxpool2d_backward", "avgpool2d_forward", "avgpool2d_backward", "relu_forward",
                   "relu_backward"}
    for row in record["rows"]:
        assert row["gpucnn_ms"] > 0 and row["torch_ms"] > 0 and row["ratio"] > 0 and row["roofline_fraction"] > 0


def test_train_benchmark_quick_run_writes_its_tables(tmp_path):
    _run_bench(tmp_path, "train", "--device", "cpu")
    (markdown,) = tmp_path.glob("train-cpu-quick_*.md")
    (record_path,) = tmp_path.glob("train-cpu-quick_*.json")
    assert "| model | batch |" in markdown.read_text()
    record = json.loads(record_path.read_text())
    assert [row["model"] for row in record["rows"]] == ["lenet", "convnetjs", "resnet"]
    for row in record["rows"]:
        assert row["gpucnn"]["images_per_s"] > 0 and row["torch"]["images_per_s"] > 0
        assert row["gpucnn"]["peak_memory_bytes"] >= 0 and row["torch"]["peak_memory_bytes"] >= 0
        # the same network from the same weights: the first losses agree
        assert row["first_loss_difference"] < 1e-4


def test_suites_name_every_op_and_valid_shapes():
    from bench.suites import SUITES

    for name, layers in SUITES.items():
        assert layers, name
        for layer in layers:
            assert min(layer.input_shape()) >= 1
            if hasattr(layer, "output_size"):
                assert layer.output_size() >= 1, (name, layer)
