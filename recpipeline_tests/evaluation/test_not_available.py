"""Diversity without item categories is not available: NaN in the tables, n/a in the reports, never 0."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recpipeline.evaluation.protocol import evaluate_models, prepare_evaluation
from recpipeline.evaluation.reports import markdown_table, metrics_summary
from recpipeline.scoring.metrics import describes_items, evaluate, per_user_metrics
from recpipeline_tests.evaluation.test_evaluation import CATALOG, ITEM_MAP, LISTS, TEST, TRAIN, VALIDATION

# items 0,1 -> category A; 2,3 -> B; 4,5 -> C (one-hot); every list has 3 items
RECS = pd.DataFrame({"user_idx": np.repeat([0, 1], 3), "item_idx": [0, 2, 4, 0, 1, 2], "rank": [1, 2, 3] * 2})
RELEVANT = pd.DataFrame({"user_idx": [0, 1], "item_idx": [0, 5]})
TRAINED = pd.DataFrame({"user_idx": [9] * 6, "item_idx": np.arange(6)})


def _value(table: pd.DataFrame, metric: str, k: int, segment: str | None = None) -> float:
    rows = table[(table["metric"] == metric) & (table["k"] == k)]
    if segment is not None:
        rows = rows[rows["segment"] == segment]
    assert len(rows) == 1
    return float(rows["value"].iloc[0])


@pytest.mark.parametrize("to_features", [np.asarray, sp.csr_matrix, sp.csr_array])
def test_diversity_is_nan_without_categories_and_exact_with_them(to_features) -> None:
    planted = to_features(np.eye(3)[[0, 0, 1, 1, 2, 2]])
    # user 0 [A, B, C]: no similar pair -> 1; user 1 [A, A, B]: 1 of 3 pairs similar -> 2/3
    got = per_user_metrics(RECS, RELEVANT, [3], item_features=planted)
    assert got["diversity@3"].tolist() == pytest.approx([1.0, 2 / 3])
    assert _value(evaluate(RECS, RELEVANT, TRAINED, [3], item_features=planted), "diversity", 3) == (
        pytest.approx(5 / 6)
    )
    # a catalogue without categories: every item in one category (or no feature at all)
    for flat in (to_features(np.ones((6, 1))), to_features(np.zeros((6, 3))), None):
        assert not describes_items(flat)
        assert per_user_metrics(RECS, RELEVANT, [3], item_features=flat)["diversity@3"].isna().all()
        table = evaluate(RECS, RELEVANT, TRAINED, [3], item_features=flat)
        assert table["value"].dtype == np.float64 and math.isnan(_value(table, "diversity", 3))
        # the accuracy figures are untouched: user 0 hits item 0, user 1 misses item 5
        assert _value(table, "hit_rate", 3) == 0.5
    assert describes_items(planted)


def test_describes_items_rejects_a_vector() -> None:
    with pytest.raises(ValueError, match="2-D"):
        describes_items(np.ones(6))


def test_pipeline_without_categories_reports_nan_diversity_and_no_cross_category(tmp_path: Path) -> None:
    without = CATALOG.assign(category=None)
    data = prepare_evaluation(TRAIN, VALIDATION, TEST, without, ITEM_MAP, cold_max_interactions=5)
    table = evaluate_models({"m": LISTS}, data, [3])
    diversity = table[table["metric"] == "diversity"]
    assert len(diversity) and diversity["value"].isna().all()
    # every item in one category: no category is new to anyone, so no cross_category rows either
    assert "cross_category" not in set(table["segment"])
    table.to_parquet(tmp_path / "metrics.parquet")
    stored = pd.read_parquet(tmp_path / "metrics.parquet")
    assert stored["value"].dtype == np.float64 and stored.loc[diversity.index, "value"].isna().all()
    # the same lists with categories: [C, B, A] 1, [B, C, C] 2/3, [B, C, A] 1, [A, A, B] 2/3
    with_categories = prepare_evaluation(TRAIN, VALIDATION, TEST, CATALOG, ITEM_MAP, cold_max_interactions=5)
    planted = evaluate_models({"m": LISTS}, with_categories, [3])
    assert _value(planted, "diversity", 3, "all") == pytest.approx(5 / 6)


def test_markdown_shows_missing_diversity_as_not_available() -> None:
    data = prepare_evaluation(TRAIN, VALIDATION, TEST, CATALOG.assign(category=None), ITEM_MAP, 5)
    table = evaluate_models({"m": LISTS}, data, [3])
    markdown = markdown_table(metrics_summary(table, "all", ks=(3,)))
    header, _, row = markdown.splitlines()
    cells = dict(zip(header.strip("| ").split(" | "), row.strip("| ").split(" | "), strict=True))
    assert cells["diversity@3"] == "n/a" and cells["hit_rate@3"] == "0.7500"
    assert "0.0000" not in cells["diversity@3"]
