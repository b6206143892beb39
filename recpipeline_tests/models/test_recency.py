"""The recency baseline on tiny logs whose answers are known by hand: a recent window that disagrees with
all-time popularity, half-life weights, the history's validation events counted, seen items excluded."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recpipeline.fitting.recommending import recommend_for_test_users
from recpipeline.fitting.tuning import searched_space
from recpipeline.models import FitContext, Popularity, ScoreContext, create_model
from recpipeline.models.recency import RecentPopularity
from recpipeline.preparation.encoding import interaction_matrix

T0 = pd.Timestamp("2026-01-01", tz="UTC")
N_USERS, N_ITEMS = 8, 4


def log(rows: list[tuple[int, int, float, float]]) -> pd.DataFrame:
    """Events from (user, item, day, weight) rows; ``day`` counts from T0 (fractions are hours)."""
    users, items, days, weights = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "user_idx": np.array(users, dtype=np.int32),
            "item_idx": np.array(items, dtype=np.int32),
            "weight": np.array(weights, dtype=np.float32),
            "timestamp": T0 + pd.to_timedelta(days, unit="D"),
        }
    )


def fitted(events: pd.DataFrame, **params) -> RecentPopularity:
    matrix = interaction_matrix(events, N_USERS, N_ITEMS)
    return RecentPopularity(**params).fit(matrix, context=FitContext(train_events=events))


def scores_of(model: RecentPopularity, context: ScoreContext | None = None) -> np.ndarray:
    return model.score(np.array([7]), sp.csr_matrix((1, N_ITEMS)), context)[0]


#: an old blockbuster (item 0: five users on day 0) against a new hit (item 1: three users on days 55-57);
#: item 2: two users on day 50, item 3: one user on day 60, the newest event (the cut)
BLOCKBUSTER = log(
    [(u, 0, 0, 1.0) for u in range(5)]
    + [(0, 1, 55, 1.0), (1, 1, 56, 1.0), (2, 1, 57, 1.0)]
    + [(3, 2, 50, 1.0), (4, 2, 50, 1.0)]
    + [(5, 3, 60, 1.0)]
)


def test_the_recent_window_ranks_the_new_hit_above_the_old_blockbuster() -> None:
    matrix = interaction_matrix(BLOCKBUSTER, N_USERS, N_ITEMS)
    nobody = np.array([7])  # a user without history: the plain ranking
    all_time, _ = Popularity().fit(matrix).recommend(nobody, matrix, N_ITEMS)
    np.testing.assert_array_equal(all_time[0], [0, 1, 2, 3])  # 5, 3, 2, 1 users
    # 14 days before day 60: items 1, 2, 3 (3, 2, 1 users); the blockbuster is 60 days old
    items, scores = fitted(BLOCKBUSTER).recommend(nobody, matrix, N_ITEMS)
    np.testing.assert_array_equal(items[0], [1, 2, 3, 0])
    np.testing.assert_array_equal(scores[0], [3.0, 2.0, 1.0, 0.0])
    # 7 days: day 50 falls out (10 days old); item 2 ties the blockbuster at 0 and the lower index wins
    items, scores = fitted(BLOCKBUSTER, window_days=7).recommend(nobody, matrix, N_ITEMS)
    np.testing.assert_array_equal(items[0], [1, 3, 0, 2])
    np.testing.assert_array_equal(scores[0], [3.0, 1.0, 0.0, 0.0])
    # no window: all-time popularity again
    np.testing.assert_array_equal(scores_of(fitted(BLOCKBUSTER, window_days=None)), [5.0, 3.0, 2.0, 1.0])


def test_seen_items_are_excluded() -> None:
    matrix = interaction_matrix(BLOCKBUSTER, N_USERS, N_ITEMS)
    # user 3 has seen items 0 and 2: of the ranking 1, 2, 3, 0 only 1 and 3 remain
    items, scores = fitted(BLOCKBUSTER).recommend(np.array([3]), matrix, N_ITEMS)
    np.testing.assert_array_equal(items[0], [1, 3, -1, -1])
    np.testing.assert_array_equal(scores[0], [3.0, 1.0, -np.inf, -np.inf])


#: ages from the newest event (day 14): item 0 one user 14 days old; item 1 two users 7 days old; item 2 one
#: user twice (weight 1 at 7 days, weight 2 at 0 days); item 3 a user whose weights cancel out
DECAY = log(
    [(0, 0, 0, 1.0), (1, 1, 7, 1.0), (2, 1, 7, 1.0), (3, 2, 7, 1.0), (3, 2, 14, 2.0)]
    + [(4, 3, 14, 1.0), (4, 3, 14, -1.0)]
)


def test_half_life_weights() -> None:
    # half-life 7 days: 14 days old counts 0.25, 7 days 0.5, the newest 1
    by_users = scores_of(fitted(DECAY, window_days=None, half_life_days=7))
    np.testing.assert_allclose(by_users, [0.25, 0.5 + 0.5, 1.0, 0.0])  # a user counts by their latest event
    by_weight = scores_of(fitted(DECAY, by="weight", window_days=None, half_life_days=7))
    np.testing.assert_allclose(by_weight, [0.25, 1.0, 1 * 0.5 + 2 * 1.0, 0.0])
    # and a 10-day window on top: the 14-day-old event is out
    windowed = scores_of(fitted(DECAY, window_days=10, half_life_days=7))
    np.testing.assert_allclose(windowed, [0.0, 1.0, 1.0, 0.0])


def test_counts_come_from_the_history_it_is_given() -> None:
    train = BLOCKBUSTER
    validation = log([(6, 0, 70, 1.0), (7, 0, 71, 1.0), (5, 0, 72, 1.0), (6, 2, 72, 1.0)])
    model = fitted(train)
    # no history events: the counts of the train events at fit time
    np.testing.assert_array_equal(scores_of(model), [0.0, 3.0, 2.0, 1.0])
    np.testing.assert_array_equal(scores_of(model, ScoreContext(history_events=train)), [0.0, 3.0, 2.0, 1.0])
    # train + validation: the window ends on day 72, so days 58..72 count
    history = ScoreContext(history_events=pd.concat([train, validation], ignore_index=True))
    np.testing.assert_array_equal(scores_of(model, history), [3.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(scores_of(model), [0.0, 3.0, 2.0, 1.0])  # the fitted counts stay


def test_recommending_for_test_counts_the_validation_window() -> None:
    """``recommend_for_test_users`` hands train + validation as the history: the item that became popular
    in validation leads the test lists."""
    train = BLOCKBUSTER.assign(event_type="purchase")
    validation = log([(5, 0, 70, 1.0), (6, 0, 71, 1.0)]).assign(event_type="purchase")
    test = log([(7, 1, 80, 1.0), (4, 3, 80, 1.0)]).assign(event_type="purchase")
    user_ids = pd.DataFrame(
        {"id": [f"U{u}" for u in range(N_USERS)], "idx": np.arange(N_USERS, dtype=np.int32)}
    )
    item_ids = pd.DataFrame(
        {"id": [f"I{i}" for i in range(N_ITEMS)], "idx": np.arange(N_ITEMS, dtype=np.int32)}
    )
    table = recommend_for_test_users(
        fitted(train),
        "recent_popularity",
        train,
        validation,
        test,
        2,
        user_ids,
        item_ids,
        pd.DataFrame({"user_id": user_ids["id"]}),
    )
    lists = table.groupby("user_id")["item_id"].agg(list).to_dict()
    # window 58..71: item 0 two users, item 3 one; user 4 has seen item 0, user 7 (new) gets the ranking
    assert lists == {"U4": ["I3", "I1"], "U7": ["I0", "I3"]}


def test_parameters_and_inputs_are_checked() -> None:
    for bad in ({"by": "clicks"}, {"window_days": 0}, {"half_life_days": -1}):
        with pytest.raises(ValueError, match="recent_popularity"):
            RecentPopularity(**bad)
    matrix = interaction_matrix(BLOCKBUSTER, N_USERS, N_ITEMS)
    with pytest.raises(ValueError, match="train events"):
        RecentPopularity().fit(matrix)
    numeric = BLOCKBUSTER.assign(timestamp=np.arange(len(BLOCKBUSTER)))
    with pytest.raises(ValueError, match="must be datetimes"):
        RecentPopularity().fit(matrix, context=FitContext(train_events=numeric))


def test_tuning_starts_from_the_configured_window() -> None:
    space = searched_space(RecentPopularity, {})
    assert set(space) == {"window_days", "half_life_days"} and 14 in space["window_days"]  # the default
    for values in itertools.product(*space.values()):
        create_model("recent_popularity", dict(zip(space, values, strict=True)))  # every one a valid model
