"""gpucnn eval, predict and summary, on the session's default digits run."""


import numpy as np
import pytest
from PIL import Image

import gpucnn
from cli_helpers import one_line_error
from gpucnn import data, models


@pytest.fixture(scope="module")
def digit_images(tmp_path_factory):
    """Test digits of the default seed's split as picture files: (path, true label) pairs."""
    folder = tmp_path_factory.mktemp("images")
    dataset = data.load_dataset("digits", seed=0)
    files = []
    for index in range(6):
        pixels = (dataset.test_images[index, 0].astype(np.float32) * 255 / 16).round().astype(np.uint8)
        big = Image.fromarray(pixels, mode="L").resize((64, 64), Image.Resampling.NEAREST)
        if index % 3 == 0:
            path = folder / f"digit{index}.png"
            big.save(path)
        elif index % 3 == 1:  # dark ink on white paper, as drawn by people, in colour
            path = folder / f"digit{index}-paper.png"
            Image.fromarray(255 - np.asarray(big)).convert("RGB").save(path)
        else:
            path = folder / f"digit{index}.jpg"
            big.save(path, quality=95)
        files.append((path, str(dataset.test_labels[index])))
    return files


def test_eval_matches_the_training_metrics(gpucnn_cli, trained_run):
    folder, metrics = trained_run
    result = gpucnn_cli("eval", folder)
    assert result.code == 0, result
    assert f"test accuracy: {metrics['test_accuracy']:.4f} " in result.out
    lines = result.out.splitlines()
    start = lines.index("confusion matrix (rows: true class, columns: predicted class)")
    rows = [[int(count) for count in line.split()[1:]] for line in lines[start + 2:start + 12]]
    matrix = np.array(rows)
    assert matrix.shape == (10, 10) and matrix.sum() == metrics["test_size"]
    assert np.trace(matrix) / matrix.sum() == pytest.approx(metrics["test_accuracy"])


def test_predict_top3_for_png_jpeg_and_paper_images(gpucnn_cli, trained_run, digit_images):
    folder, _ = trained_run
    result = gpucnn_cli("predict", folder, *[path for path, _ in digit_images])
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert len(lines) == len(digit_images)
    correct = 0
    for line, (path, label) in zip(lines, digit_images):
        name, top = line.split(": ", 1)
        assert name == str(path)
        entries = top.split(", ")
        assert len(entries) == 3
        classes = [entry.split(" (")[0] for entry in entries]
        probabilities = [float(entry.split(" (")[1].rstrip("%)")) for entry in entries]
        # three percentages printed to 0.1 each: their sum can pass 100 by three roundings' 0.05
        assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 100.15 + 1e-9
        correct += classes[0] == label
    assert correct >= 5, result.out


def test_predict_inversion_can_be_forced(gpucnn_cli, trained_run, digit_images):
    folder, _ = trained_run
    path, label = digit_images[0]
    normal = gpucnn_cli("predict", folder, path).out
    inverted = gpucnn_cli("predict", folder, path, "--invert", "always").out
    assert normal.split(": ")[1].startswith(label + " (") and normal != inverted


def test_unreadable_and_missing_images(gpucnn_cli, trained_run, tmp_path):
    folder, _ = trained_run
    broken = tmp_path / "broken.png"
    broken.write_text("this is not a picture")
    line = one_line_error(gpucnn_cli("predict", folder, broken))
    assert f"cannot read image {broken}" in line
    line = one_line_error(gpucnn_cli("predict", folder, tmp_path / "absent.jpg"))
    assert "absent.jpg" in line


def test_eval_and_predict_need_a_run_folder(gpucnn_cli, tmp_path):
    (tmp_path / "empty").mkdir()
    assert "no model.safetensors" in one_line_error(gpucnn_cli("eval", tmp_path / "empty"))
    (tmp_path / "file").write_text("x")
    assert "is a file" in one_line_error(gpucnn_cli("predict", tmp_path / "file", tmp_path / "file"))


def test_summary_prints_the_model_table(gpucnn_cli):
    result = gpucnn_cli("summary", "--model", "convnetjs", "--dataset", "cifar10")
    assert result.code == 0, result
    expected = gpucnn.summary(models.build("convnetjs", 3, (32, 32), 10), (3, 32, 32), print_table=False)
    assert str(expected) in result.out and "Total params: 22,466" in result.out
    assert "[-1, 20, 4, 4]" in result.out
    default = gpucnn_cli("summary")
    assert default.code == 0 and "lenet for digits inputs (1, 8, 8)" in default.out
    assert "unknown model 'vgg'" in one_line_error(gpucnn_cli("summary", "--model", "vgg"), code=2)
