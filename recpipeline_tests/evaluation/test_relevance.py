"""Relevance = held-out items the user had not seen (moved here from the preparation tests), among the
test interactions the relevance options keep."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recpipeline.evaluation.external import ExternalDataError, evaluate_files
from recpipeline.evaluation.protocol import prepare_evaluation
from recpipeline.preparation.encoding import interaction_matrix
from recpipeline.scoring.metrics import per_user_metrics
from recpipeline.scoring.relevance import (
    RelevanceRule,
    holdout_relevance,
    unseen_relevant,
    users_with_unseen,
)

DAY = pd.Timestamp("2026-10-01", tz="UTC")
ITEM_MAP = pd.DataFrame({"id": [f"i{i}" for i in range(5)], "idx": np.arange(5, dtype=np.int32)})


def _log(rows: list[tuple[int, int, str, float]], day: int) -> pd.DataFrame:
    """Encoded interactions from (user_idx, item_idx, event_type, weight) rows."""
    user, item, event_type, weight = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "user_idx": np.array(user, dtype=np.int32),
            "item_idx": np.array(item, dtype=np.int32),
            "weight": np.array(weight, dtype=np.float32),
            "timestamp": DAY + pd.Timedelta(days=day),
            "event_type": pd.Categorical(event_type),
        }
    )


def _relevant(train: pd.DataFrame, test: pd.DataFrame, rule: RelevanceRule | None) -> list[tuple[int, int]]:
    data = prepare_evaluation(train, train.iloc[:0], test, None, ITEM_MAP, 5, rule)
    return sorted(map(tuple, data.relevant.to_numpy().tolist()))


# user 0 viewed item 0 and user 1 item 1 before the test window; user 2 has no history
SHOP_TRAIN = _log([(0, 0, "view", 1.0), (1, 1, "view", 1.0)], 0)
SHOP_TEST = _log(
    [
        (0, 1, "view", 1.0),
        (0, 2, "purchase", 5.0),
        (0, 3, "cart", 3.0),
        (0, 0, "purchase", 5.0),  # bought an item viewed before: seen, never relevant
        (1, 2, "view", 1.0),
        (2, 0, "purchase", 5.0),
    ],
    8,
)


def test_purchases_only_are_relevant() -> None:
    everything = [(0, 1), (0, 2), (0, 3), (1, 2), (2, 0)]
    assert _relevant(SHOP_TRAIN, SHOP_TEST, None) == everything
    assert _relevant(SHOP_TRAIN, SHOP_TEST, RelevanceRule()) == everything
    purchases = RelevanceRule(event_types=("purchase",))
    assert _relevant(SHOP_TRAIN, SHOP_TEST, purchases) == [(0, 2), (2, 0)]  # user 1 bought nothing
    assert _relevant(SHOP_TRAIN, SHOP_TEST, RelevanceRule(event_types=("cart", "view"))) == [
        (0, 1),
        (0, 3),
        (1, 2),
    ]
    # user 0's list [1, 2]: every type relevant -> hits at ranks 1 and 2 of |T| = 3; purchases -> rank 2 of 1
    data = prepare_evaluation(SHOP_TRAIN, SHOP_TRAIN.iloc[:0], SHOP_TEST, None, ITEM_MAP, 5, purchases)
    lists = pd.DataFrame({"user_idx": [0, 0], "item_idx": [1, 2], "rank": [1, 2]})
    got = per_user_metrics(lists, data.relevant, [2]).set_index("user_idx")
    assert got.loc[0, "recall@2"] == 1.0 and got.loc[0, "mrr@2"] == 1 / 2
    assert got.index.tolist() == [0, 2]


# a rating log: event weight 2 per rating point, so the weight is 2 x the rating
RATING_TRAIN = _log([(0, 0, "rating", 8.0)], 0)
RATING_TEST = _log(
    [
        (0, 1, "rating", 10.0),  # 5 stars
        (0, 2, "rating", 6.0),  # 3 stars: below 4
        (0, 3, "rating", 8.0),  # exactly 4: kept
        (1, 2, "rating", 2.0),  # 1 star
        (1, 4, "view", 1.0),  # not a rating: min_rating does not apply
    ],
    8,
)


def test_min_rating_four_on_a_rating_log() -> None:
    rule = RelevanceRule(min_rating=4.0, rating_weight=2.0)
    assert _relevant(RATING_TRAIN, RATING_TEST, rule) == [(0, 1), (0, 3), (1, 4)]
    both = RelevanceRule(event_types=("rating",), min_rating=4.0, rating_weight=2.0)
    assert _relevant(RATING_TRAIN, RATING_TEST, both) == [(0, 1), (0, 3)]
    assert len(_relevant(RATING_TRAIN, RATING_TEST, RelevanceRule(rating_weight=2.0))) == 5


def test_min_rating_survives_float32_weights() -> None:
    # 0.3 * 4 stored as float32 and divided by 0.3 is 3.9999999: still a 4
    test = _log([(0, 1, "rating", 0.3 * 4), (0, 2, "rating", 0.3 * 3.5)], 8)
    assert RelevanceRule(min_rating=4.0, rating_weight=0.3).keeps(test).tolist() == [True, False]


def test_min_rating_without_a_rating_weight_is_an_error() -> None:
    with pytest.raises(ValueError, match="positive rating event weight"):
        RelevanceRule(min_rating=4.0, rating_weight=0.0).keeps(RATING_TEST)
    views = _log([(0, 1, "view", 1.0)], 8)  # nothing to recover: no error
    assert RelevanceRule(min_rating=4.0, rating_weight=0.0).keeps(views).tolist() == [True]


def _write_csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


def test_evaluate_files_reads_event_type_and_rating_columns(tmp_path: Path) -> None:
    train = _write_csv(tmp_path / "train.csv", pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["a", "a"]}))
    test = _write_csv(
        tmp_path / "test.csv",
        pd.DataFrame(
            {
                "user_id": ["u1", "u1", "u2"],
                "item_id": ["b", "c", "b"],
                "event_type": ["rating", "rating", "purchase"],
                "rating": [5.0, 2.0, None],
            }
        ),
    )
    recs = _write_csv(
        tmp_path / "lists.csv", pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["c", "b"], "rank": [1, 1]})
    )

    def hit_rate(**options) -> tuple[float, int]:
        metrics, _ = evaluate_files(train, test, recs, [1], **options)
        row = metrics[(metrics["segment"] == "all") & (metrics["metric"] == "hit_rate")].iloc[0]
        return row["value"], row["n_users"]

    assert hit_rate() == (1.0, 2)  # u1 hits c, u2 hits b
    assert hit_rate(min_rating=4) == (0.5, 2)  # u1's c (2 stars) no longer counts; u2's purchase does
    assert hit_rate(relevant_event_types=["rating"], min_rating=4) == (0.0, 1)  # only u1's b
    no_columns = _write_csv(tmp_path / "plain.csv", pd.DataFrame({"user_id": ["u1"], "item_id": ["b"]}))
    with pytest.raises(ExternalDataError, match="plain.csv: missing column 'event_type'"):
        evaluate_files(train, no_columns, recs, [1], relevant_event_types=["purchase"])


def test_unseen_relevant_drops_items_seen_before():
    history = pd.DataFrame({"user_idx": [0, 0, 1], "item_idx": [1, 2, 1]})
    target = pd.DataFrame({"user_idx": [0, 0, 0, 1, 1], "item_idx": [1, 3, 3, 2, 1]})
    out = unseen_relevant(target, history)
    assert sorted(map(tuple, out.to_numpy())) == [(0, 3), (1, 2)]


@pytest.mark.parametrize("user_scale", [1, 10**9])  # a table over the pair keys; a hash lookup
def test_unseen_relevant_keeps_the_first_occurrence_order(user_scale: int) -> None:
    rng = np.random.default_rng(user_scale)
    history = pd.DataFrame(
        {"user_idx": rng.integers(0, 30, 400) * user_scale, "item_idx": rng.integers(0, 20, 400)}
    )
    target = pd.DataFrame(
        {"user_idx": rng.integers(0, 30, 300) * user_scale, "item_idx": rng.integers(0, 25, 300)}
    )
    seen = set(zip(history["user_idx"], history["item_idx"], strict=True))
    pairs = target.drop_duplicates()
    unseen = [pair not in seen for pair in zip(pairs["user_idx"], pairs["item_idx"], strict=True)]
    pd.testing.assert_frame_equal(unseen_relevant(target, history), pairs[unseen].reset_index(drop=True))


def test_users_with_unseen_are_the_users_unseen_relevant_keeps():
    rng = np.random.default_rng(8)
    history = pd.DataFrame({"user_idx": rng.integers(0, 50, 800), "item_idx": rng.integers(0, 40, 800)})
    target = pd.DataFrame({"user_idx": rng.integers(0, 60, 300), "item_idx": rng.integers(0, 40, 300)})
    matrix = interaction_matrix(history.assign(weight=1.0), 60, 40)
    expected = np.unique(unseen_relevant(target, history)["user_idx"])
    np.testing.assert_array_equal(users_with_unseen(target, matrix), expected)


def test_holdout_relevance_is_unseen_relevant_over_users_with_history():
    rng = np.random.default_rng(3)
    history = pd.DataFrame({"user_idx": rng.integers(0, 40, 300), "item_idx": rng.integers(0, 30, 300)})
    target = pd.DataFrame({"user_idx": rng.integers(0, 50, 200), "item_idx": rng.integers(0, 30, 200)})
    users, relevant = holdout_relevance(
        interaction_matrix(history.assign(weight=1.0), 50, 30),
        interaction_matrix(target.assign(weight=1.0), 50, 30),
    )
    expected = unseen_relevant(target, history)
    expected = expected[expected["user_idx"].isin(history["user_idx"])]
    np.testing.assert_array_equal(users, np.unique(expected["user_idx"]))
    coo = relevant[users].tocoo()
    assert set(zip(users[coo.row], coo.col, strict=True)) == set(map(tuple, expected.to_numpy()))
