"""Coverage and gini over one item base (the items known before the test cut) for every model, with the
recommendations outside it reported apart (``exposure_share``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recpipeline.evaluation.protocol import evaluate_models, prepare_evaluation
from recpipeline.scoring.metrics import evaluate, exposure_share


def _pairs(rows: list[tuple[int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_idx", "item_idx"], dtype=np.int64)


def _lists(lists: dict[int, list[int]]) -> pd.DataFrame:
    rows = [(u, item, rank) for u, items in lists.items() for rank, item in enumerate(items, start=1)]
    return pd.DataFrame(rows, columns=["user_idx", "item_idx", "rank"])


# items 0, 1, 2 in train, item 3 only in validation, item 4 first seen in the test window
# item base = {0, 1, 2, 3}; user 0's relevant item is 4, user 1's is 2
TRAIN = _pairs([(0, 0), (1, 1), (9, 2)])
VALIDATION = _pairs([(9, 3)])
TEST = _pairs([(0, 4), (1, 2)])
ITEM_MAP = pd.DataFrame({"id": [f"i{i}" for i in range(5)], "idx": np.arange(5, dtype=np.int32)})


def _metrics(lists: dict[str, pd.DataFrame], k: int) -> pd.DataFrame:
    data = prepare_evaluation(TRAIN, VALIDATION, TEST, None, ITEM_MAP, cold_max_interactions=5)
    np.testing.assert_array_equal(data.base, [0, 1, 2, 3])
    table = evaluate_models(lists, data, [k])
    return table.set_index(["model", "segment", "metric"])["value"]


def test_a_list_of_the_whole_catalogue_covers_the_base_exactly_once() -> None:
    # both users get all five items, the test-only item 4 included: 10 filled slots, 2 of them item 4
    whole = _lists({0: [0, 1, 2, 3, 4], 1: [2, 3, 4, 0, 1]})
    got = _metrics({"whole": whole}, k=5)
    assert got["whole", "all", "catalog_coverage"] == 1.0  # 4 of 4 base items, not 5 / 3 training items
    assert got["whole", "new_items", "exposure_share"] == pytest.approx(2 / 10)
    assert got["whole", "all", "gini"] == pytest.approx(0.0)  # every base item recommended twice


def test_gini_and_coverage_share_one_base_whatever_else_a_model_recommends() -> None:
    lists = {
        "base_only": _lists({0: [0, 1], 1: [0, 2]}),
        "with_test_item": _lists({0: [0, 1, 4], 1: [0, 2, 4]}),  # adds the test-only item
        "with_unknown_item": _lists({0: [0, 1, 99], 1: [0, 2, 99]}),  # an item the evaluation never saw
    }
    got = _metrics(lists, k=3)
    # exposure over the base (0, 1, 2, 3) is (2, 1, 1, 0) for all three: sorted (0, 1, 1, 2), sum 4
    # G = (-3*0 - 1*1 + 1*1 + 3*2) / (4 * 4)
    for model in lists:
        assert got[model, "all", "gini"] == pytest.approx(6 / 16)
        assert got[model, "all", "catalog_coverage"] == pytest.approx(3 / 4)
    assert got["base_only", "new_items", "exposure_share"] == 0.0
    assert got["with_test_item", "new_items", "exposure_share"] == pytest.approx(2 / 6)
    assert got["with_unknown_item", "new_items", "exposure_share"] == pytest.approx(2 / 6)


@st.composite
def _cases(draw):
    n_items = draw(st.integers(1, 12))
    items = st.integers(0, n_items + 3)  # some ids outside every split
    train = draw(st.lists(items, min_size=1, max_size=15))
    validation = draw(st.lists(items, max_size=8))
    lists = {u: draw(st.lists(items, max_size=8)) for u in range(draw(st.integers(1, 5)))}
    k = draw(st.integers(1, 10))
    return train, validation, lists, k


@settings(max_examples=100, deadline=None)
@given(_cases())
def test_coverage_is_the_base_share_recommended_and_never_above_one(case) -> None:
    train, validation, lists, k = case
    train_pairs = pd.DataFrame({"user_idx": 99, "item_idx": train})
    validation_pairs = pd.DataFrame({"user_idx": 98, "item_idx": pd.Series(validation, dtype=np.int64)})
    test = pd.DataFrame({"user_idx": list(lists), "item_idx": 0})  # every listed user is evaluated
    recs = _lists(lists)
    got = evaluate(recs, test, train_pairs, [k], validation=validation_pairs).set_index("metric")["value"]

    base = set(train) | set(validation)
    shown = [item for items in lists.values() for item in items[:k]]
    assert 0.0 <= got["catalog_coverage"] <= 1.0
    assert got["catalog_coverage"] == pytest.approx(len(set(shown) & base) / len(base))
    share = exposure_share(recs, test, [k], np.array(sorted(base)))[k]
    if shown:
        assert share == pytest.approx(sum(item not in base for item in shown) / len(shown))
    else:
        assert np.isnan(share)
    if any(item in base for item in shown):
        assert 0.0 <= got["gini"] <= 1.0 - 1.0 / len(base) + 1e-12
