"""The DIGINETICA sample through the pipeline under the session protocol (data/diginetica.yaml, slimmed)."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from recpipeline.config import parse_config
from recpipeline.orchestration.runner import run_pipeline
from recpipeline_tests.conftest import REPO_ROOT, public_dataset

pytestmark = pytest.mark.integration


def test_diginetica_sessions_run_end_to_end(tmp_path) -> None:
    raw = yaml.safe_load((REPO_ROOT / "data" / "diginetica.yaml").read_text())
    raw["source"]["path"] = str(public_dataset("diginetica-sample", "sample_train-item-views.csv"))
    raw["source"]["start_date"] = "2016-04-20"  # six weeks keep the test quick
    raw["models"] = ["popularity", "sknn", {"gru4rec": {"epochs": 2, "num_threads": 1, "device": "cpu"}}]
    raw["evaluation"] = {**raw["evaluation"], "bootstrap_samples": 100}
    raw["storage"] = str(tmp_path / "warehouse")
    config = parse_config(raw, source_name="<diginetica>", base_dir=REPO_ROOT / "data")
    metrics = run_pipeline(config).metrics
    warehouse = tmp_path / "warehouse"
    interactions = pd.read_parquet(warehouse / "interactions.parquet")
    test = pd.read_parquet(warehouse / "test.parquet")
    train = pd.read_parquet(warehouse / "train.parquet")
    # the log's session ids: no session is in two splits, and anonymous sessions are their own visitors
    assert not set(test["session_idx"]) & set(train["session_idx"])
    users = pd.read_parquet(warehouse / "user_id_map.parquet")
    anonymous = users["id"].str.startswith("~anonymous:")
    assert anonymous.any() and (~anonymous).any()
    per_visitor = interactions.groupby("user_idx")["session_idx"].nunique()
    assert (per_visitor[users.loc[anonymous, "idx"]] == 1).all()
    assert set(metrics["model"]) == {"popularity", "sknn", "gru4rec"}
    ndcg = metrics.query("segment == 'all' and metric == 'ndcg' and k == 20").set_index("model")["value"]
    assert ndcg["sknn"] > ndcg["popularity"]
    assert {"prefix_1", "anonymous", "logged_in"} <= set(metrics["segment"])
    significance = pd.read_parquet(warehouse / "significance.parquet")
    assert set(significance["segment"]) == {"all"}
    # paired by session: at most one sample per test session
    assert 0 < significance["n_users"].max() <= test["session_idx"].nunique()
