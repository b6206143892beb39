"""How many CPU threads a torch step may use: the cores it really has, shared by the steps running at once.

``os.cpu_count()`` (torch's default) counts the host's cores, not the ones this process may run on: a
container limited by a cgroup CPU quota, or a process pinned to a few cores, then runs more threads than
cores, and idle torch threads spin-wait for busy ones (measured in the issue that introduced this module:
5–10x slower per epoch than one thread under load). The rule here: the cores of the process's affinity
mask, capped by the cgroup quota, divided by the steps the run executes at once, at least one — and never
more than torch's pool holds already (a test or benchmark that set one thread keeps one).

The run sets the budget once per process (``configure``): the executor's concurrency and the
configuration's override (``execution.num_threads``), which wins over every model's own ``num_threads``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

#: cgroup v2 (``cpu.max``: "quota period" or "max period") and v1 (``cfs_quota_us`` / ``cfs_period_us``)
CGROUP_ROOT = Path("/sys/fs/cgroup")

_concurrent_steps = 1
_override = 0


def passive_waits() -> None:
    """Let idle OpenMP threads sleep (``OMP_WAIT_POLICY=PASSIVE``) unless the environment says otherwise.

    Torch's default active waits spin, and beside one other busy process a 2-thread Mult-VAE fit took 2.9x
    its quiet time; with passive waits 1.3x, for 18 % more time on a quiet machine
    (``benchmarks/threads_under_contention.py``, docs/scaling.md). OpenMP reads the policy when torch loads,
    so the CLI calls this before anything imports torch; the processes it starts (``recpipeline ui``: the
    webserver, the daemon, the code server, every run) inherit it.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota of this process's cgroup in cores (e.g. 1.5); None when unlimited or unknown."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def available_cores(root: Path = CGROUP_ROOT) -> int:
    """Cores this process may run on: its affinity mask, capped by the cgroup quota (rounded up)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        cores = min(cores, math.ceil(limit))
    return max(1, cores)


def auto_threads(concurrent_steps: int = 1, cores: int | None = None) -> int:
    """The "auto" thread count: the available cores divided by the steps running at once, at least 1."""
    cores = available_cores() if cores is None else cores
    return max(1, cores // max(1, concurrent_steps))


def configure(concurrent_steps: int = 1, override: int = 0) -> None:
    """Set this process's budget: ``concurrent_steps`` the run executes at once (in-process: 1) and the
    configuration's ``override`` (0 = none)."""
    global _concurrent_steps, _override
    if concurrent_steps < 1 or override < 0:
        raise ValueError(
            f"threads: concurrent_steps >= 1 and override >= 0, got {concurrent_steps}, {override}"
        )
    _concurrent_steps, _override = concurrent_steps, override


def resolve_threads(num_threads: int, current: int | None = None) -> int:
    """Threads for a model whose ``num_threads`` is ``num_threads``: the configured override if any, else a
    positive ``num_threads`` as given, else (0 = auto) ``auto_threads`` for this process's budget, at most
    ``current`` (the pool's size now: a caller that lowered it, a test or a benchmark, keeps its count)."""
    if _override > 0:
        return _override
    if num_threads > 0:
        return num_threads
    auto = auto_threads(_concurrent_steps)
    return auto if current is None else max(1, min(auto, current))
