"""What every asset shows in the Dagster UI before anything runs (orchestration.catalog): owners, tags,
column tables with the contracts' descriptions, the metrics' freshness policy, code references; the lineage
through model_inputs; and what a materialization adds (the column schema with the same descriptions)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetKey, TableSchema, build_input_context
from upath import UPath

from recpipeline.contracts import COLUMNS, column_description
from recpipeline.orchestration.catalog import (
    COLUMN_SCHEMA,
    METRICS_FRESHNESS,
    OWNERS,
    asset_columns,
)
from recpipeline.orchestration.definitions import build_definitions
from recpipeline.orchestration.io_managers import (
    MODEL_INPUT_TABLES,
    SCHEMA_ENTRY,
    ModelInputsReader,
    table_metadata,
)
from recpipeline_tests.conftest import tiny_config

BACKTEST = {"every_days": 1, "min_train_days": 3}


@pytest.fixture(scope="module")
def specs(tmp_path_factory) -> dict[str, object]:
    # with backtest cuts: the cut assets are presented like the single run's
    config = tiny_config(tmp_path_factory.mktemp("catalog") / "warehouse", backtest=BACKTEST)
    defs = build_definitions(config)
    return {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}


def test_every_asset_has_the_owner_a_stage_tag_and_a_code_reference(specs) -> None:
    for name, spec in specs.items():
        assert list(spec.owners) == list(OWNERS), name
        assert spec.tags["stage"] == spec.group_name, name
        references = spec.metadata["dagster/code_references"].code_references
        assert references and Path(references[0].file_path).suffix == ".py", name
    assert specs["als_model"].tags["model_family"] == "factorisation"
    assert specs["mult_vae_recommendations"].tags["model_family"] == "neural"
    assert specs["popularity_model"].tags["model"] == "popularity"
    assert "model_family" not in specs["metrics"].tags
    assert specs["cut_mult_vae_validation_fit"].tags == {"stage": "backtest", "model": "mult_vae",
                                                         "model_family": "neural"}  # fmt: skip


def test_column_tables_are_there_before_the_first_materialization_with_descriptions(specs) -> None:
    cleaned = specs["cleaned_events"].metadata[COLUMN_SCHEMA]
    assert isinstance(cleaned, TableSchema)
    assert [c.name for c in cleaned.columns][:6] == ["user_id", "item_id", "event_type", "timestamp", "value",
                                                    "session_id"]  # fmt: skip
    assert all(c.description for c in cleaned.columns)
    recs = {c.name: c for c in specs["als_recommendations"].metadata[COLUMN_SCHEMA].columns}
    assert (
        recs["rank"].description == "Position in the top-K list, 1 = best." and recs["rank"].type == "integer"
    )
    # the metrics page opens with the verdict: its columns are a metadata entry, not the Columns table above
    assert COLUMN_SCHEMA not in specs["metrics"].metadata
    assert {c.name for c in specs["metrics"].metadata[SCHEMA_ENTRY].columns} >= {"model", "segment", "value"}
    backtest = {c.name: c for c in specs["backtest"].metadata[COLUMN_SCHEMA].columns}
    assert backtest["cut_date"].description.startswith("The backtest cut")
    assert all(c.description for c in specs["cut_costs"].metadata[COLUMN_SCHEMA].columns)


def test_every_column_the_definitions_list_is_described_in_the_contracts(tmp_path: Path) -> None:
    listed = {c for columns in asset_columns(tiny_config(tmp_path)).values() for c in columns}
    assert {"cut_date", "diff", "fit_s", "peak_rss_mb"} <= listed
    assert listed - set(COLUMNS) == set()
    assert column_description("ndcg@10") == "The user's ndcg at cut-off 10."
    assert column_description("age_band") is None  # a source's own attribute


def test_metrics_go_stale_after_the_nightly_period_and_a_margin(specs) -> None:
    assert specs["metrics"].freshness_policy == METRICS_FRESHNESS
    assert METRICS_FRESHNESS.fail_window.to_timedelta() == dt.timedelta(hours=27)
    assert specs["train"].freshness_policy is None


def test_models_reach_the_shared_inputs_through_model_inputs(specs) -> None:
    def upstream(name: str) -> set[str]:
        return {dep.asset_key.to_user_string() for dep in specs[name].deps}

    assert upstream("model_inputs") == set(MODEL_INPUT_TABLES)
    for model in ("popularity", "als", "mult_vae"):
        assert upstream(f"{model}_model") == {"model_inputs"}
        assert upstream(f"{model}_recommendations") == {f"{model}_model", "model_inputs", "test"}


def test_a_materialization_writes_its_schema_with_the_contract_descriptions() -> None:
    frame = pd.DataFrame({"user_id": ["u1"], "rank": pd.array([1], dtype="int16"), "age_band": ["18-24"]})
    schema = table_metadata(frame)["dagster/column_schema"]
    assert [(c.name, c.type, c.description) for c in schema.columns] == [
        ("user_id", frame["user_id"].dtype.name, column_description("user_id")),
        ("rank", "int16", "Position in the top-K list, 1 = best."),
        ("age_band", frame["age_band"].dtype.name, None),
    ]
    assert SCHEMA_ENTRY in table_metadata(frame, SCHEMA_ENTRY)


def test_model_inputs_load_each_table_as_an_input_on_it_would(tmp_path: Path) -> None:
    tables = {
        name: pd.DataFrame(
            {"user_idx": [0, 1], "item_idx": [1, 0], "weight": [1.0, 3.0], "extra": ["a", "b"]}
        )
        for name in MODEL_INPUT_TABLES
    }
    for name, frame in tables.items():
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
    columns = ["user_idx", "item_idx", "weight"]
    context = build_input_context(
        definition_metadata={"columns": columns}, asset_key=AssetKey("model_inputs")
    )
    data = ModelInputsReader(UPath(tmp_path)).load_input(context)
    for name in MODEL_INPUT_TABLES:
        expected = pd.read_parquet(
            tmp_path / f"{name}.parquet", columns=columns if name in ("train", "validation") else None
        )
        pd.testing.assert_frame_equal(getattr(data, name), expected)
