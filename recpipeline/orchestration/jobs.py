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

from recpipeline.orchestration.instance import TRAINING_TAG, release_dead_runs, stale_after_s

INGESTION_ASSETS = AssetSelection.assets("raw_events", "cleaned_events", "quarantined_events")
#: the backtest's assets (``orchestration.assets.backtest``): the cut partitions and the summary over them
BACKTEST_GROUP = "backtest"
BACKTEST_CUTS_JOB = "backtest_cuts"
BACKTEST_SUMMARY_JOB = "backtest_summary"
BACKTEST_INPUTS_JOB = "backtest_inputs"
#: what every cut reads besides the cleaned days' encoding: materialized before the cuts run
BACKTEST_INPUTS = AssetSelection.assets(
    "interactions", "user_id_map", "item_id_map", "item_catalog", "user_profiles"
)
CLEANED = AssetKey("cleaned_events")
WAITING = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING]
#: on ingestion runs whose caller trains right after them (``recpipeline run``): the sensor does not retrain
TRAINS_ITSELF_TAG = "recpipeline/trains-itself"
_PAGE = 200


def build_jobs(backtest_test_days: int | None = None):
    """The jobs, the nightly schedule and the sensors; with ``backtest_test_days`` (the configuration has
    backtest cuts, each with a test window of that many days) also the backtest's jobs and its sensor."""
    has_backtest = backtest_test_days is not None
    backtest = AssetSelection.groups(BACKTEST_GROUP)
    daily_ingestion = define_asset_job(
        "daily_ingestion",
        selection=INGESTION_ASSETS,
        description="Ingest and clean one day (or a range of days, as one run) of raw events.",
    )
    train_and_evaluate = define_asset_job(
        "train_and_evaluate",
        selection=AssetSelection.all() - INGESTION_ASSETS - backtest,
        tags={TRAINING_TAG: "true"},
        description="Encode all cleaned days, split, fit every model, recommend and evaluate.",
    )
    jobs = [daily_ingestion, train_and_evaluate]
    if has_backtest:
        summary = AssetSelection.assets("backtest", "backtest_costs")
        jobs += [
            define_asset_job(
                BACKTEST_INPUTS_JOB,
                selection=BACKTEST_INPUTS,
                description="Encode every cleaned day (interactions, id maps), catalogue and profiles: what "
                "the backtest's cuts read.",
            ),
            define_asset_job(
                BACKTEST_CUTS_JOB,
                selection=backtest - summary,
                tags={TRAINING_TAG: "true"},
                description="One backtest cut per partition: its splits, fits (warm-started from the "
                "previous materialized cut), recommendations and evaluation. A backfill over a range of "
                "cuts is a rolling-origin backtest; materialize backtest_summary after it.",
            ),
            define_asset_job(
                BACKTEST_SUMMARY_JOB,
                selection=summary,
                description="The verdict over time across every materialized cut (backtest.parquet, "
                "backtest_costs.parquet).",
            ),
        ]

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
        return logged(context, nightly_request(context.instance, partitions, now))

    @sensor(
        job=train_and_evaluate,
        name="train_after_ingestion",
        minimum_interval_seconds=15,
        default_status=DefaultSensorStatus.RUNNING,
        description="Retrain and evaluate after new cleaned days land (nightly run, backfill or manual); "
        "starts after the latest cleaned_events materialization present when it first runs.",
    )
    def train_after_ingestion(context: SensorEvaluationContext):
        return logged(context, training_request(context))

    @sensor(
        name="recover_stalled_runs",
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description="Marks failed the runs whose heartbeat stopped (a killed run worker or CLI process) and "
        "frees the pool slots they hold, so queued training runs and model fits never wait for them "
        "forever.",
    )
    def recover_stalled_runs(context: SensorEvaluationContext):
        return logged(context, recovery(context.instance))

    sensors = [train_after_ingestion, recover_stalled_runs]
    if has_backtest:

        @sensor(
            jobs=jobs[2:],
            name="backtest_newest_cut",
            minimum_interval_seconds=60,
            default_status=DefaultSensorStatus.RUNNING,
            description="Adds the newest backtest cut once its test window is ingested and encoded (its "
            "torch models continuing the previous cut's weights), then refreshes the verdict over time: "
            "the nightly runs extend the backtest by themselves.",
        )
        def backtest_newest_cut(context: SensorEvaluationContext):
            return logged(context, newest_cut_request(context, backtest_test_days))

        sensors.append(backtest_newest_cut)
    return jobs, [nightly_ingestion], sensors


def logged(
    context: ScheduleEvaluationContext | SensorEvaluationContext, decision: RunRequest | SkipReason
) -> RunRequest | SkipReason:
    """``decision``, also written to the tick's log (the UI shows a skip reason only in a hover; the log
    keeps every tick's reason): the reason of a skip, or the run requested and its key."""
    if isinstance(decision, SkipReason):
        context.log.info(f"skipped: {decision.skip_message}")
    else:
        partition = f" for {decision.partition_key}" if decision.partition_key else ""
        context.log.info(f"requested a run{partition} (run key {decision.run_key})")
    return decision


def recovery(instance: DagsterInstance) -> SkipReason:
    """Recover the stalled runs (``release_dead_runs``); the skip reason says which."""
    released = release_dead_runs(instance)
    if not released:
        return SkipReason(f"no stalled run (none without a heartbeat for {stale_after_s():.0f} s)")
    runs = ", ".join(released)
    return SkipReason(f"marked failed or freed the pool slots of {len(released)} run(s): {runs}")


def newest_cut_request(context: SensorEvaluationContext, test_days: int) -> RunRequest | SkipReason:
    """The newest cut whose test window the encoded interactions cover, when it has not been evaluated;
    else the verdict over time, when a cut was evaluated after it was last computed."""
    instance = context.instance
    encoded = instance.fetch_materializations(AssetKey("interactions"), limit=1, ascending=False).records
    if not encoded:
        return SkipReason("no interactions encoded yet")
    last_day = dt.date.fromisoformat(str(encoded[0].asset_materialization.metadata["last_day"].value))
    keys = context.repository_def.get_job(BACKTEST_CUTS_JOB).partitions_def.get_partition_keys()
    ready = [key for key in keys if dt.date.fromisoformat(key) + dt.timedelta(days=test_days) <= last_day]
    if not ready:
        return SkipReason(f"no cut has its whole test window in the encoded days (up to {last_day})")
    newest = ready[-1]
    if newest not in instance.get_materialized_partitions(AssetKey("cut_metrics")):
        return RunRequest(job_name=BACKTEST_CUTS_JOB, partition_key=newest, run_key=f"cut-{newest}")
    evaluated = instance.fetch_materializations(AssetKey("cut_metrics"), limit=1, ascending=False).records
    summary = instance.fetch_materializations(AssetKey("backtest"), limit=1, ascending=False).records
    if summary and summary[0].storage_id > evaluated[0].storage_id:
        return SkipReason(f"the newest cut, {newest}, is evaluated and in the verdict over time")
    return RunRequest(job_name=BACKTEST_SUMMARY_JOB, run_key=f"summary-after-{evaluated[0].storage_id}")


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
