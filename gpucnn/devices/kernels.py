"""Where the CUDA C sources live: ``cuda/`` beside the package in a checkout, ``gpucnn/cuda`` in a wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]


def source_dir() -> Path:
    """The folder holding ``*.cu`` and ``common.cuh``."""
    for candidate in (_PACKAGE / "cuda", _PACKAGE.parent / "cuda"):
        if candidate.is_dir():
            return candidate
    raise RuntimeError(f"the CUDA sources are missing: neither {_PACKAGE / 'cuda'} nor "
                       f"{_PACKAGE.parent / 'cuda'} exists")


def source_path(file: str) -> Path:
    """The path of ``cuda/<file>.cu``; ``file`` is the op's name, e.g. ``'maxpool2d'``."""
    path = source_dir() / f"{file}.cu"
    if not path.is_file():
        raise RuntimeError(f"no CUDA source {path}")
    return path
