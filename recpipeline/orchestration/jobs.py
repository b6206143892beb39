"""Jobs, the nightly schedule, and the sensor that trains once new days have landed."""

from __future__ import annotations

import datetime as dt

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    AssetSelection,
    DagsterInstance,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    TimeWindowPartitionsDefinition,
    define_asset_job,
    schedule,
    sensor,
)

from recpipeline.orchestration.instance import TRAINING_TAG

INGESTION_ASSETS = AssetSelection.assets("raw_events", "cleaned_events", "quarantined_events")
CLEANED = AssetKey("cleaned_events")
WAITING = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING]
#: on ingestion runs whose caller trains right after them (``recpipeline run``): the sensor does not retrain
TRAINS_ITSELF_TAG = "recpipeline/trains-itself"
_PAGE = 200


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

    @schedule(
        job=daily_ingestion,
        cron_schedule="15 0 * * *",
        execution_timezone="UTC",
        name="nightly_ingestion",
        default_status=DefaultScheduleStatus.RUNNING,
        description="00:15 UTC: ingest the day that just ended, if it is inside the configured window and "
        "not ingested yet.",
    )
    def nightly_ingestion(context: ScheduleEvaluationContext):
        partitions = context.repository_def.get_job("daily_ingestion").partitions_def
        now = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
        return nightly_request(context.instance, partitions, now)

    @sensor(
        job=train_and_evaluate,
        name="train_after_ingestion",
        minimum_interval_seconds=15,
        default_status=DefaultSensorStatus.RUNNING,
        description="Retrain and evaluate after new cleaned days land (nightly run, backfill or manual); "
        "starts after the latest cleaned_events materialization present when it first runs.",
    )
    def train_after_ingestion(context: SensorEvaluationContext):
        return training_request(context)

    return [daily_ingestion, train_and_evaluate], [nightly_ingestion], [train_after_ingestion]


def nightly_request(
    instance: DagsterInstance, partitions: TimeWindowPartitionsDefinition, now: dt.datetime
) -> RunRequest | SkipReason:
    """The day that ended before ``now``, when it is inside the window and has no cleaned_events yet."""
    day = (now.astimezone(dt.UTC) - dt.timedelta(days=1)).date()
    first = partitions.start.date()
    if day < first:
        return SkipReason(f"the configured window starts {first}; nothing to ingest before it")
    if partitions.end is not None and day >= partitions.end.date():  # Dagster's end is exclusive
        last = partitions.end.date() - dt.timedelta(days=1)
        return SkipReason(f"the configured window ends {last}; nothing left to ingest")
    key = day.isoformat()
    done = instance.fetch_materializations(AssetRecordsFilter(asset_key=CLEANED, asset_partitions=[key]), 1)
    if done.records:
        return SkipReason(f"{key} is already ingested")
    return RunRequest(run_key=f"nightly-{key}", partition_key=key)


def training_request(context: SensorEvaluationContext) -> RunRequest | SkipReason:
    """One retrain for every cleaned_events materialization after the cursor (a storage id).

    Without a cursor (the sensor's first evaluation, e.g. the first `dagster dev` on a warehouse the CLI
    filled) the cursor starts at the latest materialization: old data never triggers a retrain. Days
    ingested by runs tagged ``TRAINS_ITSELF_TAG`` are skipped, since their caller trains on them itself.
    """
    instance = context.instance
    latest = instance.fetch_materializations(CLEANED, limit=1, ascending=False).records
    if not latest:
        context.update_cursor("0")
        return SkipReason("no cleaned_events materialization yet")
    newest = latest[0]
    if context.cursor is None:
        context.update_cursor(str(newest.storage_id))
        return SkipReason(
            f"starting after the latest cleaned_events materialization, {newest.event_log_entry.run_id}"
        )
    after = int(context.cursor)
    if newest.storage_id <= after:
        return SkipReason("no cleaned_events materialization since the last evaluation")
    context.update_cursor(str(newest.storage_id))
    if not _any_untrained_run(instance, after, newest.storage_id):
        return SkipReason(
            "the new cleaned_events materializations come from runs that train themselves (recpipeline run)"
        )
    # a queued training run will read every day present when it starts: coalesce instead of piling up
    if instance.get_run_records(RunsFilter(job_name="train_and_evaluate", statuses=WAITING), limit=1):
        return SkipReason("a train_and_evaluate run is already waiting; it will see the new days")
    return RunRequest(run_key=f"after-cleaned_events-{newest.storage_id}")


def _any_untrained_run(instance: DagsterInstance, after: int, upto: int) -> bool:
    """Whether a run that materialized cleaned_events after storage id ``after`` (up to ``upto``) does not
    train on it itself."""
    records_filter = AssetRecordsFilter(asset_key=CLEANED, after_storage_id=after, before_storage_id=upto + 1)
    cursor = None
    while True:
        page = instance.fetch_materializations(records_filter, _PAGE, cursor=cursor, ascending=True)
        run_ids = list(dict.fromkeys(record.event_log_entry.run_id for record in page.records))
        trains_itself = RunsFilter(run_ids=run_ids, tags={TRAINS_ITSELF_TAG: "true"})
        if set(run_ids) - set(instance.get_run_ids(trains_itself)):
            return True
        if not page.has_more:
            return False
        cursor = page.cursor
