"""Ingestion: catalogue, user profiles, raw events per day, and cleaning into events + quarantine."""

import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetOut,
    BackfillPolicy,
    Backoff,
    DailyPartitionsDefinition,
    Failure,
    MetadataValue,
    Output,
    RetryPolicy,
    asset,
    multi_asset,
)

from recpipeline.config import RunConfig
from recpipeline.evaluation.reports import markdown_table
from recpipeline.orchestration.checks import (
    cleaned_check_results,
    daily_check_events,
    daily_check_specs,
    quarantine_check_results,
)
from recpipeline.orchestration.io_managers import delete_partitions, partition_metadata
from recpipeline.preparation.cleaning import REASONS, clean_and_account
from recpipeline.preparation.privacy import pseudonymised_users, pseudonymiser
from recpipeline.sources import Source, open_source
from recpipeline.sources.reading import SourceUnavailable

GROUP = "ingestion"
#: reading a source (object stores, network shares) can fail transiently; see ``retry_only_transient``
SOURCE_RETRY = RetryPolicy(max_retries=2, delay=5, backoff=Backoff.EXPONENTIAL)
#: one policy for the three daily assets: a backfill of any date range (from the job or from an asset
#: selection) is one run that ingests and cleans every day of it, so the sensor retrains once after it
DAILY_BACKFILL = BackfillPolicy.single_run()


@contextmanager
def retry_only_transient() -> Iterator[None]:
    """Let ``SOURCE_RETRY`` retry only I/O errors that may pass; any other error (a bad file, a bad value)
    would repeat, so the step fails at once with it."""
    try:
        yield
    except (SourceUnavailable, OSError):
        raise
    except Exception as exc:
        raise Failure(description=str(exc), allow_retries=False) from exc


def daily_partitions(config: RunConfig) -> DailyPartitionsDefinition:
    """Daily partitions over the source's days (end inclusive in config, exclusive for Dagster)."""
    start, end = open_source(config).days()
    return DailyPartitionsDefinition(
        start_date=start.isoformat(),
        end_date=(end + dt.timedelta(days=1)).isoformat() if end else None,
        timezone="UTC",
    )


def add_partition_metadata(
    context: AssetExecutionContext,
    config: RunConfig,
    asset_key: str,
    frames: Mapping[str, pd.DataFrame],
    extra: Mapping[str, Mapping[str, int]] | None = None,
) -> None:
    """Give each partition of a (range) run its own file, row count and schema, plus ``extra[partition]``:
    metadata on the output itself would be the run's, repeated on every partition."""
    for key, metadata in partition_metadata(config.storage, asset_key, frames).items():
        context.add_asset_metadata(
            {**metadata, **(extra or {}).get(key, {})}, asset_key=asset_key, partition_key=key
        )


def build_ingestion_assets(config: RunConfig, partitions: DailyPartitionsDefinition) -> list:
    source: Source = open_source(config)

    @asset(group_name=GROUP, kinds={"pandas", "parquet"}, retry_policy=SOURCE_RETRY)
    def item_catalog() -> pd.DataFrame:
        """Items: item_id, title, category, brand, price, first_seen."""
        with retry_only_transient():
            return source.items()

    @asset(group_name=GROUP, kinds={"pandas", "parquet"}, retry_policy=SOURCE_RETRY)
    def user_profiles() -> pd.DataFrame:
        """Users: user_id (a pseudonym under privacy.pseudonymise), attributes (age band, region),
        first_seen."""
        with retry_only_transient():
            return pseudonymised_users(source.users(), pseudonymiser(config))

    @asset(
        group_name=GROUP,
        kinds={"pandas", "parquet"},
        partitions_def=partitions,
        backfill_policy=DAILY_BACKFILL,
        retry_policy=SOURCE_RETRY,
    )
    def raw_events(context: AssetExecutionContext) -> Output[dict[str, pd.DataFrame]]:
        """The source's rows for each day, as ingested, with `_source_file` / `_row` lineage columns."""
        # every day is read before any is written: a bad file stops the step with no partition half-done
        with retry_only_transient():
            days = {key: source.events_of_day(dt.date.fromisoformat(key)) for key in context.partition_keys}
            add_partition_metadata(context, config, "raw_events", days)
            # whole-source totals: source_rows = all raw partitions' rows + outside_window_rows
            return Output(days, metadata=source.row_counts())

    @multi_asset(
        group_name=GROUP,
        partitions_def=partitions,
        backfill_policy=DAILY_BACKFILL,
        check_specs=daily_check_specs(partitions),
        outs={
            "cleaned_events": AssetOut(
                kinds={"pandas", "parquet"},
                description="Valid events in the contract schema (user_id, item_id, event_type, timestamp, "
                "value, session_id) plus lineage.",
            ),
            "quarantined_events": AssetOut(
                kinds={"pandas", "parquet"},
                description="Rejected raw rows, each with its `reason`; "
                "rows(raw) = rows(cleaned) + rows(quarantine).",
            ),
        },
    )
    def clean(context: AssetExecutionContext, raw_events: dict[str, pd.DataFrame]):
        result = clean_and_account(
            raw_events, source.to_contract, config.cleaning.value_range, pseudonymiser(config)
        )
        table, totals = result.accounting, result.totals
        context.log.info(f"cleaned {len(table)} partition(s): {totals.to_dict()}")
        days = table.set_index("partition")
        reasons = {
            key: {f"reason/{name}": int(row[name]) for name in REASONS} for key, row in days.iterrows()
        }
        accounting = {
            key: {f"{column}_rows": int(row[column]) for column in ("raw", "cleaned", "quarantined")}
            | reasons[key]
            for key, row in days.iterrows()
        }
        add_partition_metadata(context, config, "cleaned_events", result.cleaned, accounting)
        add_partition_metadata(context, config, "quarantined_events", result.quarantined, reasons)
        # the run's table (one line per day it cleaned) is the same on every partition of the run
        yield Output(
            result.cleaned,
            output_name="cleaned_events",
            metadata={"run_row_accounting": MetadataValue.md(markdown_table(table))},
        )
        yield Output(result.quarantined, output_name="quarantined_events")
        checked = [*quarantine_check_results(config, table), *cleaned_check_results(result.cleaned)]
        yield from daily_check_events(context, checked)
        if not config.privacy.keep_raw:
            # the rows are cleaned and accounted for (raw_rows above): the raw files go
            deleted = delete_partitions(config.storage, "raw_events", raw_events)
            context.log.info(
                f"privacy.keep_raw is false: deleted {len(deleted)} raw_events partition file(s)"
            )

    return [item_catalog, user_profiles, raw_events, clean]
