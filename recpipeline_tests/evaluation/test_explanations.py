"""The explanations and their fidelity (``evaluation.explanations``): the table's contract, the seeded sample,
re-ranking that agrees with the recommendations, faithful exact explanations beating random removal, the
examples with titles, and the assets through a real materialization."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import AssetSelection, materialize

from recpipeline.config import ConfigError, ExplanationsConfig
from recpipeline.evaluation.explanations import (
    EXPLANATION_COLUMNS,
    FIDELITY_COLUMNS,
    ExplanationSettings,
    explain_models,
    explanation_examples,
    new_ranks,
)
from recpipeline.evaluation.reports import report_html
from recpipeline.fitting.training import TrainingData
from recpipeline.models import create_model
from recpipeline.orchestration.definitions import build_assets
from recpipeline.orchestration.resources import build_resources
from recpipeline.preparation.encoding import interaction_matrix
from recpipeline_tests.conftest import TINY_RANGE, tiny_config
from recpipeline_tests.evaluation.test_reports import _inputs as report_inputs
from recpipeline_tests.evaluation.test_reports import _metrics as report_metrics

N_USERS, N_ITEMS, BLOCKS = 120, 60, 3
SETTINGS = ExplanationSettings(users=40, reasons=3, k=5, seed=7)


def id_map(prefix: str, n: int) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"{prefix}{i}" for i in range(n)], "idx": np.arange(n)})


@pytest.fixture(scope="module")
def data() -> tuple[TrainingData, pd.DataFrame]:
    """Users who each like one block of items (a few stray items besides); a third of the pairs are test."""
    rng = np.random.default_rng(0)
    rows = []
    for user in range(N_USERS):
        block = user % BLOCKS
        liked = rng.choice(np.arange(block, N_ITEMS, BLOCKS), 10, replace=False)
        stray = rng.choice(N_ITEMS, 2, replace=False)
        rows += [(user, item) for item in np.unique(np.r_[liked, stray])]
    pairs = pd.DataFrame(rows, columns=["user_idx", "item_idx"]).assign(weight=np.float32(1.0))
    test_rows = rng.random(len(pairs)) < 0.3
    train = pairs[~test_rows].reset_index(drop=True)
    catalog = pd.DataFrame(
        {"item_id": [f"i{i}" for i in range(N_ITEMS)], "title": [f"Film {i}" for i in range(N_ITEMS)]}
    )
    bundle = TrainingData(
        train=train.iloc[: len(train) * 9 // 10],
        validation=train.iloc[len(train) * 9 // 10 :],
        user_id_map=id_map("u", N_USERS),
        item_id_map=id_map("i", N_ITEMS),
        item_catalog=catalog,
        user_profiles=pd.DataFrame({"user_id": [f"u{i}" for i in range(N_USERS)]}),
    )
    return bundle, pairs[test_rows].reset_index(drop=True)


@pytest.fixture(scope="module")
def models(data) -> dict:
    bundle, _ = data
    known = pd.concat([bundle.train, bundle.validation])
    matrix = interaction_matrix(known, N_USERS, N_ITEMS)
    return {
        "ease": create_model("ease", {"regularization": 10.0}).fit(matrix),
        "item_knn": create_model("item_knn", {"neighbours": 20}).fit(matrix),
        "als": create_model("als", {"factors": 8, "iterations": 5}).fit(matrix),
    }


@pytest.fixture(scope="module")
def explained(data, models):
    bundle, test = data
    return explain_models(models, bundle, test, SETTINGS)


def test_table_contract_and_sample(explained, models) -> None:
    table = explained.table
    assert list(table.columns) == list(EXPLANATION_COLUMNS)
    assert set(table["model"]) == set(models)
    assert dict(table.groupby("model")["method"].first()) == {
        "ease": "exact",
        "item_knn": "exact",
        "als": "fold-in",
    }
    assert table["user_id"].nunique() == SETTINGS.users
    assert (
        table["rank"].between(1, SETTINGS.k).all() and table["reason_rank"].between(1, SETTINGS.reasons).all()
    )
    # reasons come strongest first, each from the user's history
    ordered = table.sort_values(["model", "user_id", "rank", "reason_rank"])
    drops = ordered.groupby(["model", "user_id", "rank"])["contribution"].diff().dropna()
    assert (drops <= 0).all()
    assert (table["reason_item"] != table["item_id"]).all()


def test_same_seed_same_explanations(data, models, explained) -> None:
    bundle, test = data
    again = explain_models(models, bundle, test, SETTINGS)
    pd.testing.assert_frame_equal(again.table, explained.table)
    other = explain_models(models, bundle, test, ExplanationSettings(40, 3, 5, seed=8))
    assert set(other.table["user_id"]) != set(explained.table["user_id"])


def test_removing_nothing_keeps_the_recommended_ranks(data, models) -> None:
    bundle, _ = data
    history = interaction_matrix(pd.concat([bundle.train, bundle.validation]), N_USERS, N_ITEMS)
    users = np.arange(10)
    model = models["ease"]
    items, _ = model.recommend(users, history, 5)
    owner = np.repeat(np.arange(10), 5)
    ranks = new_ranks(model, users, history[users], owner, items.ravel(), np.full(50, -1), None)
    assert ranks.tolist() == np.tile(np.arange(1, 6), 10).tolist()


def test_fidelity_against_random_removal(explained, models) -> None:
    fidelity = explained.fidelity
    assert list(fidelity.columns) == list(FIDELITY_COLUMNS)
    assert fidelity["model"].tolist() == list(models)
    assert (fidelity["n_users"] == SETTINGS.users).all() and (fidelity["n_explained"] > 0).all()
    for column in ("left_top_k_share", "random_left_top_k_share"):
        assert fidelity[column].between(0, 1).all()
    # an exact explanation is true: its strongest reason matters more than a random history item
    for _, row in fidelity[fidelity["method"] == "exact"].iterrows():
        assert row["mean_rank_change"] > row["random_mean_rank_change"] > -1, row["model"]
        assert row["left_top_k_share"] > row["random_left_top_k_share"], row["model"]
        assert row["beats_random"]


def test_examples_carry_titles(explained, data) -> None:
    bundle, _ = data
    examples = explanation_examples(explained.table, bundle.item_catalog, users=2)
    assert examples.groupby("model")["user_id"].nunique().max() == 2
    assert examples["rank"].max() <= 3
    assert (
        examples["title"].str.startswith("Film ").all()
        and examples["reason_title"].str.startswith("Film ").all()
    )


@pytest.mark.integration
def test_assets_materialize_with_the_report(tmp_path: Path) -> None:
    config = tiny_config(
        tmp_path / "warehouse",
        models=["popularity", {"ease": {"regularization": 50.0}}, {"als": {"iterations": 5}}],
        explanations={"users": 30, "reasons": 2},
    )
    selection = AssetSelection.assets("report").upstream() | AssetSelection.assets("quarantined_events")
    result = materialize(
        build_assets(config), resources=build_resources(config), tags=TINY_RANGE, selection=selection
    )
    assert result.success
    root = Path(config.storage)
    table = pd.read_parquet(root / "explanations.parquet")
    assert set(table["model"]) == {"ease", "als"}  # popularity has no reasons to give
    assert table["user_id"].nunique() == 30 and table["reason_rank"].max() == 2
    fidelity = pd.read_parquet(root / "explanation_fidelity.parquet")
    assert fidelity["model"].tolist() == ["ease", "als"] and (fidelity["k"] == config.k).all()
    assert "Why these items (explanations)" in (root / "report" / "report.html").read_text()


def test_no_asset_without_a_model_that_explains(tmp_path: Path) -> None:
    names = {
        key.to_user_string()
        for definition in build_assets(tiny_config(tmp_path, models=["popularity", "recent_popularity"]))
        for key in getattr(definition, "keys", [])
    }
    assert "report" in names and "explanations" not in names and "explanation_fidelity" not in names


def test_config_section_checks_its_values(tmp_path: Path) -> None:
    assert tiny_config(tmp_path).explanations == ExplanationsConfig(users=200, reasons=3)
    with pytest.raises(ConfigError, match="explanations.reasons: expected an integer >= 1"):
        tiny_config(tmp_path, explanations={"reasons": 0})
    with pytest.raises(ConfigError, match="unknown key explanations.sample"):
        tiny_config(tmp_path, explanations={"sample": 10})


def test_the_report_shows_examples_and_fidelity_only_when_given(explained, data) -> None:
    bundle, _ = data
    plain = report_inputs(report_metrics("r1", 1.0), report_metrics("r1", 1.0))
    assert "explanations" not in report_html(plain, [])
    with_them = replace(
        plain,
        explanations=explanation_examples(explained.table, bundle.item_catalog),
        explanation_fidelity=explained.fidelity,
    )
    page = report_html(with_them, [])
    assert "<h2>Why these items (explanations)</h2>" in page
    assert "random_left_top_k_share" in page and "reason_title" in page and "Film " in page
