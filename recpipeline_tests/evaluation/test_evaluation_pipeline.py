"""The evaluation assets in a real Dagster run (segments, multi-K, external lists, significance, history,
report) and `recpipeline evaluate` reproducing the pipeline's numbers from files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import materialize

from recpipeline.cli import main
from recpipeline.orchestration.definitions import build_assets
from recpipeline.orchestration.resources import build_resources
from recpipeline_tests.conftest import tiny_config

#: runs the Dagster graph
pytestmark = pytest.mark.integration

RANGE = {
    "dagster/asset_partition_range_start": "2026-10-01",
    "dagster/asset_partition_range_end": "2026-10-10",
}
EVALUATION = [
    "external_recommendations",
    "metrics",
    "metrics_per_user",
    "significance",
    "metrics_history",
    "model_costs",
    "report",
]
KEYS = ["model", "segment", "metric", "k"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One whole-graph run with an empty external folder, then the evaluation again with a file in it."""
    root = tmp_path_factory.mktemp("evaluation")
    (root / "lists").mkdir()
    config = tiny_config(
        root / "warehouse",
        k=[3, 5],
        evaluation={"external_recommendations": str(root / "lists"), "bootstrap_samples": 200},
    )
    assets, resources = build_assets(config), build_resources(config)
    assert materialize(assets, resources=resources, tags=RANGE).success
    warehouse = Path(config.storage)
    # the pipeline's own ALS lists handed back as a file, plus a repeated row and a row of an unknown user
    als = pd.read_parquet(warehouse / "als_recommendations.parquet")[["user_id", "item_id", "rank"]]
    stranger = pd.DataFrame({"user_id": ["nobody"], "item_id": [als["item_id"].iloc[0]], "rank": [1]})
    pd.concat([als, als.iloc[:1], stranger]).to_csv(root / "lists" / "als_copy.csv", index=False)
    second = materialize(assets, resources=resources, selection=EVALUATION)
    assert second.success
    return config, root, warehouse, second


def test_metrics_carry_segments_ks_and_external_lists(run) -> None:
    config, _, warehouse, result = run
    metrics = pd.read_parquet(warehouse / "metrics.parquet")
    assert set(metrics["k"]) == {3, 5}
    segments = {"all", "with_history", "warm", "cold", "new_users", "cross_category", "new_items"}
    assert segments <= set(metrics["segment"])
    assert set(metrics["model"]) == {*config.model_names, "als_copy"}
    # the same lists through the external path give exactly the same numbers; ALS's new users got the
    # popularity fallback, the file's its own lists (the same, here)
    als = metrics[metrics["model"] == "als"].drop(columns=["model", "served_by"]).set_index(KEYS[1:])
    copy = metrics[metrics["model"] == "als_copy"].drop(columns=["model", "served_by"]).set_index(KEYS[1:])
    pd.testing.assert_frame_equal(als, copy)
    served = metrics[metrics["segment"] == "new_users"].groupby("model")["served_by"].unique()
    assert {m: list(s) for m, s in served.items()} == {
        "als": ["popularity"],
        "als_copy": ["als_copy"],
        "mult_vae": ["popularity"],
        "popularity": ["popularity"],
    }
    external = result.asset_materializations_for_node("external_recommendations")[0].metadata
    counts = external["files"].value["als_copy"]
    # the copied row is one slot (not a miss at the next rank), so the numbers stay the same
    assert counts["repeated_rows"] == 1 and counts["duplicates"] == 0 and counts["unknown_user_rows"] == 1
    assert all(check.passed for check in result.get_asset_check_evaluations())

    per_user = pd.read_parquet(warehouse / "metrics_per_user.parquet")
    n_all = metrics.loc[(metrics["segment"] == "all") & (metrics["metric"] == "ndcg"), "n_users"].iloc[0]
    assert len(per_user) == n_all * 4 and {"ndcg@3", "recall@5", "user_segment"} <= set(per_user.columns)


def test_significance_against_the_best_non_neural_model(run) -> None:
    _, _, warehouse, _ = run
    metrics = pd.read_parquet(warehouse / "metrics.parquet")
    table = pd.read_parquet(warehouse / "significance.parquet")
    # on the headline segment: users with history
    best = (
        metrics[
            (metrics["segment"] == "with_history")
            & (metrics["metric"] == "ndcg")
            & (metrics["k"] == 5)
            & metrics["model"].isin(["popularity", "als"])
        ]
        .sort_values("value")["model"]
        .iloc[-1]
    )
    assert (table["baseline"] == best).all()
    assert set(table["model"]) == {"popularity", "als", "mult_vae", "als_copy"} - {best}
    assert set(table["metric"]) == {"ndcg", "recall"} and set(table["k"]) == {3, 5}
    # segments below evaluation.min_segment_users (30) are flagged in the metrics and not tested
    small = set(metrics.loc[metrics["flagged"] & (metrics["metric"] == "ndcg"), "segment"])
    assert not small & set(table["segment"]) and "with_history" in set(table["segment"])
    assert table[["p_value", "p_holm"]].stack().between(0, 1).all()
    assert (table["ci_low"] <= table["mean_diff"]).all() and (table["mean_diff"] <= table["ci_high"]).all()


def test_report_is_self_contained_html_with_plots_and_tables(run) -> None:
    _, _, warehouse, result = run
    page = (warehouse / "report" / "report.html").read_text()
    # intervals, trade-off, trend, and accuracy against fit time (the run measured its models' costs)
    assert page.count("data:image/png;base64,") == 4
    assert "<h2>Costs</h2>" in page
    assert "<table" in page and "ndcg@5" in page and "als_copy" in page
    metadata = result.asset_materializations_for_node("report")[0].metadata
    assert "| model |" in metadata["report"].value and "Significance" in metadata["report"].value
    assert not list(warehouse.rglob("*.tmp"))


def test_history_appends_runs_and_the_regression_check_fires(run) -> None:
    config, _, warehouse, _ = run
    history = pd.read_parquet(warehouse / "metrics_history.parquet")
    assert history["run_id"].nunique() == 2
    assert list(history.columns) == [
        "run_id",
        "as_of",
        "model",
        "segment",
        "metric",
        "k",
        "value",
        "served_by",
    ]

    # earlier runs where every model was twice as good: this run's ndcg@5 is far below their median
    current = history[history["run_id"] == history["run_id"].iloc[-1]]
    better = [current.assign(run_id=f"earlier-{i}", value=current["value"] * 2) for i in range(3)]
    pd.concat(better).to_parquet(warehouse / "metrics_history.parquet", index=False)
    result = materialize(build_assets(config), resources=build_resources(config), selection=EVALUATION)
    (check,) = [c for c in result.get_asset_check_evaluations() if c.asset_key.path == ["metrics_history"]]
    assert check.check_name == "ndcg_within_regression_tolerance" and not check.passed
    regressed = check.metadata["regressed_models"].value
    assert "als" in regressed and "popularity" in regressed


def test_cli_evaluate_reproduces_the_pipeline_numbers(run, tmp_path) -> None:
    _, _, warehouse, _ = run
    users = pd.read_parquet(warehouse / "user_id_map.parquet").set_index("idx")["id"]
    items = pd.read_parquet(warehouse / "item_id_map.parquet").set_index("idx")["id"]
    files = {}
    for split in ("train", "validation", "test"):
        frame = pd.read_parquet(warehouse / f"{split}.parquet")
        ids = pd.DataFrame(
            {"user_id": frame["user_idx"].map(users), "item_id": frame["item_idx"].map(items)}
        ).assign(timestamp=frame["timestamp"].astype(str))
        files[split] = tmp_path / f"{split}.csv"
        ids.to_csv(files[split], index=False)
    features = tmp_path / "items.csv"
    pd.read_parquet(warehouse / "item_catalog.parquet")[["item_id", "category"]].to_csv(features, index=False)
    recs = tmp_path / "als.csv"
    pd.read_parquet(warehouse / "als_recommendations.parquet")[["user_id", "item_id", "rank"]].to_csv(
        recs, index=False
    )
    out = tmp_path / "metrics.parquet"
    argv = ["evaluate", "--train", str(files["train"]), "--validation", str(files["validation"])]
    argv += ["--test", str(files["test"]), "--recommendations", str(recs), "--k", "3", "5"]
    argv += ["--item-features", str(features), "--output", str(out)]
    assert main(argv) == 0

    cli = pd.read_parquet(out).set_index(KEYS).sort_index()
    pipeline = pd.read_parquet(warehouse / "metrics.parquet")
    pipeline = pipeline[pipeline["model"] == "als"].set_index(KEYS).sort_index()
    assert cli.index.equals(pipeline.index)
    assert (cli["n_users"] == pipeline["n_users"]).all()
    np.testing.assert_allclose(cli["value"], pipeline["value"], rtol=1e-9, atol=1e-12)
    assert (cli["as_of"] == pipeline["as_of"]).all()
