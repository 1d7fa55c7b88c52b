"""Speed of the cudasim simulator (a measurement, not a test).

    PYTHONPATH=. python tests/cudasim/speed.py

Prints, for the asm and the ucontext stack switch: launch overhead (1 thread, Python included),
threads per second of a one-store kernel (two switches per thread) and context switches per second
of a barrier loop.
"""

from __future__ import annotations

import os
import time

import numpy as np

from gpucnn.devices import cudasim

KERNELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernels", "speed.cu")


def best_of(repeats: int, run) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(switch: str) -> dict[str, float]:
    module = cudasim.load(KERNELS, switch=switch)
    touch, barriers = module.get_function("touch"), module.get_function("barriers")
    y = np.zeros(1 << 20, np.float32)
    n = np.int64(y.size)
    launches = 2000
    overhead = best_of(3, lambda: [touch(1, 1, (y, n)) for _ in range(launches)]) / launches
    threads = best_of(3, lambda: touch(y.size // 256, 256, (y, n)))
    rounds = 50
    blocks = 64
    switching = best_of(3, lambda: barriers(blocks, 256, (y, np.int32(rounds))))
    return {
        "launch overhead (us)": overhead * 1e6,
        "threads/s (one store each)": y.size / threads,
        "switches/s (barrier loop)": blocks * 256 * (2 * rounds + 2) / switching,
    }


def main() -> None:
    for switch in ("asm", "ucontext"):
        results = measure(switch)
        print(switch + ": " + ", ".join(f"{name} {value:,.3g}" for name, value in results.items()))


if __name__ == "__main__":
    main()
