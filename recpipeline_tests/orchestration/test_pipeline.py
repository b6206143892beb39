"""The whole graph through real Dagster, on a few days of generated data."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from dagster import materialize

from recpipeline.models import load_model
from recpipeline.orchestration.definitions import build_assets
from recpipeline.orchestration.resources import build_resources
from recpipeline.orchestration.runner import run_pipeline
from recpipeline.scoring.metrics import METRIC_NAMES
from recpipeline_tests.conftest import REPO_ROOT, TINY_RANGE, tiny_config


@pytest.mark.integration
def test_whole_graph_materializes_with_parquet_at_every_stage(tiny):
    result = materialize(build_assets(tiny), resources=build_resources(tiny), tags=TINY_RANGE)
    assert result.success
    assert all(check.passed for check in result.get_asset_check_evaluations())
    root = Path(tiny.storage)

    for day in pd.date_range("2026-10-01", "2026-10-10").strftime("%Y-%m-%d"):
        raw = pd.read_parquet(root / "raw_events" / f"{day}.parquet")
        cleaned = pd.read_parquet(root / "cleaned_events" / f"{day}.parquet")
        quarantine = pd.read_parquet(root / "quarantined_events" / f"{day}.parquet")
        assert len(raw) == len(cleaned) + len(quarantine)
        assert {"_source_file", "_row"} <= set(raw.columns)
    for name in [
        "interactions",
        "user_id_map",
        "item_id_map",
        "train",
        "validation",
        "test",
        "item_catalog",
        "user_profiles",
        "metrics",
        *(f"{m}_recommendations" for m in tiny.model_names),
    ]:
        assert (root / f"{name}.parquet").exists(), name

    recs = pd.read_parquet(root / "als_recommendations.parquet")
    assert list(recs.columns) == ["model", "user_id", "item_id", "user_idx", "item_idx", "rank", "score"]
    assert recs["rank"].dtype == "int16" and recs["score"].dtype == "float32"
    known = pd.concat([pd.read_parquet(root / "train.parquet"), pd.read_parquet(root / "validation.parquet")])
    seen = set(zip(known["user_idx"], known["item_idx"], strict=True))
    assert not any(pair in seen for pair in zip(recs["user_idx"], recs["item_idx"], strict=True))
    assert recs.groupby("user_idx")["rank"].max().max() == tiny.k

    metrics = pd.read_parquet(root / "metrics.parquet")
    assert set(metrics["model"]) == set(tiny.model_names)
    assert set(metrics["metric"]) == {*METRIC_NAMES, "exposure_share", "ndcg_gap"}  # + new items' share, gap
    assert list(metrics.columns) == [
        *("model", "segment", "metric", "k", "value", "n_users", "served_by", "flagged"),
        *("run_id", "as_of"),
    ]
    assert metrics.loc[metrics["metric"] == "ndcg", "value"].between(0, 1).all()

    vae = load_model(root / "models" / "mult_vae_model")
    assert (root / "models" / "mult_vae_model" / "model.safetensors").exists()
    assert vae.n_items_ == len(pd.read_parquet(root / "item_id_map.parquet"))
    assert not list(root.rglob("*.pkl")) and not list(root.rglob("*.pickle"))


@pytest.mark.integration
def test_same_config_gives_same_metrics(tmp_path):
    first = run_pipeline(tiny_config(tmp_path / "a")).metrics
    second = run_pipeline(tiny_config(tmp_path / "b")).metrics
    columns = ["model", "segment", "metric", "k", "value", "n_users"]
    pd.testing.assert_frame_equal(first[columns], second[columns])


@pytest.mark.integration
def test_definitions_load_from_workspace_yaml():
    completed = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "recpipeline" in completed.stdout + completed.stderr
