"""A `files` source end to end through the real Dagster graph: column mapping, `;` CSV, local times."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import materialize

from recpipeline.config import RunConfig, parse_config
from recpipeline.orchestration.definitions import build_assets
from recpipeline.orchestration.resources import build_resources
from recpipeline.orchestration.runner import run_pipeline
from recpipeline_tests.conftest import SHOP_COLUMNS, shop_source

#: both tests run the whole Dagster graph
pytestmark = pytest.mark.integration

DAYS = pd.date_range("2026-03-02", periods=12, freq="D")


def write_shop(folder: Path, n_rows: int = 2500) -> pd.DataFrame:
    """A small shop log in German column names; users prefer one of four item groups; a few dirty rows."""
    rng = np.random.default_rng(7)
    users = rng.integers(0, 80, n_rows)
    items = (users % 4) * 10 + rng.integers(0, 10, n_rows)
    items = np.where(rng.random(n_rows) < 0.2, rng.integers(0, 40, n_rows), items)
    local = DAYS[0] + pd.to_timedelta(rng.uniform(0, len(DAYS) * 86400, n_rows), unit="s")
    log = pd.DataFrame(
        {
            "Kunde": [f"K-{u:03d}" for u in users],
            "Artikel": [f"A;{i:02d}" for i in items],  # the separator inside an id: quoted by the writer
            "Zeit": local.strftime("%Y-%m-%d %H:%M:%S"),  # naive: Berlin local time
            "Aktion": rng.choice(["ansicht", "ansicht", "korb", "kauf"], n_rows),
            "Menge": rng.integers(1, 4, n_rows).astype(str),
            "Sitzung": [f"s{u}-{d}" for u, d in zip(users, local.day, strict=True)],
        }
    ).sort_values("Zeit", kind="stable")
    log.iloc[::97, 0] = ""  # no customer
    log.iloc[5::101, 3] = "klick"  # an event type nobody mapped
    log = pd.concat([log, log.iloc[1000:1007]])  # exact duplicates
    log.to_csv(folder / "shop.csv", sep=";", index=False)
    catalogue = pd.DataFrame(
        {
            "nr": [f"A;{i:02d}" for i in range(40)],
            "name": [f"Ding {i}" for i in range(40)],
            "gruppe": list("wxyz") * 10,
        }
    )
    catalogue.to_csv(folder / "items.csv", sep=";", index=False)
    return log


def kept_rows(log: pd.DataFrame) -> int:
    """Rows cleaning keeps: a customer, a mapped event type, not an exact repeat of an earlier row."""
    return int(((log["Kunde"] != "") & (log["Aktion"] != "klick") & ~log.duplicated()).sum())


def shop_config(folder: Path, **overrides) -> RunConfig:
    raw = {
        "source": shop_source(
            "shop.csv",
            columns={**SHOP_COLUMNS, "session_id": "Sitzung"},
            timezone="Europe/Berlin",
            items={
                "path": "items.csv",
                "options": {"sep": ";"},
                "columns": {"item_id": "nr", "title": "name", "category": "gruppe"},
            },
        ),
        # the first UTC day holds only Berlin's first hour: one dirty row there is a large share
        "cleaning": {"max_quarantine_share": 0.5},
        "split": {"validation_days": 2, "test_days": 2},
        "models": ["popularity", {"als": {"iterations": 5}}],
        "k": 5,
        "storage": str(folder / "warehouse"),
        **overrides,
    }
    return parse_config(raw, source_name=str(folder / "run.yaml"), base_dir=folder)


def test_files_source_runs_end_to_end_with_every_row_accounted_for(tmp_path: Path):
    log = write_shop(tmp_path)
    config = shop_config(tmp_path)
    outcome = run_pipeline(config)
    assert outcome.partitions[0] == "2026-03-01"  # Berlin 00:xx on 2 March is 1 March in UTC
    assert outcome.partitions[-1] == "2026-03-13"

    metrics = outcome.metrics
    assert {"popularity", "als"} <= set(metrics["model"])
    ndcg = metrics[(metrics["metric"] == "ndcg") & (metrics["segment"] == "all")].set_index("model")["value"]
    assert ndcg.notna().all() and (ndcg > 0).all()

    root = Path(config.storage)
    raw_rows = 0
    reasons = []
    for day in outcome.partitions:
        raw = pd.read_parquet(root / "raw_events" / f"{day}.parquet")
        cleaned = pd.read_parquet(root / "cleaned_events" / f"{day}.parquet")
        quarantine = pd.read_parquet(root / "quarantined_events" / f"{day}.parquet")
        assert len(raw) == len(cleaned) + len(quarantine)
        assert {"Kunde", "Artikel", "_source_file", "_row"} <= set(raw.columns)  # as ingested
        raw_rows += len(raw)
        reasons += list(quarantine["reason"])
    assert raw_rows == len(log)
    missing = log["Kunde"] == ""
    unknown = ~missing & (log["Aktion"] == "klick")
    assert pd.Series(reasons).value_counts().to_dict() == {
        "missing_user_id": missing.sum(),
        "unknown_event_type": unknown.sum(),
        "duplicate": (~missing & ~unknown & log.duplicated()).sum(),
    }
    catalogue = pd.read_parquet(root / "item_catalog.parquet").set_index("item_id")
    assert catalogue.loc["A;07", ["title", "category"]].tolist() == ["Ding 7", "z"]
    item_map = pd.read_parquet(root / "item_id_map.parquet")
    assert set(item_map["id"]) <= set(catalogue.index)


def test_predefined_split_files_are_read_with_the_source_settings(tmp_path: Path):
    log = write_shop(tmp_path, n_rows=1500).iloc[:-7]  # without the repeated rows, which could straddle
    # a published-protocol style split: a fixed, random 80 / 20 partition of the rows, no validation file
    is_test = np.random.default_rng(1).random(len(log)) < 0.2
    log[~is_test].to_csv(tmp_path / "train.csv", sep=";", index=False)
    log[is_test].to_csv(tmp_path / "test.csv", sep=";", index=False)
    config = shop_config(tmp_path, split={"kind": "predefined", "train": "train.csv", "test": "test.csv"})
    tags = {
        "dagster/asset_partition_range_start": "2026-03-01",
        "dagster/asset_partition_range_end": "2026-03-13",
    }
    result = materialize(build_assets(config), resources=build_resources(config), tags=tags)
    assert result.success
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks["predefined_splits_do_not_overlap"] and "splits_are_ordered_in_time" not in checks

    root = Path(config.storage)
    train, validation, test = (
        pd.read_parquet(root / f"{name}.parquet") for name in ("train", "validation", "test")
    )
    assert len(test) == kept_rows(log[is_test])
    assert len(train) + len(validation) == kept_rows(log[~is_test])
    # validation is carved from train by the test file's rule: drawn at random, so a random 10 % per user
    metadata = result.asset_materializations_for_node("split")[0].metadata
    assert metadata["validation_rule"].value == "random"
    assert metadata["validation_rule_configured"].value == "auto"
    assert metadata["earlier_test_share"].value > 0.5
    sizes = pd.concat([train, validation])["user_idx"].value_counts()
    held_out = validation["user_idx"].value_counts().reindex(sizes.index, fill_value=0)
    assert (held_out == np.floor(sizes * 0.1)).all()
    users = pd.read_parquet(root / "user_id_map.parquet")
    assert set(test["user_idx"]) <= set(users["idx"])
