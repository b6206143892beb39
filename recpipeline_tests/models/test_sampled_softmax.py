"""The sequence models' sampled softmax (``SequenceRecommender._item_loss`` above ``full_softmax_max_items``)
ranks as well as the exact softmax on a planted next-item problem."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from recpipeline.models import FitContext, ScoreContext, create_model

N_ITEMS, N_USERS, LENGTH = 300, 240, 12
T0 = pd.Timestamp("2026-01-01", tz="UTC")


def successor_chains() -> tuple[sp.csr_matrix, pd.DataFrame, np.ndarray]:
    """Every user walks ``i -> i + 1 (mod N_ITEMS)`` from a random start: (train matrix, train events, the
    held-out next item per user)."""
    rng = np.random.default_rng(3)
    starts = rng.integers(0, N_ITEMS, N_USERS)
    items = (starts[:, None] + np.arange(LENGTH + 1)) % N_ITEMS
    users = np.repeat(np.arange(N_USERS), LENGTH)
    train_items = items[:, :LENGTH].ravel()
    events = pd.DataFrame(
        {
            "user_idx": users.astype(np.int32),
            "item_idx": train_items.astype(np.int32),
            "weight": np.float32(1.0),
            "timestamp": T0 + pd.to_timedelta(np.tile(np.arange(LENGTH), N_USERS), unit="min"),
        }
    )
    matrix = sp.csr_matrix((np.ones(len(users), np.float32), (users, train_items)), (N_USERS, N_ITEMS))
    return matrix, events, items[:, LENGTH]


def hit_rate(params: dict) -> float:
    train, events, held = successor_chains()
    model = create_model(
        "gru4rec",
        {
            "factors": 32,
            "max_len": 8,
            "epochs": 20,
            "lr": 0.01,
            "batch_size": 64,
            "dropout": 0.0,
            "num_threads": 1,
            **params,
        },
    )
    model.fit(train, None, context=FitContext(train_events=events))
    top, _ = model.recommend(np.arange(N_USERS), train, 10, ScoreContext(history_events=events))
    return float((top == held[:, None]).any(axis=1).mean())


@pytest.fixture(scope="module")
def full_hit_rate() -> float:
    return hit_rate({})


@pytest.mark.parametrize("sampling", ["uniform", "popularity"])
def test_sampled_and_full_softmax_agree_on_the_planted_successors(full_hit_rate, sampling):
    sampled = hit_rate(
        {"full_softmax_max_items": 100, "sampled_negatives": 40, "negative_sampling": sampling}
    )
    assert full_hit_rate > 0.9  # the chain is learnable: the exact softmax finds the successor
    assert sampled > 0.9 and abs(sampled - full_hit_rate) < 0.05


def test_below_the_limit_the_loss_is_the_exact_cross_entropy():
    train, events, _ = successor_chains()
    model = create_model("gru4rec", {"factors": 8, "max_len": 4, "epochs": 1, "num_threads": 1})
    model.fit(train, None, context=FitContext(train_events=events))
    states, targets = torch.randn(5, 8), torch.tensor([1, 2, 3, 299, 300])
    logits = states @ model.module_.item_embedding.weight[1:].T
    expected = torch.nn.functional.cross_entropy(logits, targets - 1)
    proposal = torch.full((N_ITEMS,), 1.0 / N_ITEMS)  # not drawn from: the exact softmax needs none
    assert torch.allclose(model._item_loss(model.module_, states, targets, proposal), expected)


def test_sampled_loss_masks_draws_of_the_own_target():
    # two items, one negative per batch drawn from a proposal that only ever draws item 0 (token 1):
    # rows whose target is item 0 then have no competitor at all, and their loss is exactly 0
    train, events, _ = successor_chains()
    model = create_model(
        "gru4rec",
        {"factors": 4, "max_len": 4, "epochs": 1, "num_threads": 1, "full_softmax_max_items": 1,
         "sampled_negatives": 1},
    )  # fmt: skip
    model.fit(train, None, context=FitContext(train_events=events))
    proposal = torch.zeros(N_ITEMS)
    proposal[0] = 1.0
    loss = model._item_loss(model.module_, torch.randn(3, 4), torch.tensor([1, 1, 1]), proposal)
    assert float(loss.detach()) == 0.0


def test_an_unknown_negative_sampling_is_rejected():
    with pytest.raises(ValueError, match="negative_sampling"):
        create_model("gru4rec", {"negative_sampling": "zipf"})
