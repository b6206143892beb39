"""Explanations at the model level (``Recommender.explain``): exact terms add up to the score and equal the
score drop on removal, ALS agrees with implicit's ``explain``, gradient × input has the right shape, the
leave-one-out default re-scores without the item (events included), the reasons are ordered and padded."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares

from recpipeline.models import FitContext, ScoreContext, create_model
from recpipeline.models.explaining import METHODS, leave_one_out, top_reasons
from recpipeline.models.registry import MODEL_REGISTRY
from recpipeline_tests.models.session_logs import N_ITEMS, log_of, planted_sessions

USERS = np.arange(12)


@pytest.fixture(scope="module")
def matrix() -> sp.csr_matrix:
    """Users in two taste blocks of items, weights 1..4."""
    rng = np.random.default_rng(3)
    x = sp.random(80, 40, density=0.12, random_state=4, format="csr", dtype=np.float32)
    x.data[:] = rng.integers(1, 5, x.nnz)
    return x


def listed(model, matrix: sp.csr_matrix, k: int = 5) -> np.ndarray:
    items, _ = model.recommend(USERS, matrix, k)
    return items


def every_reason(model, matrix: sp.csr_matrix, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All of each item's reasons (n = the longest history)."""
    return model.explain(USERS, matrix[USERS], items, int(np.diff(matrix.indptr).max()))


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("ease", {"regularization": 20.0, "popularity_exponent": 0.2}),
        ("item_knn", {"neighbours": 10}),
        ("svd", {"factors": 8}),
        ("als", {"factors": 8, "iterations": 4}),
    ],
)
def test_exact_contributions_add_up_to_the_score(matrix, name, params) -> None:
    model = create_model(name, params).fit(matrix)
    assert model.explains in ("exact", "fold-in")
    items = listed(model, matrix)
    reasons, contributions = every_reason(model, matrix, items)
    scores = np.take_along_axis(model.score(USERS, matrix[USERS]), items, axis=1)
    np.testing.assert_allclose(np.nansum(contributions, axis=2), scores, rtol=1e-4, atol=1e-5)
    # every reason is one of the user's history items
    seen = matrix[USERS].toarray() > 0
    user, position, slot = np.nonzero(reasons >= 0)
    assert seen[user, reasons[user, position, slot]].all()


@pytest.mark.parametrize("name", ["ease", "item_knn", "svd"])
def test_linear_terms_equal_the_score_drop_on_removal(matrix, name) -> None:
    model = create_model(name).fit(matrix)
    items = listed(model, matrix)
    history = matrix[USERS]
    exact = model.history_contributions(USERS, history, items, None)
    np.testing.assert_allclose(exact, leave_one_out(model.score, USERS, history, items, None), atol=1e-5)


def test_als_agrees_with_implicit_explain(matrix) -> None:
    model = create_model("als", {"factors": 8, "iterations": 4, "alpha": 2.0, "regularization": 0.5})
    model.fit(matrix)
    items = listed(model, matrix, 3)
    reasons, contributions = model.explain(USERS, matrix[USERS], items, 4)
    reference = AlternatingLeastSquares(factors=8, regularization=0.5, alpha=1.0)
    reference.item_factors = model.item_factors_
    conf = model.confidence(matrix[USERS])
    for row in range(len(USERS)):
        for position in range(items.shape[1]):
            total, top, _ = reference.explain(row, conf, int(items[row, position]), N=4)
            named = reasons[row, position] >= 0  # -1 pads a history of fewer than 4 items
            assert [item for item, _ in top] == reasons[row, position][named].tolist()
            np.testing.assert_allclose([c for _, c in top], contributions[row, position][named], rtol=1e-3)
    scores = np.take_along_axis(model.score(USERS, matrix[USERS]), items, axis=1)
    assert np.isclose(total, scores[-1, -1], rtol=1e-3)


@pytest.mark.parametrize("name", ["mult_vae", "cfgan"])
def test_gradient_times_input_is_finite_on_the_history(matrix, name) -> None:
    params = {"epochs": 1, "num_threads": 1}
    model = create_model(name, params).fit(matrix)
    assert model.explains == "gradient×input"
    items = listed(model, matrix)
    reasons, contributions = model.explain(USERS, matrix[USERS], items, 3)
    assert reasons.shape == contributions.shape == (len(USERS), 5, 3)
    named = reasons >= 0
    has_history = np.diff(matrix[USERS].indptr) > 0
    assert named[has_history, :, 0].all() and not named[~has_history].any()
    assert np.isfinite(contributions[named]).all()
    assert np.isnan(contributions[~named]).all()
    # contributions are ordered, strongest first
    both = named[:, :, 1:]
    assert (contributions[:, :, :-1][both] >= contributions[:, :, 1:][both]).all()
    # one term per history entry and listed item
    full = model.history_contributions(USERS, matrix[USERS], items, None)
    assert full.shape == (matrix[USERS].nnz, 5) and np.isfinite(full).all()


@pytest.mark.parametrize(("name", "params"), [("user_knn", {"neighbours": 10}), ("recvae", {"epochs": 1})])
def test_leave_one_out_default_rescores_without_the_item(matrix, name, params) -> None:
    model = create_model(name, params).fit(matrix)
    assert model.explains == "leave-one-out"
    items = listed(model, matrix)
    history = matrix[USERS]
    contributions = model.history_contributions(USERS, history, items, None)
    # by hand for the first user's first history item
    reduced = history[:1].tolil()
    first_item = history[0].indices[0]
    reduced[0, first_item] = 0
    drop = (
        model.score(USERS[:1], history[:1])[0, items[0]]
        - model.score(USERS[:1], reduced.tocsr())[0, items[0]]
    )
    np.testing.assert_allclose(contributions[0], drop, atol=1e-5)


def test_leave_one_out_of_event_models_drops_the_item_s_events() -> None:
    sessions = planted_sessions(200, seed=1)
    events = log_of(sessions)
    train = sp.csr_matrix(
        (events["weight"], (events["user_idx"], events["item_idx"])), shape=(len(sessions), N_ITEMS)
    )
    model = create_model("sknn", {"neighbours": 20}).fit(train, context=FitContext(train_events=events))
    context = ScoreContext(history_events=events)
    users = np.arange(5)
    items, _ = model.recommend(users, train, 3, context)
    reasons, contributions = model.explain(users, train[users], items, 2, context)
    # the first user's strongest reason removed from its events: the score drops by the contribution
    row_events = events[(events["user_idx"] == 0) & (events["item_idx"] != reasons[0, 0, 0])]
    reduced = model.score(np.array([0]), train[:1], ScoreContext(history_events=row_events))[0, items[0, 0]]
    full = model.score(users, train[users], context)[0, items[0, 0]]
    assert reasons[0, 0, 0] >= 0
    np.testing.assert_allclose(full - reduced, contributions[0, 0, 0], rtol=1e-5)


def test_cooccurrence_explains_by_the_last_item() -> None:
    events = log_of([[0, 1, 2], [1, 2, 3], [2, 3], [0, 1, 2, 3]])
    train = sp.csr_matrix((events["weight"], (events["user_idx"], events["item_idx"])), shape=(4, 5))
    model = create_model("cooccurrence").fit(train, context=FitContext(train_events=events))
    context = ScoreContext(history_events=events)
    users = np.arange(3)
    items = np.array([[3], [0], [-1]])
    reasons, contributions = model.explain(users, train[users], items, 3, context)
    scores = model.score(users, train[users], context)
    # user 0's last item is 2, and 2 -> 3 is its rule; nothing else in its history counts
    assert reasons[0, 0].tolist() == [2, -1, -1]
    np.testing.assert_allclose(contributions[0, 0, 0], scores[0, 3])
    assert (reasons[2] == -1).all()  # no item, no reason


def test_top_reasons_orders_pads_and_skips_zeros() -> None:
    history = sp.csr_matrix(np.array([[1, 0, 1, 1], [0, 0, 0, 0], [0, 1, 0, 0]], dtype=np.float32))
    # entries: (0,0) (0,2) (0,3) (2,1); two targets
    contributions = np.array([[0.5, np.nan], [2.0, np.nan], [0.5, np.nan], [0.0, -1.0]])
    reasons, values = top_reasons(history, contributions, 2)
    assert reasons[0, 0].tolist() == [2, 0]  # strongest first; a tie goes to the lower item
    assert values[0, 0].tolist() == [2.0, 0.5]
    assert (reasons[0, 1] == -1).all() and np.isnan(values[0, 1]).all()
    assert (reasons[1] == -1).all()
    assert reasons[2, 0].tolist() == [-1, -1]  # an exact zero is no reason
    assert reasons[2, 1].tolist() == [1, -1] and values[2, 1, 0] == -1.0


def test_declared_methods_and_models_without_one(matrix) -> None:
    declared = {name: MODEL_REGISTRY[name].explains for name in MODEL_REGISTRY}
    assert set(declared.values()) <= {*METHODS, None}
    assert declared["popularity"] is None and declared["ease"] == "exact" and declared["als"] == "fold-in"
    model = create_model("popularity").fit(matrix)
    with pytest.raises(NotImplementedError, match="popularity does not explain"):
        model.explain(USERS, matrix[USERS], np.zeros((len(USERS), 1), dtype=np.int64), 3)
