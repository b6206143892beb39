"""The nightly schedule, the training sensor and the instance home, evaluated without a daemon."""

import datetime as dt

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
)

from recpipeline.orchestration.definitions import build_definitions
from recpipeline.orchestration.instance import TRAINING_TAG, ensure_dagster_home
from recpipeline.orchestration.runner import run_pipeline
from recpipeline_tests.conftest import tiny_config


def test_nightly_schedule_targets_the_day_that_just_ended(tiny):
    defs = build_definitions(tiny)
    schedule = defs.resolve_schedule_def("nightly_ingestion")
    assert schedule.default_status.value == "RUNNING"
    assert schedule.cron_schedule == "15 0 * * *"
    night = dt.datetime(2026, 10, 6, 0, 15, tzinfo=dt.UTC)
    result = schedule.evaluate_tick(build_schedule_context(scheduled_execution_time=night))
    [request] = result.run_requests
    assert request.partition_key == "2026-10-05"
    assert request.job_name in (None, "daily_ingestion")


def test_training_sensor_fires_after_ingestion_and_coalesces(tmp_path):
    config = tiny_config(tmp_path / "warehouse")
    defs = build_definitions(config)
    sensor = defs.resolve_sensor_def("train_after_ingestion")
    with DagsterInstance.ephemeral() as instance:

        def tick():
            [result] = list(sensor(build_sensor_context(instance=instance, definitions=defs)))
            return result

        assert isinstance(tick(), SkipReason)  # nothing ingested yet

        run_pipeline(config, instance=instance, start="2026-10-01", end="2026-10-02", train=False)
        assert isinstance(tick(), RunRequest)

        job = defs.resolve_job_def("train_and_evaluate")
        assert job.tags[TRAINING_TAG] == "true"
        waiting = instance.create_run_for_job(job_def=job, tags=job.tags)
        assert instance.get_run_by_id(waiting.run_id).status == DagsterRunStatus.NOT_STARTED
        skipped = tick()
        assert isinstance(skipped, SkipReason) and "already waiting" in skipped.skip_message


def test_dagster_home_is_created_with_concurrency_limits(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = ensure_dagster_home(tmp_path / "home")
    text = (home / "dagster.yaml").read_text()
    assert f"key: {TRAINING_TAG}" in text and "limit: 1" in text
    with DagsterInstance.get() as instance:
        assert str(home) in instance.root_directory
