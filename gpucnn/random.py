"""The global random generator behind parameter initialisation, dropout and data shuffling.

    >>> gpucnn.manual_seed(0)   # as torch.manual_seed: the same seed gives the same run

Random numbers are drawn on the host with NumPy's PCG64 and moved to the tensor's device, so a run
is reproducible across devices.
"""

from __future__ import annotations

import numbers

import numpy

_generator = numpy.random.default_rng()


def manual_seed(seed: int) -> None:
    """Reseeds the global generator."""
    global _generator
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    _generator = numpy.random.default_rng(int(seed))


def generator() -> numpy.random.Generator:
    """The global generator (use it, do not keep it: manual_seed replaces it)."""
    return _generator


def get_rng_state() -> dict:
    """The generator's state, a dict of plain Python values (for checkpoints)."""
    return _generator.bit_generator.state


def set_rng_state(state: dict) -> None:
    """Restores a state from :func:`get_rng_state`."""
    _generator.bit_generator.state = state
