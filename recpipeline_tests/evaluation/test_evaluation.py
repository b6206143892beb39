"""Segments, rating errors, significance and metric history on crafted cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recpipeline.config import ConfigError, parse_config
from recpipeline.evaluation.history import append_history, regression_report
from recpipeline.evaluation.protocol import (
    evaluate_models,
    list_families,
    per_user_values,
    prepare_evaluation,
    rating_errors,
)
from recpipeline.evaluation.significance import (
    _BOOTSTRAP_BLOCK,
    _resample_counts,
    bootstrap_mean_ci,
    choose_baseline,
    holm,
    minimum_detectable_effect,
    significance_table,
)
from recpipeline.models.base import Recommender
from recpipeline.scoring.metrics import exposure_share

DAY = pd.Timestamp("2026-10-01", tz="UTC")


def _events(rows: list[tuple[int, int]], day: int, event_type: str = "view", weights=None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_idx": np.array([u for u, _ in rows], dtype=np.int32),
            "item_idx": np.array([i for _, i in rows], dtype=np.int32),
            "weight": np.ones(len(rows), np.float32) if weights is None else np.asarray(weights, np.float32),
            "timestamp": DAY + pd.Timedelta(days=day),
            "event_type": event_type,
        }
    )


# --------------------------------------------------------------------------------------------------------
# items 0,1 -> category A; 2,3 -> B; 4,5 -> C; item 5 is first seen in the test window
# user 0: 6 train rows on A and B -> warm (cold_max 5)   test {3 (B), 4 (C), 5 (C, new item)}
# user 1: 2 train rows on A       -> cold                test {2 (B), 0 (seen: not relevant)}
# user 2: 1 validation row on B   -> cold                test {4 (C)}
# user 3: no history              -> new_users           test {1 (A)}
# user 9: background training traffic (no test items)
# --------------------------------------------------------------------------------------------------------
TRAIN = _events([(0, 0), (0, 1), (0, 0), (0, 1), (0, 2), (0, 2), (1, 0), (1, 0), (9, 3), (9, 4)], 0)
VALIDATION = _events([(2, 3)], 5)
TEST = _events([(0, 3), (0, 4), (0, 5), (1, 2), (1, 0), (2, 4), (3, 1)], 8)
CATALOG = pd.DataFrame({"item_id": [f"i{i}" for i in range(6)], "category": list("AABBCC")})
ITEM_MAP = pd.DataFrame({"id": [f"i{i}" for i in range(6)], "idx": np.arange(6, dtype=np.int32)})
LISTS = pd.DataFrame(
    {
        "user_idx": np.repeat([0, 1, 2, 3], 3),
        "item_idx": [5, 3, 1, 2, 4, 5, 3, 5, 1, 1, 0, 2],
        "rank": np.tile([1, 2, 3], 4),
    }
)


def _data():
    return prepare_evaluation(TRAIN, VALIDATION, TEST, CATALOG, ITEM_MAP, cold_max_interactions=5)


def _value(table: pd.DataFrame, segment: str, metric: str, k: int) -> float:
    row = table[(table["segment"] == segment) & (table["metric"] == metric) & (table["k"] == k)]
    assert len(row) == 1, (segment, metric, k)
    return float(row["value"].iloc[0])


def _n_users(table: pd.DataFrame, segment: str) -> int:
    return int(table.loc[(table["segment"] == segment) & (table["metric"] == "ndcg"), "n_users"].iloc[0])


def test_segments_of_users_and_items() -> None:
    data = _data()
    assert data.user_segment.to_dict() == {0: "warm", 1: "cold", 2: "cold", 3: "new_users"}
    assert data.new_items.tolist() == [5]
    # user 0: B was touched, C not; user 1: B new; user 2: C new; user 3 has no history (new_users instead)
    cross = set(zip(data.cross_category["user_idx"], data.cross_category["item_idx"], strict=True))
    assert cross == {(0, 4), (0, 5), (1, 2), (2, 4)}


def test_metrics_per_segment_on_crafted_lists() -> None:
    table = evaluate_models({"m": LISTS}, _data(), [1, 3])
    segments = {"all", "with_history", "warm", "cold", "new_users", "cross_category", "new_items"}
    assert set(table["segment"]) == segments | {"light", "medium", "heavy"}
    assert {s: _n_users(table, s) for s in segments - {"new_items"}} == {
        "all": 4,
        "with_history": 3,
        "warm": 1,
        "cold": 2,
        "new_users": 1,
        "cross_category": 3,
    }
    # hits: user 0 -> 5 (pos 1) and 3 (pos 2); user 1 -> 2 (pos 1); user 2 none; user 3 -> 1 (pos 1)
    assert _value(table, "all", "hit_rate", 3) == pytest.approx(3 / 4)
    assert _value(table, "with_history", "hit_rate", 3) == pytest.approx(2 / 3)
    assert _value(table, "warm", "recall", 3) == pytest.approx(2 / 3)
    assert _value(table, "cold", "hit_rate", 3) == pytest.approx(1 / 2)
    assert _value(table, "new_users", "precision", 1) == 1.0
    # cross-category relevance: u0 {4, 5} hits 5; u1 {2} hits 2; u2 {4} none
    assert _value(table, "cross_category", "recall", 3) == pytest.approx((1 / 2 + 1 + 0) / 3)
    # new items: only user 0 has one (item 5, at position 1)
    assert _n_users(table, "new_items") == 1
    assert _value(table, "new_items", "hit_rate", 1) == 1.0
    # item 5 fills 3 of the 12 slots @3 (users 0, 1, 2) and 1 of the 4 first slots
    assert _value(table, "new_items", "exposure_share", 3) == pytest.approx(3 / 12)
    assert _value(table, "new_items", "exposure_share", 1) == pytest.approx(1 / 4)
    exposure = table[table["metric"] == "exposure_share"]
    assert (exposure["n_users"] == 4).all()
    assert table["k"].dtype == np.int64 and table["n_users"].dtype == np.int64


def test_popularity_bias_and_activity_gap_on_crafted_lists() -> None:
    # rows before the test cut (train + validation): item 0: 4, items 1, 2, 3: 2 each (3: 1 train + 1
    # validation), item 4: 1, item 5: none (first seen in test) -> 11 rows
    # head: sorted [4, 2, 2, 2, 1], cumulative [4, 6, 8, 10, 11] first reaches 0.8 * 11 = 8.8 at the fourth
    # item (popularity 2) -> head = popularity >= 2 = items 0..3; tail = item 4 and item 5 (outside the base)
    data = _data()
    table = evaluate_models({"m": LISTS}, data, [1, 3])
    # lists u0 [5, 3, 1], u1 [2, 4, 5], u2 [3, 5, 1], u3 [1, 0, 2]
    # arp@3 per user: (0+2+2)/3, (2+1+0)/3, (2+0+2)/3, (2+4+2)/3; arp@1: 0, 2, 2, 2
    assert _value(table, "all", "arp", 3) == pytest.approx((4 / 3 + 1 + 4 / 3 + 8 / 3) / 4)
    assert _value(table, "all", "arp", 1) == pytest.approx(6 / 4)
    # aplt@3 per user: 1/3 (5), 2/3 (4, 5), 1/3 (5), 0; aplt@1: 1, 0, 0, 0
    assert _value(table, "all", "aplt", 3) == pytest.approx((1 / 3 + 2 / 3 + 1 / 3 + 0) / 4)
    assert _value(table, "all", "aplt", 1) == pytest.approx(1 / 4)
    assert _value(table, "with_history", "aplt", 3) == pytest.approx((1 / 3 + 2 / 3 + 1 / 3) / 3)
    # activity (train + validation rows): u0 6, u1 2, u2 1; terciles of [1, 2, 6]: 5/3 and 10/3
    assert data.activity.to_dict() == {0: "heavy", 1: "medium", 2: "light", 3: ""}
    assert {s: _n_users(table, s) for s in ("light", "medium", "heavy")} == {
        "light": 1,
        "medium": 1,
        "heavy": 1,
    }
    # ndcg_gap = heavy (u0) - light (u2): u0 hits 5 and 3 at positions 1, 2 of relevant {3, 4, 5}; u2 none
    l3 = math.log2(3)
    assert _value(table, "with_history", "ndcg_gap", 3) == pytest.approx((1 + 1 / l3) / (1 + 1 / l3 + 1 / 2))
    assert _value(table, "with_history", "ndcg_gap", 1) == pytest.approx(1.0)
    gap = table[table["metric"] == "ndcg_gap"]
    assert set(gap["segment"]) == {"with_history"} and (gap["n_users"] == 1).all()


def test_activity_terciles_and_ties() -> None:
    from recpipeline.evaluation.protocol import activity

    # terciles of [1, 2, 3, 4, 5, 6]: 8/3 and 13/3; no history -> ""
    assert list(activity(np.array([0, 1, 2, 3, 4, 5, 6]))) == [
        "",
        "light",
        "light",
        "medium",
        "medium",
        "heavy",
        "heavy",
    ]
    # every user alike: all light (t1 = t2 = the count), so heavy is empty and the gap NaN
    assert set(activity(np.array([3, 3, 3]))) == {"light"}
    assert list(activity(np.array([0, 0]))) == ["", ""]


def test_empty_segment_has_no_rows_and_segment_all_always_has_its_rows() -> None:
    data = prepare_evaluation(TRAIN, VALIDATION, TEST[TEST["user_idx"] != 3], CATALOG, ITEM_MAP, 5)
    table = evaluate_models({"m": LISTS}, data, [3])
    segments = {"all", "with_history", "warm", "cold", "cross_category", "new_items"}
    assert set(table["segment"]) == segments | {"light", "medium", "heavy"}
    assert not table.loc[table["metric"] != "diversity", "value"].isna().any()
    # the same lists with every segment populated: the rows of the other segments do not change
    full = evaluate_models({"m": LISTS}, _data(), [3])
    kept = full[full["segment"].isin(["warm", "cross_category"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        table[table["segment"].isin(["warm", "cross_category"])].reset_index(drop=True), kept
    )
    # nobody evaluated: segment all stays, NaN (the metrics check fails the run on it)
    nobody = prepare_evaluation(TRAIN, VALIDATION, TEST.iloc[:0], CATALOG, ITEM_MAP, 5)
    table = evaluate_models({"m": LISTS}, nobody, [3])
    assert set(table["segment"]) == {"all", "new_items"} and _n_users(table, "all") == 0
    assert math.isnan(_value(table, "all", "ndcg", 3))


def test_per_user_values_are_paired_across_models() -> None:
    shuffled = LISTS.assign(rank=LISTS["rank"].to_numpy()[::-1])
    table = per_user_values({"a": LISTS, "b": shuffled}, _data(), [1, 3])
    assert list(table.columns[:4]) == ["model", "user_idx", "user_segment", "served_by"]
    a, b = (table[table["model"] == m] for m in ("a", "b"))
    assert a["user_idx"].tolist() == b["user_idx"].tolist() == [0, 1, 2, 3]
    assert a["user_segment"].tolist() == ["warm", "cold", "cold", "new_users"]
    assert a["hit_rate@1"].tolist() == [1.0, 1.0, 0.0, 1.0]


def test_exposure_share_without_slots_is_nan() -> None:
    empty = LISTS.iloc[:0]
    assert math.isnan(exposure_share(empty, TEST, [3], np.array([5]))[3])


# --------------------------------------------------------------------------------------------------------
# rating errors
# --------------------------------------------------------------------------------------------------------
class FixedScores(Recommender):
    """Scores from a fixed users x items table (a test double)."""

    name = "fixed"

    def __init__(self, table: np.ndarray) -> None:
        super().__init__()
        self.table = table
        self.n_users_, self.n_items_ = table.shape

    def fit(self, train, validation=None, *, context=None, log=None):
        return self

    def score(self, users, history, context=None):
        assert history.shape == (len(users), self.n_items_)
        return self.table[users].astype(np.float32)


def test_rating_errors_calibrate_scores_on_validation() -> None:
    scores = np.arange(12, dtype=np.float64).reshape(3, 4) / 4  # 0 .. 2.75
    rating_weight = 2.0  # weights are rating * 2
    # validation ratings follow rating = 1 + 1.6 * score exactly -> a = 1, b = 1.6
    val_pairs = [(0, 1), (1, 2), (2, 3)]
    val_ratings = [1 + 1.6 * scores[u, i] for u, i in val_pairs]
    validation = _events(val_pairs, 5, "rating", np.array(val_ratings) * rating_weight)
    test_pairs = [(0, 0), (1, 0), (2, 1)]  # (0, 0) predicts 1.0, below the range: clipped
    truth = np.array([1 + 1.6 * scores[u, i] for u, i in test_pairs]) + [0.0, 0.5, -0.5]
    test = pd.concat(
        [_events(test_pairs, 8, "rating", truth * rating_weight), _events([(0, 0)], 8, "view")],
        ignore_index=True,
    )
    train = _events([(0, 0)], 0)
    got = rating_errors({"fixed": FixedScores(scores)}, train, validation, test, rating_weight)
    assert got["metric"].tolist() == ["rmse", "mae"] and (got["k"] == 0).all()
    assert (got["n_users"] == 3).all()
    # predictions are clipped to the rating range seen before the test window: [1.4, 5.4]
    predicted = np.clip([1 + 1.6 * scores[u, i] for u, i in test_pairs], min(val_ratings), max(val_ratings))
    error = predicted - truth
    assert got["value"].tolist() == pytest.approx([np.sqrt(np.mean(error**2)), np.mean(np.abs(error))])


def test_no_rating_rows_without_explicit_ratings() -> None:
    model = FixedScores(np.zeros((10, 6)))
    assert rating_errors({"fixed": model}, TRAIN, VALIDATION, TEST, 1.0).empty
    assert rating_errors({"fixed": model}, TRAIN, VALIDATION, TEST, 0.0).empty


# --------------------------------------------------------------------------------------------------------
# significance
# --------------------------------------------------------------------------------------------------------
def _per_user(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 0.6, n)
    values = {
        "base": base,
        "better": base + 0.1 + rng.normal(0, 0.05, n),  # clearly better
        "same": base.copy(),  # identical lists
        "noisy": base + rng.normal(0, 0.05, n),  # no real difference
    }
    segment = np.where(np.arange(n) % 3 == 0, "cold", "warm")
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "model": m,
                    "user_idx": np.arange(n),
                    "user_segment": segment,
                    "ndcg@5": v,
                    "recall@5": v / 2,
                }
            )
            for m, v in values.items()
        ],
        ignore_index=True,
    )


def test_significance_separates_better_from_identical() -> None:
    table = significance_table(_per_user(), "base", [5], n_boot=500, alpha=0.05, seed=1)
    assert set(table["segment"]) == {"all", "with_history", "warm", "cold"}  # new_users is empty
    rows = table[(table["segment"] == "all") & (table["metric"] == "ndcg")].set_index("model")
    assert rows.loc["better", "significant"] and rows.loc["better", "p_value"] < 1e-10
    assert rows.loc["better", "ci_low"] > 0.08 and rows.loc["better", "ci_high"] < 0.12
    assert rows.loc["better", "mean_diff"] == pytest.approx(0.1, abs=0.01)
    assert not rows.loc["same", "significant"] and rows.loc["same", "p_value"] == 1.0
    assert rows.loc["same", "ci_low"] == rows.loc["same", "ci_high"] == 0.0
    assert not rows.loc["noisy", "significant"]
    assert (rows["baseline"] == "base").all() and (rows["n_users"] == 300).all()
    assert table.loc[table["segment"] == "cold", "n_users"].eq(100).all()
    # Holm within each (segment, metric, k) over the three compared models
    for _, group in table.groupby(["segment", "metric", "k"]):
        np.testing.assert_allclose(group["p_holm"], holm(group["p_value"].to_numpy()))
    again = significance_table(_per_user(), "base", [5], n_boot=500, alpha=0.05, seed=1)
    pd.testing.assert_frame_equal(table, again)  # seeded


def test_minimum_detectable_effect_by_hand() -> None:
    # 40 users; "a" differs from the baseline by +0.15 and -0.05 in turn: mean +0.05, sd(ddof 1) =
    # 0.1 * sqrt(40 / 39); "b" by +0.02 on every user (sd 0). Two models: Holm's family has m = 2, so the
    # level is alpha / m = 0.025: z(1 - 0.0125) = 2.241403, z(0.80) = 0.841621.
    n = 40
    base = np.full(n, 0.3)
    values = {"base": base, "a": base + np.where(np.arange(n) % 2 == 0, 0.15, -0.05), "b": base + 0.02}
    per_user = pd.concat(
        [
            pd.DataFrame(
                {"model": m, "user_idx": np.arange(n), "user_segment": "warm", "ndcg@5": v, "recall@5": v}
            )
            for m, v in values.items()
        ],
        ignore_index=True,
    )
    table = significance_table(per_user, "base", [5], n_boot=200, alpha=0.05, seed=1)
    rows = table[(table["segment"] == "all") & (table["metric"] == "ndcg")].set_index("model")
    expected = (2.241403 + 0.841621) * 0.1 * math.sqrt(40 / 39) / math.sqrt(40)  # = 0.049368
    assert rows.loc["a", "mde"] == pytest.approx(expected, rel=1e-6)
    assert rows.loc["a", "mde"] == pytest.approx(0.049368, abs=1e-6)
    assert rows.loc["b", "mde"] == 0.0  # no spread: any difference shows
    # one model compared: the unadjusted level, z(0.975) = 1.959964
    alone = significance_table(
        per_user[per_user["model"] != "b"], "base", [5], n_boot=200, alpha=0.05, seed=1
    )
    one = alone[(alone["segment"] == "all") & (alone["metric"] == "ndcg")]["mde"].iloc[0]
    assert one == pytest.approx((1.959964 + 0.841621) * 0.1 / math.sqrt(39), rel=1e-6)
    # appended after the columns tables written before it have
    assert list(table.columns)[-1] == "mde" and rows.loc["a", "mean_diff"] == pytest.approx(0.05)
    assert np.isnan(minimum_detectable_effect(0.1, 1, 0.05))  # one pair: no spread to measure
    # elementwise: the sd as given, n and the family size per row
    np.testing.assert_allclose(
        minimum_detectable_effect([0.1, 0.2], [40, 10], 0.05, [2, 1]),
        [(2.241403 + 0.841621) * 0.1 / math.sqrt(40), (1.959964 + 0.841621) * 0.2 / math.sqrt(10)],
        rtol=1e-6,
    )


def test_holm_step_down() -> None:
    np.testing.assert_allclose(holm(np.array([0.01, 0.04, 0.03])), [0.03, 0.06, 0.06])
    np.testing.assert_allclose(holm(np.array([0.2, np.nan, 0.9])), [0.4, np.nan, 0.9])  # NaN: no test
    # 0.5 * 2 = 1.0; 0.9 * 1 = 0.9 is raised to 1.0 (adjusted p-values never decrease down the order)
    np.testing.assert_allclose(holm(np.array([0.5, np.nan, 0.9])), [1.0, np.nan, 1.0])


def test_bootstrap_interval_covers_the_mean() -> None:
    values = np.random.default_rng(3).normal(2.0, 1.0, size=(400, 2))
    low, high = bootstrap_mean_ci(values, n_boot=800, seed=0)
    means = values.mean(axis=0)
    assert np.all(low < means) and np.all(means < high)
    np.testing.assert_allclose(high - low, 2 * 1.96 / np.sqrt(400), rtol=0.2)


@pytest.mark.parametrize(("n", "b"), [(3, 37), (20_000, 37), (300_000, 3)])
def test_resample_counts_match_one_bincount(n: int, b: int) -> None:
    draws = np.random.default_rng(n).integers(0, n, size=(b, n))
    expected = np.bincount((draws + (np.arange(b) * n)[:, None]).ravel(), minlength=b * n).reshape(b, n)
    np.testing.assert_array_equal(_resample_counts(draws, n), expected)


def test_bootstrap_keeps_its_random_stream() -> None:
    values = np.random.default_rng(4).normal(size=(30_000, 3))
    rng = np.random.default_rng(9)
    step = _BOOTSTRAP_BLOCK // len(values)
    means = []  # the plain formulation: one bincount per block of resamples
    for start in range(0, 500, step):
        b = min(step, 500 - start)
        draws = rng.integers(0, len(values), size=(b, len(values))) + (np.arange(b) * len(values))[:, None]
        counts = np.bincount(draws.ravel(), minlength=draws.size).reshape(draws.shape).astype(np.float64)
        means.append(counts @ values / len(values))
    tail = (1.0 - 0.95) / 2.0 * 100.0  # as the implementation computes it: 2.4999..., not 2.5
    expected = np.percentile(np.concatenate(means), [tail, 100.0 - tail], axis=0)
    np.testing.assert_array_equal(np.stack(bootstrap_mean_ci(values, n_boot=500, seed=9)), expected)


def test_choose_baseline() -> None:
    metrics = pd.DataFrame(
        {
            "model": ["popularity", "als", "mult_vae", "my_lists", "als"],
            "segment": ["all"] * 4 + ["warm"],
            "metric": "ndcg",
            "k": 10,
            "value": [0.1, 0.2, 0.3, 0.4, 0.9],
        }
    )
    families = list_families(["popularity", "als", "mult_vae"], ["my_lists"])
    assert families == {
        "popularity": "baseline",
        "als": "factorisation",
        "mult_vae": "neural",
        "my_lists": "external",
    }
    assert (
        choose_baseline(metrics, 10, families) == "als"
    )  # neural and external lists are not default baselines
    assert choose_baseline(metrics, 10, families, "my_lists") == "my_lists"
    with pytest.raises(ValueError, match="evaluation.baseline"):
        choose_baseline(metrics, 10, families, "ease")
    with pytest.raises(ValueError, match=r"no family for the evaluated lists \['my_lists'\]"):
        choose_baseline(metrics, 10, {m: f for m, f in families.items() if m != "my_lists"})


def test_an_unregistered_model_has_no_family() -> None:
    with pytest.raises(ValueError, match="unknown model 'my_lists'"):
        list_families(["my_lists"], [])


# --------------------------------------------------------------------------------------------------------
# history and the regression gate
# --------------------------------------------------------------------------------------------------------
def _run(run_id: str, values: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": list(values),
            "segment": "all",
            "metric": "ndcg",
            "k": 10,
            "value": list(values.values()),
            "n_users": 50,
            "run_id": run_id,
            "as_of": "2026-10-28",
        }
    )


def test_history_append_is_idempotent_per_run() -> None:
    first = append_history(None, _run("r1", {"a": 0.2}))
    assert list(first.columns) == ["run_id", "as_of", "model", "segment", "metric", "k", "value", "served_by"]
    second = append_history(first, _run("r2", {"a": 0.3}))
    assert second["run_id"].tolist() == ["r1", "r2"]
    pd.testing.assert_frame_equal(append_history(second, _run("r2", {"a": 0.3})), second)
    replaced = append_history(second, _run("r2", {"a": 0.25}))
    assert replaced["value"].tolist() == [0.2, 0.25]


def test_regression_fires_on_a_drop_below_the_recent_median() -> None:
    history = None
    for i, (a, b) in enumerate([(0.9, 0.2), (0.2, 0.2), (0.2, 0.21), (0.21, 0.19), (0.17, 0.185)]):
        history = append_history(history, _run(f"r{i}", {"a": a, "b": b}))
    report = regression_report(history, "ndcg", 10, tolerance=0.1, n_runs=3).set_index("model")
    # a: median of r1..r3 = 0.2 -> floor 0.18 > 0.17; b: median 0.2 -> 0.185 passes; r0 is outside the window
    assert report.loc["a", "median"] == pytest.approx(0.2) and report.loc["a", "regressed"]
    assert not report.loc["b", "regressed"]
    assert (report["n_runs"] == 3).all()
    first = regression_report(append_history(None, _run("r0", {"a": 0.1})), "ndcg", 10, 0.1, 3)
    assert not first["regressed"].any() and first["n_runs"].tolist() == [0]


# --------------------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------------------
def test_config_k_list_and_evaluation_section(tmp_path) -> None:
    folder = tmp_path / "lists"
    folder.mkdir()
    config = parse_config(
        {"k": [20, 5, 10], "evaluation": {"cold_max_interactions": 3, "external_recommendations": "lists"}},
        base_dir=tmp_path,
    )
    assert config.ks == (5, 10, 20) and config.k == 20
    assert config.evaluation.cold_max_interactions == 3
    assert config.evaluation.external_recommendations == str(folder.resolve())
    assert parse_config({"k": 7}).ks == (7,)
    for bad in ({"k": []}, {"k": [5, 0]}, {"k": "10"}, {"ks": [5]}):
        with pytest.raises(ConfigError, match="k"):
            parse_config(bad)
    with pytest.raises(ConfigError, match="evaluation.external_recommendations"):
        parse_config({"evaluation": {"external_recommendations": "missing"}}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="evaluation.alpha"):
        parse_config({"evaluation": {"alpha": 2}})
    with pytest.raises(ConfigError, match="evaluation.bogus"):
        parse_config({"evaluation": {"bogus": 1}})


def test_features_come_from_catalogue_categories() -> None:
    data = _data()
    assert isinstance(data.features, sp.csr_matrix) and data.features.shape == (6, 3)
    assert data.features.toarray().argmax(axis=1).tolist() == [0, 0, 1, 1, 2, 2]
