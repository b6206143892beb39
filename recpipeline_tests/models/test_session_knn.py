"""Session kNN (``sknn``, ``vsknn``): the model contract, similarities and weights worked out by hand on a
three-session log, the current-session and recency rules, and a planted next-item structure to recover."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recpipeline.fitting.tuning import searched_space
from recpipeline.models import FitContext, Recommender, ScoreContext, create_model
from recpipeline.models.session_knn import SKNN, VSKNN
from recpipeline.preparation.encoding import interaction_matrix
from recpipeline_tests.models.contract import ModelContract
from recpipeline_tests.models.session_logs import (
    N_ITEMS,
    after_hub,
    hit_rate,
    log_of,
    planted_sessions,
    prefixes,
)


class TestSKNN(ModelContract):
    name = "sknn"


class TestVSKNN(ModelContract):
    name = "vsknn"
    params = {"weighting": "quadratic", "weighting_score": "log", "idf_weighting": 2.0}


#: sessions 0: items 0 1 2, 1: items 0 1 3, 2: items 5 6 (oldest first); a user per session
TRAIN = log_of([[0, 1, 2], [0, 1, 3], [5, 6]])


def fitted(model_class: type, events: pd.DataFrame = TRAIN, n_items: int = 8, **params) -> SKNN | VSKNN:
    train = sp.csr_matrix((int(events["user_idx"].max()) + 1, n_items))
    return model_class(**params).fit(train, context=FitContext(train_events=events))


def scores(model, history: pd.DataFrame, users: list[int]) -> np.ndarray:
    return model.score(np.array(users), sp.csr_matrix((len(users), 8)), ScoreContext(history_events=history))


def session(items: list[int], user: int, session_idx: int) -> pd.DataFrame:
    """A later session of ``items`` by ``user``."""
    return log_of([items], first_session=session_idx).assign(user_idx=user)


def test_sknn_cosine_by_hand() -> None:
    # a new visitor (pseudo-user 9, beyond the fitted users) viewed 0 then 1: sessions 0 and 1 share both
    # items, cosine 2 / sqrt(2 * 3); session 2 shares nothing
    history = pd.concat([TRAIN, session([0, 1], 9, 50)])
    got = scores(fitted(SKNN), history, [9, 0])
    cosine = 2 / np.sqrt(6)
    np.testing.assert_allclose(got[0], [2 * cosine, 2 * cosine, cosine, cosine, 0, 0, 0, 0], rtol=1e-6)
    # user 0's current session is training session 0: never its own neighbour, so only session 1 votes
    np.testing.assert_allclose(got[1], [2 / 3, 2 / 3, 0, 2 / 3, 0, 0, 0, 0], rtol=1e-6)
    # Jaccard: 2 / (2 + 3 - 2)
    np.testing.assert_allclose(
        scores(fitted(SKNN, similarity="jaccard"), history, [9])[0, :4], [4 / 3] * 2 + [2 / 3] * 2
    )


def test_vsknn_weights_by_hand() -> None:
    # the visitor's session 0 1: positions 1, 2 of 2 weigh 1/2 and 1 (div); each of sessions 0 and 1 shares
    # both, similarity (1/2 + 1) / 2; its latest match is the last item (step 1, decay 1); idf off
    plain = fitted(VSKNN, idf_weighting=0.0)
    got = scores(plain, pd.concat([TRAIN, session([0, 1], 9, 50)]), [9])[0]
    np.testing.assert_allclose(got, [1.5, 1.5, 0.75, 0.75, 0, 0, 0, 0], rtol=1e-6)
    # viewed 0, then 5: session 2 matches the latest item (step 1), sessions 0 and 1 only the earlier one
    # (step 2, div decay 1/2); similarities (1/2) / 2 and 1 / 2, so 0.125 and 0.5 per vote
    got = scores(plain, pd.concat([TRAIN, session([0, 5], 9, 50)]), [9])[0]
    np.testing.assert_allclose(got, [0.25, 0.25, 0.125, 0.125, 0, 0.5, 0.5, 0], rtol=1e-6)
    # sknn ranks both themes alike (cosine 1 / sqrt(6) vs 1 / sqrt(4)); the latest item leads in vsknn
    assert got[6] > got[1]
    # idf: item 2 is in 1 of 3 sessions, item 0 in 2: scores times 1 + w * log(3 / sessions)
    boosted = scores(fitted(VSKNN, idf_weighting=2.0), pd.concat([TRAIN, session([0, 5], 9, 50)]), [9])[0]
    np.testing.assert_allclose(
        boosted[[0, 2]], [0.25 * (1 + 2 * np.log(1.5)), 0.125 * (1 + 2 * np.log(3))], rtol=1e-6
    )


def test_only_the_current_session_counts() -> None:
    # user 2 (training session 5 6) comes back and views 0 1: only that session is the query
    history = pd.concat([TRAIN, session([0, 1], 2, 60)])
    np.testing.assert_allclose(
        scores(fitted(SKNN), history, [2])[0],
        scores(fitted(SKNN), history.assign(user_idx=history["user_idx"].replace(2, 9)), [9])[0],
    )
    assert scores(fitted(SKNN), history, [2])[0, 6] == 0


def test_sample_and_k_keep_the_most_recent_and_nearest() -> None:
    history = pd.concat([TRAIN, session([0, 1], 9, 50)])
    # sample_size 1: of sessions 0 and 1 (both share an item) only the more recent, 1, is a candidate
    np.testing.assert_array_equal(
        scores(fitted(SKNN, sample_size=1), history, [9])[0] > 0, [1, 1, 0, 1, 0, 0, 0, 0]
    )
    # one neighbour with equal similarities: the tie goes to the more recent session too
    np.testing.assert_array_equal(
        scores(fitted(SKNN, neighbours=1), history, [9])[0] > 0, [1, 1, 0, 1, 0, 0, 0, 0]
    )
    # one neighbour: a nearer, older session wins over a more recent one: session 0 (0 1 2) vs 1 (0 3)
    older_nearer = log_of([[0, 1, 2], [0, 3]])
    got = scores(
        fitted(SKNN, older_nearer, neighbours=1), pd.concat([older_nearer, session([0, 1], 9, 50)]), [9]
    )[0]
    np.testing.assert_array_equal(got > 0, [1, 1, 1, 0, 0, 0, 0, 0])


def test_rows_are_scored_independently() -> None:
    """A prefix's scores do not depend on which other rows (e.g. its own session's longer prefixes, the
    future) are scored with it: no row sees another row's events."""
    events, users, _ = prefixes(planted_sessions(20, seed=3), first_user=400)
    model = fitted(VSKNN, log_of(planted_sessions(200, seed=1)), N_ITEMS)
    together = model.score(users, sp.csr_matrix((len(users), N_ITEMS)), ScoreContext(history_events=events))
    for row in (0, 7, len(users) - 1):
        alone = model.score(users[[row]], sp.csr_matrix((1, N_ITEMS)), ScoreContext(history_events=events))
        np.testing.assert_allclose(alone[0], together[row], rtol=1e-6)


@pytest.mark.parametrize("name", ["sknn", "vsknn"])
def test_planted_next_items_are_recovered(name: str) -> None:
    train = log_of(planted_sessions(400, seed=1))
    model = create_model(name, {"neighbours": 50, "sample_size": 200})
    model.fit(sp.csr_matrix((400, N_ITEMS)), context=FitContext(train_events=train))
    events, users, targets = prefixes(planted_sessions(100, seed=2, noise=0.0), first_user=400)
    # the next item on the path is in more neighbour sessions than any other: nearly always first, also
    # after the hub every path shares, where only the session's earlier items tell the path (the last item
    # alone cannot: see test_cooccurrence)
    assert hit_rate(model, events, users, targets, 1) >= 0.95
    hub = after_hub(events, users)
    assert hub.sum() > 50
    assert hit_rate(model, events[events["user_idx"].isin(users[hub])], users[hub], targets[hub], 1) >= 0.95


def test_parameters_and_inputs_are_checked() -> None:
    for bad in ({"neighbours": 0}, {"sample_size": -1}, {"similarity": "dice"}):
        with pytest.raises(ValueError, match="sknn"):
            SKNN(**bad)
    for bad in ({"weighting": "exp"}, {"weighting_score": "exp"}, {"idf_weighting": -1.0}):
        with pytest.raises(ValueError, match="vsknn"):
            VSKNN(**bad)
    with pytest.raises(ValueError, match="train_events"):
        SKNN().fit(sp.csr_matrix((3, 8)))
    with pytest.raises(ValueError, match="history_events"):
        fitted(SKNN).recommend(np.array([0]), sp.csr_matrix((1, 8)), 3)


def test_tuning_candidates_are_valid_models() -> None:
    for model_class in (SKNN, VSKNN):
        space = searched_space(model_class, {})
        for values in itertools.product(*space.values()):
            create_model(model_class.name, dict(zip(space, values, strict=True)))


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("sknn", {}),
        ("vsknn", {"idf_weighting": 1.0, "weighting": "linear"}),
        ("cooccurrence", {"neighbours": 3}),
    ],
)
@pytest.mark.parametrize("k", [1, 5, N_ITEMS + 2])
def test_sparse_top_k_is_the_dense_top_k(name: str, params: dict, k: int) -> None:
    """``recommend`` selects from the nonzero scores only: the lists equal the shared dense selection over
    ``score`` (zero-score fill by index, seen items excluded, -1 / -inf where a row runs out)."""
    train = log_of(planted_sessions(300, seed=1))
    model = create_model(name, params).fit(
        sp.csr_matrix((300, N_ITEMS)), context=FitContext(train_events=train)
    )
    events, users, _ = prefixes(planted_sessions(40, seed=4), first_user=300)
    # a returning training user and a user without events are rows too
    events = pd.concat([events, session([1, 2], 5, 20_000)], ignore_index=True)
    users = np.r_[users, 5, 299]
    history = interaction_matrix(events, int(users.max()) + 1, N_ITEMS)
    context = ScoreContext(history_events=events)
    got = model.recommend(users, history, k, context)
    expected = Recommender.recommend(model, users, history, k, context)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
