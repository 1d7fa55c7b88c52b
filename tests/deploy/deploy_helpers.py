"""Shared by the deploy tests: finding the linters that PyPI packages install."""

from __future__ import annotations

import shutil
import sys
import sysconfig
from pathlib import Path

import pytest


def tool(name: str, package: str) -> str:
    """The path of a command installed by a PyPI package: in this environment's scripts folder, which
    need not be on the PATH when pytest runs as .venv/bin/python, else on the PATH."""
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(folder) / name
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install {package} (it is in gpucnn's test extra)")
    return found
