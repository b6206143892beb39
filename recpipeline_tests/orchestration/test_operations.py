"""The nightly schedule, the training sensor and the instance home, evaluated without a daemon."""

import datetime as dt

import pytest
from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
)

from recpipeline.orchestration.definitions import build_definitions
from recpipeline.orchestration.instance import TRAINING_TAG, ensure_dagster_home
from recpipeline.orchestration.jobs import TRAINS_ITSELF_TAG
from recpipeline.orchestration.runner import PARTITION_RANGE_END, PARTITION_RANGE_START, execute, run_pipeline
from recpipeline_tests.conftest import tiny_config


def _night(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T00:15:00+00:00")


def _nights(config, ingested: tuple[str, str], nights: list[str]) -> dict[str, str]:
    """Each night's tick, after ingesting the days ``ingested`` (first, last): the partition it requests,
    or its skip message."""
    defs = build_definitions(config)
    schedule = defs.resolve_schedule_def("nightly_ingestion")
    outcome = {}
    with instance_for_test() as instance:
        _ingest(config, instance, *ingested)
        for night in nights:
            context = build_schedule_context(
                instance=instance,
                scheduled_execution_time=_night(night),
                repository_def=defs.get_repository_def(),
            )
            result = schedule.evaluate_tick(context)
            if result.run_requests:
                [request] = result.run_requests
                assert request.job_name in (None, "daily_ingestion")
                outcome[night] = request.partition_key
            else:
                outcome[night] = result.skip_message
    return outcome


def _ingest(config, instance: DagsterInstance, start: str, end: str, tags: dict[str, str] | None = None):
    range_tags = {PARTITION_RANGE_START: start, PARTITION_RANGE_END: end}
    execute(config, "daily_ingestion", instance, {**range_tags, **(tags or {})})


def test_nightly_schedule_is_daily_at_0015_utc_and_running(tiny):
    schedule = build_definitions(tiny).resolve_schedule_def("nightly_ingestion")
    assert schedule.default_status.value == "RUNNING"
    assert schedule.cron_schedule == "15 0 * * *"
    assert schedule.execution_timezone == "UTC"


@pytest.mark.integration
def test_nightly_schedule_requests_only_missing_days_inside_the_window(tmp_path):
    config = tiny_config(tmp_path / "warehouse")  # the window 2026-10-01 .. 2026-10-10
    expected = {  # night -> the partition requested, or why none
        "2026-10-01": "the configured window starts 2026-10-01; nothing to ingest before it",
        "2026-10-03": "2026-10-02 is already ingested",
        "2026-10-04": "2026-10-03 is already ingested",
        "2026-10-05": "2026-10-04",
        "2026-10-11": "2026-10-10",
        "2026-10-12": "the configured window ends 2026-10-10; nothing left to ingest",
        "2026-11-29": "the configured window ends 2026-10-10; nothing left to ingest",
    }
    assert _nights(config, ("2026-10-02", "2026-10-03"), list(expected)) == expected


@pytest.mark.integration
def test_nightly_schedule_with_an_open_window_requests_yesterday_if_missing(tmp_path):
    raw_source = {
        "kind": "synthetic",
        "start_date": "2026-10-01",
        "end_date": None,
        "synthetic": {"n_users": 300, "n_items": 150, "sessions_per_day": 150},
    }
    config = tiny_config(tmp_path / "warehouse", source=raw_source)
    expected = {
        "2026-10-05": "2026-10-04",
        "2026-10-06": "2026-10-05 is already ingested",
        "2026-10-07": "2026-10-06",
    }
    assert _nights(config, ("2026-10-05", "2026-10-05"), list(expected)) == expected


class _Sensor:
    """Evaluates the training sensor tick after tick, carrying its cursor as the daemon does."""

    def __init__(self, defs, instance: DagsterInstance) -> None:
        self.defs, self.instance, self.cursor = defs, instance, None
        self.sensor = defs.resolve_sensor_def("train_after_ingestion")

    def tick(self):
        context = build_sensor_context(instance=self.instance, definitions=self.defs, cursor=self.cursor)
        result = self.sensor.evaluate_tick(context)
        self.cursor = result.cursor
        return result


@pytest.mark.integration
def test_training_sensor_fires_after_ingestion_and_coalesces(tmp_path):
    config = tiny_config(tmp_path / "warehouse")
    defs = build_definitions(config)
    with DagsterInstance.ephemeral() as instance:
        sensor = _Sensor(defs, instance)
        first = sensor.tick()
        assert not first.run_requests and first.skip_message == "no cleaned_events materialization yet"

        run_pipeline(config, instance=instance, start="2026-10-01", end="2026-10-02", train=False)
        [request] = sensor.tick().run_requests
        assert request.job_name in (None, "train_and_evaluate")
        again = sensor.tick()  # the same materializations never trigger twice
        assert not again.run_requests and "since the last evaluation" in again.skip_message

        job = defs.resolve_job_def("train_and_evaluate")
        assert job.tags[TRAINING_TAG] == "true"
        waiting = instance.create_run_for_job(job_def=job, tags=job.tags)
        assert instance.get_run_by_id(waiting.run_id).status == DagsterRunStatus.NOT_STARTED
        _ingest(config, instance, "2026-10-03", "2026-10-03")
        skipped = sensor.tick()
        assert not skipped.run_requests and "already waiting" in skipped.skip_message


@pytest.mark.integration
def test_training_sensor_starts_after_the_existing_warehouse(tmp_path):
    config = tiny_config(tmp_path / "warehouse")
    defs = build_definitions(config)
    with DagsterInstance.ephemeral() as instance:
        _ingest(config, instance, "2026-10-01", "2026-10-04")  # a warehouse filled before the UI starts
        [filled] = instance.get_run_records()
        sensor = _Sensor(defs, instance)
        first = sensor.tick()
        assert not first.run_requests
        assert first.skip_message == (
            f"starting after the latest cleaned_events materialization, {filled.dagster_run.run_id}"
        )
        assert not sensor.tick().run_requests

        _ingest(config, instance, "2026-10-05", "2026-10-05", {TRAINS_ITSELF_TAG: "true"})
        itself = sensor.tick()  # `recpipeline run` trains on the days it ingests: no second retrain
        assert not itself.run_requests and "train themselves" in itself.skip_message

        _ingest(config, instance, "2026-10-06", "2026-10-06")
        assert len(sensor.tick().run_requests) == 1


def test_dagster_home_is_created_with_concurrency_limits(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = ensure_dagster_home(tmp_path / "home")
    text = (home / "dagster.yaml").read_text()
    assert f"key: {TRAINING_TAG}" in text and "limit: 1" in text
    with DagsterInstance.get() as instance:
        assert str(home) in instance.root_directory
