"""``item_init: text``: the PCA start and the ridge placement of untrained items (exact, on planted vectors),
and with the real pretrained encoder, items that never occur in training but whose titles resemble a
group's items reach that group's users."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recpipeline.models import FitContext, ScoreContext, create_model
from recpipeline.models.item_init import INIT_STD, pca_projection, ridge_cold_items
from recpipeline_tests.models.conftest import T0, matrix_of

#: per group: six titles that occur in training, then two that never do
TITLES = [
    [
        "running shoe",
        "leather boot",
        "hiking boot",
        "sandal",
        "sneaker",
        "high heel",
        "ankle boot",
        "trainer",
    ],
    [
        "crime novel",
        "poetry book",
        "cookbook",
        "biography",
        "fantasy novel",
        "atlas",
        "thriller novel",
        "memoir",
    ],
    ["frying pan", "saucepan", "kitchen knife", "cutting board", "whisk", "teapot", "wok", "casserole dish"],
]
N_WARM, N_GROUP = 6, 8
USERS_PER_GROUP = 20


def test_pca_start_has_the_random_spread_and_skips_items_without_text() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(12, 2)) @ rng.normal(size=(2, 6))  # rank 2
    vectors[[3, 7]] = 0.0  # no title
    projected, filled = pca_projection(vectors, 4)
    np.testing.assert_array_equal(filled, [True, True, False, False])
    assert not projected[[3, 7]].any() and not projected[:, 2:].any()
    assert projected[:, :2].std() == pytest.approx(INIT_STD, rel=0.35)
    # distances between titled items are kept up to one scale (PCA of a rank-2 set loses nothing)
    titled = np.flatnonzero(np.abs(vectors).sum(axis=1) > 0)
    ratio = np.linalg.norm(projected[titled[0]] - projected[titled[1:]], axis=1) / np.linalg.norm(
        vectors[titled[0]] - vectors[titled[1:]], axis=1
    )
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)


def test_ridge_places_untrained_items_by_their_title() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(200, 5))
    vectors[-1] = 0.0  # untrained and without a title: left as it is
    truth = 0.5 + vectors @ rng.normal(size=(5, 3))
    trained = np.arange(200) < 150
    embeddings = np.where(trained[:, None], truth, 9.0)
    placed = ridge_cold_items(vectors, embeddings, trained)
    np.testing.assert_array_equal(placed[trained], embeddings[trained])
    np.testing.assert_allclose(placed[150:199], truth[150:199], rtol=0.02, atol=0.02)
    np.testing.assert_array_equal(placed[-1], [9.0, 9.0, 9.0])


def test_text_init_needs_titles() -> None:
    train = matrix_of([(0, 0), (0, 1)], (1, 2))
    events = pd.DataFrame({"user_idx": [0, 0], "item_idx": [0, 1], "timestamp": [T0, T0]})
    with pytest.raises(ValueError, match="needs the item catalogue with a 'title' column"):
        create_model("sasrec", {"item_init": "text", "epochs": 1}).fit(
            train, context=FitContext(train_events=events)
        )


def cold_item_data() -> tuple:
    """Three groups; each user walks six of their group's first six items; the last two are never seen."""
    rng = np.random.default_rng(0)
    n_items = len(TITLES) * N_GROUP
    users = np.arange(len(TITLES) * USERS_PER_GROUP)
    walks = np.stack([rng.permutation(N_WARM) for _ in users]) + (users // USERS_PER_GROUP * N_GROUP)[:, None]
    events = pd.DataFrame(
        {
            "user_idx": np.repeat(users, N_WARM),
            "item_idx": walks.ravel(),
            "weight": np.float32(1.0),
            "timestamp": T0 + pd.to_timedelta(np.tile(np.arange(N_WARM), len(users)), unit="h"),
        }
    )
    train = matrix_of(list(zip(events["user_idx"], events["item_idx"], strict=True)), (len(users), n_items))
    catalog = pd.DataFrame({"title": [title for group in TITLES for title in group]})
    cold = np.array([g * N_GROUP + i for g in range(len(TITLES)) for i in range(N_WARM, N_GROUP)])
    return train, events, catalog, cold


@pytest.mark.integration  # loads the real all-MiniLM-L6-v2 encoder (about 10 s)
@pytest.mark.parametrize("name", ["sasrec", "bert4rec", "caser"])
def test_untrained_items_reach_their_groups_users_through_titles(name) -> None:
    train, events, catalog, cold = cold_item_data()
    params = {"factors": 16, "max_len": 6, "epochs": 30, "lr": 1e-2, "dropout": 0.0, "device": "cpu"}
    params.update({"max_len": 3} if name == "caser" else {"heads": 1})
    users = np.arange(train.shape[0])
    own = []
    for item_init in ("text", "random"):
        model = create_model(name, {**params, "item_init": item_init})
        model.fit(train, context=FitContext(item_features=catalog, train_events=events))
        scores = model.score(users, train, ScoreContext(history_events=events))[:, cold]
        # the two best-scored untrained items, of the user's group or not
        best = cold[np.argsort(-scores, axis=1)[:, :2]] // N_GROUP
        own.append((best == (users // USERS_PER_GROUP)[:, None]).mean())
    assert own[0] >= 0.8 and own[0] >= own[1] + 0.3, own
