"""What the benchmark scripts say of the machine they ran on (each writes it beside its figures).
Imported by the scripts in this folder (run as `python scripts/<name>.py`: the folder is on
sys.path)."""

from __future__ import annotations

import platform
import statistics
import time
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def python_loop_ns(n: int = 2_000_000, runs: int = 5) -> float:
    """A bare `for _ in range(n): pass`, ns an iteration (median of `runs`): how fast this
    machine runs Python right now, so figures from machines of one kind but unlike speed (a
    shared host's neighbours) can be read together (2026-12-04, a slow day: 54-74 ns)."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(n):
            pass
        times.append(time.perf_counter() - t0)
    return statistics.median(times) / n * 1e9
