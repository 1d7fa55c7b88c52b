"""The global random generator behind parameter initialisation, dropout and data shuffling, and generators of
one's own (``Generator``) for the data's.

    >>> gpucnn.manual_seed(0)   # as torch.manual_seed: the same seed gives the same run
    >>> train, val = gpucnn.data.random_split(dataset, [0.9, 0.1], generator=gpucnn.Generator().manual_seed(42))

Random numbers are drawn on the host with NumPy's PCG64 and moved to the tensor's device, so a run
is reproducible across devices; a seed gives other numbers than the same seed gives torch.
"""

from __future__ import annotations

import numbers

import numpy


def _checked_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def _fresh_seed() -> int:
    """A seed from the operating system's entropy, below 2**63 as torch's."""
    return int(numpy.random.SeedSequence().generate_state(1, numpy.uint64)[0] >> numpy.uint64(1))


class Generator:
    """A random generator of one's own, as torch.Generator: ``manual_seed(seed)`` (which returns it), ``seed()``,
    ``initial_seed()``, ``get_state()`` and ``set_state(state)``; ``numpy`` is its NumPy generator. The data's
    random draws (``random_split``, ``DataLoader``, the samplers) take it as ``generator``. ``device`` is kept
    for torch's scripts: the numbers are drawn on the host whatever it is."""

    def __init__(self, device="cpu"):
        self.device = device
        self.seed()

    def manual_seed(self, seed: int) -> "Generator":
        self._initial_seed = _checked_seed(seed)
        self.numpy = numpy.random.default_rng(self._initial_seed)
        return self

    def seed(self) -> int:
        """Reseeds from the operating system's entropy; returns the seed."""
        self.manual_seed(_fresh_seed())
        return self._initial_seed

    def initial_seed(self) -> int:
        return self._initial_seed

    def get_state(self) -> dict:
        return self.numpy.bit_generator.state

    def set_state(self, state: dict) -> "Generator":
        self.numpy.bit_generator.state = state
        return self


_global = Generator()


def manual_seed(seed: int) -> None:
    """Reseeds the global generator."""
    _global.manual_seed(seed)


def seed() -> int:
    """Reseeds the global generator from the operating system's entropy; returns the seed."""
    return _global.seed()


def initial_seed() -> int:
    """The global generator's last seed."""
    return _global.initial_seed()


def generator() -> numpy.random.Generator:
    """The global generator's NumPy generator (use it, do not keep it: manual_seed replaces it)."""
    return _global.numpy


def get_rng_state() -> dict:
    """The generator's state, a dict of plain Python values (for checkpoints)."""
    return _global.get_state()


def set_rng_state(state: dict) -> None:
    """Restores a state from :func:`get_rng_state`."""
    _global.set_state(state)
