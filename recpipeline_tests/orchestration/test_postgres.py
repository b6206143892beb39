"""The Dagster instance on a real PostgreSQL server (a throwaway cluster): `recpipeline run`'s runs, the
event log the sensor and the schedule read, and the nightly schedule's tick, all stored there."""

import datetime as dt

import pytest
import yaml
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    RunRequest,
    SkipReason,
    build_schedule_context,
)

from recpipeline.config import load_config
from recpipeline.orchestration.definitions import build_definitions
from recpipeline.orchestration.runner import execute, run_pipeline
from recpipeline_tests.conftest import tiny_raw_config
from recpipeline_tests.orchestration.services import postgres_server

pytestmark = pytest.mark.integration

PARTITION_TAG = "dagster/partition"

#: the dagster.yaml a team writes for PostgreSQL (docs/operations.md): runs, event log and schedules there
POSTGRES_YAML = """\
telemetry:
  enabled: false
storage:
  postgres:
    postgres_db: {db}
"""


def test_runs_schedule_and_event_log_on_postgres(tmp_path):
    pytest.importorskip("dagster_postgres", reason="dagster-postgres not installed (the cluster extra)")
    config_file = tmp_path / "run.yaml"
    config_file.write_text(
        yaml.safe_dump(tiny_raw_config(str(tmp_path / "warehouse"), models=["popularity"]))
    )
    config = load_config(config_file)
    home = tmp_path / "home"
    home.mkdir()
    with postgres_server() as db:
        (home / "dagster.yaml").write_text(
            POSTGRES_YAML.format(db=yaml.safe_dump(db, default_flow_style=True))
        )
        with DagsterInstance.from_config(str(home)) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
            assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"

            # runs: `recpipeline run` ingests nine of the ten days (one range run)
            run_pipeline(config, instance=instance, end="2026-10-09", train=False)
            cleaned = instance.get_materialized_partitions(AssetKey("cleaned_events"))
            assert cleaned == {f"2026-10-0{day}" for day in range(1, 10)}  # the event log, read back

            # the schedule's tick at 00:15 on 2026-10-10 asks for the 9th, already ingested: skipped; on the
            # 11th it asks for the 10th, which a run of its request then ingests
            defs = build_definitions(config)
            schedule, repository = defs.resolve_schedule_def("nightly_ingestion"), defs.get_repository_def()
            ticks = [dt.datetime(2026, 10, day, 0, 15, tzinfo=dt.UTC) for day in (10, 11)]
            with build_schedule_context(
                instance=instance, scheduled_execution_time=ticks[0], repository_def=repository
            ) as context:
                skipped = schedule(context)
            assert isinstance(skipped, SkipReason)
            assert skipped.skip_message == "2026-10-09 is already ingested"
            with build_schedule_context(
                instance=instance, scheduled_execution_time=ticks[1], repository_def=repository
            ) as context:
                request = schedule(context)
            assert isinstance(request, RunRequest) and request.partition_key == "2026-10-10"
            execute(
                config, "daily_ingestion", instance, {PARTITION_TAG: request.partition_key, **request.tags}
            )
            assert "2026-10-10" in instance.get_materialized_partitions(AssetKey("cleaned_events"))

            # and a training run on every day, its steps in the event log
            run_id = execute(config, "train_and_evaluate", instance, {})
            steps = instance.all_logs(run_id, of_type=DagsterEventType.STEP_SUCCESS)
            assert {"encode", "split", "popularity_model", "metrics"} <= {record.step_key for record in steps}
            runs = instance.get_runs()
            assert [run.job_name for run in runs] == ["train_and_evaluate", *["daily_ingestion"] * 2]
            assert all(run.is_success for run in runs)

        # everything above is in the server, not in the instance folder: a new instance sees it
        with DagsterInstance.from_config(str(home)) as again:
            assert len(again.get_runs()) == 3
        assert not list(home.rglob("*.db"))  # no SQLite storage beside it
