"""Relevance = held-out items the user had not seen (moved here from the preparation tests)."""

import numpy as np
import pandas as pd
import pytest

from recpipeline.evaluation.relevance import holdout_relevance, unseen_relevant, users_with_unseen
from recpipeline.preparation.encoding import interaction_matrix


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
