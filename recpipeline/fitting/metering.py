"""What a step costs: wall seconds, CPU seconds of the process, and its peak resident memory while it ran."""

from __future__ import annotations

import contextlib
import os
import resource
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

#: how often the resident set is sampled (a peak shorter than this may be missed)
SAMPLE_SECONDS = 0.05
_STATM = "/proc/self/statm"


@dataclass
class Usage:
    wall_s: float = 0.0
    #: user + system CPU seconds of every thread of the process (steps of an in-process run do not overlap)
    cpu_s: float = 0.0
    #: the largest resident set seen while the block ran (MB); the process's lifetime peak where /proc is
    #: missing
    peak_rss_mb: float = 0.0


def resident_mb() -> float | None:
    """The process's resident set now (MB), None without /proc."""
    try:
        with open(_STATM) as statm:
            pages = int(statm.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


@contextlib.contextmanager
def metered() -> Iterator[Usage]:
    """Measure the block; the ``Usage`` is filled in when it ends."""
    usage = Usage()
    peak = [resident_mb() or 0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(SAMPLE_SECONDS):
            peak[0] = max(peak[0], resident_mb() or 0.0)

    sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    sampler.start()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield usage
    finally:
        usage.wall_s = time.perf_counter() - wall
        usage.cpu_s = time.process_time() - cpu
        done.set()
        sampler.join()
        now = resident_mb()
        if now is None:  # no /proc: the lifetime peak (KB on Linux) is the best there is
            usage.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
        else:
            usage.peak_rss_mb = max(peak[0], now)
