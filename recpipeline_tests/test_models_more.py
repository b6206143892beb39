"""The full model zoo on planted structures where the right answer is known.

Blocks (from test_models): user groups that only touch their own item block; every block is one category,
and every group one user segment. Chains: each user walks a fixed item cycle in order, so the next item is
determined by the last one — only a model that reads the order can get it right.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from recpipeline.config import ConfigError, parse_config
from recpipeline.models import (
    EASE,
    MODEL_REGISTRY,
    Content,
    FitContext,
    Hybrid,
    Popularity,
    Random,
    Recommender,
    ScoreContext,
    create_model,
    has_item_similarity,
    load_model,
)
from recpipeline.models.context import align_rows, id_map_version
from recpipeline.models.holdout import holdout_ndcg
from recpipeline.models.sequential import last_items, training_windows
from recpipeline.models.tuning import candidate_params, tune
from recpipeline.recommending import recommend_table, similar_items_table
from recpipeline_tests.test_models import (
    GROUPS,
    ITEMS_PER_BLOCK,
    N_ITEMS,
    N_USERS,
    USERS_PER_GROUP,
    _matrix,
    block_of_item,
    planted_blocks,
    recall_at,
)

CATEGORIES = np.array(["shoes", "books", "toys"])
SEGMENTS = np.array(["north", "south", "east"])
T0 = pd.Timestamp("2026-01-01", tz="UTC")

SEQUENCE_PARAMS = {"factors": 16, "max_len": 8, "epochs": 12, "batch_size": 16, "lr": 1e-2, "dropout": 0.0}
#: small, quick settings; the neural ones train in about a second on one thread
PARAMS = {
    "als": {"factors": 4, "iterations": 10},
    "bpr": {"factors": 8, "learning_rate": 0.05, "iterations": 100},
    "svd": {"factors": 3},
    "hybrid": {"cf_params": {"factors": 4, "iterations": 10}},
    "mult_vae": {"hidden": 32, "latent": 8, "epochs": 15, "batch_size": 16, "lr": 1e-2, "device": "cpu"},
    "neumf": {"factors": 8, "layers": [16, 8], "epochs": 8, "batch_size": 64, "lr": 1e-2, "device": "cpu"},
    "sasrec": SEQUENCE_PARAMS,
    "gru4rec": SEQUENCE_PARAMS,
}
SEQUENCE_MODELS = ["sasrec", "gru4rec"]
ALL_MODELS = list(MODEL_REGISTRY)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # tiny tensors: thread hand-offs cost more than they save, and the test machine is shared
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def events_of(matrix: sp.csr_matrix, rng: np.random.Generator) -> pd.DataFrame:
    """The interactions table behind ``matrix``, in a random time order."""
    coo = matrix.tocoo()
    seconds = rng.permutation(len(coo.row))
    return pd.DataFrame(
        {
            "user_idx": coo.row.astype(np.int32),
            "item_idx": coo.col.astype(np.int32),
            "weight": coo.data,
            "timestamp": T0 + pd.to_timedelta(seconds, unit="s"),
        }
    )


def catalog(n_items: int = N_ITEMS) -> pd.DataFrame:
    category = CATEGORIES[np.minimum(np.arange(n_items) // ITEMS_PER_BLOCK, GROUPS - 1)]
    return pd.DataFrame(
        {
            "title": [f"{c} item model{i % 4}" for i, c in enumerate(category)],
            "category": category,
            "brand": np.where(np.arange(n_items) % 2, "acme", "globex"),
            "price": np.linspace(5.0, 50.0, n_items),
        }
    )


def user_attributes(n_users: int = N_USERS) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [f"U{u}" for u in range(n_users)],
            "region": SEGMENTS[np.arange(n_users) // USERS_PER_GROUP],
        }
    )


@pytest.fixture(scope="module")
def blocks():
    train, held = planted_blocks()
    rng = np.random.default_rng(1)
    train_events = events_of(train, rng)
    context = FitContext(
        item_features=catalog(),
        user_features=user_attributes(),
        train_events=train_events,
        validation_events=events_of(held, rng),
        id_map_version="v1",
    )
    score_context = ScoreContext(history_events=train_events, user_features=user_attributes())
    return train, held, context, score_context


@pytest.fixture(scope="module")
def fitted(blocks):
    """Every registered model, fitted once on the blocks (train, held-out as validation)."""
    train, held, context, _ = blocks
    return {
        name: create_model(name, PARAMS.get(name)).fit(train, held, context=context) for name in ALL_MODELS
    }


# -- quality on the planted structures ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["item_knn", "user_knn", "bpr", "ease", "svd", "content", "hybrid", "neumf"])
def test_recovers_blocks(name, blocks, fitted) -> None:
    train, held, _, score_context = blocks
    items, _ = fitted[name].recommend(np.arange(N_USERS), train, 5, score_context)
    recall = np.mean([np.isin(held[u].indices, items[u]).mean() for u in range(N_USERS)])
    assert recall >= 0.8


def test_random_is_a_floor_and_seeded(blocks, fitted) -> None:
    train, held = blocks[0], blocks[1]
    users = np.arange(N_USERS)
    assert recall_at(fitted["random"], train, held, 5) < 0.5
    again = Random(seed=42).fit(train).score(users, train)
    np.testing.assert_array_equal(again, fitted["random"].score(users, train))
    assert not np.array_equal(Random(seed=7).fit(train).score(users, train), again)
    # a user's scores do not depend on who else is scored with them
    np.testing.assert_array_equal(again[[5]], Random(seed=42).fit(train).score(np.array([5]), train[[5]]))


def chains(n_users: int = 60, n_chain: int = 20, length: int = 8, seed: int = 0):
    """Each user walks the cycle 0 -> 1 -> ... -> n_chain-1 -> 0 for ``length`` steps from a random start;
    the held-out item is the next step."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n_chain, n_users)
    steps = (starts[:, None] + np.arange(length + 1)[None, :]) % n_chain
    users = np.repeat(np.arange(n_users), length)
    events = pd.DataFrame(
        {
            "user_idx": users,
            "item_idx": steps[:, :length].ravel(),
            "weight": np.float32(1.0),
            "timestamp": T0 + pd.to_timedelta(np.tile(np.arange(length), n_users), unit="h"),
        }
    )
    shape = (n_users, n_chain)
    train = _matrix(list(zip(users, steps[:, :length].ravel(), strict=True)), shape)
    held = _matrix([(u, int(steps[u, length])) for u in range(n_users)], shape)
    return train, held, events, steps[:, length]


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_sequence_model_learns_next_item_chain(name) -> None:
    train, held, events, expected = chains()
    model = create_model(name, PARAMS[name]).fit(train, held, context=FitContext(train_events=events))
    users = np.arange(train.shape[0])
    items, _ = model.recommend(users, train, 1, ScoreContext(history_events=events))
    assert (items[:, 0] == expected).mean() >= 0.9
    # two runs of the cycle in either order: the same set of items, only the order says what comes next
    for first, second in [((0, 1, 2, 3), (10, 11, 12, 13)), ((10, 11, 12, 13), (0, 1, 2, 3))]:
        walk = [*first, *second]
        history = _matrix([(0, item) for item in walk], (1, train.shape[1]))
        steps = T0 + pd.to_timedelta(np.arange(len(walk)), unit="h")
        walk_events = pd.DataFrame({"user_idx": 0, "item_idx": walk, "timestamp": steps})
        top, _ = model.recommend(np.array([0]), history, 1, ScoreContext(history_events=walk_events))
        assert top[0, 0] == second[-1] + 1


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_sequence_model_needs_events(name, blocks, fitted) -> None:
    with pytest.raises(ValueError, match="history_events"):
        fitted[name].score(np.arange(2), blocks[0][:2])
    with pytest.raises(ValueError, match="train_events"):
        create_model(name, PARAMS[name]).fit(blocks[0])


def test_training_windows_cover_every_next_item_once() -> None:
    events = pd.DataFrame(
        {
            "user_idx": [0, 0, 0, 0, 0, 1, 1, 2],
            "item_idx": [10, 11, 11, 12, 13, 5, 6, 7],  # user 0 repeats item 11: one step
            "timestamp": T0 + pd.to_timedelta([4, 0, 1, 2, 3, 0, 1, 0], unit="s"),
        }
    )
    # user 0 in time order: 11, 12, 13, 10 (tokens +1); user 2 has a single item and no target
    np.testing.assert_array_equal(training_windows(events, 2), [[13, 14, 11], [0, 12, 13], [0, 6, 7]])
    np.testing.assert_array_equal(
        last_items(events, np.array([1, 0, 9]), 3), [[0, 6, 7], [13, 14, 11], [0, 0, 0]]
    )


# -- recommend contract, fold-in, similarity ---------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_MODELS)
def test_seen_items_never_recommended(name, blocks, fitted) -> None:
    train, _, _, score_context = blocks
    items, scores = fitted[name].recommend(np.arange(N_USERS), train, 10, score_context)
    assert items.shape == (N_USERS, 10) and scores.dtype == np.float32
    for user in range(N_USERS):
        assert not np.isin(items[user], train[user].indices).any()
    assert np.all(np.diff(scores, axis=1) <= 0)


@pytest.mark.parametrize("name", ["item_knn", "user_knn", "bpr", "ease", "svd", "content", "hybrid", "neumf"])
def test_fold_in_serves_unseen_user(name, fitted) -> None:
    """A user index beyond training, known only through a few history items, gets the history's block."""
    newcomer = N_USERS + 5
    for block in range(GROUPS):
        pairs = [(newcomer, block * ITEMS_PER_BLOCK + i) for i in (0, 2, 4, 6)]
        items, _ = fitted[name].recommend(np.array([newcomer]), _matrix(pairs, (newcomer + 1, N_ITEMS)), 4)
        assert (block_of_item(items[0]) == block).mean() >= 0.75


@pytest.mark.parametrize(
    "name", [n for n in ALL_MODELS if has_item_similarity(n) and n not in SEQUENCE_MODELS]
)
def test_similar_items_stay_in_block(name, fitted) -> None:
    items = np.arange(N_ITEMS)
    neighbours, sims = fitted[name].similar_items(items, 3)
    assert neighbours.shape == (N_ITEMS, 3) and not (neighbours == items[:, None]).any()
    found = neighbours >= 0
    assert (
        block_of_item(neighbours[found]) == block_of_item(np.repeat(items, 3)[found.ravel()])
    ).mean() >= 0.8
    assert np.all(np.diff(sims, axis=1) <= 0)


def test_similar_items_table(fitted) -> None:
    ids = np.array([f"I{i}" for i in range(N_ITEMS)], dtype=object)
    table = similar_items_table(fitted["ease"], "ease", ids, 4)
    assert list(table.columns) == ["item_id", "similar_item_id", "rank", "score", "model"]
    assert (table["item_id"] != table["similar_item_id"]).all() and (table["score"] > 0).all()
    assert table.groupby("item_id")["rank"].max().max() <= 4 and table["rank"].dtype == np.int16
    first = table[table["item_id"] == "I0"]
    assert list(first["rank"]) == list(range(1, len(first) + 1))


# -- determinism, persistence ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bpr", "svd", "neumf", "sasrec", "gru4rec"])
def test_same_seed_same_scores(name, blocks, fitted) -> None:
    train, held, context, score_context = blocks
    params = {**PARAMS[name], "epochs": 2} if "epochs" in PARAMS[name] else PARAMS[name]
    users = np.arange(N_USERS)
    first = create_model(name, params).fit(train, held, context=context).score(users, train, score_context)
    second = create_model(name, params).fit(train, held, context=context).score(users, train, score_context)
    np.testing.assert_array_equal(first, second)
    other = create_model(name, {**params, "seed": 7}).fit(train, held, context=context)
    assert not np.array_equal(other.score(users, train, score_context), first)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_save_load_round_trip(name, blocks, fitted, tmp_path: Path) -> None:
    train, _, _, score_context = blocks
    model = fitted[name]
    model.save(tmp_path)
    meta = json.loads((tmp_path / "params.json").read_text())
    assert meta["model"] == name and meta["id_map_version"] == "v1"
    assert not list(tmp_path.rglob("*.pkl")) and not list(tmp_path.rglob("*.pt"))
    loaded = load_model(tmp_path)
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    assert loaded.id_map_version_ == "v1"
    users = np.arange(N_USERS)
    np.testing.assert_array_equal(
        loaded.score(users, train, score_context), model.score(users, train, score_context)
    )


# -- guards and errors ------------------------------------------------------------------------------------


def test_ease_item_guard(blocks) -> None:
    with pytest.raises(ValueError, match=r"ease: 30 items exceed max_items=20 .* raise max_items"):
        EASE(max_items=20).fit(blocks[0])


def test_content_needs_item_features(blocks) -> None:
    with pytest.raises(ValueError, match="content: needs item features"):
        Content().fit(blocks[0])
    with pytest.raises(ValueError, match="column 'colour' not found"):
        Content(categorical_columns=["colour"]).fit(blocks[0], context=FitContext(item_features=catalog()))


def test_recommend_refuses_a_history_of_another_catalogue(fitted) -> None:
    with pytest.raises(ValueError, match="history has 31 items but the model was fitted on 30"):
        fitted["ease"].recommend(np.array([0]), sp.csr_matrix((1, N_ITEMS + 1)), 3)


# -- content, hybrid and segment popularity: the cold-start paths -----------------------------------------


def with_new_item(train: sp.csr_matrix) -> tuple[sp.csr_matrix, pd.DataFrame]:
    """The blocks plus item 30: a brand-new shoe (no interactions) titled like the other shoes."""
    grown = sp.hstack([train, sp.csr_matrix((N_USERS, 1))], format="csr")
    items = catalog(N_ITEMS + 1)
    items.loc[N_ITEMS, ["title", "category"]] = ["shoes item model1 new", "shoes"]
    return grown, items


@pytest.mark.parametrize("name", ["content", "hybrid"])
def test_brand_new_item_reaches_matching_users(name) -> None:
    train, _ = planted_blocks()
    grown, items = with_new_item(train)
    model = create_model(name, PARAMS.get(name)).fit(grown, context=FitContext(item_features=items))
    everything_in_block = _matrix([(0, i) for i in range(ITEMS_PER_BLOCK)], (1, N_ITEMS + 1))
    shoes_fan, _ = model.recommend(np.array([0]), everything_in_block, 1)
    assert shoes_fan[0, 0] == N_ITEMS
    toy_history = _matrix([(0, 2 * ITEMS_PER_BLOCK + i) for i in range(3)], (1, N_ITEMS + 1))
    toy_fan, _ = model.recommend(np.array([0]), toy_history, 5)
    assert N_ITEMS not in toy_fan[0]


def test_segment_popularity_serves_cold_users(blocks) -> None:
    train = blocks[0]
    model = Popularity(segment_by=["region"]).fit(train, context=FitContext(user_features=user_attributes()))
    assert sorted(model.segment_keys_) == ["east", "north", "south"]
    # three brand-new users (indices beyond training) in regions south, east and unknown
    newcomers = pd.concat(
        [user_attributes(), pd.DataFrame({"region": ["south", "east", "west"]})], ignore_index=True
    )
    users = np.arange(N_USERS, N_USERS + 3)
    no_history = sp.csr_matrix((N_USERS + 3, N_ITEMS))
    items, _ = model.recommend(users, no_history, 5, ScoreContext(user_features=newcomers))
    assert (block_of_item(items[0]) == 1).all() and (block_of_item(items[1]) == 2).all()
    global_top, _ = Popularity().fit(train).recommend(users[:1], no_history, 5)
    np.testing.assert_array_equal(items[2], global_top[0])  # unknown segment: the global ranking
    with pytest.raises(ValueError, match="segment_by column 'age' is not among the user features"):
        Popularity(segment_by=["age"]).fit(train, context=FitContext(user_features=user_attributes()))


def test_hybrid_serves_cold_users_by_segment(blocks, fitted) -> None:
    hybrid: Hybrid = fitted["hybrid"]
    assert hybrid.serves_cold_users and hybrid.popularity_model_.segment_columns_.tolist() == ["region"]
    context = ScoreContext(user_features=user_attributes())
    cold_user = np.array([2 * USERS_PER_GROUP + 1])  # region east, no history
    items, _ = hybrid.recommend(cold_user, sp.csr_matrix((N_USERS, N_ITEMS)), 5, context)
    assert (block_of_item(items[0]) == 2).all()
    table = recommend_table(
        hybrid,
        "hybrid",
        cold_user,
        sp.csr_matrix((N_USERS, N_ITEMS)),
        5,
        user_ids=np.array([f"U{u}" for u in range(N_USERS)], dtype=object),
        item_ids=np.array([f"I{i}" for i in range(N_ITEMS)], dtype=object),
        cold_start_scores=np.arange(N_ITEMS, dtype=np.float32),  # would pick the last block
        context=context,
    )
    assert (block_of_item(table["item_idx"]) == 2).all()


# -- tuning, holdout metric, configuration -----------------------------------------------------------------


def test_holdout_ndcg_by_hand() -> None:
    class Fixed(Random):
        def score(self, users, history, context=None):
            return np.tile(np.array([4.0, 3.0, 2.0, 1.0], dtype=np.float32), (len(users), 1))

    history = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]], dtype=np.float32))
    holdout = sp.csr_matrix(np.array([[1, 0, 1, 0], [1, 0, 0, 0], [1, 0, 0, 0]], dtype=np.float32))
    # user 0: item 0 seen (not relevant), item 2 at rank 2; user 1: item 0 at rank 1; user 2: no history
    expected = np.mean([1 / np.log2(3), 1.0])
    assert holdout_ndcg(Fixed().fit(history), history, holdout, 2) == pytest.approx(expected)


def test_candidate_params_are_seeded_and_keep_fixed_values() -> None:
    fixed = {"binarize": True, "popularity_exponent": 0.0}  # only the regularization is left to search
    first = candidate_params(EASE, fixed, 4, seed=3)
    assert first == candidate_params(EASE, fixed, 4, seed=3)
    assert first[0] == fixed and len(first) == 4
    assert all(c["binarize"] is True and c["popularity_exponent"] == 0.0 for c in first)
    searched = [c["regularization"] for c in first[1:]]
    assert len(set(searched)) == 3 and 500.0 not in searched  # distinct, and never the default again
    # a budget beyond the space: every other value once, after the configured one
    assert len(candidate_params(EASE, fixed, 50, seed=3)) == len(EASE.search_space["regularization"])


def test_tune_keeps_the_best_validation_trial(blocks) -> None:
    train, held, context, _ = blocks
    lines: list[str] = []
    result = tune("item_knn", {}, train, held, trials=3, k=5, seed=0, context=context, log=lines.append)
    assert len(result.trials) == 3 and result.trials[0]["params"] == {}
    best = max(result.trials, key=lambda trial: trial["ndcg"])
    assert result.params == best["params"]
    assert holdout_ndcg(result.model, train, held, 5) == pytest.approx(best["ndcg"])
    assert sum("trial" in line for line in lines) == 3


def test_config_similar_items_and_tuning() -> None:
    config = parse_config({"models": ["popularity", "ease", "als"]})
    assert config.similar_items.model == "ease" and config.similar_items.n == 20
    assert config.tuning.trials == 0
    config = parse_config({"models": ["popularity", "als"], "tuning": {"trials": 4, "models": "all"}})
    assert config.tuning.models == ("popularity", "als")
    assert parse_config({"models": ["popularity"]}).similar_items.model is None
    for bad, message in [
        ({"similar_items": {"model": "ease"}}, "similar_items.model: 'ease' is not among models"),
        ({"models": ["popularity"], "similar_items": {"model": "popularity"}}, "has no item similarity"),
        ({"tuning": {"trials": -1}}, "tuning.trials"),
        ({"tuning": {"trials": 2, "models": ["ease"]}}, "tuning.models: 'ease' is not among models"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_config(bad)


# -- content with a sentence encoder, Mult-VAE's annealing default -----------------------------------------


class FakeEncoder:
    """Embeds a title by the category word in it: the path a sentence-transformers model takes."""

    def encode(self, sentences: list[str], **kwargs) -> np.ndarray:
        return np.array([[float(word in s) for word in CATEGORIES] for s in sentences], dtype=np.float32)


def test_content_with_a_text_encoder(monkeypatch) -> None:
    import recpipeline.models.content as content_module

    loaded = []
    monkeypatch.setattr(
        content_module, "load_text_encoder", lambda name: loaded.append(name) or FakeEncoder()
    )
    train, _ = planted_blocks()
    grown, items = with_new_item(train)
    model = Content(text_encoder="my/encoder", categorical_columns=[], numeric_columns=[])
    model.fit(grown, context=FitContext(item_features=items))
    assert loaded == ["my/encoder"] and model.item_vectors_.shape == (N_ITEMS + 1, len(CATEGORIES))
    history = _matrix([(0, i) for i in range(ITEMS_PER_BLOCK)], (1, N_ITEMS + 1))
    top, _ = model.recommend(np.array([0]), history, 1)
    assert top[0, 0] == N_ITEMS  # the new shoe, found through its title's embedding alone


def test_text_encoder_without_the_extra_is_a_clear_error(monkeypatch) -> None:
    import sys

    from recpipeline.models.content import load_text_encoder

    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as if not installed
    with pytest.raises(
        ImportError, match=r"needs the sentence-transformers package; install it with .*\[text\]"
    ):
        load_text_encoder("all-MiniLM-L6-v2")


def test_mult_vae_anneals_over_the_whole_run_by_default(blocks) -> None:
    lines: list[str] = []
    params = {**PARAMS["mult_vae"], "epochs": 10}  # beta_max 0.2: the cap is reached in epoch 2 or 3
    create_model("mult_vae", params).fit(blocks[0], log=lines.append)
    betas = [float(line.split("beta ")[1].split()[0]) for line in lines]
    assert 0.05 < betas[0] < 0.1 and betas[2:] == [0.2] * 8


def test_align_rows_follows_the_id_map() -> None:
    id_map = pd.DataFrame({"id": ["b", "a", "c"], "idx": np.array([1, 0, 2], dtype=np.int32)})
    table = pd.DataFrame({"item_id": ["a", "b", "b", "z"], "category": ["x", "old", "y", "w"]})
    aligned = align_rows(table, id_map, "item_id")
    # row i describes idx i: a, b (its last row), c (not in the table: missing); z is not in the map
    assert aligned["category"].tolist()[:2] == ["x", "y"] and aligned["category"].isna().tolist()[2]
    other = pd.DataFrame({"id": ["a"], "idx": np.array([0], dtype=np.int32)})
    assert id_map_version(id_map, other) == id_map_version(id_map.iloc[::-1], other)
    assert id_map_version(id_map, other) != id_map_version(other, id_map)


@pytest.mark.parametrize("segment_by", [None, ["region"]])
def test_popularity_shortcut_lists_equal_the_full_ranking(blocks, segment_by) -> None:
    """Popularity ranks only each ranking's best k + seen items; the lists must equal full scoring's."""
    train, *_ = blocks
    features = user_attributes()
    model = Popularity(segment_by=segment_by).fit(train, context=FitContext(user_features=features))
    context = ScoreContext(user_features=features)
    history = train.tolil()
    history[0, :] = 1.0  # a user who has seen everything: an empty list
    history = history.tocsr()
    users = np.arange(history.shape[0])
    for k in (1, 5, history.shape[1] + 3):
        items, scores = model.recommend(users, history, k, context)
        full_items, full_scores = Recommender.recommend(model, users, history, k, context)
        np.testing.assert_array_equal(items, full_items)
        np.testing.assert_array_equal(scores, full_scores)
    assert (items[0] == -1).all()
