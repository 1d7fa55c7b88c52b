"""gpucnn export DIR --onnx FILE: a trained run to ONNX, and its errors."""

import numpy as np
import onnxruntime

from gpucnn import io
from helpers import assert_close

from cli_helpers import one_line_error, run_module


def test_export_a_trained_run(tmp_path):
    run_dir = tmp_path / "run"
    trained = run_module("train", "--epochs", "1", "--train-size", "96", "--no-progress", "--no-plots",
                         "--out", run_dir, cwd=tmp_path)
    assert trained.code == 0, trained
    exported = run_module("export", run_dir, "--onnx", tmp_path / "digits.onnx", cwd=tmp_path)
    assert exported.code == 0, exported
    model, config = io.load_model(run_dir / io.MODEL_FILE)
    model.eval()
    x = np.random.default_rng(0).standard_normal((5,) + tuple(config["input_shape"])).astype(np.float32)
    session = onnxruntime.InferenceSession(str(tmp_path / "digits.onnx"), providers=["CPUExecutionProvider"])
    (onnx_output,) = session.run(None, {session.get_inputs()[0].name: x})
    assert_close(onnx_output, model(x), atol=1e-4, rtol=1e-4)


def test_export_errors(tmp_path):
    assert "no model.safetensors" in one_line_error(run_module("export", tmp_path, "--onnx", tmp_path / "x.onnx"))
    assert run_module("export", tmp_path).code == 2  # --onnx is required
