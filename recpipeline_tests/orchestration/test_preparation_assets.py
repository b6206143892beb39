"""The split step through real Dagster: each split kind with k-core filtering, its kind's leakage check, and
the filtering's counts in the metadata."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetSelection, materialize

from recpipeline.orchestration.definitions import build_assets
from recpipeline.orchestration.jobs import INGESTION_ASSETS
from recpipeline.orchestration.resources import build_resources
from recpipeline_tests.conftest import TINY_RANGE, tiny_config

PREPARATION = INGESTION_ASSETS | AssetSelection.assets(
    "interactions", "user_id_map", "item_id_map", "train", "validation", "test"
)
CHECK_OF_KIND = {
    "temporal": "splits_are_ordered_in_time",
    "random": "splits_do_not_share_events",
    "stratified": "splits_do_not_share_events",
    "leave_last_out": "splits_are_ordered_per_user",
}


@pytest.mark.integration
@pytest.mark.parametrize("kind", sorted(CHECK_OF_KIND))
def test_split_kinds_filter_check_and_account_for_every_row(tmp_path: Path, kind: str) -> None:
    config = tiny_config(
        tmp_path / "warehouse",
        split={"kind": kind, "validation_days": 2, "test_days": 2},
        preparation={"min_user_interactions": 3, "min_item_interactions": 3},
    )
    result = materialize(
        build_assets(config), resources=build_resources(config), selection=PREPARATION, tags=TINY_RANGE
    )
    assert result.success
    checks = {check.check_name: check.passed for check in result.get_asset_check_evaluations()}
    assert all(checks.values())
    # the kind's own leakage check guards the split, and only it
    assert {name for name in checks if name.split("_")[0] in ("splits", "predefined")} == {
        CHECK_OF_KIND[kind]
    }
    metadata = {
        event.asset_key.path[-1]: {key: value.value for key, value in event.materialization.metadata.items()}
        for event in result.get_asset_materialization_events()
    }
    kcore = metadata["train"]
    assert kcore["split_kind"] == kind and kcore["kcore_removed_rows"] > 0 and kcore["kcore_iterations"] >= 1
    root = Path(config.storage)
    splits = [pd.read_parquet(root / f"{name}.parquet") for name in ("train", "validation", "test")]
    interactions = pd.read_parquet(root / "interactions.parquet")
    assert sum(map(len, splits)) == len(interactions) - kcore["kcore_removed_rows"]
    kept = pd.concat(splits)
    assert kept["user_idx"].nunique() == interactions["user_idx"].nunique() - kcore["kcore_removed_users"]
    assert kept["item_idx"].nunique() == interactions["item_idx"].nunique() - kcore["kcore_removed_items"]
    assert all(
        metadata[name]["kcore_removed_rows"] == kcore["kcore_removed_rows"] for name in ("validation", "test")
    )
