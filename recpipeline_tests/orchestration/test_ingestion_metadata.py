"""A range run of the daily assets through real Dagster: each partition's materialization, read back from the
instance, describes that day's file (path, rows, schema, quarantine reasons), not the run's total."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, materialize

from recpipeline.orchestration.definitions import build_assets
from recpipeline.orchestration.jobs import INGESTION_ASSETS
from recpipeline.orchestration.resources import build_resources
from recpipeline.preparation.cleaning import REASONS
from recpipeline_tests.conftest import tiny_config

DAYS = ["2026-10-02", "2026-10-03", "2026-10-04"]
THREE_DAYS = {
    "dagster/asset_partition_range_start": DAYS[0],
    "dagster/asset_partition_range_end": DAYS[-1],
}


def partition_metadata(instance: DagsterInstance, asset: str, day: str) -> dict:
    """The stored metadata of ``asset``'s latest materialization of partition ``day``."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[day]), limit=1
    ).records
    assert len(records) == 1, f"{asset} {day}: no materialization"
    return {key: value.value for key, value in records[0].asset_materialization.metadata.items()}


@pytest.mark.integration
def test_each_partition_of_a_range_run_carries_its_own_file_rows_and_reasons(tmp_path: Path) -> None:
    config = tiny_config(tmp_path / "warehouse")
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            build_assets(config),
            resources=build_resources(config),
            selection=INGESTION_ASSETS,
            tags=THREE_DAYS,
            instance=instance,
        )
        assert result.success
        stored = {
            (asset, day): partition_metadata(instance, asset, day)
            for asset in ("raw_events", "cleaned_events", "quarantined_events")
            for day in DAYS
        }

    root = Path(config.storage)
    for (asset, day), metadata in stored.items():
        file = root / asset / f"{day}.parquet"
        table = pd.read_parquet(file)
        assert metadata["path"] == str(file)
        assert metadata["dagster/row_count"] == len(table)
        assert [column.name for column in metadata["dagster/column_schema"].columns] == list(table.columns)
        # the run's total is there too, under its own name
        assert metadata["rows_in_run"] == sum(
            len(pd.read_parquet(root / asset / f"{other}.parquet")) for other in DAYS
        )
    # the days differ, so a repeated run total would show here
    assert len({stored["raw_events", day]["dagster/row_count"] for day in DAYS}) > 1

    for day in DAYS:
        quarantine = pd.read_parquet(root / "quarantined_events" / f"{day}.parquet")
        reasons = {f"reason/{name}": int((quarantine["reason"] == name).sum()) for name in REASONS}
        cleaned = stored["cleaned_events", day]
        assert {key: stored["quarantined_events", day][key] for key in reasons} == reasons
        assert {key: cleaned[key] for key in reasons} == reasons
        assert cleaned["raw_rows"] == stored["raw_events", day]["dagster/row_count"]
        assert cleaned["cleaned_rows"] == cleaned["dagster/row_count"]
        assert cleaned["quarantined_rows"] == len(quarantine) == sum(reasons.values())
    assert sum(stored["quarantined_events", day]["dagster/row_count"] for day in DAYS) > 0, (
        "the tiny source should quarantine some rows, or the reason counts above prove little"
    )
