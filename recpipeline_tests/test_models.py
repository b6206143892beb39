"""Models on a planted block structure: user groups that only touch their own item block.

A model that learns anything collaborative must rank a user's held-out items from the own block above the
other blocks' items; the baselines and the persistence / registry plumbing are checked exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recpipeline.models import (
    ALS,
    MODEL_REGISTRY,
    MultVAE,
    Popularity,
    Recommender,
    create_model,
    load_model,
)
from recpipeline.models.base import top_k_excluding

GROUPS, USERS_PER_GROUP, ITEMS_PER_BLOCK = 3, 20, 10
N_USERS, N_ITEMS = GROUPS * USERS_PER_GROUP, GROUPS * ITEMS_PER_BLOCK
N_TRAIN, N_HELD = 6, 2

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


def _matrix(pairs: list[tuple[int, int]], shape: tuple[int, int]) -> sp.csr_matrix:
    rows, cols = np.array(pairs).T
    return sp.csr_matrix((np.ones(len(pairs), dtype=np.float32), (rows, cols)), shape=shape)


def planted_blocks(seed: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(train, held-out): each user has N_TRAIN train and N_HELD held-out items, all from the own block."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    for user in range(N_USERS):
        block = user // USERS_PER_GROUP
        items = block * ITEMS_PER_BLOCK + rng.choice(ITEMS_PER_BLOCK, N_TRAIN + N_HELD, replace=False)
        train += [(user, int(i)) for i in items[:N_TRAIN]]
        held += [(user, int(i)) for i in items[N_TRAIN:]]
    return _matrix(train, (N_USERS, N_ITEMS)), _matrix(held, (N_USERS, N_ITEMS))


def block_of_item(items: np.ndarray) -> np.ndarray:
    return np.asarray(items) // ITEMS_PER_BLOCK


def recall_at(model: Recommender, train: sp.csr_matrix, held: sp.csr_matrix, k: int) -> float:
    items, _ = model.recommend(np.arange(N_USERS), train, k)
    return float(np.mean([np.isin(held[u].indices, items[u]).mean() for u in range(N_USERS)]))


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
    MultVAE(**{**VAE_PARAMS, "epochs": 2}).fit(data[0], data[1], log=lines.append)
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
def test_seen_items_never_recommended(name, data, request) -> None:
    model = request.getfixturevalue(name)
    train = data[0]
    items, _ = model.recommend(np.arange(N_USERS), train, 10)
    for user in range(N_USERS):
        assert not np.isin(items[user], train[user].indices).any()


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
        history = _matrix([(0, block * ITEMS_PER_BLOCK + i) for i in (0, 2, 4, 6)], (1, N_ITEMS))
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


def test_mult_vae_same_seed_same_scores(data) -> None:
    params = {**VAE_PARAMS, "epochs": 3}
    first = MultVAE(**params).fit(data[0], data[1]).score(np.arange(N_USERS), data[0])
    second = MultVAE(**params).fit(data[0], data[1]).score(np.arange(N_USERS), data[0])
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("name", ["popularity", "als", "vae"])
def test_save_load_round_trip(name, data, request, tmp_path: Path) -> None:
    model = request.getfixturevalue(name)
    model.save(tmp_path)
    meta = json.loads((tmp_path / "params.json").read_text())
    assert meta["model"] == model.name and meta["params"] == model.get_params()
    assert not list(tmp_path.glob("*.pkl")) and not list(tmp_path.glob("*.pt"))
    loaded = load_model(tmp_path)
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    assert (loaded.n_users_, loaded.n_items_) == (N_USERS, N_ITEMS)
    users = np.arange(N_USERS)
    np.testing.assert_array_equal(loaded.score(users, data[0]), model.score(users, data[0]))


# -- registry ---------------------------------------------------------------------------------------------


def test_registry_builds_models() -> None:
    assert list(MODEL_REGISTRY) == [
        "popularity",
        "random",
        "item_knn",
        "user_knn",
        "als",
        "bpr",
        "ease",
        "svd",
        "content",
        "hybrid",
        "mult_vae",
        "neumf",
        "sasrec",
        "gru4rec",
    ]
    model = create_model("als", {"factors": 4})
    assert isinstance(model, ALS) and model.factors == 4 and model.get_params()["factors"] == 4
    assert isinstance(create_model("mult_vae"), MultVAE)
    assert isinstance(create_model("popularity", None), Popularity)


def test_registry_unknown_model() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'lightgcn'; known: als, bpr, content, ease, "):
        create_model("lightgcn")


def test_registry_unknown_parameter() -> None:
    with pytest.raises(ValueError, match=r"model 'als' has no parameter 'foo'; known: factors, "):
        create_model("als", {"foo": 1, "factors": 3})


def test_load_model_unknown_name(tmp_path: Path) -> None:
    (tmp_path / "params.json").write_text(json.dumps({"model": "nope", "params": {}}))
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        load_model(tmp_path)
