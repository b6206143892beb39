"""Planted structures the model tests share: user groups that only touch their own item block.

Every block is one category and every group one user segment, so a model that learns anything collaborative
(or from content) must rank a user's held-out items from the own block above the other blocks' items.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from recpipeline.models import FitContext, Recommender, ScoreContext

GROUPS, USERS_PER_GROUP, ITEMS_PER_BLOCK = 3, 20, 10
N_USERS, N_ITEMS = GROUPS * USERS_PER_GROUP, GROUPS * ITEMS_PER_BLOCK
N_TRAIN, N_HELD = 6, 2
CATEGORIES = np.array(["shoes", "books", "toys"])
SEGMENTS = np.array(["north", "south", "east"])
T0 = pd.Timestamp("2026-01-01", tz="UTC")


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # tiny tensors: thread hand-offs cost more than they save, and the test machine is shared
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def matrix_of(pairs: list[tuple[int, int]], shape: tuple[int, int]) -> sp.csr_matrix:
    """A binary users x items matrix with a 1 at each (user, item) pair."""
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
    return matrix_of(train, (N_USERS, N_ITEMS)), matrix_of(held, (N_USERS, N_ITEMS))


def block_of_item(items: np.ndarray) -> np.ndarray:
    return np.asarray(items) // ITEMS_PER_BLOCK


def recall_at(
    model: Recommender,
    train: sp.csr_matrix,
    held: sp.csr_matrix,
    k: int,
    context: ScoreContext | None = None,
) -> float:
    items, _ = model.recommend(np.arange(N_USERS), train, k, context)
    return float(np.mean([np.isin(held[u].indices, items[u]).mean() for u in range(N_USERS)]))


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
def blocks() -> tuple[sp.csr_matrix, sp.csr_matrix, FitContext, ScoreContext]:
    """(train, held-out, fit context, score context) of the planted blocks, with events and features."""
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
