"""Tests for recpipeline.scoring.metrics: hand-computed cases plus a property test against a naive
reference."""

from __future__ import annotations

import math
from math import log2

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recpipeline.scoring.metrics import (
    METRIC_NAMES,
    PER_USER_METRICS,
    count_items,
    evaluate,
    evaluate_subsets,
    exposure_share,
    index_relevance,
    isin_ids,
    long_tail,
    per_user_metrics,
)


def _recs(lists: dict[int, list[int]]) -> pd.DataFrame:
    rows = [(u, item, r) for u, items in lists.items() for r, item in enumerate(items, start=1)]
    return pd.DataFrame(rows, columns=["user_idx", "item_idx", "rank"])


def _pairs(pairs: list[tuple[int, int]]) -> pd.DataFrame:
    return pd.DataFrame(pairs, columns=["user_idx", "item_idx"], dtype=np.int64)


def _value(table: pd.DataFrame, metric: str, k: int) -> float:
    row = table[(table["metric"] == metric) & (table["k"] == k)]
    assert len(row) == 1
    return float(row["value"].iloc[0])


# --------------------------------------------------------------------------------------------------------
# The hand case.
# train: item 0 x3 rows, item 1 x2, items 2..5 x1 each -> N = 9, catalogue = 6 items
# categories (one-hot): items 0,1 -> A; 2,3 -> B; 4,5 -> C
# user 0: list [0,1,2,3,4], test {1,3} (test row (0,1) duplicated)  -> hits at positions 2 and 4
# user 1: list [5,0] (shorter than K), test {5,2,4}                  -> hit at position 1
# user 2: list [2,3,1], test {0}                                      -> no hits
# user 3: no recommendations, test {1}                                -> all zero, diversity NaN
# user 4: list [4,5,0], no test items                                 -> not evaluated, not in coverage etc.
# --------------------------------------------------------------------------------------------------------
HAND_RECS = _recs({0: [0, 1, 2, 3, 4], 1: [5, 0], 2: [2, 3, 1], 4: [4, 5, 0]})
HAND_TEST = _pairs([(0, 1), (0, 3), (0, 1), (1, 5), (1, 2), (1, 4), (2, 0), (3, 1)])
HAND_TRAIN = _pairs([(9, 0), (8, 0), (7, 0), (9, 1), (8, 1), (9, 2), (9, 3), (9, 4), (9, 5)])
HAND_FEATURES = np.eye(3)[[0, 0, 1, 1, 2, 2]]

L3, L5 = log2(3), log2(5)
# user 0: IDCG over min(2, K) = 2 ideal hits = 1 + 1/log2(3)
IDCG_U0 = 1 + 1 / L3
# user 1: IDCG over min(3, K) = 3 ideal hits = 1 + 1/log2(3) + 1/log2(4)
IDCG_U1 = 1 + 1 / L3 + 1 / 2

HAND_PER_USER = {
    # metric@k: [user 0, user 1, user 2, user 3]
    "precision@3": [1 / 3, 1 / 3, 0, 0],  # hits / K
    "precision@5": [2 / 5, 1 / 5, 0, 0],
    "recall@3": [1 / 2, 1 / 3, 0, 0],  # hits / |T_u|
    "recall@5": [2 / 2, 1 / 3, 0, 0],
    "ndcg@3": [(1 / L3) / IDCG_U0, 1 / IDCG_U1, 0, 0],  # u0: hit at rank 2; u1: hit at rank 1
    "ndcg@5": [(1 / L3 + 1 / L5) / IDCG_U0, 1 / IDCG_U1, 0, 0],  # u0: hits at ranks 2 and 4
    "map@3": [(1 / 2) / 2, (1 / 1) / 3, 0, 0],  # u0: P@2 * 1 / min(2,3); u1: P@1 / min(3,3)
    "map@5": [(1 / 2 + 2 / 4) / 2, (1 / 1) / 3, 0, 0],  # u0: (P@2 + P@4) / min(2,5)
    "hit_rate@3": [1, 1, 0, 0],
    "hit_rate@5": [1, 1, 0, 0],
    "mrr@3": [1 / 2, 1 / 1, 0, 0],
    "mrr@5": [1 / 2, 1 / 1, 0, 0],
    # u0@3 [0,1,2]: one same-category pair of 3 -> 1 - 1/3; u0@5 [0..4]: (0,1),(2,3) of 10 pairs -> 1 - 2/10
    # u1 [5,0]: different categories -> 1; u2 [2,3,1]: (2,3) of 3 pairs -> 1 - 1/3; u3: no list -> NaN
    "diversity@3": [1 - 1 / 3, 1, 1 - 1 / 3, math.nan],
    "diversity@5": [1 - 2 / 10, 1, 1 - 1 / 3, math.nan],
}


def test_hand_case_per_user() -> None:
    got = per_user_metrics(HAND_RECS, HAND_TEST, [3, 5], item_features=HAND_FEATURES)
    assert got["user_idx"].tolist() == [0, 1, 2, 3]  # user 4 has no test items
    assert got["user_idx"].dtype == np.int64
    expected_cols = ["user_idx"] + [f"{m}@{k}" for m in PER_USER_METRICS for k in (3, 5)]
    assert list(got.columns) == expected_cols
    for col, expected in HAND_PER_USER.items():
        assert got[col].dtype == np.float64
        np.testing.assert_allclose(got[col].to_numpy(), expected, rtol=1e-12, err_msg=col)


def test_hand_case_evaluate() -> None:
    got = evaluate(HAND_RECS, HAND_TEST, HAND_TRAIN, [5, 3], item_features=sp.csr_matrix(HAND_FEATURES))
    assert list(got.columns) == ["metric", "k", "value", "n_users"]
    assert got["k"].dtype == np.int64 and got["n_users"].dtype == np.int64
    assert got["value"].dtype == np.float64
    assert [(m, int(k)) for m, k in zip(got["metric"], got["k"], strict=True)] == [
        (m, k) for m in METRIC_NAMES for k in (3, 5)
    ]
    assert (got["n_users"] == 4).all()

    for metric in PER_USER_METRICS:
        for k in (3, 5):
            vals = [v for v in HAND_PER_USER[f"{metric}@{k}"] if not math.isnan(v)]
            assert _value(got, metric, k) == pytest.approx(sum(vals) / len(vals), rel=1e-12)
    # spot-check a few means literally
    assert _value(got, "precision", 3) == pytest.approx((1 / 3 + 1 / 3 + 0 + 0) / 4)
    assert _value(got, "recall", 5) == pytest.approx((1 + 1 / 3 + 0 + 0) / 4)
    assert _value(got, "map", 3) == pytest.approx((1 / 4 + 1 / 3) / 4)
    assert _value(got, "diversity", 5) == pytest.approx((4 / 5 + 1 + 2 / 3) / 3)  # user 3 has no list

    # lists of evaluated users only (user 4 excluded):
    # @3: u0 {0,1,2}, u1 {5,0}, u2 {2,3,1} -> union {0,1,2,3,5} = 5 of 6 catalogue items
    assert _value(got, "catalog_coverage", 3) == pytest.approx(5 / 6)
    # @5: u0 adds 3,4 -> all 6
    assert _value(got, "catalog_coverage", 5) == pytest.approx(6 / 6)
    # @3 exposure counts: item0 2, item1 2, item2 2, item3 1, item4 0, item5 1 -> sorted [0,1,1,2,2,2], sum 8
    # weights 2i-n-1 = -5,-3,-1,1,3,5 -> (0 - 3 - 1 + 2 + 6 + 10) / (6 * 8)
    assert _value(got, "gini", 3) == pytest.approx((0 - 3 - 1 + 2 + 6 + 10) / (6 * 8))
    # @5: counts item0 2, item1 2, item2 2, item3 2, item4 1, item5 1 -> sorted [1,1,2,2,2,2], sum 10
    assert _value(got, "gini", 5) == pytest.approx((-5 - 3 - 2 + 2 + 6 + 10) / (6 * 10))
    # novelty: -log2(n_i / 9) with n = 3 (item 0), 2 (item 1), 1 (items 2..5)
    # @3 pairs: u0 0,1,2; u1 5,0; u2 2,3,1 -> 2x item0, 2x item1, 4x items with n=1, 8 pairs
    nov3 = (2 * log2(9 / 3) + 2 * log2(9 / 2) + 4 * log2(9 / 1)) / 8
    assert _value(got, "novelty", 3) == pytest.approx(nov3)
    # @5 adds u0's items 3 and 4 (n=1 each): 10 pairs
    nov5 = (2 * log2(9 / 3) + 2 * log2(9 / 2) + 6 * log2(9 / 1)) / 10
    assert _value(got, "novelty", 5) == pytest.approx(nov5)


def test_users_subset() -> None:
    # segment {0, 2, 4}: user 4 has no test items -> evaluated users are 0 and 2
    got = evaluate(HAND_RECS, HAND_TEST, HAND_TRAIN, [3], users=np.array([0, 2, 4]))
    assert (got["n_users"] == 2).all()
    assert _value(got, "precision", 3) == pytest.approx((1 / 3 + 0) / 2)
    assert _value(got, "recall", 3) == pytest.approx((1 / 2 + 0) / 2)
    assert _value(got, "mrr", 3) == pytest.approx((1 / 2 + 0) / 2)
    # lists u0 {0,1,2}, u2 {2,3,1} -> union {0,1,2,3} of 6
    assert _value(got, "catalog_coverage", 3) == pytest.approx(4 / 6)
    # counts item0 1, item1 2, item2 2, item3 1, item4 0, item5 0 -> sorted [0,0,1,1,2,2], sum 6
    # -> (-5*0 - 3*0 - 1*1 + 1*1 + 3*2 + 5*2) / (6 * 6)
    assert _value(got, "gini", 3) == pytest.approx(16 / 36)
    # pairs: item0 (n=3) once, item1 (n=2) twice, items 2,2,3 (n=1) -> 6 pairs
    assert _value(got, "novelty", 3) == pytest.approx((log2(9 / 3) + 2 * log2(9 / 2) + 3 * log2(9)) / 6)
    assert math.isnan(_value(got, "diversity", 3))  # no item features given


def test_empty_segment_gives_nan_not_crash() -> None:
    got = evaluate(HAND_RECS, HAND_TEST, HAND_TRAIN, [3], users=np.array([42]))
    assert (got["n_users"] == 0).all()
    assert len(got) == len(METRIC_NAMES)
    assert math.isnan(_value(got, "precision", 3)) and math.isnan(_value(got, "gini", 3))
    assert _value(got, "catalog_coverage", 3) == 0.0  # nothing recommended out of 6 items


def test_no_hits_user_is_zero_everywhere() -> None:
    got = per_user_metrics(_recs({0: [1, 2, 3]}), _pairs([(0, 7)]), [1, 3])
    for m in ("precision", "recall", "ndcg", "map", "hit_rate", "mrr"):
        assert got[f"{m}@1"].iloc[0] == 0.0 and got[f"{m}@3"].iloc[0] == 0.0


def test_user_without_recommendations_is_evaluated_as_all_misses() -> None:
    got = per_user_metrics(_recs({0: [5]}), _pairs([(0, 5), (1, 5)]), [2], item_features=np.eye(6))
    assert got["user_idx"].tolist() == [0, 1]
    row = got.set_index("user_idx").loc[1]
    assert row[[f"{m}@2" for m in PER_USER_METRICS if m != "diversity"]].tolist() == [0.0] * 6
    assert math.isnan(row["diversity@2"])  # < 2 items
    # user 0: 1 hit at rank 1, list shorter than K=2 -> precision 1/2, the rest 1
    row0 = got.set_index("user_idx").loc[0]
    assert row0["precision@2"] == 1 / 2
    assert row0["recall@2"] == row0["ndcg@2"] == row0["map@2"] == row0["mrr@2"] == 1.0


def test_users_without_test_items_are_not_evaluated() -> None:
    got = per_user_metrics(_recs({0: [1], 1: [1], 2: [1]}), _pairs([(1, 1)]), [1])
    assert got["user_idx"].tolist() == [1]
    assert got["precision@1"].tolist() == [1.0]


def test_k_larger_than_catalogue() -> None:
    recs = _recs({0: [2, 0, 1]})  # the whole 3-item catalogue
    test = _pairs([(0, 0), (0, 1), (0, 2)])
    train = _pairs([(5, 0), (5, 1), (5, 2)])
    got = evaluate(recs, test, train, [10])
    assert _value(got, "precision", 10) == pytest.approx(3 / 10)  # divide by K, not by list length
    assert _value(got, "recall", 10) == 1.0
    assert _value(got, "ndcg", 10) == pytest.approx(1.0)  # IDCG over min(3, 10) = 3 hits
    assert _value(got, "map", 10) == pytest.approx(1.0)  # (1/1 + 2/2 + 3/3) / min(3, 10)
    assert _value(got, "catalog_coverage", 10) == 1.0


def test_ranks_above_k_are_ignored() -> None:
    got = per_user_metrics(_recs({0: [1, 2, 3, 4]}), _pairs([(0, 4)]), [3, 4])
    assert got["hit_rate@3"].iloc[0] == 0.0 and got["mrr@3"].iloc[0] == 0.0
    assert got["hit_rate@4"].iloc[0] == 1.0 and got["mrr@4"].iloc[0] == 1 / 4


def test_duplicate_test_rows_are_deduplicated() -> None:
    recs = _recs({0: [1, 2]})
    once = per_user_metrics(recs, _pairs([(0, 1), (0, 3)]), [2])
    twice = per_user_metrics(recs, _pairs([(0, 1), (0, 1), (0, 3), (0, 3), (0, 3)]), [2])
    pd.testing.assert_frame_equal(once, twice)
    assert once["recall@2"].iloc[0] == 1 / 2  # |T_u| = 2, not 5


@pytest.mark.parametrize("offset", [0, 0.5])  # integer ranks and non-integer (float) ranks
def test_ties_in_rank_are_broken_by_item_idx_regardless_of_row_order(offset: float) -> None:
    # items 7 and 3 share rank 1 -> order [3, 7, 5]; relevant item 7 is therefore at position 2
    rows = pd.DataFrame({"user_idx": [0, 0, 0], "item_idx": [7, 3, 5], "rank": np.array([1, 1, 2]) + offset})
    test = _pairs([(0, 7)])
    a = per_user_metrics(rows, test, [1, 3])
    b = per_user_metrics(rows.iloc[::-1].reset_index(drop=True), test, [1, 3])
    pd.testing.assert_frame_equal(a, b)
    assert a["mrr@3"].iloc[0] == 1 / 2
    assert a["hit_rate@1"].iloc[0] == 0.0


def test_bad_lists_do_not_crash() -> None:
    # ranks start at 5 with gaps and item 1 is listed twice: positions follow rank order [1, 1, 2]
    rows = pd.DataFrame({"user_idx": [0, 0, 0], "item_idx": [1, 1, 2], "rank": [5, 9, 7]})
    got = per_user_metrics(rows, _pairs([(0, 1), (0, 2)]), [3])
    # order by rank: 1 (5), 2 (7), 1 (9); the repeated item 1 is not a second hit
    assert got["precision@3"].iloc[0] == pytest.approx(2 / 3)
    assert got["recall@3"].iloc[0] == 1.0
    assert got["map@3"].iloc[0] == pytest.approx((1 / 1 + 2 / 2) / 2)


def test_gini_even_and_single_item_exposure() -> None:
    train = _pairs([(9, i) for i in range(5)])  # catalogue of n = 5 items
    test = _pairs([(u, 0) for u in range(5)])
    even = evaluate(_recs({u: [u] for u in range(5)}), test, train, [1])  # each item recommended once
    assert _value(even, "gini", 1) == pytest.approx(0.0)
    assert _value(even, "catalog_coverage", 1) == 1.0
    single = evaluate(_recs({u: [0] for u in range(5)}), test, train, [1])  # all users get item 0
    # x = (0,0,0,0,5): G = (2*5 - 5 - 1) * 5 / (5 * 5) = (n - 1) / n = 4/5
    assert _value(single, "gini", 1) == pytest.approx((5 - 1) / 5)
    assert _value(single, "catalog_coverage", 1) == pytest.approx(1 / 5)


def test_novelty_with_item_unseen_in_training() -> None:
    train = _pairs([(9, 0), (9, 1), (8, 1), (7, 1)])  # n_0 = 1, n_1 = 3, N = 4
    got = evaluate(_recs({0: [1, 7]}), _pairs([(0, 1)]), train, [2])  # item 7 unseen -> n_7 = 1
    assert _value(got, "novelty", 2) == pytest.approx((-log2(3 / 4) - log2(1 / 4)) / 2)
    # gini over the item base {0, 1} only (item 7 is outside it): x sorted (0, 1) -> (-1*0 + 1*1) / (2 * 1)
    assert _value(got, "gini", 2) == pytest.approx(1 / 2)
    # coverage counts base items only: |{1, 7} ∩ {0, 1}| / 2; item 7 is the exposure share outside the base
    assert _value(got, "catalog_coverage", 2) == pytest.approx(1 / 2)
    assert exposure_share(_recs({0: [1, 7]}), _pairs([(0, 1)]), [1, 2], np.array([0, 1])) == {1: 0.0, 2: 0.5}


def test_validation_items_join_the_item_base_but_not_the_novelty_counts() -> None:
    train = _pairs([(9, 0), (9, 1)])
    validation = _pairs([(8, 2), (8, 2)])  # item 2 known before the test cut, never in training
    recs, test = _recs({0: [0, 2]}), _pairs([(0, 2)])
    without = evaluate(recs, test, train, [2])
    got = evaluate(recs, test, train, [2], validation=validation)
    assert _value(without, "catalog_coverage", 2) == pytest.approx(1 / 2)  # base {0, 1}
    assert _value(got, "catalog_coverage", 2) == pytest.approx(2 / 3)  # base {0, 1, 2}
    # x = (0, 1, 1) over the base {0, 1, 2} -> (-2*0 + 0*1 + 2*1) / (3 * 2)
    assert _value(got, "gini", 2) == pytest.approx(2 / 6)
    # novelty still counts training rows: n_0 = 1, n_2 = 1 (unseen in training), N = 2
    assert _value(got, "novelty", 2) == _value(without, "novelty", 2) == pytest.approx(1.0)


def test_long_tail_is_what_the_head_leaves_at_80_percent_of_rows() -> None:
    # sorted [5, 4, 1, 1]: cumulative [5, 9, 10, 11] first reaches 0.8 * 11 = 8.8 at popularity 4
    assert long_tail(np.array([1, 5, 1, 4])).tolist() == [True, False, True, False]
    # ties at the boundary join the head: [3, 2, 1, 1, 1, 1] reaches 7.2 of 9 among the 1s -> no tail
    assert not long_tail(np.array([3, 2, 1, 1, 1, 1])).any()
    assert long_tail(np.array([0, 0])).all() and long_tail(np.zeros(0)).shape == (0,)


def test_arp_and_aplt_count_train_and_validation_rows_per_user() -> None:
    # popularity (train + validation rows): item 0: 5, item 1: 3 + 1, item 2: 1, item 3: 0 + 1 -> 11 rows;
    # head {0, 1} (long_tail above), tail {2, 3} and item 7 (outside the base: popularity 0, tail)
    train = _pairs([(9, 0)] * 5 + [(9, 1)] * 3 + [(9, 2)])
    validation = _pairs([(8, 1), (8, 3)])
    recs = _recs({0: [0, 2, 7], 1: [1, 3], 2: [3]})  # user 3 is evaluated but has no list
    test = _pairs([(0, 2), (1, 3), (2, 0), (3, 1)])
    got = evaluate(recs, test, train, [2, 3], validation=validation)
    # per user with a list, the mean popularity of its slots: @2 u0 (5+1)/2, u1 (4+1)/2, u2 1; @3 u0 (5+1+0)/3
    assert _value(got, "arp", 2) == pytest.approx((3 + 2.5 + 1) / 3)
    assert _value(got, "arp", 3) == pytest.approx((2 + 2.5 + 1) / 3)
    # share of tail slots: @2 u0 1/2, u1 1/2, u2 1; @3 u0 2/3
    assert _value(got, "aplt", 2) == pytest.approx((1 / 2 + 1 / 2 + 1) / 3)
    assert _value(got, "aplt", 3) == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert (got["n_users"] == 4).all()
    # without validation: train rows only (item 1: 3, item 3 outside the base)
    alone = evaluate(recs, test, train, [2])
    assert _value(alone, "arp", 2) == pytest.approx(((5 + 1) / 2 + (3 + 0) / 2 + 0) / 3)
    # nobody listed: NaN
    nothing = evaluate(recs.iloc[:0], test, train, [2])
    assert math.isnan(_value(nothing, "arp", 2)) and math.isnan(_value(nothing, "aplt", 2))


@pytest.mark.parametrize("to_features", [np.asarray, sp.csr_matrix, sp.csr_array])
def test_diversity_one_hot_categories(to_features) -> None:
    cats = np.eye(4)[[0, 0, 0, 1, 2, 3]]  # items 0,1,2 same category; 3,4,5 distinct others
    feats = to_features(cats)
    recs = _recs({0: [0, 1, 2], 1: [2, 3, 4, 5], 2: [4]})
    test = _pairs([(0, 9), (1, 9), (2, 9)])
    got = per_user_metrics(recs, test, [3, 4], item_features=feats)
    assert got["diversity@3"].tolist() == pytest.approx([0.0, 1.0, math.nan], nan_ok=True)
    assert got["diversity@4"].tolist() == pytest.approx([0.0, 1.0, math.nan], nan_ok=True)
    no_feats = per_user_metrics(recs, test, [3])
    assert no_feats["diversity@3"].isna().all()


def test_diversity_weighted_features_and_missing_rows() -> None:
    # item 0 = (1, 0), item 1 = (1, 1) -> cos = 1/sqrt(2); item 2 has no feature row -> zero vector
    feats = np.array([[1.0, 0.0], [2.0, 2.0]])
    got = per_user_metrics(_recs({0: [0, 1, 2]}), _pairs([(0, 0)]), [2, 3], item_features=feats)
    assert got["diversity@2"].iloc[0] == pytest.approx(1 - 1 / math.sqrt(2))
    # 3 pairs: (0,1) = 1/sqrt(2), (0,2) = (1,2) = 0
    assert got["diversity@3"].iloc[0] == pytest.approx(1 - (1 / math.sqrt(2)) / 3)


def _random_case(seed: int, n_users: int = 40, n_items: int = 30) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        items = rng.permutation(n_items)[: rng.integers(0, 12)]
        rows += [(u, int(i), r + 1) for r, i in enumerate(items)]
    recs = pd.DataFrame(rows, columns=["user_idx", "item_idx", "rank"]).sample(frac=1.0, random_state=seed)
    test = _pairs([(int(u), int(i)) for u, i in rng.integers(0, [n_users + 5, n_items], size=(120, 2))])
    return recs, test


def test_chunking_gives_identical_results() -> None:
    recs, test = _random_case(0)
    feats = sp.csr_matrix(np.eye(5)[np.random.default_rng(1).integers(0, 5, size=30)])
    big = per_user_metrics(recs, test, [1, 5, 10], item_features=feats, chunk_users=50_000)
    for chunk in (1, 7):
        small = per_user_metrics(recs, test, [1, 5, 10], item_features=feats, chunk_users=chunk)
        pd.testing.assert_frame_equal(big, small)


def test_invalid_ks_rejected() -> None:
    with pytest.raises(ValueError):
        per_user_metrics(HAND_RECS, HAND_TEST, [])
    with pytest.raises(ValueError):
        per_user_metrics(HAND_RECS, HAND_TEST, [0, 3])


# --------------------------------------------------------------------------------------------------------
# property test against a naive per-user reference
# --------------------------------------------------------------------------------------------------------
def _naive(ranked: list[int], relevant: set[int], k: int) -> dict[str, float]:
    top = ranked[:k]
    rel = [1 if item in relevant else 0 for item in top]
    hits = sum(rel)
    cut = min(len(relevant), k)
    dcg = sum(r / math.log2(j + 2) for j, r in enumerate(rel))
    idcg = sum(1 / math.log2(j + 2) for j in range(cut))
    ap = sum(sum(rel[: j + 1]) / (j + 1) * rel[j] for j in range(len(rel))) / cut
    mrr = next((1 / (j + 1) for j, r in enumerate(rel) if r), 0.0)
    return {
        "precision": hits / k,
        "recall": hits / len(relevant),
        "ndcg": dcg / idcg,
        "map": ap,
        "hit_rate": float(hits > 0),
        "mrr": mrr,
    }


@st.composite
def _cases(draw):
    n_items = draw(st.integers(1, 10))
    n_users = draw(st.integers(1, 6))
    lists: dict[int, list[int]] = {}
    ranks: dict[int, list[int]] = {}
    for u in range(n_users):
        items = draw(st.permutations(range(n_items)))[: draw(st.integers(0, n_items))]
        if items:
            lists[u] = items
            # strictly increasing ranks, possibly with gaps / not starting at 1
            gaps = draw(st.lists(st.integers(1, 3), min_size=len(items), max_size=len(items)))
            ranks[u] = list(np.cumsum(gaps))
    test = draw(
        st.lists(st.tuples(st.integers(0, n_users + 1), st.integers(0, n_items + 2)), min_size=0, max_size=25)
    )
    ks = draw(st.lists(st.integers(1, 12), min_size=1, max_size=3))
    order = draw(st.randoms(use_true_random=False))
    return lists, ranks, test, ks, order


@settings(max_examples=80, deadline=None)
@given(_cases())
def test_vectorised_matches_naive_reference(case) -> None:
    lists, ranks, test_pairs, ks, order = case
    rows = [(u, item, int(r)) for u in lists for item, r in zip(lists[u], ranks[u], strict=True)]
    order.shuffle(rows)
    recs = pd.DataFrame(rows, columns=["user_idx", "item_idx", "rank"], dtype=np.int64)
    test = _pairs(test_pairs)
    got = per_user_metrics(recs, test, ks, chunk_users=2).set_index("user_idx")

    relevant: dict[int, set[int]] = {}
    for u, i in test_pairs:
        relevant.setdefault(u, set()).add(i)
    assert sorted(got.index) == sorted(relevant)
    for u, rel in relevant.items():
        for k in ks:
            expected = _naive(lists.get(u, []), rel, k)
            for metric, value in expected.items():
                approx = pytest.approx(value, rel=1e-12, abs=1e-12)
                assert got.loc[u, f"{metric}@{k}"] == approx, (u, metric, k)


def test_negative_ids_rejected() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        per_user_metrics(_recs({0: [-1, 2]}), _pairs([(0, 2)]), [2])


def test_no_recommendations_at_all() -> None:
    empty = pd.DataFrame({"user_idx": [], "item_idx": [], "rank": []}, dtype=np.int64)
    got = evaluate(empty, HAND_TEST, HAND_TRAIN, [3])
    assert (got["n_users"] == 4).all()
    assert _value(got, "ndcg", 3) == 0.0 and _value(got, "hit_rate", 3) == 0.0
    assert _value(got, "catalog_coverage", 3) == 0.0
    assert math.isnan(_value(got, "novelty", 3)) and math.isnan(_value(got, "gini", 3))


def test_several_ks_at_once_equal_one_k_at_a_time() -> None:
    recs, test = _random_case(5)
    train = _pairs([(99, i) for i in range(30)])
    together = evaluate(recs, test, train, [10, 1, 5]).set_index(["metric", "k"])
    for k in (1, 5, 10):
        alone = evaluate(recs, test, train, [k]).set_index(["metric", "k"])
        pd.testing.assert_frame_equal(together.xs(k, level="k", drop_level=False).loc[alone.index], alone)


# --------------------------------------------------------------------------------------------------------
# the fast paths shared across calls give exactly what the plain functions give
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("n_keys", "n_values", "n_members"),
    [
        (500, 300, 4000),  # small key space: a boolean table
        (250_000 * 3000, 300, 4000),  # users x categories at scale: hash lookup, more members than values
        (250_000 * 3000, 4000, 300),  # hash lookup, fewer members
        (500, 0, 10),
        (250_000 * 3000, 10, 0),
    ],
)
def test_isin_ids_matches_np_isin(n_keys: int, n_values: int, n_members: int) -> None:
    rng = np.random.default_rng(n_values)
    values = rng.integers(0, n_keys, n_values)
    members = np.concatenate([rng.integers(0, n_keys, n_members), values[: n_members // 10]])
    got = isin_ids(values, members)
    assert got.dtype == bool
    np.testing.assert_array_equal(got, np.isin(values, members))


def test_evaluate_subsets_equal_evaluating_each_subsets_test_rows() -> None:
    recs, test = _random_case(3)
    train = _pairs([(99, i) for i in range(0, 30, 3)] + [(98, 0), (98, 3)])  # most listed items unseen
    feats = sp.csr_matrix(np.eye(4)[np.random.default_rng(2).integers(0, 4, size=30)])
    subsets = [None, np.array([0, 3, 5, 7, 11, 44]), np.array([], dtype=np.int64), np.arange(0, 40, 2)]
    got = evaluate_subsets(recs, index_relevance(test), count_items(train), [1, 5, 10], feats, subsets)
    for users, table in zip(subsets, got, strict=True):
        subset_test = test if users is None else test[test["user_idx"].isin(users)]
        expected = evaluate(recs, subset_test, train, [1, 5, 10], feats)
        pd.testing.assert_frame_equal(table, expected, check_exact=True)
        pd.testing.assert_frame_equal(table, evaluate(recs, test, train, [1, 5, 10], feats, users=users))


def test_huge_item_ids_give_the_same_metrics() -> None:
    recs, test = _random_case(4)
    train = _pairs([(99, i) for i in range(0, 30, 2)] + [(98, 2)])

    def shifted(frame: pd.DataFrame) -> pd.DataFrame:  # no table over these ids: the sorted/hash paths
        return frame.assign(item_idx=frame["item_idx"].astype(np.int64) + 10**12)

    small = evaluate(recs, test, train, [1, 5])
    pd.testing.assert_frame_equal(evaluate(shifted(recs), shifted(test), shifted(train), [1, 5]), small)


def test_an_indexed_relevance_is_reusable() -> None:
    recs, test = _random_case(6)
    relevance = index_relevance(test)
    assert relevance.n_rel.sum() == len(test.drop_duplicates())
    pd.testing.assert_frame_equal(per_user_metrics(recs, relevance, [3]), per_user_metrics(recs, test, [3]))
    base = np.array([1, 2, 7])
    assert exposure_share(recs, relevance, [3, 5], base) == exposure_share(recs, test, [3, 5], base)
