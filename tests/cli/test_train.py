"""gpucnn train: outputs, determinism, exact resume, bad input, and the default run's accuracy."""

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from gpucnn import io
from gpucnn.train import Trainer, TrainConfig
from gpucnn import data

from cli_helpers import ROOT, one_line_error, run_module

SMALL = ("--train-size", 160, "--batch-size", 32, "--no-progress")


def weights(folder):
    tensors, _ = io.read_tensors(folder / io.CHECKPOINT_FILE, io.CHECKPOINT_FORMAT)
    return tensors


def history(folder):
    records = json.loads((folder / "metrics.json").read_text())["epochs"]
    return [{key: value for key, value in record.items() if key != "seconds"} for record in records]


def assert_same_tensors(first, second):
    assert first.keys() == second.keys()
    for name in first:
        assert first[name].dtype == second[name].dtype and np.array_equal(first[name], second[name]), name


def test_default_run_reaches_97_percent_and_writes_everything(trained_run):
    folder, metrics = trained_run
    assert metrics["test_accuracy"] >= 0.97, metrics["epochs"][-1]
    assert metrics["dataset"] == "digits" and metrics["model"] == "lenet" and metrics["device"] == "cpu"
    assert metrics["train_size"] + metrics["test_size"] == 1797
    assert len(metrics["epochs"]) == metrics["config"]["epochs"] == 20
    assert set(metrics["epochs"][0]) >= {"epoch", "train_loss", "train_accuracy", "test_accuracy", "lr"}
    assert metrics["epochs"][-1]["test_accuracy"] == metrics["test_accuracy"]
    for name in ("curves.png", "filters.png", "activations.png"):
        with Image.open(folder / name) as image:
            assert image.format == "PNG" and image.width >= 400 and image.height >= 200
    config = io.read_model_config(folder / io.MODEL_FILE)
    assert config["model"] == {"name": "lenet", "in_channels": 1, "image_size": [8, 8], "num_classes": 10}
    assert config["classes"] == [str(digit) for digit in range(10)] and config["dataset"] == "digits"
    checkpoint = io.load_checkpoint(folder / io.CHECKPOINT_FILE)
    assert checkpoint.epoch == 20 and checkpoint.config["seed"] == 0
    assert checkpoint.optimizer_state["state"][0]["step"] == 20 * 45
    assert "optimizer.state.0.exp_avg" in weights(folder)


def test_seed_makes_a_cpu_run_deterministic(gpucnn_cli, tmp_path):
    for name in ("a", "b"):
        assert gpucnn_cli("train", "--epochs", 2, "--seed", 7, "--out", tmp_path / name, "--no-plots", *SMALL).code == 0
    assert history(tmp_path / "a") == history(tmp_path / "b")
    assert_same_tensors(weights(tmp_path / "a"), weights(tmp_path / "b"))
    other = gpucnn_cli("train", "--epochs", 1, "--seed", 8, "--out", tmp_path / "c", "--no-plots", *SMALL)
    assert other.code == 0
    assert not np.array_equal(weights(tmp_path / "c")["model.0.weight"], weights(tmp_path / "a")["model.0.weight"])


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "adadelta"])
def test_resume_continues_bit_for_bit(gpucnn_cli, tmp_path, optimizer):
    """2 epochs straight == 1 epoch, then --resume to 2: weights, optimizer state and metrics."""
    options = ("--optimizer", optimizer, "--lr-step", 1, "--no-plots", *SMALL)
    assert gpucnn_cli("train", "--epochs", 2, "--out", tmp_path / "straight", *options).code == 0
    assert gpucnn_cli("train", "--epochs", 1, "--out", tmp_path / "split", *options).code == 0
    resumed = gpucnn_cli("train", "--resume", tmp_path / "split", "--epochs", 2, "--no-progress", "--no-plots")
    assert resumed.code == 0, resumed
    assert "resuming" in resumed.out
    assert_same_tensors(weights(tmp_path / "straight"), weights(tmp_path / "split"))
    assert history(tmp_path / "straight") == history(tmp_path / "split")


def test_resume_into_another_folder_and_when_already_done(gpucnn_cli, tmp_path):
    assert gpucnn_cli("train", "--epochs", 1, "--out", tmp_path / "run", "--no-plots", *SMALL).code == 0
    done = gpucnn_cli("train", "--resume", tmp_path / "run")
    assert done.code == 0 and "already trained 1 epochs" in done.out
    more = gpucnn_cli("train", "--resume", tmp_path / "run", "--epochs", 2, "--out", tmp_path / "more", "--no-progress")
    assert more.code == 0, more
    assert io.load_checkpoint(tmp_path / "run" / io.CHECKPOINT_FILE).epoch == 1
    assert io.load_checkpoint(tmp_path / "more" / io.CHECKPOINT_FILE).epoch == 2
    assert (tmp_path / "more" / "activations.png").is_file()


def test_bad_resume_folders(gpucnn_cli, tmp_path):
    (tmp_path / "empty").mkdir()
    line = one_line_error(gpucnn_cli("train", "--resume", tmp_path / "empty"))
    assert "no checkpoint.safetensors" in line
    one_line_error(gpucnn_cli("train", "--resume", tmp_path / "missing"))
    assert gpucnn_cli("train", "--epochs", 1, "--out", tmp_path / "run", "--no-plots", *SMALL).code == 0
    line = one_line_error(gpucnn_cli("train", "--resume", tmp_path / "run", "--epochs", 2, "--lr", 0.5), code=2)
    assert "--lr 0.5 differs" in line
    checkpoint = tmp_path / "run" / io.CHECKPOINT_FILE
    original = checkpoint.read_bytes()
    checkpoint.write_bytes(original[: len(original) // 2])
    line = one_line_error(gpucnn_cli("train", "--resume", tmp_path / "run", "--epochs", 2))
    assert "truncated or corrupt" in line
    assert checkpoint.read_bytes() == original[: len(original) // 2]  # the evidence is left alone


def test_out_that_is_a_file_or_holds_a_run(gpucnn_cli, tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    line = one_line_error(gpucnn_cli("train", "--out", target, *SMALL))
    assert "is a file" in line and target.read_text() == "keep me"
    assert gpucnn_cli("train", "--epochs", 1, "--out", tmp_path / "run", "--no-plots", *SMALL).code == 0
    before = (tmp_path / "run" / "metrics.json").read_bytes()
    line = one_line_error(gpucnn_cli("train", "--epochs", 1, "--out", tmp_path / "run", *SMALL))
    assert "already holds a run" in line and (tmp_path / "run" / "metrics.json").read_bytes() == before
    again = gpucnn_cli("train", "--epochs", 1, "--seed", 3, "--out", tmp_path / "run", "--overwrite", "--no-plots",
                       *SMALL)
    assert again.code == 0


def test_default_out_folder_is_never_reused(gpucnn_cli, tmp_path):
    for expected in ("digits", "digits-2"):
        result = gpucnn_cli("train", "--epochs", 1, "--no-plots", *SMALL)
        assert result.code == 0 and f"runs/{expected}/" in result.out
        assert (tmp_path / "runs" / expected / "metrics.json").is_file()


@pytest.mark.parametrize("args, message", [
    (("--dataset", "imagenet"), "unknown dataset 'imagenet'"),
    (("--model", "resnet"), "unknown model 'resnet'"),
    (("--device", "tpu"), "unknown device 'tpu'"),
    (("--optimizer", "lbfgs"), "unknown optimizer 'lbfgs'"),
    (("--epochs", 0), "--epochs must be at least 1"),
    (("--threads", 0), "--threads must be at least 1"),
])
def test_unknown_names_and_bad_values_are_usage_errors(gpucnn_cli, tmp_path, args, message):
    line = one_line_error(gpucnn_cli("train", *args, "--out", tmp_path / "run", *SMALL), code=2)
    assert message in line
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_unusable_device_is_one_line(gpucnn_cli, tmp_path):
    from gpucnn.devices import cuda

    if cuda.probe()[0]:
        pytest.skip("this machine has a usable GPU")
    line = one_line_error(gpucnn_cli("train", "--device", "cuda", "--out", tmp_path / "run", *SMALL))
    assert "device 'cuda:0' cannot be used" in line and not (tmp_path / "run").exists()


def test_debug_shows_the_exception(gpucnn_cli):
    from gpucnn.cli import UsageError

    with pytest.raises(UsageError, match="unknown dataset"):
        gpucnn_cli("--debug", "train", "--dataset", "imagenet")
    with pytest.raises(UsageError, match="unknown model"):
        gpucnn_cli("train", "--model", "resnet", "--debug")


@pytest.mark.parametrize("module, package", [("tqdm", "tqdm"), ("sklearn", "scikit-learn")])
def test_missing_extra_is_named(gpucnn_cli, monkeypatch, tmp_path, module, package):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == module
                        else find_spec(name, *rest))
    line = one_line_error(gpucnn_cli("train", "--out", tmp_path / "run", *SMALL))
    assert "needs the 'cli' extra: pip install 'gpucnn[cli]'" in line and f"({package} is not installed)" in line
    assert not (tmp_path / "run").exists()


def test_library_import_stays_light():
    script = ("import sys, gpucnn, gpucnn.data, gpucnn.models, gpucnn.io, gpucnn.train, gpucnn.viz, gpucnn.info, "
              "gpucnn.cli\n"
              "print(sorted({m.split('.')[0] for m in sys.modules} & {'tqdm', 'safetensors', 'PIL', 'matplotlib', "
              "'sklearn', 'pynvml'}))")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_python_dash_m_entry_point(tmp_path):
    result = run_module("--help", cwd=tmp_path)
    assert result.code == 0 and all(name in result.out for name in ("train", "eval", "predict", "summary", "info"))
    assert run_module("train", "--help", cwd=tmp_path).code == 0
    failed = run_module("train", "--dataset", "imagenet", cwd=tmp_path)
    one_line_error(failed, code=2)
    assert run_module("train", "--epochs", "many", cwd=tmp_path).code == 2  # argparse's own usage error


def test_cudasim_device_tiny_run(tmp_path):
    """The CUDA kernels run by the CPU simulator train too (skipped until they all exist)."""
    try:
        config = TrainConfig.with_defaults(dataset="digits", epochs=1, train_size=16, batch_size=8)
        dataset = data.load_dataset("digits").limit_test(8)
        trainer = Trainer(config, dataset, "cudasim", tmp_path, progress=False, log=lambda line: None)
        metrics = trainer.run(plots=False)
    except NotImplementedError as error:
        pytest.skip(f"cudasim kernels not complete yet: {error}")
    except RuntimeError as error:
        if "cannot be used" in str(error):
            pytest.skip(str(error))
        raise
    assert metrics["device"] == "cudasim" and 0 <= metrics["test_accuracy"] <= 1
