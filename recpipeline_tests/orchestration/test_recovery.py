"""A CLI run killed with SIGKILL (during ingestion, during a model fit) leaves nothing that blocks the next
run: the next one marks it failed, frees its pool slot, finishes, and writes what an uninterrupted run
writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter, job, op
from pandas.testing import assert_frame_equal

from recpipeline.orchestration.instance import (
    HOST_TAG,
    PID_TAG,
    TRAINING_POOL,
    ensure_dagster_home,
    process_tags,
    release_dead_runs,
)
from recpipeline_tests.conftest import tiny_raw_config

#: a Mult-VAE fit of a few seconds: long enough to kill the run while it holds the training pool's slot
MODELS = ["popularity", {"als": {"iterations": 5}}, {"mult_vae": {"epochs": 150, "hidden": 32, "latent": 8}}]
SLOW_FIT_STEP = "mult_vae_model"
RUN_TIMEOUT_S = 150  # a run that waits for a leaked slot never ends; fail instead of hanging
# the run's identity, and what the costs tables measure (times, memory): the rest must be identical
VOLATILE_COLUMNS = ["run_id", "as_of", "fit_s", "cpu_s", "score_ms_per_1k_users", "peak_rss_mb"]


def _cli(folder: Path, **popen) -> subprocess.Popen:
    """``recpipeline run`` on the tiny configuration (with a slow fit) in ``folder``, own instance home."""
    config = folder / "config.yaml"
    # refit off: the slow fit is there to be killed, and a refit would run it twice
    raw = tiny_raw_config(str(folder / "warehouse"), models=MODELS, evaluation={"refit": False})
    config.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "DAGSTER_HOME": str(folder / "home")}
    command = [sys.executable, "-m", "recpipeline.cli", "run", "--config", str(config), "--no-progress"]
    return subprocess.Popen(command, cwd=folder, env=env, text=True, **popen)


def _run_to_completion(folder: Path) -> str:
    """Run the CLI in ``folder``; its stderr. Fails on a non-zero exit or a run that does not end."""
    process = _cli(folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = process.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"the run did not end within {RUN_TIMEOUT_S} s:\n{err[-3000:]}")
    assert process.returncode == 0, err[-3000:]
    return err


def _outputs(warehouse: Path) -> dict[str, pd.DataFrame]:
    """Every table the run wrote (daily partitions included), without the run's id and time."""
    return {
        str(path.relative_to(warehouse)): pd.read_parquet(path).drop(
            columns=VOLATILE_COLUMNS, errors="ignore"
        )
        for path in sorted(warehouse.rglob("*.parquet"))
    }


@op
def _nothing() -> None:
    pass


@job
def _some_job() -> None:
    _nothing()


def test_only_runs_of_dead_processes_of_this_host_are_released(tmp_path):
    finished = subprocess.Popen(["true"])
    finished.wait()  # its pid now names no process
    dead = {**process_tags(), PID_TAG: str(finished.pid)}
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        runs = {
            "dead": instance.create_run_for_job(_some_job, tags=dead),
            "alive": instance.create_run_for_job(_some_job, tags=process_tags()),
            "ui": instance.create_run_for_job(_some_job),  # daemon / UI runs carry no process id
            "other host": instance.create_run_for_job(_some_job, tags={**dead, HOST_TAG: "elsewhere"}),
        }
        assert release_dead_runs(instance) == [runs["dead"].run_id]
        status = {name: instance.get_run_by_id(run.run_id).status for name, run in runs.items()}
        assert status == {
            "dead": DagsterRunStatus.FAILURE,
            "alive": DagsterRunStatus.NOT_STARTED,
            "ui": DagsterRunStatus.NOT_STARTED,
            "other host": DagsterRunStatus.NOT_STARTED,
        }
        assert release_dead_runs(instance) == []  # once failed and holding no slot, it is left alone


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("uninterrupted")
    _run_to_completion(folder)
    return _outputs(folder / "warehouse")


def _ingesting(instance: DagsterInstance) -> bool:
    """An ingestion run has finished a step and is still under way."""
    runs = instance.get_runs(RunsFilter(job_name="daily_ingestion", statuses=[DagsterRunStatus.STARTED]))
    return any(
        instance.get_records_for_run(run.run_id, of_type=DagsterEventType.STEP_SUCCESS).records
        for run in runs
    )


def _fitting(instance: DagsterInstance) -> bool:
    """The slow fit holds the training pool's slot."""
    claimed = instance.event_log_storage.get_concurrency_info(TRAINING_POOL).claimed_slots
    return any(slot.step_key == SLOW_FIT_STEP for slot in claimed)


def _kill_when(process: subprocess.Popen, instance: DagsterInstance, moment: Callable[..., bool]) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not moment(instance):
        assert process.poll() is None, "the run ended before the moment to kill it"
        assert time.monotonic() < deadline, "the moment to kill the run never came"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()


@pytest.mark.integration
@pytest.mark.parametrize("moment", [_ingesting, _fitting], ids=["during_ingestion", "during_fit"])
def test_a_run_killed_midway_is_failed_and_freed_by_the_next_which_writes_the_same_outputs(
    tmp_path, monkeypatch, uninterrupted, moment
):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))  # restored after the test
    ensure_dagster_home(tmp_path / "home")
    with DagsterInstance.get() as instance:
        _kill_when(_cli(tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), instance, moment)
        [killed] = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED]))
        # what used to block every later run: the dead run still started, holding its slot
        assert (killed.run_id in instance.event_log_storage.get_concurrency_run_ids()) == (moment is _fitting)

    stderr = _run_to_completion(tmp_path)

    assert f"run {killed.run_id} ({killed.job_name}, STARTED) was left by process" in stderr
    with DagsterInstance.get() as instance:
        assert instance.get_run_by_id(killed.run_id).status == DagsterRunStatus.FAILURE
        assert not instance.event_log_storage.get_concurrency_run_ids()
        assert not instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED]))
    outputs = _outputs(tmp_path / "warehouse")
    assert outputs.keys() == uninterrupted.keys()
    for name, table in uninterrupted.items():
        assert_frame_equal(outputs[name], table, check_exact=True, obj=name)
