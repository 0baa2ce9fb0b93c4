"""How many torch threads a command should use when the user does not say.

torch starts one thread per core. When another job already keeps a core busy, its OpenMP
threads spin waiting for the descheduled one at every parallel region: `t2i generate` took
50 s instead of 4 s with one of two cores taken. Using only the idle cores costs at most the
speed-up the busy ones would have given; using too many costs 10x.

Busy cores are counted from the kernel's number of runnable threads right now (the 4th field
of /proc/loadavg), not from the load average: a user's own previous `t2i` runs raise the load
average for a minute after they end, and would cost the next run its threads.
"""
from __future__ import annotations

import os
import time
from pathlib import Path


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def idle_cores(cpus: int, others_running: int) -> int:
    """Cores left for us when `others_running` threads of other jobs are runnable: at least 1."""
    return max(1, cpus - max(0, others_running))


def others_running(samples: int = 3, gap_s: float = 0.01) -> int | None:
    """Runnable threads besides this one, the least of a few reads (a passing process is not a
    busy core); None where /proc/loadavg does not exist."""
    counts = []
    for i in range(samples):
        try:
            running = Path("/proc/loadavg").read_text().split()[3].split("/")[0]
        except (OSError, IndexError):
            return None
        counts.append(int(running) - 1)  # this process is running while it reads
        if i + 1 < samples:
            time.sleep(gap_s)
    return min(counts)


def default_threads() -> int | None:
    """The thread count for this process, or None to leave torch's choice: when the user set
    OMP_NUM_THREADS, or the platform does not say what is running."""
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    others = others_running()
    if others is None or not hasattr(os, "sched_getaffinity"):
        return None
    return idle_cores(usable_cores(), others)
