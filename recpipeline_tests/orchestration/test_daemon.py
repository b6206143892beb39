"""The real daemon (`dagster-daemon run`) on a warehouse the CLI has just filled: the training sensor starts
after the existing cleaned days, so it launches nothing until a new day is ingested, then exactly one retrain.
Bounded in time; the daemon's process group is stopped at the end."""

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from recpipeline.config import load_config
from recpipeline.orchestration.instance import ensure_dagster_home
from recpipeline.orchestration.runner import run_pipeline
from recpipeline_tests.conftest import REPO_ROOT, tiny_raw_config
from recpipeline_tests.orchestration.conftest import wait_for

pytestmark = pytest.mark.integration

SENSOR = "train_after_ingestion"
FINISHED = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]


def _sensor_ticks(instance: DagsterInstance) -> list:
    """The sensor's finished ticks, oldest first (none before the daemon's first evaluation). A tick the
    daemon is still evaluating reads STARTED; it is left out until it has its outcome."""
    [state] = [s for s in instance.all_instigator_state() if s.instigator_name == SENSOR] or [None]
    if state is None:
        return []
    ticks = reversed(instance.get_ticks(state.instigator_origin_id, state.selector_id))
    return [tick for tick in ticks if tick.status.value != "STARTED"]


def _sensor_runs(instance: DagsterInstance) -> list:
    return instance.get_runs(RunsFilter(job_name="train_and_evaluate", tags={"dagster/sensor_name": SENSOR}))


@pytest.fixture
def daemon_home(tmp_path, monkeypatch):
    """A temporary DAGSTER_HOME and configuration file, and a function that starts the daemon on them."""
    config_file = tmp_path / "run.yaml"
    raw = tiny_raw_config(str(tmp_path / "warehouse"), models=["popularity", {"als": {"iterations": 3}}])
    config_file.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))  # restored after the test
    home = ensure_dagster_home(tmp_path / "home")
    processes = []

    def start_daemon() -> Path:
        log_path = tmp_path / "daemon.log"
        env = {**os.environ, "DAGSTER_HOME": str(home), "RECPIPELINE_CONFIG": str(config_file)}
        with open(log_path, "w") as log:
            daemon = [str(Path(sys.executable).parent / "dagster-daemon"), "run"]
            processes.append(
                subprocess.Popen(
                    [*daemon, "-m", "recpipeline.orchestration.definitions"],
                    cwd=REPO_ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its code server and run workers share its process group
                )
            )
        return log_path

    try:
        yield load_config(config_file), start_daemon
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def test_daemon_retrains_only_after_new_days(daemon_home):
    config, start_daemon = daemon_home
    with DagsterInstance.get() as instance:
        # `recpipeline run`: ingest and train in this process, on the instance the daemon will use
        filled = run_pipeline(config, instance=instance)
        assert filled.metrics is not None
        log = start_daemon()

        def ticks_after(count: int):
            ticks = _sensor_ticks(instance)
            failed = [t.error.message for t in ticks if t.status.value == "FAILURE"]
            assert not failed, (failed, log.read_text()[-4000:])
            return ticks if len(ticks) >= count else None

        first, second = wait_for(lambda: ticks_after(2), 240, "two sensor ticks")[:2]
        assert first.status.value == second.status.value == "SKIPPED"
        assert first.skip_reason.startswith("starting after the latest cleaned_events materialization, ")
        assert _sensor_runs(instance) == []
        assert len(instance.get_runs(RunsFilter(job_name="train_and_evaluate"))) == 1  # the CLI's own

        # one more ingestion (here the window's last day again, as a late correction would)
        run_pipeline(config, instance=instance, start="2026-10-10", end="2026-10-10", train=False)
        launched = wait_for(lambda: _sensor_runs(instance), 120, "the sensor's retrain")
        seen = len(_sensor_ticks(instance))
        wait_for(lambda: ticks_after(seen + 2), 120, "two more sensor ticks")
        [retrain] = _sensor_runs(instance)
        assert [run.run_id for run in launched] == [retrain.run_id]

        done = wait_for(
            lambda: instance.get_runs(RunsFilter(run_ids=[retrain.run_id], statuses=FINISHED)),
            240,
            "the retrain to finish",
        )
        assert done[0].status == DagsterRunStatus.SUCCESS, log.read_text()[-4000:]


def test_the_sensor_and_the_schedule_write_their_reasons_to_the_tick_log(tmp_path, capfd):
    """The UI shows a skipped tick's reason only in a hover; the tick's log (Automation → the sensor → a
    tick → logs) keeps it, one line per evaluation."""
    from dagster import build_schedule_context, build_sensor_context

    from recpipeline.orchestration.definitions import build_definitions
    from recpipeline_tests.conftest import tiny_config

    defs = build_definitions(tiny_config(tmp_path / "warehouse"))
    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        sensor = defs.get_sensor_def(SENSOR)
        assert (
            sensor(build_sensor_context(instance=instance)).skip_message
            == "no cleaned_events materialization yet"
        )
        schedule = defs.get_schedule_def("nightly_ingestion")
        late = build_schedule_context(
            instance=instance,
            scheduled_execution_time=dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
            repository_def=defs.get_repository_def(),
        )
        assert schedule(late).skip_message.startswith("the configured window ends 2026-10-10")
    # outside the daemon the tick's logger writes to the console: what the daemon stores as the tick's log
    logged = capfd.readouterr().err
    assert " - INFO - skipped: no cleaned_events materialization yet" in logged
    assert " - INFO - skipped: the configured window ends 2026-10-10; nothing left to ingest" in logged
