"""Jobs and schedules: nightly ingestion of the day that just ended; training and evaluation after it."""

from __future__ import annotations

from dagster import (
    AssetSelection,
    DailyPartitionsDefinition,
    DefaultScheduleStatus,
    build_schedule_from_partitioned_job,
    define_asset_job,
)

INGESTION_ASSETS = AssetSelection.assets("raw_events", "cleaned_events", "quarantined_events")


def build_jobs(partitions: DailyPartitionsDefinition):
    daily_ingestion = define_asset_job(
        "daily_ingestion",
        selection=INGESTION_ASSETS,
        partitions_def=partitions,
        description="Ingest and clean one day (or a range of days, as one run) of raw events.",
    )
    train_and_evaluate = define_asset_job(
        "train_and_evaluate",
        selection=AssetSelection.all() - INGESTION_ASSETS,
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
    return [daily_ingestion, train_and_evaluate], [nightly]
