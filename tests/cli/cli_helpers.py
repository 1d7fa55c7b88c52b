"""Helpers for the gpucnn command's tests: results, running ``python -m gpucnn``, checking errors."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class Result:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err

    def __repr__(self):
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


def run_module(*args, cwd=None, env=None, timeout=120):
    """Runs ``python -m gpucnn ARGS...`` in a subprocess."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    completed = subprocess.run([sys.executable, "-m", "gpucnn", *map(str, args)], cwd=cwd, env=environment,
                               capture_output=True, text=True, timeout=timeout)
    return Result(completed.returncode, completed.stdout, completed.stderr)


def one_line_error(result, code=1):
    """Asserts ``result`` failed with ``code``, its error on one stderr line (after progress messages
    such as 'downloading ...', if any) and no traceback; returns the error line."""
    assert result.code == code, result
    lines = result.err.strip().splitlines()
    errors = [line for line in lines if line.startswith("gpucnn: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result
    assert all(line.startswith("downloading ") for line in lines[:-1]), result
    assert "Traceback" not in result.err
    return errors[0]
