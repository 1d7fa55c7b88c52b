"""The benchmarks run (tiny shapes, one repeat) so they cannot rot; timings are never asserted."""

import json
import subprocess
import sys
from pathlib import Path

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
