"""Model quality on planted structures where the right answer is known, plus the registry, run settings,
top-K selection and the validation metric (tuning: fitting/test_tuning.py). The behaviour every model
shares is the contract suite (contract.py, test_contract.py).

Blocks (conftest): user groups that only touch their own item block. Chains: each user walks a fixed item
cycle in order, so the next item is determined by the last one — only a model that reads the order can get
it right.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recpipeline.config import ConfigError, parse_config
from recpipeline.fitting.holdout import holdout_ndcg, validation_scorer
from recpipeline.fitting.recommending import recommend_table, similar_items_table
from recpipeline.models import (
    ALS,
    EASE,
    MODEL_NAMES,
    MODEL_REGISTRY,
    Content,
    FitContext,
    Hybrid,
    MultVAE,
    Popularity,
    Random,
    Recommender,
    RunSettings,
    ScoreContext,
    create_model,
    has_item_similarity,
    load_model,
)
from recpipeline.models.base import prepare_matrix, top_k_excluding
from recpipeline.models.context import align_rows, id_map_version
from recpipeline.models.sequential import last_items, training_windows
from recpipeline.scoring.metrics import evaluate
from recpipeline_tests.models.conftest import (
    CATEGORIES,
    GROUPS,
    ITEMS_PER_BLOCK,
    N_ITEMS,
    N_USERS,
    T0,
    USERS_PER_GROUP,
    block_of_item,
    catalog,
    matrix_of,
    planted_blocks,
    recall_at,
    user_attributes,
)

ALS_PARAMS = {"factors": 4, "iterations": 10}  # few factors: 3 blocks, and tiny data overfits more
VAE_PARAMS = {
    "hidden": 32,
    "latent": 8,
    "epochs": 30,
    "batch_size": 16,
    "lr": 1e-2,
    "total_anneal_steps": 200,
    "device": "cpu",
}
SEQUENCE_PARAMS = {"factors": 16, "max_len": 8, "epochs": 12, "batch_size": 16, "lr": 1e-2, "dropout": 0.0}
#: small, quick settings; the neural ones train in about a second on one thread
PARAMS = {
    "als": {"factors": 4, "iterations": 10},
    "bpr": {"factors": 8, "learning_rate": 0.05, "iterations": 100},
    "svd": {"factors": 3},
    # the planted tests check the model's machinery (clipping, closed form), so without noise: any budget
    # drowns 60 users' co-occurrences (test_privacy.py checks the noise)
    "private_ease": {"epsilon": None, "max_items_per_user": 4},
    "hybrid": {"cf_params": {"factors": 4, "iterations": 10}},
    "mult_vae": {"hidden": 32, "latent": 8, "epochs": 15, "batch_size": 16, "lr": 1e-2, "device": "cpu"},
    "neumf": {"factors": 8, "layers": [16, 8], "epochs": 8, "batch_size": 64, "lr": 1e-2, "device": "cpu"},
    "sasrec": SEQUENCE_PARAMS,
    "gru4rec": SEQUENCE_PARAMS,
    "bert4rec": SEQUENCE_PARAMS,
    "caser": SEQUENCE_PARAMS,
    # CFGAN learns the blocks only with a wide generator and many small batches (its default is sized for
    # MovieLens)
    "cfgan": {
        "generator": [64],
        "discriminator": [16],
        "lr": 3e-3,
        "epochs": 100,
        "patience": 100,
        "batch_size": 16,
        "device": "cpu",
    },
}
SEQUENCE_MODELS = ["sasrec", "gru4rec", "bert4rec", "caser"]
ALL_MODELS = list(MODEL_NAMES)


@pytest.fixture(scope="module")
def data() -> tuple[sp.csr_matrix, sp.csr_matrix]:
    return planted_blocks()


@pytest.fixture(scope="module")
def als(data) -> ALS:
    return ALS(**ALS_PARAMS).fit(data[0])


@pytest.fixture(scope="module")
def vae(data) -> MultVAE:
    return MultVAE(**VAE_PARAMS).fit(data[0], data[1])


@pytest.fixture(scope="module")
def popularity(data) -> Popularity:
    return Popularity().fit(data[0])


# -- quality on the planted structure ---------------------------------------------------------------------


def test_als_recovers_blocks(data, als) -> None:
    assert recall_at(als, *data, k=5) >= 0.8


def test_mult_vae_recovers_blocks(data, vae) -> None:
    assert recall_at(vae, *data, k=5) >= 0.8
    assert 1 <= vae.best_epoch_ <= VAE_PARAMS["epochs"]


def test_mult_vae_without_validation_trains_fixed_epochs(data) -> None:
    lines: list[str] = []
    model = MultVAE(**{**VAE_PARAMS, "epochs": 4}).fit(data[0], log=lines.append)
    assert len(lines) == 4 and all("epoch" in line and "loss" in line for line in lines)
    assert model.best_epoch_ == 4
    assert model.score(np.arange(3), data[0][:3]).dtype == np.float32


def test_mult_vae_weight_averaging_can_be_turned_off(data, vae) -> None:
    raw = MultVAE(**{**VAE_PARAMS, "weight_averaging": 0.0}).fit(data[0], data[1])
    assert recall_at(raw, *data, k=5) >= 0.8
    users = np.arange(5)
    assert not np.allclose(raw.score(users, data[0][:5]), vae.score(users, data[0][:5]))


def test_mult_vae_logs_validation_ndcg(data) -> None:
    lines: list[str] = []
    validate = validation_scorer(data[0], data[1])
    MultVAE(**{**VAE_PARAMS, "epochs": 2}).fit(
        data[0], data[1], context=FitContext(validate=validate), log=lines.append
    )
    epoch_lines = [line for line in lines if line.startswith("mult_vae epoch")]
    assert len(epoch_lines) == 2 and all("val ndcg@10" in line for line in epoch_lines)


def test_popularity_ranks_by_user_count(data, popularity) -> None:
    train = data[0]
    counts = np.bincount(train.indices, minlength=N_ITEMS)
    items, scores = popularity.recommend(np.array([0]), sp.csr_matrix((1, N_ITEMS)), N_ITEMS)
    expected = np.lexsort((np.arange(N_ITEMS), -counts))  # by count, ties to the lower index
    np.testing.assert_array_equal(items[0], expected)
    np.testing.assert_array_equal(scores[0], counts[expected].astype(np.float32))


def test_popularity_by_weight_sums_weights() -> None:
    train = sp.csr_matrix(np.array([[5.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 2.0]], dtype=np.float32))
    by_users = Popularity(by="users").fit(train).score(np.arange(1), train[:1])[0]
    by_weight = Popularity(by="weight").fit(train).score(np.arange(1), train[:1])[0]
    np.testing.assert_array_equal(by_users, [1, 3, 1])
    np.testing.assert_array_equal(by_weight, [5, 3, 2])
    with pytest.raises(ValueError, match="'by'"):
        Popularity(by="clicks")  # type: ignore[arg-type]


# -- recommend contract -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["popularity", "als", "vae"])
def test_recommend_pads_when_few_unseen(name, request) -> None:
    model = request.getfixturevalue(name)
    history = sp.csr_matrix(np.ones((1, N_ITEMS), dtype=np.float32))
    history[0, 3] = 0.0
    history[0, 17] = 0.0
    history.eliminate_zeros()
    items, scores = model.recommend(np.array([0]), history, 5)
    assert sorted(items[0, :2]) == [3, 17]
    np.testing.assert_array_equal(items[0, 2:], [-1, -1, -1])
    assert np.isneginf(scores[0, 2:]).all() and np.isfinite(scores[0, :2]).all()


def test_top_k_ties_break_to_lower_index_at_the_boundary() -> None:
    scores = np.array([[1.0, 2.0, 1.0, 2.0, 1.0, 1.0]], dtype=np.float32)
    items, _ = top_k_excluding(scores, sp.csr_matrix((1, 6)), 4)
    np.testing.assert_array_equal(items[0], [1, 3, 0, 2])
    items, _ = top_k_excluding(scores, sp.csr_matrix(([1.0], ([0], [0])), shape=(1, 6)), 3)
    np.testing.assert_array_equal(items[0], [1, 3, 2])


@pytest.mark.parametrize("k", [0, 1, 3, 7, 12, 20])
def test_top_k_matches_a_full_sort_on_random_tied_scores(k) -> None:
    """Against a full lexsort: few distinct values (many ties), NaN, excluded items, k >= catalogue."""
    rng = np.random.default_rng(k)
    scores = rng.integers(0, 4, size=(50, 12)).astype(np.float64)
    scores[rng.random(scores.shape) < 0.1] = np.nan
    scores[7] = np.nan  # a row with nothing rankable
    exclude = sp.random(50, 12, density=0.2, format="csr", random_state=k)
    items, top = top_k_excluding(scores, exclude, k)
    masked = np.where(np.isnan(scores) | (exclude.toarray() != 0), -np.inf, scores)
    order = np.lexsort((np.broadcast_to(np.arange(12), masked.shape), -masked), axis=1)[:, : min(k, 12)]
    expected_scores = np.take_along_axis(masked, order, axis=1)
    expected_items = np.where(np.isfinite(expected_scores), order, -1)
    np.testing.assert_array_equal(items, expected_items)
    np.testing.assert_array_equal(top, expected_scores.astype(np.float32))
    assert items.dtype == np.int32 and top.dtype == np.float32


# -- fold-in, similarity ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["als", "vae"])
def test_fold_in_serves_unseen_user(name, request) -> None:
    """A user absent from training, known only through history, gets the history's block."""
    model = request.getfixturevalue(name)
    for block in range(GROUPS):
        history = matrix_of([(0, block * ITEMS_PER_BLOCK + i) for i in (0, 2, 4, 6)], (1, N_ITEMS))
        items, _ = model.recommend(np.array([0]), history, 4)
        np.testing.assert_array_equal(block_of_item(items[0]), block)


def test_als_similar_items_stay_in_block(als) -> None:
    items = np.arange(N_ITEMS)
    neighbours, sims = als.similar_items(items, 5)
    assert neighbours.shape == (N_ITEMS, 5)
    assert not (neighbours == items[:, None]).any()
    assert (block_of_item(neighbours) == block_of_item(items)[:, None]).mean() >= 0.9
    assert np.all(np.diff(sims, axis=1) <= 0)


def test_mult_vae_similar_items_shape(vae) -> None:
    neighbours, _ = vae.similar_items(np.array([0, 15]), 3)
    assert neighbours.shape == (2, 3) and not (neighbours == np.array([[0], [15]])).any()


# -- determinism, persistence -----------------------------------------------------------------------------


def test_als_same_seed_same_factors(data, als) -> None:
    again = ALS(**ALS_PARAMS).fit(data[0])
    np.testing.assert_array_equal(again.item_factors_, als.item_factors_)
    np.testing.assert_array_equal(again.user_factors_, als.user_factors_)
    other = ALS(**{**ALS_PARAMS, "seed": 7}).fit(data[0])
    assert not np.array_equal(other.item_factors_, als.item_factors_)


def test_als_device_choice(data) -> None:
    """``auto`` trains where implicit can (CPU here); an explicit ``cuda`` without CUDA is a clear error."""
    import implicit.gpu

    with pytest.raises(ValueError, match="'device' must be"):
        ALS(device="tpu")
    if not implicit.gpu.HAS_CUDA:
        with pytest.raises(ValueError, match="built without CUDA"):
            ALS(**ALS_PARAMS, device="cuda").fit(data[0])
        cpu = ALS(**ALS_PARAMS, device="cpu").fit(data[0])
        np.testing.assert_array_equal(cpu.item_factors_, ALS(**ALS_PARAMS).fit(data[0]).item_factors_)
    else:
        assert recall_at(ALS(**ALS_PARAMS, device="cuda").fit(data[0]), *data, k=5) >= 0.8


# -- registry ---------------------------------------------------------------------------------------------


def test_registry_unknown_model() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'autoint'; known: als, bert4rec, bpr, caser, "):
        create_model("autoint")


def test_registry_unknown_parameter() -> None:
    with pytest.raises(ValueError, match=r"model 'als' has no parameter 'foo'; known: factors, "):
        create_model("als", {"foo": 1, "factors": 3})


def test_load_model_unknown_name(tmp_path: Path) -> None:
    (tmp_path / "params.json").write_text(json.dumps({"model": "nope", "params": {}}))
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        load_model(tmp_path)


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
    train = matrix_of(list(zip(users, steps[:, :length].ravel(), strict=True)), shape)
    held = matrix_of([(u, int(steps[u, length])) for u in range(n_users)], shape)
    return train, held, events, steps[:, length]


# BERT4Rec's cloze training needs more epochs than these quick settings: its chain test is in test_bert4rec
@pytest.mark.parametrize("name", [name for name in SEQUENCE_MODELS if name != "bert4rec"])
def test_sequence_model_learns_next_item_chain(name) -> None:
    train, held, events, expected = chains()
    context = FitContext(train_events=events, validate=validation_scorer(train, held))
    model = create_model(name, PARAMS[name]).fit(train, held, context=context)
    users = np.arange(train.shape[0])
    items, _ = model.recommend(users, train, 1, ScoreContext(history_events=events))
    assert (items[:, 0] == expected).mean() >= 0.9
    # two runs of the cycle in either order: the same set of items, only the order says what comes next
    for first, second in [((0, 1, 2, 3), (10, 11, 12, 13)), ((10, 11, 12, 13), (0, 1, 2, 3))]:
        walk = [*first, *second]
        history = matrix_of([(0, item) for item in walk], (1, train.shape[1]))
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


@pytest.mark.parametrize("name", ["item_knn", "user_knn", "bpr", "ease", "svd", "content", "hybrid", "neumf"])
def test_fold_in_serves_a_user_index_beyond_training(name, fitted) -> None:
    """A user index beyond training, known only through a few history items, gets the history's block."""
    newcomer = N_USERS + 5
    for block in range(GROUPS):
        pairs = [(newcomer, block * ITEMS_PER_BLOCK + i) for i in (0, 2, 4, 6)]
        items, _ = fitted[name].recommend(np.array([newcomer]), matrix_of(pairs, (newcomer + 1, N_ITEMS)), 4)
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
def test_another_seed_other_scores(name, blocks, fitted) -> None:
    train, held, context, score_context = blocks
    params = {**PARAMS[name], "epochs": 2} if "epochs" in PARAMS[name] else PARAMS[name]
    users = np.arange(N_USERS)
    first = create_model(name, params).fit(train, held, context=context).score(users, train, score_context)
    other = create_model(name, {**params, "seed": 7}).fit(train, held, context=context)
    assert not np.array_equal(other.score(users, train, score_context), first)


# -- guards and errors ------------------------------------------------------------------------------------


def test_ease_item_guard(blocks) -> None:
    with pytest.raises(ValueError, match=r"ease: 30 items exceed max_items=20 .* raise max_items"):
        EASE(max_items=20).fit(blocks[0])


def test_content_needs_item_features(blocks) -> None:
    with pytest.raises(ValueError, match="content: needs item features"):
        Content().fit(blocks[0])
    with pytest.raises(ValueError, match="column 'colour' not found"):
        Content(categorical_columns=["colour"]).fit(blocks[0], context=FitContext(item_features=catalog()))


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
    everything_in_block = matrix_of([(0, i) for i in range(ITEMS_PER_BLOCK)], (1, N_ITEMS + 1))
    shoes_fan, _ = model.recommend(np.array([0]), everything_in_block, 1)
    assert shoes_fan[0, 0] == N_ITEMS
    toy_history = matrix_of([(0, 2 * ITEMS_PER_BLOCK + i) for i in range(3)], (1, N_ITEMS + 1))
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


#: a brand-new item per category whose title shares no word with that category's titles
SYNONYMS = {"shoes": "running sneakers", "books": "paperback novel", "toys": "teddy bear"}


@pytest.mark.parametrize("encoder", ["all-MiniLM-L6-v2", None])
def test_content_finds_new_items_by_meaning_with_the_pretrained_encoder(encoder) -> None:
    """The real all-MiniLM-L6-v2 places "running sneakers" next to "shoes"; TF-IDF, sharing no word with
    them, cannot: each block's fan gets its new synonym first only with the encoder."""
    train, _ = planted_blocks()
    grown = sp.hstack([train, sp.csr_matrix((N_USERS, len(CATEGORIES)))], format="csr")
    items = catalog(N_ITEMS + len(CATEGORIES))
    # titles are the bare category word: a shared template ("... item model1") would dominate the meaning
    items["title"] = items["category"]
    items.loc[N_ITEMS:, "title"] = [SYNONYMS[c] for c in CATEGORIES]
    model = Content(text_encoder=encoder, categorical_columns=[], numeric_columns=[], min_df=1)
    model.fit(grown, context=FitContext(item_features=items))
    fans = matrix_of(
        [(g, g * ITEMS_PER_BLOCK + i) for g in range(len(CATEGORIES)) for i in range(ITEMS_PER_BLOCK)],
        (len(CATEGORIES), grown.shape[1]),
    )
    top, _ = model.recommend(np.arange(len(CATEGORIES)), fans, 1)
    found = top[:, 0] == N_ITEMS + np.arange(len(CATEGORIES))
    if encoder:
        assert found.all() and model.item_vectors_.shape == (grown.shape[1], 384)
    else:
        assert not found.any()


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


# -- registry and run settings ------------------------------------------------------------------------------


def test_registry_order_and_lazy_mapping() -> None:
    assert MODEL_NAMES == (
        "popularity",
        "recent_popularity",
        "random",
        "item_knn",
        "user_knn",
        "sknn",
        "vsknn",
        "cooccurrence",
        "als",
        "bpr",
        "ease",
        "svd",
        "content",
        "hybrid",
        "private_popularity",
        "private_ease",
        "mult_vae",
        "recvae",
        "cfgan",
        "neumf",
        "lightgcn",
        "sasrec",
        "gru4rec",
        "bert4rec",
        "caser",
    )
    assert (
        list(MODEL_REGISTRY) == list(MODEL_NAMES)
        and "als" in MODEL_REGISTRY
        and "autoint" not in MODEL_REGISTRY
    )
    assert MODEL_REGISTRY["als"] is ALS
    with pytest.raises(KeyError):
        MODEL_REGISTRY["autoint"]
    model = create_model("als", {"factors": 4})
    assert isinstance(model, ALS) and model.factors == 4 and model.get_params()["factors"] == 4
    assert isinstance(create_model("mult_vae"), MultVAE)
    assert isinstance(create_model("popularity", None), Popularity)


@pytest.mark.integration  # a fresh interpreter
def test_names_and_capabilities_without_importing_torch() -> None:
    code = (
        "import sys; from recpipeline.contracts import MODEL_NAMES, has_item_similarity; "
        "[has_item_similarity(n) for n in MODEL_NAMES]; import recpipeline.models; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_run_settings_are_explicit() -> None:
    settings = RunSettings(seed=3, k=20)
    assert create_model("als", None, settings).get_params()["seed"] == 3  # als takes no k
    assert "k" not in create_model("als", None, settings).get_params()
    vae = create_model("mult_vae", {"seed": 5}, settings).get_params()
    assert (vae["seed"], vae["k"]) == (5, 20)  # a configured value wins over the run's
    assert create_model("ease", None, settings).get_params() == create_model("ease").get_params()
    # a hybrid hands its seed, and only its seed, to its CF part
    hybrid = Hybrid(cf="mult_vae", cf_params={"epochs": 1, "device": "cpu"}, seed=9)
    train = planted_blocks()[0]
    hybrid.fit(train, context=FitContext(item_features=catalog()))
    assert (hybrid.cf_model_.seed, hybrid.cf_model_.k) == (9, MultVAE().k)


# -- the validation metric is the reported metric ----------------------------------------------------------


def previous_holdout_ndcg(
    model: Recommender, history: sp.csr_matrix, holdout: sp.csr_matrix, k: int
) -> float:
    """holdout_ndcg as it was computed before it used the metric engine (its own formula)."""
    seen = prepare_matrix(history, binarize=True)
    truth = prepare_matrix(holdout, binarize=True)
    relevant = truth - truth.multiply(seen)
    relevant.eliminate_zeros()
    users = np.flatnonzero((np.diff(relevant.indptr) > 0) & (np.diff(seen.indptr) > 0))
    if len(users) == 0:
        return float("nan")
    items, _ = model.recommend(users, sp.csr_matrix(history), k)
    rows = relevant[users]
    found = items >= 0
    picked = rows[np.arange(len(users))[:, None], np.where(found, items, 0)]
    hits = (np.asarray(picked.todense()) > 0) & found
    discounts = 1.0 / np.log2(np.arange(2, items.shape[1] + 2))
    ideal = np.cumsum(discounts)[np.minimum(np.diff(rows.indptr), items.shape[1]) - 1]
    return float(np.mean(hits @ discounts / ideal))


@pytest.mark.parametrize("case", range(40))
def test_holdout_ndcg_is_the_reported_ndcg(case: int) -> None:
    """Exactly the metric engine's ndcg@k on the same lists; the previous formula summed the discounts in
    another order (a BLAS dot product), so it agrees to rounding."""
    rng = np.random.default_rng(case)
    n_users, n_items = int(rng.integers(2, 120)), int(rng.integers(2, 60))
    k = int(rng.choice([1, 3, 10, 100]))
    history, holdout = (
        sp.random(n_users, n_items, density=rng.uniform(0.02, 0.3), random_state=case + s, format="csr")
        for s in (0, 1000)
    )
    model = Random(seed=case).fit(history)
    ndcg = holdout_ndcg(model, history, holdout, k)
    previous = previous_holdout_ndcg(model, history, holdout, k)
    if np.isnan(previous):
        assert np.isnan(ndcg)
        return
    assert ndcg == pytest.approx(previous, rel=0, abs=1e-12)
    # the engine on the same lists and relevance (users with history and unseen held-out items)
    seen = prepare_matrix(history)
    users = np.flatnonzero(np.diff(seen.indptr) > 0)
    items, _ = model.recommend(users, history, k)
    listed = items >= 0
    lists = pd.DataFrame(
        {
            "user_idx": np.repeat(users, items.shape[1])[listed.ravel()],
            "item_idx": items[listed],
            "rank": np.broadcast_to(np.arange(1, items.shape[1] + 1), items.shape)[listed],
        }
    )
    truth = prepare_matrix(holdout).tocoo()
    test = pd.DataFrame({"user_idx": truth.row, "item_idx": truth.col})
    test = test[
        (np.diff(seen.indptr) > 0)[test["user_idx"]]
        & ~np.asarray(seen[test["user_idx"], test["item_idx"]] > 0).ravel()
    ]
    reported = evaluate(lists, test, test, [k]).set_index("metric").loc["ndcg", "value"]
    assert ndcg == reported
