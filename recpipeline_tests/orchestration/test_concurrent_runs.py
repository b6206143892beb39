"""Two `recpipeline run` at once on one storage and one instance: their model fits and their evaluation
(which appends to metrics_history) take the training pool's slot one after the other, and both runs land in
metrics_history."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance, RunsFilter

from recpipeline.orchestration.instance import ensure_dagster_home
from recpipeline_tests.conftest import tiny_raw_config

pytestmark = pytest.mark.integration

RUN_TIMEOUT_S = 180
#: the steps in the training pool: every model fit, and the evaluation that appends to metrics_history
MODELS = ["popularity", {"als": {"iterations": 5}}, {"mult_vae": {"epochs": 20, "hidden": 32, "latent": 8}}]
POOLED = {"popularity_model", "als_model", "mult_vae_model", "metrics"}


def _pooled_intervals(instance: DagsterInstance, run_id: str) -> list[tuple[float, float, str]]:
    """(start, end, step) of the run's steps in the training pool, from its event log."""
    starts, ends = {}, {}
    for kind, into in ((DagsterEventType.STEP_START, starts), (DagsterEventType.STEP_SUCCESS, ends)):
        for record in instance.get_records_for_run(run_id, of_type=kind).records:
            step = record.event_log_entry.step_key
            if step in POOLED:
                into[step] = record.event_log_entry.timestamp
    assert starts.keys() == ends.keys() == POOLED, (starts, ends)
    return [(starts[step], ends[step], step) for step in POOLED]


def test_two_cli_runs_at_once_take_turns_in_the_pool_and_both_land_in_the_history(tmp_path, monkeypatch):
    config = tmp_path / "config.yaml"
    raw = tiny_raw_config(str(tmp_path / "warehouse"), models=MODELS, evaluation={"refit": False})
    config.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    ensure_dagster_home(tmp_path / "home")
    with DagsterInstance.get() as instance:  # Dagster's SQLite files created once, not by both at once
        instance.event_log_storage.get_concurrency_run_ids()
        instance.get_runs()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-m", "recpipeline.cli", "run", "--config", str(config), "--no-progress"]
    processes = [
        subprocess.Popen(
            command, cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    for process in processes:
        try:
            _, err = process.communicate(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
            pytest.fail(f"the runs did not end within {RUN_TIMEOUT_S} s")
        assert process.returncode == 0, err[-3000:]

    with DagsterInstance.get() as instance:
        runs = instance.get_runs(RunsFilter(job_name="train_and_evaluate"))
        assert len(runs) == 2
        first, second = (_pooled_intervals(instance, run.run_id) for run in runs)
    overlapping = [
        (a, b) for a in first for b in second if a[0] < b[1] and b[0] < a[1]
    ]  # two intervals overlap when each starts before the other ends
    assert not overlapping, overlapping
    history = pd.read_parquet(tmp_path / "warehouse" / "metrics_history.parquet")
    assert set(history["run_id"]) == {run.run_id for run in runs}
