"""BERT4Rec: the model contract, the cloze draw, and a planted next-item chain a working model recovers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from recpipeline.models import FitContext, ScoreContext, create_model
from recpipeline_tests.models.conftest import T0, matrix_of
from recpipeline_tests.models.contract import ModelContract
from recpipeline_tests.models.test_models import chains

SMALL = {
    "factors": 8,
    "heads": 1,
    "max_len": 8,
    "epochs": 2,
    "batch_size": 32,
    "dropout": 0.0,
    "device": "cpu",
}
#: enough to learn the cycle of 20 items (about 10 s on one idle core)
CHAIN = {
    "factors": 32,
    "heads": 1,
    "max_len": 12,  # longer than the walks: training sees padding, as short prefixes have
    "epochs": 60,
    "patience": 15,
    "batch_size": 32,
    "lr": 3e-3,
    "dropout": 0.0,
    "mask_prob": 0.3,
    "last_share": 0.5,
    "device": "cpu",
}


class TestBERT4Rec(ModelContract):
    name = "bert4rec"
    params = SMALL


@pytest.fixture(scope="module")
def chain_model():
    train, held, events, expected = chains()
    model = create_model("bert4rec", CHAIN).fit(train, held, context=FitContext(train_events=events))
    return model, train, events, expected


@pytest.mark.integration  # about 10 s of training on one idle core
def test_learns_the_next_item_of_a_chain(chain_model) -> None:
    model, train, events, expected = chain_model
    items, _ = model.recommend(np.arange(train.shape[0]), train, 1, ScoreContext(history_events=events))
    assert (items[:, 0] == expected).mean() >= 0.9


@pytest.mark.integration  # about 10 s of training on one idle core
def test_serves_every_prefix_of_a_walk(chain_model) -> None:
    """Each prefix of a walk (shorter than the training windows: padding, then [MASK]) gets its next item."""
    model, train, _, _ = chain_model
    hits = []
    for start in (0, 7, 15):
        walk = (start + np.arange(8)) % train.shape[1]
        for length in range(2, 8):
            history = matrix_of([(0, int(item)) for item in walk[:length]], (1, train.shape[1]))
            steps = T0 + pd.to_timedelta(np.arange(length), unit="h")
            prefix = pd.DataFrame({"user_idx": 0, "item_idx": walk[:length], "timestamp": steps})
            top, _ = model.recommend(np.array([0]), history, 1, ScoreContext(history_events=prefix))
            hits.append(top[0, 0] == walk[length])
    assert np.mean(hits) >= 0.8


@pytest.mark.integration  # about 10 s of training on one idle core
def test_the_mask_token_is_no_item(chain_model) -> None:
    model, train, events, _ = chain_model
    assert model.module_.item_embedding.num_embeddings == train.shape[1] + 2
    scores = model.score(np.arange(3), train[:3], ScoreContext(history_events=events))
    assert scores.shape == (3, train.shape[1])
    neighbours, _ = model.similar_items(np.arange(train.shape[1]), train.shape[1] - 1)
    assert neighbours.max() < train.shape[1]
    tokens = model._score_tokens(events, np.array([0, 99]))
    assert tokens.shape == (2, CHAIN["max_len"]) and (tokens[:, -1] == train.shape[1] + 1).all()
    assert (tokens[1, :-1] == 0).all()  # a user without history: padding, then [MASK]


def test_cloze_draw_masks_real_items_only() -> None:
    batch = torch.tensor([[0, 0, 3, 4, 5, 6, 7, 8]] * 200)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        inputs, targets = _cloze(batch, mask_prob=0.5, last_share=0.0)
    masked = inputs == 31
    assert not masked[:, :2].any() and (targets[:, :2] == 0).all()  # padding is never masked
    torch.testing.assert_close(targets, torch.where(masked, batch, 0))
    torch.testing.assert_close(inputs[~masked], batch[~masked])
    assert 0.4 < masked[:, 2:].float().mean() < 0.6
    # last_share 1: every window hides only its latest item, the scoring situation
    inputs, targets = _cloze(batch, last_share=1.0)
    assert (inputs[:, -1] == 31).all() and (inputs[:, :-1] == batch[:, :-1]).all()
    assert (targets[:, -1] == 8).all() and (targets[:, :-1] == 0).all()


def _cloze(batch: torch.Tensor, **params: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One cloze draw of an unfitted model over a catalogue of 30 items ([MASK] = token 31)."""
    model = create_model("bert4rec", {**SMALL, **params})
    model.n_items_ = 30
    return model._training_pair(batch)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="mask_prob"):
        create_model("bert4rec", {"mask_prob": 1.0})
    with pytest.raises(ValueError, match="max_len"):
        create_model("bert4rec", {"max_len": 1})
    with pytest.raises(ValueError, match="divisible by heads"):
        create_model("bert4rec", {"factors": 10, "heads": 4})
    with pytest.raises(ValueError, match="item_init"):
        create_model("bert4rec", {"item_init": "glove"})
