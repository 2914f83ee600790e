"""Best-of-N wall-clock timing and peak memory, shared by the benchmarks."""
from __future__ import annotations

import time
from typing import Any, Callable


def best_of(fn: Callable[[], Any], repeat: int) -> float:
    """Seconds of the fastest of `repeat` calls: the least disturbed by other work on the machine."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def vmhwm_mb() -> float:
    """This process's peak resident memory (VmHWM), MB; NaN where /proc does not say."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")
