"""Fixtures for the gpucnn command's tests: running it in-process, and one fully trained digits run."""

import json

import pytest

from cli_helpers import Result
from gpucnn import cli


@pytest.fixture
def gpucnn_cli(capsys, monkeypatch, tmp_path):
    """Runs ``gpucnn ARGS...`` in this process (cwd: a fresh folder) and returns exit code and output."""
    monkeypatch.chdir(tmp_path)

    def run(*args):
        capsys.readouterr()
        code = cli.main([str(arg) for arg in args])
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """The default ``gpucnn train`` (digits, lenet, every default), run once for the session."""
    folder = tmp_path_factory.mktemp("trained") / "run"
    code = cli.main(["train", "--out", str(folder), "--no-progress"])
    assert code == 0
    return folder, json.loads((folder / "metrics.json").read_text())
