"""Jobs, the nightly schedule, and the sensor that trains once new days have landed."""

from __future__ import annotations

from dagster import (
    AssetKey,
    AssetSelection,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    EventLogEntry,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    asset_sensor,
    build_schedule_from_partitioned_job,
    define_asset_job,
)

from recpipeline.orchestration.instance import TRAINING_TAG

INGESTION_ASSETS = AssetSelection.assets("raw_events", "cleaned_events", "quarantined_events")
WAITING = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING]


def build_jobs():
    daily_ingestion = define_asset_job(
        "daily_ingestion",
        selection=INGESTION_ASSETS,
        description="Ingest and clean one day (or a range of days, as one run) of raw events.",
    )
    train_and_evaluate = define_asset_job(
        "train_and_evaluate",
        selection=AssetSelection.all() - INGESTION_ASSETS,
        tags={TRAINING_TAG: "true"},
        description="Encode all cleaned days, split, fit every model, recommend and evaluate.",
    )
    nightly = build_schedule_from_partitioned_job(
        daily_ingestion,
        hour_of_day=0,
        minute_of_hour=15,
        name="nightly_ingestion",
        default_status=DefaultScheduleStatus.RUNNING,
        description="00:15 UTC: ingest the day that just ended.",
    )

    @asset_sensor(
        asset_key=AssetKey("cleaned_events"),
        job=train_and_evaluate,
        name="train_after_ingestion",
        minimum_interval_seconds=15,
        default_status=DefaultSensorStatus.RUNNING,
        description="Retrain and evaluate after new cleaned days land (nightly run, backfill or manual).",
    )
    def train_after_ingestion(context: SensorEvaluationContext, asset_event: EventLogEntry):
        # a queued training run will read every day present when it starts: coalesce instead of piling up
        waiting = context.instance.get_run_records(
            RunsFilter(job_name="train_and_evaluate", statuses=WAITING), limit=1
        )
        if waiting:
            return SkipReason("a train_and_evaluate run is already waiting; it will see the new days")
        return RunRequest(run_key=f"after-{asset_event.run_id}-{asset_event.timestamp}")

    return [daily_ingestion, train_and_evaluate], [nightly], [train_after_ingestion]
