"""Torch thread budgets: the cores the process really has, shared by the steps running at once."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from recpipeline.models import create_model, threads


@pytest.fixture(autouse=True)
def default_budget():
    yield
    threads.configure(1, 0)


def test_cgroup_v2_quota_in_cores(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert threads.cgroup_cpu_limit(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert threads.cgroup_cpu_limit(tmp_path) is None


def test_cgroup_v1_quota_in_cores(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert threads.cgroup_cpu_limit(tmp_path) == 3.0
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")  # v1's "unlimited"
    assert threads.cgroup_cpu_limit(tmp_path) is None


def test_available_cores_is_the_affinity_capped_by_the_quota(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    assert threads.available_cores(tmp_path) == affinity  # no cgroup files: the affinity mask
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a core still gets one thread
    assert threads.available_cores(tmp_path) == 1


def test_auto_divides_the_cores_by_the_concurrent_steps():
    assert threads.auto_threads(1, cores=16) == 16
    assert threads.auto_threads(3, cores=16) == 5  # never more threads than cores over all steps
    assert threads.auto_threads(32, cores=16) == 1


def test_the_override_wins_then_the_model_then_auto():
    threads.configure(concurrent_steps=4, override=0)
    assert threads.resolve_threads(3) == 3
    assert threads.resolve_threads(0) == threads.auto_threads(4)
    assert threads.resolve_threads(0, current=1) == 1  # auto never grows a pool a caller lowered
    threads.configure(concurrent_steps=4, override=2)
    assert threads.resolve_threads(3) == 2 and threads.resolve_threads(0) == 2
    with pytest.raises(ValueError):
        threads.configure(0, 0)


def test_a_model_runs_with_the_resolved_threads_and_restores_torchs(blocks):
    train, _, context, score_context = blocks
    threads.configure(concurrent_steps=1, override=1)
    model = create_model("mult_vae", {"epochs": 1, "num_threads": 0})
    before = torch.get_num_threads()
    seen = []
    model._score = lambda *args: seen.append(torch.get_num_threads())
    model.score([0], train[:1])
    assert seen == [1] and torch.get_num_threads() == before


@pytest.mark.parametrize("given", [None, "ACTIVE"])
def test_the_cli_makes_openmp_waits_passive_before_torch_loads_unless_the_user_chose(given):
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    code = (
        "import os, sys\nfrom recpipeline.cli import main\nassert 'torch' not in sys.modules\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\nprint(os.environ['OMP_WAIT_POLICY'])"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == (given or "PASSIVE")
